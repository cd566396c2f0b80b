#!/usr/bin/env python3
"""Cross-checks xgrad's .safetensors files against the format specification, stdlib only.

Debian has no python3-safetensors package, so this checks the *format spec* (8-byte little-endian
header length, JSON header, data_offsets relative to the data section, tensors tiling it), not the
reference library itself.

  safetensors_check.py read FILE    prints {"metadata": {...}, "tensors": {name: {dtype, shape, values}}}
  safetensors_check.py write FILE   writes a file the way the reference writer lays it out
"""
import json
import struct
import sys

FORMATS = {"F32": ("f", 4), "F64": ("d", 8), "I64": ("q", 8)}


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = blob[8 + n :]
    out = {"metadata": header.pop("__metadata__", {}), "tensors": {}}
    spans = []
    for name, info in header.items():
        code, size = FORMATS[info["dtype"]]
        begin, end = info["data_offsets"]
        count = 1
        for s in info["shape"]:
            count *= s
        assert end - begin == count * size, f"{name}: offsets do not match dtype and shape"
        values = list(struct.unpack(f"<{count}{code}", data[begin:end]))
        out["tensors"][name] = {"dtype": info["dtype"], "shape": info["shape"], "values": values}
        spans.append((begin, end))
    at = 0
    for begin, end in sorted(spans):
        assert begin == at, "tensors must tile the data section"
        at = end
    assert at == len(data), "trailing bytes after the last tensor"
    print(json.dumps(out))


def write(path):
    # Data in a different order than the header lists it, a 0-d tensor, metadata, and the
    # reference writer's habit of padding the header with spaces to a multiple of 8 bytes.
    tensors = [
        ("b.weight", "F64", [2, 2], struct.pack("<4d", 1.5, -2.25, 1e-300, 3.0)),
        ("a.bias", "F32", [3], struct.pack("<3f", 0.5, -1.0, 2.0)),
        ("count", "I64", [], struct.pack("<q", -7)),
    ]
    header, offset, blobs = {"__metadata__": {"epoch": "4", "format": "pt"}}, 0, []
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(dict(sorted(header.items())), separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


if __name__ == "__main__":
    {"read": read, "write": write}[sys.argv[1]](sys.argv[2])

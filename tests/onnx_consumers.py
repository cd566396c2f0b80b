#!/usr/bin/python3
"""ONNX consumer checks with Debian's python3-onnx and python3-opencv (run with /usr/bin/python3:
Debian's modules are not on other interpreters' paths), on the files tests/onnx_export_models writes.

  onnx_consumers.py check DIR    onnx.checker.check_model(full_check=True) on every DIR/*.onnx, plus
                                 the IR version, opset and the symbolic batch dimension
  onnx_consumers.py opencv DIR   cv2.dnn.readNetFromONNX on each model, run on NAME.io.safetensors'
                                 input; the output must equal xgrad's within 1e-4 relative
"""
import glob
import json
import os
import struct
import sys

import numpy as np

TOLERANCE = 1e-4
EXPECTED_MODELS = 8
# What OpenCV 4.6's importer refuses, with a piece of its message; every other model must match.
OPENCV_REFUSES = {"ops": "parseClip"}  # 4.6 takes Clip only in its opset-6 form (one input)


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    types = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + begin : 8 + n + end], dtype=types[info["dtype"]]).reshape(info["shape"])
    return out


def relative_error(got, want):
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-6))


def models(directory):
    names = sorted(os.path.basename(p)[: -len(".onnx")] for p in glob.glob(os.path.join(directory, "*.onnx")))
    if len(names) < EXPECTED_MODELS:
        sys.exit(f"{directory}: {len(names)} models, expected {EXPECTED_MODELS}")
    return names


def check(directory):
    import onnx

    for name in models(directory):
        model = onnx.load(os.path.join(directory, name + ".onnx"))
        onnx.checker.check_model(model, full_check=True)
        opsets = {o.domain: o.version for o in model.opset_import}
        batch = model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
        assert model.ir_version == 7 and opsets == {"": 13}, (model.ir_version, opsets)
        assert batch == "N", f"{name}: input dim 0 is {batch!r}, not the symbolic N"
        ops = sorted({n.op_type for n in model.graph.node})
        print(f"ok   {name}: IR 7, opset 13, {len(model.graph.node)} nodes, "
              f"{len(model.graph.initializer)} initializers; {' '.join(ops)}")
    print(f"onnx {onnx.__version__}: check_model(full_check=True) passed")


def opencv(directory):
    import cv2

    failed = 0
    for name in models(directory):
        io = read_safetensors(os.path.join(directory, name + ".io.safetensors"))
        try:
            net = cv2.dnn.readNetFromONNX(os.path.join(directory, name + ".onnx"))
            net.setInput(io["input"])
            got = net.forward()
        except cv2.error as e:
            message = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
            expected = OPENCV_REFUSES.get(name)
            ok = expected is not None and expected in str(e)
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: refused{' (as documented)' if ok else ''}: {message}")
            continue
        rel = relative_error(got, io["output"]) if got.shape == io["output"].shape else float("inf")
        ok = rel <= TOLERANCE and name not in OPENCV_REFUSES
        failed += not ok
        note = " (documented as refused: update OPENCV_REFUSES and the README)" if name in OPENCV_REFUSES else ""
        print(f"{'ok  ' if ok else 'FAIL'} {name}: output {list(got.shape)}, relative error {rel:.2e}{note}")
    print(f"OpenCV {cv2.__version__}: {'all as expected' if not failed else f'{failed} unexpected'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "opencv"):
        sys.exit(__doc__)
    {"check": check, "opencv": opencv}[sys.argv[1]](sys.argv[2])

#!/usr/bin/env bash
# ctest: examples/image_folder on a tiny folder written here (BMP files from Python's standard library):
# two classes of 16x16 images (reddish, bluish, with noise) and one corrupt file, which --skip-bad
# leaves out and which without it is an error naming the file. Seconds.
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/images" <<'PY'
import os, random, struct, sys
root = sys.argv[1]
rng = random.Random(1)
def bmp(path, w, h, pixel):
    row = (3 * w + 3) // 4 * 4
    data = bytearray()
    for y in range(h):
        line = bytearray()
        for x in range(w):
            r, g, b = pixel(x, y)
            line += bytes((b, g, r))
        data += line + bytes(row - len(line))
    header = b"BM" + struct.pack("<IHHI", 54 + len(data), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(data), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(header + info + data)
for cls, base in (("blue", (40, 60, 200)), ("red", (200, 50, 40))):
    os.makedirs(os.path.join(root, cls))
    for i in range(24):
        noise = lambda v: max(0, min(255, v + rng.randint(-60, 60)))
        bmp(os.path.join(root, cls, f"{i:02d}.bmp"), 16, 16, lambda x, y: tuple(noise(v) for v in base))
with open(os.path.join(root, "red", "broken.bmp"), "wb") as f:
    f.write(b"BM" + bytes(20))
PY
if "$bin" --root "$tmp/images" --run-dir "$tmp/run" > "$tmp/fail.log" 2>&1; then
  echo "FAIL: a corrupt file without --skip-bad should be an error"; exit 1
fi
grep -q "broken.bmp' is not a readable image" "$tmp/fail.log" || { cat "$tmp/fail.log"; echo "FAIL: error should name the file"; exit 1; }
"$bin" --root "$tmp/images" --size 16 --epochs 3 --batch-size 8 --lr 0.05 --skip-bad --threads 1 \
  --run-dir "$tmp/run" > "$tmp/ok.log" 2>&1 || { cat "$tmp/ok.log"; echo "FAIL: training run"; exit 1; }
cat "$tmp/ok.log"
grep -q "48 images in 2 classes (blue, red), 1 skipped" "$tmp/ok.log" || { echo "FAIL: folder summary"; exit 1; }
acc=$(sed -n 's/^best val accuracy \([0-9.]*\)%.*/\1/p' "$tmp/ok.log")
awk -v a="$acc" 'BEGIN { exit !(a >= 90) }' || { echo "FAIL: val accuracy $acc% below 90%"; exit 1; }
for f in metrics.csv best.safetensors summary.json; do test -s "$tmp/run/$f" || { echo "FAIL: missing $f"; exit 1; }; done
echo "image_folder example passed"

#!/usr/bin/env bash
# Smoke test of train_cifar10 --model airbench on a sliver of CIFAR-10 (narrow widths, small batches,
# 1.5 epochs, 500 test images): the recipe runs end to end and leaves its results; then the main
# command without --model (its default run). Seconds, not a measure of accuracy. Usage: airbench_smoke.sh path/to/train_cifar10. Skipped (exit 77) without data.
set -euo pipefail
bin=$1
dir=${CIFAR10_DIR:-}
for d in "$dir" "$(dirname "$0")/../../shared/datasets/cifar-10-batches-bin" data/cifar-10-batches-bin; do
  if [ -n "$d" ] && [ -f "$d/test_batch.bin" ]; then dir=$d; break; fi
  dir=
done
if [ -z "$dir" ]; then echo "no CIFAR-10 copy (set CIFAR10_DIR): skipped"; exit 77; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" --data "$dir" --model airbench --widths 8,16,16 --batch-size 64 --train-images 640 --num-val 100 \
  --test-images 500 --epochs 1.5 --threads 1 --run-dir "$out/run" > "$out/log" 2>&1 ||
  { cat "$out/log"; echo "FAIL: train_cifar10 --model airbench"; exit 1; }
grep -q "airbench: 15 steps of 64 (1.5 epochs of 10 steps), widths 8,16,16" "$out/log" ||
  { cat "$out/log"; echo "FAIL: the run's length"; exit 1; }
for f in metrics.csv summary.json best.safetensors model.onnx checkpoint.safetensors; do
  test -s "$out/run/$f" || { echo "FAIL: missing $f"; exit 1; }
done
grep -q '"iterations": 15' "$out/run/summary.json" || { cat "$out/run/summary.json"; echo "FAIL: iterations"; exit 1; }
grep -q '"loss_reduction": "sum"' "$out/run/summary.json" || { echo "FAIL: the recipe's summed loss"; exit 1; }
echo "airbench smoke test passed: $(grep 'test accuracy' "$out/log")"
# Without --model, the main command's default run: airbench with Muon at widths 48,192,192 for 5 epochs.
"$bin" --data "$dir" --batch-size 64 --train-images 640 --num-val 100 --test-images 500 \
  --threads 1 --run-dir "$out/default" > "$out/log" 2>&1 ||
  { cat "$out/log"; echo "FAIL: train_cifar10 without --model"; exit 1; }
grep -q "model airbench" "$out/log" &&
  grep -q "airbench (muon): 50 steps of 64 (5 epochs of 10 steps), widths 48,192,192" "$out/log" ||
  { cat "$out/log"; echo "FAIL: the default run is not airbench with Muon at widths 48,192,192 for 5 epochs"; exit 1; }
echo "default run passed: $(grep 'test accuracy' "$out/log")"

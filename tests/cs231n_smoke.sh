#!/usr/bin/env bash
# CI smoke test of the CS231n example: every subcommand on a tiny subset of CIFAR-10, seconds each.
# Usage: cs231n_smoke.sh path/to/cs231n. Skipped (exit 77) when no CIFAR-10 copy is found.
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
run() {  # run <subcommand> [flags...]: must succeed and leave its summary.json
  local name=$1
  shift
  local start=$SECONDS
  "$bin" --data "$dir" --out "$out/$name" --threads 1 "$name" "$@" > "$out/$name.log" 2>&1 ||
    { cat "$out/$name.log"; echo "FAIL: cs231n $name $*"; exit 1; }
  test -s "$out/$name/summary.json" || { echo "FAIL: cs231n $name left no summary.json"; exit 1; }
  echo "ok: cs231n $name ($((SECONDS - start)) s): $(tail -n 1 "$out/$name.log" | cut -c1-160)"
}
run gradcheck --checks 3
run knn --num-train 200 --num-test 20
run linear --num-train 500 --num-val 100 --num-test 100 --iterations 10 --no-sweep
run features --num-train 500 --num-val 100 --num-test 100 --iterations 20 --no-sweep
for k in svm_val_accuracy svm_test_accuracy net_val_accuracy net_test_accuracy; do
  grep -q "\"$k\"" "$out/features/summary.json" || { echo "FAIL: features summary lacks $k"; exit 1; }
done
run two-layer --num-train 400 --num-val 100 --num-test 100 --epochs 1 --no-sweep
run fc --num-train 400 --num-val 100 --num-test 100 --epochs 1
run overfit --num-val 50 --epochs 2
run update-rules --num-train 200 --num-val 50 --epochs 1
run convnet --num-train 100 --num-val 50 --num-test 50 --epochs 1
run bn-scale --num-train 100 --num-val 50 --epochs 1 --no-sweep
for f in knn/cross_validation.svg linear/softmax_templates.png features/svm_misclassified.png two-layer/first_layer.png convnet/plain_filters.png \
         convnet/loss.svg update-rules/loss.svg bn-scale/val_acc.svg; do
  test -s "$out/$f" || { echo "FAIL: missing picture $f"; exit 1; }
done
echo "cs231n smoke test passed"

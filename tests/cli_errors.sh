#!/usr/bin/env bash
# The main command's bad-input paths: each must exit non-zero with a clear message.
# Usage: cli_errors.sh path/to/train_cifar10
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

expect_error() {  # expect_error "text the output must contain" args...
  local want=$1
  shift
  local out
  out=$("$bin" "$@" 2>&1)
  local rc=$?
  if [ "$rc" -eq 0 ] || [[ "$out" != *"$want"* ]]; then
    echo "FAIL: train_cifar10 $* (exit $rc): expected a non-zero exit and '$want', got: $out"
    failures=$((failures + 1))
  fi
}

expect_error "make_model: unknown model 'resnet9000'" --model resnet9000 --data "$tmp"
expect_error "--batch-size" --batch-size -5
expect_error "--epochs" --epochs 0
expect_error "does not hold the CIFAR-10 binary files" --data "$tmp/missing"
expect_error "--model airbench trains with --optimizer sgd (airbench94) or muon (airbench94_muon), got 'adam'" --model airbench --optimizer adam --data "$tmp"
expect_error "--model airbench has its own schedule: drop --schedule and --lr-decay" --model airbench --optimizer muon --schedule cosine --data "$tmp"
expect_error "--widths" --model airbench --widths 8,8
expect_error "--widths is for --model airbench" --model vgg --widths 8,8,8 --data "$tmp"
expect_error "set_float32_matmul_precision: unknown precision 'low' (highest, high or medium)" --matmul-precision low --data "$tmp"

# One good record, then a truncated one.
mkdir -p "$tmp/trunc" "$tmp/label"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  head -c 3073 /dev/zero > "$tmp/trunc/$f.bin"
  head -c 3073 /dev/zero > "$tmp/label/$f.bin"
done
head -c 4000 /dev/zero > "$tmp/trunc/data_batch_2.bin"
expect_error "data_batch_2.bin" --data "$tmp/trunc"
printf '\x0a' | dd of="$tmp/label/data_batch_3.bin" bs=1 count=1 conv=notrunc 2>/dev/null
expect_error "label 10" --data "$tmp/label"

# Good data, but a run directory under a regular file: one error line, exit 1, no abort.
mkdir -p "$tmp/good"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  head -c 6146 /dev/zero > "$tmp/good/$f.bin"
done
touch "$tmp/afile"
out=$("$bin" --data "$tmp/good" --num-val 1 --epochs 1 --max-steps 1 --batch-size 4 --model twolayer --run-dir "$tmp/afile/run" 2>&1)
rc=$?
if [ "$rc" -ne 1 ] || [[ "$out" != *"error: Trainer: cannot create the directory '$tmp/afile/run'"* ]]; then
  echo "FAIL: --run-dir under a file (exit $rc): $out"
  failures=$((failures + 1))
fi

[ "$failures" -eq 0 ] && echo "cli_errors: all bad inputs rejected"
exit "$failures"

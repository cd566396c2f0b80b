#!/usr/bin/env bash
# The benchmarks' bad arguments: each must exit 1 with one "error: ..." line naming the tool, the
# argument and the value, before any measuring starts (no abort, no silent 0 from atoi).
# Usage: bench_cli_errors.sh BIN_DIR   (the build's bench/ directory)
set -u
dir=$1
failures=0

expect_error() {  # expect_error "text the output must contain" tool args...
  local want=$1 tool=$2
  shift 2
  local out rc
  out=$(timeout 60 "$dir/$tool" "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne 1 ] || [[ "$out" != *"error: $want"* ]]; then
    echo "FAIL: $tool $* (exit $rc): expected exit 1 and 'error: $want', got: $out"
    failures=$((failures + 1))
  fi
}

expect_error "vs_torch: --conv-algorithm takes automatic, winograd or im2col, got 'fft'" vs_torch model vgg --conv-algorithm fft
expect_error "vs_torch: --sgemm takes openblas or onednn, got 'mkl'" vs_torch ops --sgemm mkl
expect_error "vs_torch: --threads takes a whole number >= 1, got 'two'" vs_torch ops --threads two
expect_error "vs_torch: --threads takes a whole number >= 1, got '0'" vs_torch ops --threads 0
expect_error "vs_torch: --seconds takes a number > 0, got '3s'" vs_torch model vgg --seconds 3s
expect_error "vs_torch: --seconds takes a number > 0, got '-1'" vs_torch model vgg --seconds -1
expect_error "vs_torch: flag '--seconds' needs a value" vs_torch model vgg --seconds
expect_error "vs_torch: unknown flag '--fast'" vs_torch model vgg --fast 1
expect_error "set_float32_matmul_precision: unknown precision 'low'" vs_torch ops --matmul-precision low
expect_error "vs_torch: unknown model 'resnet'" vs_torch model resnet --seconds 0.1
expect_error "bench_airbench: the batch takes a whole number >= 1, got '0'" bench_airbench 0
expect_error "bench_airbench: reps takes a whole number >= 1, got 'x'" bench_airbench 8 x
expect_error "bench_airbench: width2 takes a whole number >= 1, got '-8'" bench_airbench 8 1 8 -8 8
expect_error "usage: bench_airbench" bench_airbench 8 1 8
expect_error "set_float32_matmul_precision: unknown precision 'bf16'" bench_airbench 8 1 8 8 8 bf16
expect_error "bench_inference: --threads takes a whole number >= 1, got '1.5'" bench_inference time /nonexistent vgg --threads 1.5
expect_error "bench_loader: --epochs takes a whole number >= 1, got '0'" bench_loader --epochs 0
expect_error "CIFAR10: --data names /nonexistent, which does not hold the CIFAR-10 binary files" bench_loader --data /nonexistent
expect_error "bench_ddp train: global_batch takes a whole number >= 1, got '0'" bench_ddp train vgg 0
expect_error "bench_ddp costmodel: params takes a whole number >= 1, got ''" bench_ddp costmodel

[ "$failures" -eq 0 ] && echo "bench_cli_errors: all bad arguments rejected"
exit "$failures"

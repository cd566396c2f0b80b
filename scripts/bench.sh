#!/usr/bin/env bash
# Builds and runs the benchmarks: f32 GEMMs on oneDNN vs OpenBLAS, primitives vs OpenBLAS/memcpy, fused
# layers vs their references.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
lscpu | grep -E "Model name|^CPU\(s\)" | sed 's/  */ /g'
date -u +"%Y-%m-%d %H:%M UTC"
build/bench/bench_gemm
echo
build/bench/bench_ops
echo
build/bench/bench_layers

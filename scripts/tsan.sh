#!/usr/bin/env bash
# ThreadSanitizer over the threaded code: the worker pool (autograd/parallel.cpp), the parallel GEMM
# and kernels that use it, the prefetching loader (data/loader.cpp) and training runs that use both.
#   scripts/tsan.sh [extra doctest args]   e.g. scripts/tsan.sh -tc='loader*'
# Builds in build-tsan (-DXGRAD_SANITIZE=thread); any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# -O1 without debug info, as the ASan build: the same checks in half the build time.
scripts/build.sh build-tsan -DXGRAD_SANITIZE=thread -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O1 \
  -DXGRAD_BUILD_BENCH=OFF -DXGRAD_BUILD_EXAMPLES=OFF
filter='parallel_for*,a pool resized*,kernels give*,matmul*,conv2d*,loader*,trainer*,determinism*'
if (($#)); then
  args=("$@")
else
  args=(-tc="$filter")
fi
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build-tsan/tests/xgrad_tests "${args[@]}"

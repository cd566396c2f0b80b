#!/usr/bin/env bash
# ThreadSanitizer over the suite, whose threaded parts are the worker pool (autograd/parallel.cpp),
# the parallel GEMM and the kernels that use it, the prefetching loader (data/loader.cpp) and the
# training runs that use both. The whole suite takes about 35 s under TSan.
#   scripts/tsan.sh [doctest args]   e.g. scripts/tsan.sh -tc='loader*,parallel_for*'
# Builds in build-tsan (-DXGRAD_SANITIZE=thread); any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# -O1 without debug info, as the ASan build: the same checks in half the build time.
scripts/build.sh build-tsan -DXGRAD_SANITIZE=thread -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O1 \
  -DXGRAD_BUILD_BENCH=OFF -DXGRAD_BUILD_EXAMPLES=OFF
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build-tsan/tests/xgrad_tests "$@"

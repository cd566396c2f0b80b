#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup_onnx.sh  # the ONNX consumers the tests check exports against
scripts/build.sh build
ctest --test-dir build --output-on-failure

#!/usr/bin/env bash
# xgrad against ONNX Runtime, inference: installs ONNX Runtime's Node.js binding (npm onnxruntime-node
# 1.30 from tools/ort/package-lock.json, CPU only) if missing, builds xgrad, exports TwoLayerNet,
# ThreeLayerConvNet and VGG with xgrad's own ONNX exporter (one weights file, one input batch of 128
# and xgrad's output for it, per model), and runs bench/compare_ort.py: xgrad's eval-mode forward
# without recording, as built and after nn::fuse_for_inference, against ONNX Runtime's session run,
# alternating, medians and ratios. Extra arguments go to compare_ort.py (--rounds R, --threads T,
# --seconds S).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup_onnx.sh ort
scripts/build.sh build
dir=build/bench/ort
build/bench/bench_inference export "$dir"
lscpu | grep -E "Model name|^CPU\(s\)" | sed 's/  */ /g'
date -u +"%Y-%m-%d %H:%M UTC"
git rev-parse --short HEAD 2>/dev/null || true
python3 bench/compare_ort.py build/bench/bench_inference "$dir" "$@"

#!/usr/bin/env bash
# Installs the consumers the ONNX export is checked against, only what is missing: Debian's
# python3-onnx (the ONNX checker) and python3-opencv (OpenCV's DNN module), and ONNX Runtime's
# Node.js binding (npm onnxruntime-node, which carries its CPU libraries) into tools/ort/node_modules
# from tools/ort/package-lock.json. ONNXRUNTIME_NODE_INSTALL=skip: no CUDA download at install time.
# `scripts/setup_onnx.sh ort` installs ONNX Runtime alone (scripts/bench_ort.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null && command -v npm >/dev/null || scripts/setup.sh nodejs npm
[ "${1:-}" = ort ] || scripts/setup.sh python3-onnx python3-opencv
want=$(node -p "require('./tools/ort/package-lock.json').packages['node_modules/onnxruntime-node'].version")
have=$(cd tools/ort && node -p "require('onnxruntime-node/package.json').version" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "setup_onnx: installing onnxruntime-node $want into tools/ort"
  (cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi

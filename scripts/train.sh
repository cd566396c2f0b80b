#!/usr/bin/env bash
# Sets everything up, builds, and runs the main job: training the default CNN on CIFAR-10
# (build/examples/train_cifar10; pass its flags through, e.g. --epochs 3 or --model convnet).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
build/examples/train_cifar10 "$@"

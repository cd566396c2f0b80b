#!/usr/bin/env bash
# Sets everything up, builds, and runs the main job: training the default network on CIFAR-10
# (build/examples/train_cifar10: without --model, airbench94_muon at widths 48,192,192 for 5 epochs; pass its flags
# through, e.g. --model vgg or --epochs 8).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
build/examples/train_cifar10 "$@"

#!/usr/bin/env bash
# Sets everything up, builds, and runs the main job. Until CIFAR-10 training lands (issue 5) the
# main job is the spiral example: a two-layer net trained with the tape, printing its falling loss.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
build/examples/spiral "$@"

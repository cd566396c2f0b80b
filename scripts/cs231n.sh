#!/usr/bin/env bash
# Builds xgrad and runs the CS231n reproductions: scripts/cs231n.sh [subcommand...] (default: all).
# Each run's output goes to runs/cs231n/<subcommand>.log, its pictures and summary.json to
# runs/cs231n/<subcommand>/; the wall time of each is printed at the end.
# BUILD_DIR picks the build directory (default build); CS231N_ARGS adds global flags (e.g.
# "--threads 1 --data DIR"); the data is found as for train_cifar10 (--data, CIFAR10_DIR, ./data).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
if [ "${SKIP_BUILD:-0}" != 1 ]; then scripts/build.sh "$build"; fi
all=(gradcheck knn linear features two-layer fc overfit update-rules bn-scale convnet)
cmds=("$@")
[ ${#cmds[@]} -eq 0 ] && cmds=("${all[@]}")
mkdir -p runs/cs231n
times=()
for c in "${cmds[@]}"; do
  echo "== cs231n $c =="
  start=$(date +%s)
  # shellcheck disable=SC2086  # CS231N_ARGS is a list of flags
  "$build/examples/cs231n" ${CS231N_ARGS:-} "$c" 2>&1 | tee "runs/cs231n/$c.log"
  times+=("$c $(( $(date +%s) - start )) s")
done
printf '%s\n' "== wall times ==" "${times[@]}"

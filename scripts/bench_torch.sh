#!/usr/bin/env bash
# xgrad and PyTorch side by side (bench/compare_torch.py): training and inference images/s of the
# model zoo, forward + backward of single ops, peak RSS. Installs Debian's python3-torch if missing.
# Extra arguments go to compare_torch.py (--rounds R, --threads T, --seconds S).
# `scripts/bench_torch.sh airbench [args]` compares airbench94's training step instead
# (bench/compare_airbench_torch.py: build/bench/bench_airbench's whole-network line against
# bench/airbench_torch.py --mode throughput, alternated; --rounds R, --reps N, --torch-steps K,
# --batch B, --widths A B C).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "installing python3-torch (Debian's PyTorch) for the comparison"
  $(command -v sudo || true) apt-get install -y --no-install-recommends python3-torch
fi
scripts/build.sh build
lscpu | grep -E "Model name|^CPU\(s\)" | sed 's/  */ /g'
date -u +"%Y-%m-%d %H:%M UTC"
echo "xgrad $(git rev-parse --short HEAD 2>/dev/null || echo '(no git)')"
/usr/bin/python3 -c "import torch; print('PyTorch', torch.__version__)"
if [ "${1:-}" = airbench ]; then
  shift
  exec /usr/bin/python3 bench/compare_airbench_torch.py build/bench/bench_airbench "$@"
fi
/usr/bin/python3 bench/compare_torch.py build/bench/vs_torch "$@"

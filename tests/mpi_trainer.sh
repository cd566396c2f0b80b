#!/usr/bin/env bash
# The Trainer in a 2-rank job (tests/mpi_ddp.cpp, case trainer): its losses are one process's to
# rounding, only rank 0 writes files, summary.json records the world size, and --resume on 2 ranks
# gives the uninterrupted run's losses exactly, also from a checkpoint written by one process.
#   tests/mpi_trainer.sh <mpi_ddp>
set -euo pipefail
here=$(dirname "$0")
prog=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
# Same numbers to a relative 1e-5, line by line.
close() {
  paste "$1" "$2" | awk '{ d = $1 - $2; if (d < 0) d = -d; s = $2 < 0 ? -$2 : $2; if (d > 1e-5 * s + 1e-7) bad++ }
                         END { exit (NR == 0 || bad > 0) }' || fail "$1 and $2 differ beyond 1e-5"
  [ "$(wc -l <"$1")" = "$(wc -l <"$2")" ] || fail "$1 and $2 have different lengths"
}
XGRAD_NUM_THREADS=1 "$prog" trainer "$dir/one" 0 0 0
"$here/mpi_run.sh" 2 "$prog" trainer "$dir/two" 0 0 1
[ "$(wc -l <"$dir/one/losses.txt")" = 8 ] || fail "expected 8 losses"
close "$dir/two/losses.txt" "$dir/one/losses.txt"
[ ! -e "$dir/two-rank1" ] || fail "rank 1 wrote into its run directory"
grep -q '"world_size": 2' "$dir/two/summary.json" || fail "summary.json lacks world_size 2"
grep -q '"world_size": 1' "$dir/one/summary.json" || fail "summary.json lacks world_size 1"
# Interrupted after the first epoch, then resumed: on 2 ranks throughout, and from 1 process to 2.
"$here/mpi_run.sh" 2 "$prog" trainer "$dir/cut2" 4 0 0
"$here/mpi_run.sh" 2 "$prog" trainer "$dir/cut2" 0 1 0
cmp "$dir/cut2/losses.txt" "$dir/two/losses.txt" || fail "2-rank resume differs from the uninterrupted 2-rank run"
XGRAD_NUM_THREADS=1 "$prog" trainer "$dir/cut1" 4 0 0
"$here/mpi_run.sh" 2 "$prog" trainer "$dir/cut1" 0 1 0
close "$dir/cut1/losses.txt" "$dir/one/losses.txt"
echo "ok: 2 ranks reproduce one process's losses; rank 0 alone writes; resume exact on 2 ranks and from 1 to 2"

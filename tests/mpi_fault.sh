#!/usr/bin/env bash
# A rank that fails mid-training must end the whole 2-rank job within seconds, with a non-zero exit
# and its message, while the other rank waits in an allreduce:
#   tests/mpi_fault.sh <mpi_ddp> throw|abort|mismatch
# throw: an uncaught exception (the terminate handler calls MPI_Abort); abort: a caught error and
# distributed::abort_job; mismatch: different models, refused on every rank before training.
set -uo pipefail
here=$(dirname "$0")
prog=$1
case=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
"$here/mpi_run.sh" 2 "$prog" "$case" >"$out" 2>&1
rc=$?
elapsed=$(($(date +%s) - start))
cat "$out"
fail() { echo "FAILED: $*"; exit 1; }
[ "$rc" -ne 0 ] || fail "the job exited 0"
[ "$rc" -ne 124 ] || fail "the job hung (killed by timeout)"
[ "$elapsed" -le 30 ] || fail "the job took ${elapsed}s to end"
case $case in
  throw) grep -q "error: rank 1 of 2: injected fault in step 3" "$out" || fail "no message from rank 1" ;;
  abort) grep -q "error: rank 1: caught a fault in step 3" "$out" || fail "no message from rank 1" ;;
  mismatch)
    for r in 0 1; do
      grep -q "error: rank $r: DistributedDataParallel: the models or options differ across ranks: parameter '0.weight' f32 \[32,8\] on rank 0 but parameter '0.weight' f32 \[24,8\] on rank 1" "$out" ||
        fail "rank $r did not name the first difference"
    done ;;
  *) fail "unknown case $case" ;;
esac
echo "ok: $case ended the job in ${elapsed}s with exit code $rc"

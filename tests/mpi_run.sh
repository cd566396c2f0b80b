#!/usr/bin/env bash
# Runs a program on N local ranks for ctest:  tests/mpi_run.sh N program [args...]
# CI runs as root, which Open MPI refuses unless told; threaded ranks must not be pinned to one core
# (--bind-to none), and the 2-core machine may have fewer free slots than ranks (--oversubscribe).
# With MPICH's mpiexec the same run needs no flags.
set -euo pipefail
np=$1
shift
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The ranks of a test share the cores: one kernel thread each.
export XGRAD_NUM_THREADS=${XGRAD_NUM_THREADS:-1}
if mpirun --version 2>/dev/null | grep -q "Open MPI"; then
  exec timeout 120 mpirun -np "$np" --bind-to none --oversubscribe "$@"
fi
exec timeout 120 mpiexec -n "$np" "$@"

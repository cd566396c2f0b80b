// xg::distributed: a process group over MPI and collectives on tensors, as torch.distributed.
// The same program runs alone (a group of one, no MPI call at all), under `mpirun -np N` on one
// machine, and on a cluster (hostfile or Slurm); see the README's "Distributed training".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tensor.hpp"

namespace xg::distributed {

enum class ReduceOp { SUM, AVG, MAX };  // AVG: floating tensors only

// Joins the job. Started by an MPI launcher (mpirun/mpiexec/srun set OMPI_COMM_WORLD_SIZE, PMI_SIZE
// or PMIX_RANK), it initialises MPI (MPI_Init_thread asking for MPI_THREAD_SERIALIZED, which
// DistributedDataParallel's communication thread needs) unless the host program already did, and
// installs a std::terminate handler that prints the uncaught exception with the rank and ends the
// whole job with MPI_Abort, so no other rank waits forever in a collective. Otherwise it makes a group
// of one and calls no MPI function. Refused when already initialised.
void init_process_group();
bool is_initialized();
// The group's rank and size: 0 and 1 before init_process_group (and after destroy_process_group).
int get_rank();
int get_world_size();

// Collectives: every rank of the group calls them in the same order, with tensors of the same
// shape and dtype (all_gather checks this; all_reduce and broadcast trust it, as MPI does). They
// write in place, as Tensor::copy_ does: a tensor that requires grad is refused while recording.
void barrier();
void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::SUM);  // every rank gets op over the ranks
void broadcast(const Tensor& t, int src);                       // every rank gets rank src's values
std::vector<Tensor> all_gather(const Tensor& t);                // [rank r's t for r in 0..world)
// Leaves the group; finalises MPI if init_process_group initialised it (MPI cannot start again in
// that process). Refused while a DistributedDataParallel exists.
void destroy_process_group();
// Ends every rank of the job now with exit_code (MPI_Abort), or this process when there is no MPI
// job. For a program that catches an error on one rank: returning from main would leave the other
// ranks waiting in their next collective.
[[noreturn]] void abort_job(int exit_code);

namespace detail {
// Raw buffers for DistributedDataParallel (no version bump, no grad-mode check); `op` names the caller.
void all_reduce(void* data, int64_t count, Dtype dtype, ReduceOp op, const char* who);
void broadcast(void* data, int64_t count, Dtype dtype, int src, const char* who);
// Every rank's string, in rank order.
std::vector<std::string> all_gather(const std::string& s, const char* who);
// Throws the same xg::Error on every rank unless `lines` (one item a line) is the same on every rank,
// naming the first line that differs and the lowest rank where it does; `what` names the lines.
void check_same_on_all_ranks(const std::string& lines, const char* who, const char* what);
// MPI calls may come from a second thread (DistributedDataParallel checks this before starting one).
bool threads_supported();
// DistributedDataParallel objects alive (destroy_process_group refuses while there are some).
void add_user(int delta);
}  // namespace detail

}  // namespace xg::distributed

// nn::DistributedDataParallel: one replica of a module per rank, gradients averaged over the ranks.
#pragma once

#include <memory>
#include <string>

#include "distributed/distributed.hpp"
#include "nn/module.hpp"

namespace xg::nn {

struct DistributedDataParallelOptions {
  double bucket_cap_mb = 25;      // gradient MiB per allreduce (PyTorch's bucket_cap_mb)
  bool broadcast_buffers = true;  // every training forward first copies rank 0's buffers to all ranks
  // true: a bucket's allreduce starts on the communication thread as soon as its gradients are ready,
  // during the rest of the backward pass. false: every bucket after the backward (the same results;
  // to measure what overlapping saves).
  bool overlap = true;
};

// Where the time of the synchronised steps went, since construction or reset_stats().
struct DistributedDataParallelStats {
  int64_t steps = 0;             // backward passes whose gradients were averaged
  double wait_seconds = 0;       // the training thread blocked at the end of backward, on allreduces
  double allreduce_seconds = 0;  // the communication thread inside allreduce
};

// Usage (every rank runs the same program; see examples and the README):
//   distributed::init_process_group();
//   auto ddp = std::make_shared<nn::DistributedDataParallel>(model);  // same model on every rank
//   optim::SGD opt(ddp->parameters(), {...});
//   loss = cross_entropy((*ddp)(x_of_this_rank), y); loss.backward(); opt.step();
// Construction is a collective: it checks that every rank has the same parameters and buffers
// (names, shapes, dtypes, requires_grad) and options, failing on every rank with an error naming the
// first difference, then copies rank 0's parameters and buffers to every rank. In backward, each
// parameter's gradient joins a bucket as soon as it is complete (a hook on the tape); buckets
// (parameters in reverse registration order, split at bucket_cap_mb and at dtype changes) are
// averaged over the ranks in a fixed order on a communication thread, and the backward pass ends
// only once every .grad holds the average, the same bits on every rank. Gradients accumulated under
// no_sync() join the next synchronised step's. A parameter without a gradient on a rank counts as
// zero there, and every parameter that requires grad has a .grad after a synchronised backward.
// The wrapped module's parameters and buffers keep their names under "module." (as PyTorch's).
// Convert dtypes (Module::to) before wrapping. The process group must outlive this object, and no
// other collective may run while a backward through it is in flight.
class DistributedDataParallel : public Module {
 public:
  explicit DistributedDataParallel(std::shared_ptr<Module> module, DistributedDataParallelOptions options = {});
  ~DistributedDataParallel() override;
  DistributedDataParallel(DistributedDataParallel&&) noexcept;

  // With broadcast_buffers, in training mode, rank 0's buffers first; then the module's forward.
  Tensor forward(const Tensor& x) override;
  Module& module() const { return *module_; }
  const DistributedDataParallelOptions& options() const { return options_; }
  int64_t num_buckets() const;
  DistributedDataParallelStats stats() const;
  void reset_stats();

  // While a NoSync lives, forward passes do not arm gradient averaging: their backward passes only
  // accumulate into .grad on this rank (gradient accumulation). PyTorch's `with ddp.no_sync():`.
  class NoSync {
   public:
    explicit NoSync(DistributedDataParallel& ddp);
    ~NoSync();
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DistributedDataParallel& ddp_;
    bool previous_;
  };
  [[nodiscard]] NoSync no_sync() { return NoSync(*this); }

  struct Reducer;  // buckets, hooks and the communication thread (ddp.cpp)

 private:
  std::shared_ptr<Module> module_;
  DistributedDataParallelOptions options_;
  std::unique_ptr<Reducer> reducer_;
  bool sync_ = true;
};

}  // namespace xg::nn

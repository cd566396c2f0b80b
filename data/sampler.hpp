// Samplers: which positions of a dataset an epoch visits, in which order. DistributedSampler gives
// each rank of a data-parallel job its shard (PyTorch's torch.utils.data.DistributedSampler).
#pragma once

#include <cstdint>
#include <vector>

namespace xg::data {

// The positions epoch e visits, in order (DataLoaderOptions::sampler). Deterministic in e.
class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual int64_t size() const = 0;  // positions per epoch, the same every epoch
  virtual std::vector<int64_t> order(int64_t epoch) const = 0;
};

struct DistributedSamplerOptions {
  bool shuffle = true;  // a new permutation of the whole dataset every epoch (the same on every rank)
  uint64_t seed = 0;
  bool drop_last = false;  // false: the permutation is padded with its own first positions to a multiple
                           // of world_size; true: its tail is dropped to one
};

// The positions of rank `rank` among `world_size`: every world_size-th position of the epoch's
// permutation of [0, size), starting at `rank`. The shards are disjoint (but for the padding),
// equally long, and together cover the dataset (all but the dropped tail). The permutation is the
// DataLoader's for the same seed and epoch, so one rank of one sees what a shuffled DataLoader sees.
class DistributedSampler : public Sampler {
 public:
  DistributedSampler(int64_t size, int64_t world_size, int64_t rank, DistributedSamplerOptions options = {});
  void set_epoch(int64_t epoch);  // what indices() returns next
  int64_t epoch() const { return epoch_; }
  std::vector<int64_t> indices() const { return order(epoch_); }

  int64_t size() const override { return num_samples_; }
  std::vector<int64_t> order(int64_t epoch) const override;
  int64_t total_size() const { return num_samples_ * world_; }  // over all ranks

 private:
  int64_t size_, world_, rank_;
  DistributedSamplerOptions opts_;
  int64_t num_samples_ = 0;
  int64_t epoch_ = 0;
};

}  // namespace xg::data

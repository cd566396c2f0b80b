// DistributedSampler: per-epoch permutations cut into one strided shard per rank.
#include "data/sampler.hpp"

#include <numeric>

#include "autograd/error.hpp"
#include "data/transforms.hpp"

namespace xg::data {

DistributedSampler::DistributedSampler(int64_t size, int64_t world_size, int64_t rank,
                                       DistributedSamplerOptions options)
    : size_(size), world_(world_size), rank_(rank), opts_(options) {
  check(world_size >= 1, "DistributedSampler: world_size must be >= 1, got {}", world_size);
  check(rank >= 0 && rank < world_size, "DistributedSampler: rank must be in [0, {}), got {}", world_size, rank);
  check(size >= 0, "DistributedSampler: size must be >= 0, got {}", size);
  check(!opts_.drop_last || size >= world_size,
        "DistributedSampler: drop_last with {} examples over {} ranks leaves every rank without one", size, world_size);
  num_samples_ = opts_.drop_last ? size / world_size : (size + world_size - 1) / world_size;
}

void DistributedSampler::set_epoch(int64_t epoch) {
  check(epoch >= 0, "DistributedSampler: epoch must be >= 0, got {}", epoch);
  epoch_ = epoch;
}

std::vector<int64_t> DistributedSampler::order(int64_t epoch) const {
  check(epoch >= 0, "DistributedSampler: epoch must be >= 0, got {}", epoch);
  std::vector<int64_t> all(static_cast<size_t>(size_));
  std::iota(all.begin(), all.end(), int64_t{0});
  if (opts_.shuffle) {
    auto rng = transforms::stream_rng(opts_.seed, epoch, transforms::kShuffleStream);
    transforms::shuffle(all, rng);
  }
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(num_samples_));
  for (int64_t k = 0; k < num_samples_; ++k) mine.push_back(all[static_cast<size_t>((rank_ + k * world_) % size_)]);
  return mine;
}

}  // namespace xg::data

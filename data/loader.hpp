// xg::data::DataLoader: shuffled, transformed batches of any Dataset, prefetched on worker threads.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/sampler.hpp"
#include "data/subset.hpp"
#include "data/transforms.hpp"

namespace xg::data {

// One rank's share of every batch in data-parallel training (see DataLoaderOptions::shard).
struct Shard {
  int64_t rank = 0, world_size = 1;
};

struct DataLoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;     // a new permutation every epoch (ignored with a sampler)
  bool drop_last = false;  // drop the final batch when it is smaller than batch_size
  // Applied to every example's data (transforms::Compose for several); empty: none.
  transforms::AnyTransform transform{};
  uint64_t seed = 0;           // with the epoch number, fixes order and augmentation completely
  int64_t num_workers = 1;     // threads preparing batches ahead; 0: on the calling thread, in next()
  int64_t prefetch_depth = 2;  // batches prepared ahead per worker (1 to 16)
  // Same-sized uint8 images in memory (Dataset::as_images()) whose transform folds into one pass
  // (transforms::FusedPlan: shift, flip, normalise) are batched straight from their bytes, without a
  // tensor per example; the bits are those of the per-example path. false: always per example.
  bool fused = true;
  // Applied to every finished batch (on a worker thread when there is one). Must depend only on
  // its input for the loader to stay deterministic.
  std::function<void(Batch&)> batch_transform{};
  // The positions each epoch visits, in order, instead of all of them (shuffled or not); e.g. this
  // rank's shard, data::DistributedSampler. The loader passes the epoch: set_epoch is not needed.
  std::shared_ptr<const Sampler> sampler{};
  // Data-parallel training with a global batch: every rank walks the same epoch order (same seed),
  // and batch b is rows [rank * k, (rank + 1) * k) of the global batch b of batch_size examples,
  // k = batch_size / world_size, each with exactly the augmentation it gets in the global batch
  // (the draws of the rows before them are made and dropped), so that an image is augmented the
  // same at any world size. Needs drop_last and a batch_size that divides by world_size.
  Shard shard{};
};

// Usage:
//   namespace T = xg::data::transforms;
//   DataLoader loader(split.train, {.batch_size = 128,
//                                   .transform = T::Compose({T::RandomCrop(32, {.padding = 4}),
//                                                            T::RandomHorizontalFlip(),
//                                                            T::Normalize(compute_mean_std(split.train))}),
//                                   .seed = 1});
//   for (int64_t e = 0; e < epochs; ++e)
//     for (Batch& b : loader.epoch(e)) { ... b.images [B,3,32,32] f32, b.labels [B] i64 ... }
// The batches of epoch e are the same bits whatever the threading and however they are consumed:
// the order comes from (seed, e) and the random draws of batch b from (seed, e, b), each through its
// own std::mt19937_64 (never the global generator); within a batch, examples draw in order.
class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> data, DataLoaderOptions opts = {});
  explicit DataLoader(Subset data, DataLoaderOptions opts = {});  // a copy of the view
  ~DataLoader();  // stops and joins the workers, also mid-epoch
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Begins epoch `epoch` (>= 0) at batch `first_batch` (to resume mid-epoch: the batches are those
  // the whole epoch would give from there), abandoning what is left of the previous epoch.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the current epoch, nullopt at its end. An error while preparing a batch
  // (also on a worker thread) arrives here, in batch order, as xg::Error.
  std::optional<Batch> next();

  int64_t num_batches() const { return num_batches_; }  // per epoch
  int64_t size() const;                                 // examples per epoch (this shard's), after drop_last
  const Dataset& data() const { return *data_; }
  const DataLoaderOptions& options() const { return opts_; }
  bool is_fused() const { return plan_.has_value(); }  // batches come from raw bytes

  // Positions in data() in the order epoch `epoch` visits them (the identity without shuffle; the
  // sampler's order with one).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Batch b of epoch `epoch`, built on the calling thread: what next() returns as batch b.
  Batch make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t b) const;

  // A range over one epoch for range-for; calls start_epoch(e).
  class EpochRange;
  EpochRange epoch(int64_t e);

 private:
  int64_t positions() const;  // per epoch, before drop_last: the sampler's size, else the dataset's
  void worker_loop();
  // idx[skip:] transformed; the draws of idx[:skip] are made first and dropped.
  Batch fused_batch(std::span<const int64_t> idx, int64_t skip, int64_t epoch, std::mt19937_64& rng) const;
  [[noreturn]] void rethrow(std::exception_ptr e, int64_t batch) const;

  std::shared_ptr<const Dataset> data_;
  DataLoaderOptions opts_;
  std::optional<transforms::FusedPlan> plan_;  // set when batches come from raw bytes
  std::optional<PixelTable> table_;
  int64_t num_batches_ = 0;

  // Shared with the workers, guarded by mu_.
  struct Done {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  std::mutex mu_;
  std::condition_variable worker_cv_;    // room to prepare ahead, a new epoch, or stop
  std::condition_variable consumer_cv_;  // a batch or an error is ready
  bool started_ = false;
  bool stop_ = false;
  int64_t generation_ = 0;  // bumped by start_epoch: batches of an older generation are dropped
  int64_t epoch_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
  int64_t claimed_ = 0;   // batches of this epoch a worker has taken on
  int64_t consumed_ = 0;  // batches of this epoch handed out by next()
  std::map<int64_t, Done> done_;  // finished batches (or their errors) by number
  std::vector<std::thread> workers_;
};

class DataLoader::EpochRange {
 public:
  struct End {};
  class Iterator {
   public:
    explicit Iterator(DataLoader* l) : loader_(l), cur_(l->next()) {}
    Batch& operator*() { return *cur_; }
    Iterator& operator++() {
      cur_ = loader_->next();
      return *this;
    }
    bool operator==(End) const { return !cur_.has_value(); }

   private:
    DataLoader* loader_;
    std::optional<Batch> cur_;
  };
  explicit EpochRange(DataLoader* l) : loader_(l) {}
  Iterator begin() { return Iterator(loader_); }
  End end() { return {}; }

 private:
  DataLoader* loader_;
};

inline DataLoader::EpochRange DataLoader::epoch(int64_t e) {
  start_epoch(e);
  return EpochRange(this);
}

}  // namespace xg::data

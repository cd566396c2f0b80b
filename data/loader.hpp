// xg::data::DataLoader: shuffled, augmented, normalised batches of a Subset, prefetched on a background thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/subset.hpp"
#include "data/transforms.hpp"

namespace xg::data {

struct DataLoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;     // a new permutation every epoch
  bool drop_last = false;  // drop the final batch when it is smaller than batch_size
  bool random_crop = false;
  int64_t crop_padding = 4;    // zero padding on each side before the 32x32 random crop
  bool random_flip = false;    // horizontal flip with probability 1/2
  Normalization normalize{};   // default: identity, images stay in [0, 1]
  uint64_t seed = 0;           // with the epoch number, fixes order and augmentation completely
  bool prefetch = true;        // prepare batches on a background thread
  int64_t prefetch_depth = 2;  // batches prepared ahead of the consumer (1 or 2)
  // Applied to every finished batch (on the prefetch thread when there is one). Must depend only on
  // its input for the loader to stay deterministic.
  std::function<void(Batch&)> batch_transform{};
};

// Usage:
//   DataLoader loader(split.train, {.batch_size = 128, .random_crop = true, .random_flip = true,
//                                   .normalize = compute_mean_std(split.train), .seed = 1});
//   for (int64_t e = 0; e < epochs; ++e)
//     for (Batch& b : loader.epoch(e)) { ... b.images [B,3,32,32] f32, b.labels [B] i64 ... }
// The batches of epoch e are the same bits whatever the threading and however they are consumed:
// the order comes from (seed, e) and the augmentation of batch b from (seed, e, b), each through its
// own std::mt19937_64 (never the global generator).
class DataLoader {
 public:
  explicit DataLoader(Subset data, DataLoaderOptions opts = {});
  ~DataLoader();  // stops and joins the prefetch thread, also mid-epoch
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Begins epoch `epoch` (>= 0) at batch `first_batch` (to resume mid-epoch: the batches are those
  // the whole epoch would give from there), abandoning what is left of the previous epoch.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the current epoch, nullopt at its end. An error while preparing a batch
  // (also on the prefetch thread) arrives here as xg::Error.
  std::optional<Batch> next();

  int64_t num_batches() const { return num_batches_; }  // per epoch
  int64_t size() const;                                 // images per epoch, after drop_last
  const Subset& data() const { return data_; }
  const DataLoaderOptions& options() const { return opts_; }

  // Positions in data() in the order epoch `epoch` visits them (the identity without shuffle).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Batch b of epoch `epoch`, built on the calling thread: what next() returns as batch b.
  Batch make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t b) const;

  // A range over one epoch for range-for; calls start_epoch(e).
  class EpochRange;
  EpochRange epoch(int64_t e);

 private:
  void worker_loop();
  [[noreturn]] void rethrow(std::exception_ptr e, int64_t batch) const;

  Subset data_;
  DataLoaderOptions opts_;
  PixelTable table_;
  int64_t num_batches_ = 0;

  // Shared with the prefetch thread, guarded by mu_.
  std::mutex mu_;
  std::condition_variable worker_cv_;    // space in ready_, a new epoch, or stop
  std::condition_variable consumer_cv_;  // a batch or an error is ready
  bool started_ = false;
  bool stop_ = false;
  int64_t generation_ = 0;  // bumped by start_epoch: batches of an older generation are dropped
  int64_t epoch_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
  int64_t produced_ = 0;  // batches of this epoch pushed to ready_ (or built, without prefetch)
  int64_t consumed_ = 0;  // batches of this epoch handed out by next()
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  int64_t error_batch_ = 0;
  std::thread worker_;
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

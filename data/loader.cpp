// The DataLoader: per-epoch permutation, per-batch augmentation draws, and the prefetch thread.
#include "data/loader.hpp"

#include <numeric>
#include <random>
#include <system_error>

namespace xg::data {

namespace {

// splitmix64's finaliser: decorrelates (seed, epoch, stream) into one generator seed.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::mt19937_64 make_rng(uint64_t seed, int64_t epoch, uint64_t stream) {
  return std::mt19937_64(mix(mix(mix(seed) ^ static_cast<uint64_t>(epoch)) ^ stream));
}

constexpr uint64_t kShuffleStream = ~0ull;  // batch b draws from stream b

// A draw in [0, n). Plain modulo rather than std::uniform_int_distribution, whose algorithm differs
// between standard libraries; the bias (n / 2^64) is far below anything measurable.
uint64_t below(std::mt19937_64& rng, uint64_t n) { return rng() % n; }

}  // namespace

DataLoader::DataLoader(Subset data, DataLoaderOptions opts)
    : data_(std::move(data)), opts_(std::move(opts)), table_(opts_.normalize) {
  check(opts_.batch_size > 0, "DataLoader: batch_size must be positive, got {}", opts_.batch_size);
  check(opts_.crop_padding >= 0 && opts_.crop_padding <= kH, "DataLoader: crop_padding must be in [0, {}], got {}", kH,
        opts_.crop_padding);
  check(opts_.prefetch_depth >= 1 && opts_.prefetch_depth <= 2, "DataLoader: prefetch_depth must be 1 or 2, got {}",
        opts_.prefetch_depth);
  const int64_t n = data_.size(), bs = opts_.batch_size;
  num_batches_ = opts_.drop_last ? n / bs : (n + bs - 1) / bs;
}

DataLoader::~DataLoader() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  worker_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

int64_t DataLoader::size() const { return opts_.drop_last ? num_batches_ * opts_.batch_size : data_.size(); }

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(data_.size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!opts_.shuffle) return order;
  // Fisher-Yates with our own draws: the same permutation on every platform.
  auto rng = make_rng(opts_.seed, epoch, kShuffleStream);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[below(rng, i)]);
  return order;
}

Batch DataLoader::make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t b) const {
  check(b >= 0 && b < num_batches_, "DataLoader: batch {} out of range for {} batches", b, num_batches_);
  check(static_cast<int64_t>(order.size()) == data_.size(), "DataLoader: order has {} positions for {} images",
        order.size(), data_.size());
  const int64_t begin = b * opts_.batch_size;
  const int64_t B = std::min(opts_.batch_size, data_.size() - begin);
  Batch out{Tensor::empty({B, kC, kH, kW}, Dtype::f32), Tensor::empty({B}, Dtype::i64)};
  float* x = out.images.data<float>();
  int64_t* y = out.labels.data<int64_t>();
  auto rng = make_rng(opts_.seed, epoch, static_cast<uint64_t>(b));
  const uint64_t span = static_cast<uint64_t>(2 * opts_.crop_padding + 1);
  for (int64_t i = 0; i < B; ++i) {
    CropFlip t;
    // Fixed draw order per image (crop y, crop x, flip) keeps batches identical however they are built.
    if (opts_.random_crop) {
      t.dy = static_cast<int64_t>(below(rng, span)) - opts_.crop_padding;
      t.dx = static_cast<int64_t>(below(rng, span)) - opts_.crop_padding;
    }
    if (opts_.random_flip) t.flip = (rng() >> 63) != 0;
    const int64_t pos = order[static_cast<size_t>(begin + i)];
    transform_image(data_.image(pos), x + i * kImageBytes, t, table_);
    y[i] = data_.label(pos);
  }
  if (opts_.batch_transform) opts_.batch_transform(out);
  return out;
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  check(epoch >= 0, "DataLoader: epoch must be >= 0, got {}", epoch);
  check(first_batch >= 0 && first_batch <= num_batches_, "DataLoader: first_batch must be in [0, {}], got {}",
        num_batches_, first_batch);
  auto order = std::make_shared<const std::vector<int64_t>>(epoch_order(epoch));
  {
    std::lock_guard lk(mu_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    produced_ = consumed_ = first_batch;
    ready_.clear();
    error_ = nullptr;
    started_ = true;
  }
  if (opts_.prefetch && !worker_.joinable() && num_batches_ > 0) {
    try {
      worker_ = std::thread([this] { worker_loop(); });
    } catch (const std::system_error&) {
      // No thread to be had (resource limits): next() builds the batches itself, the same ones.
    }
  }
  worker_cv_.notify_all();
}

void DataLoader::worker_loop() {
  std::unique_lock lk(mu_);
  while (true) {
    worker_cv_.wait(lk, [&] {
      return stop_ || (started_ && !error_ && produced_ < num_batches_ &&
                       static_cast<int64_t>(ready_.size()) < opts_.prefetch_depth);
    });
    if (stop_) return;
    const int64_t gen = generation_, epoch = epoch_, b = produced_;
    const auto order = order_;
    lk.unlock();
    std::optional<Batch> batch;
    std::exception_ptr err;
    try {
      batch = make_batch(*order, epoch, b);
    } catch (...) {
      err = std::current_exception();  // never escapes the thread: std::terminate is not an option
    }
    lk.lock();
    if (gen != generation_) continue;  // start_epoch came in between: this batch belongs to no one
    if (err) {
      error_ = err;
      error_batch_ = b;
    } else {
      ready_.push_back(std::move(*batch));
      ++produced_;
    }
    consumer_cv_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  std::unique_lock lk(mu_);
  check(started_, "DataLoader: call start_epoch(epoch) (or iterate over epoch(e)) before next()");
  if (consumed_ >= num_batches_) return std::nullopt;
  if (!worker_.joinable()) {
    // Same builder, on this thread (no prefetch thread exists to race with).
    const int64_t b = consumed_;
    lk.unlock();
    try {
      Batch out = make_batch(*order_, epoch_, b);
      ++consumed_;
      return out;
    } catch (...) {
      rethrow(std::current_exception(), b);
    }
  }
  consumer_cv_.wait(lk, [&] { return !ready_.empty() || error_ != nullptr; });
  if (!ready_.empty()) {
    Batch out = std::move(ready_.front());
    ready_.pop_front();
    ++consumed_;
    lk.unlock();
    worker_cv_.notify_all();
    return out;
  }
  rethrow(error_, error_batch_);  // error_ stays set: every later next() of this epoch fails the same way
}

void DataLoader::rethrow(std::exception_ptr e, int64_t batch) const {
  try {
    std::rethrow_exception(e);
  } catch (const Error&) {
    throw;  // already names its op
  } catch (const std::exception& ex) {
    fail("DataLoader: preparing batch {} failed: {}", batch, ex.what());
  } catch (...) {
    fail("DataLoader: preparing batch {} failed with an exception that is not a std::exception", batch);
  }
}

}  // namespace xg::data

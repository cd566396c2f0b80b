// The DataLoader: per-epoch permutation, per-batch random draws, the batched uint8 path, and the workers.
#include "data/loader.hpp"

#include <numeric>
#include <random>
#include <system_error>

#include "autograd/grad_mode.hpp"

namespace xg::data {

DataLoader::DataLoader(Subset data, DataLoaderOptions opts)
    : DataLoader(std::make_shared<const Subset>(std::move(data)), std::move(opts)) {}

DataLoader::DataLoader(std::shared_ptr<const Dataset> data, DataLoaderOptions opts)
    : data_(std::move(data)), opts_(std::move(opts)) {
  check(data_ != nullptr, "DataLoader: null dataset");
  check(opts_.batch_size > 0, "DataLoader: batch_size must be positive, got {}", opts_.batch_size);
  check(opts_.num_workers >= 0 && opts_.num_workers <= 64, "DataLoader: num_workers must be in [0, 64], got {}",
        opts_.num_workers);
  check(opts_.prefetch_depth >= 1 && opts_.prefetch_depth <= 16, "DataLoader: prefetch_depth must be in [1, 16], got {}",
        opts_.prefetch_depth);
  if (const ImageDataset* img = data_->as_images(); img != nullptr && opts_.fused) {
    const Shape chw = img->image_shape();
    check(chw.size() == 3 && chw[0] > 0 && chw[1] > 0 && chw[2] > 0, "DataLoader: image_shape must be [C, H, W], got {}",
          chw);
    transforms::FusedPlan plan;
    plan.chw = chw;
    if (opts_.transform.fuse(plan)) {
      table_.emplace(plan.norm, chw[0]);
      plan_ = std::move(plan);
    }
  }
  const Shard& sh = opts_.shard;
  check(sh.world_size >= 1 && sh.rank >= 0 && sh.rank < sh.world_size,
        "DataLoader: shard rank must be in [0, world_size), got rank {} of {}", sh.rank, sh.world_size);
  check(sh.world_size == 1 || (opts_.drop_last && opts_.batch_size % sh.world_size == 0),
        "DataLoader: a shard over {} ranks needs drop_last and a batch_size that divides by it, got batch_size {}{}",
        sh.world_size, opts_.batch_size, opts_.drop_last ? "" : " without drop_last");
  const int64_t n = positions(), bs = opts_.batch_size;
  num_batches_ = opts_.drop_last ? n / bs : (n + bs - 1) / bs;
}

DataLoader::~DataLoader() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  worker_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int64_t DataLoader::size() const {
  return opts_.drop_last ? num_batches_ * (opts_.batch_size / opts_.shard.world_size) : positions();
}
int64_t DataLoader::positions() const { return opts_.sampler ? opts_.sampler->size() : data_->size(); }

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  if (opts_.sampler) {
    std::vector<int64_t> order = opts_.sampler->order(epoch);
    check(static_cast<int64_t>(order.size()) == opts_.sampler->size(),
          "DataLoader: the sampler gave {} positions for epoch {}, but its size() is {}", order.size(), epoch,
          opts_.sampler->size());
    for (int64_t pos : order)
      check(pos >= 0 && pos < data_->size(), "DataLoader: the sampler gave position {} for a dataset of {} examples",
            pos, data_->size());
    return order;
  }
  std::vector<int64_t> order(static_cast<size_t>(data_->size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!opts_.shuffle) return order;
  auto rng = transforms::stream_rng(opts_.seed, epoch, transforms::kShuffleStream);
  transforms::shuffle(order, rng);
  return order;
}

Batch DataLoader::fused_batch(std::span<const int64_t> idx, int64_t skip, int64_t epoch, std::mt19937_64& rng) const {
  const ImageDataset& img = *data_->as_images();
  const transforms::FusedPlan& p = *plan_;
  const int64_t B = static_cast<int64_t>(idx.size()) - skip, bytes = p.chw[0] * p.chw[1] * p.chw[2];
  Batch out{Tensor::empty({B, p.chw[0], p.chw[1], p.chw[2]}, Dtype::f32), Tensor::empty({B}, Dtype::i64)};
  float* x = out.images.data<float>();
  int64_t* y = out.labels.data<int64_t>();
  const uint64_t span = static_cast<uint64_t>(2 * p.pad + 1);
  for (int64_t i = -skip; i < B; ++i) {
    const int64_t pos = idx[static_cast<size_t>(i + skip)];
    CropFlip t{.reflect = p.reflect};
    // The draws of the per-example transforms, in their order: shift y, shift x, flip.
    if (p.shift) {
      t.dy = static_cast<int64_t>(transforms::below(rng, span)) - p.pad;
      t.dx = static_cast<int64_t>(transforms::below(rng, span)) - p.pad;
    }
    if (p.flip == transforms::FusedPlan::Flip::random) t.flip = transforms::coin(rng, p.flip_p);
    if (p.flip == transforms::FusedPlan::Flip::alternating) t.flip = transforms::AlternatingFlip::flips(opts_.seed, epoch, pos);
    if (i < 0) continue;  // another rank's example: its draws only
    transform_image(img.image(pos), x + i * bytes, p.chw, t, *table_);
    y[i] = img.label(pos);
  }
  return out;
}

Batch DataLoader::make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t b) const {
  check(b >= 0 && b < num_batches_, "DataLoader: batch {} out of range for {} batches", b, num_batches_);
  check(static_cast<int64_t>(order.size()) == positions(), "DataLoader: order has {} positions for {} per epoch",
        order.size(), positions());
  const int64_t begin = b * opts_.batch_size;
  const int64_t B = std::min(opts_.batch_size, positions() - begin);
  // This rank's rows [lo, lo + per) of the global batch; the draws of rows [0, lo) are made first.
  const int64_t per = B / opts_.shard.world_size, lo = opts_.shard.rank * per;
  const std::span<const int64_t> idx(order.data() + begin, static_cast<size_t>(lo + per));
  auto rng = transforms::stream_rng(opts_.seed, epoch, static_cast<uint64_t>(b));
  NoGradGuard no_grad;  // transforms never record, on any thread
  Batch out;
  if (plan_) {
    out = fused_batch(idx, lo, epoch, rng);
  } else {
    std::vector<Example> examples;
    examples.reserve(static_cast<size_t>(per));
    for (int64_t i = opts_.transform ? 0 : lo; i < lo + per; ++i) {
      const int64_t pos = idx[static_cast<size_t>(i)];
      Example e = data_->get(pos);
      transforms::Context ctx{rng, opts_.seed, epoch, pos};
      if (opts_.transform) e.data = opts_.transform(e.data, ctx);
      if (i >= lo) examples.push_back(std::move(e));
    }
    out = stack_examples(examples, idx.subspan(static_cast<size_t>(lo)), "DataLoader");
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
    claimed_ = consumed_ = first_batch;
    done_.clear();
    started_ = true;
  }
  if (workers_.empty() && num_batches_ > 0) {
    try {
      for (int64_t w = 0; w < opts_.num_workers; ++w) workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::system_error&) {
      // No (more) threads to be had (resource limits): the ones started suffice, and with none next()
      // builds the batches itself, the same ones.
    }
  }
  worker_cv_.notify_all();
}

void DataLoader::worker_loop() {
  std::unique_lock lk(mu_);
  const int64_t ahead = opts_.prefetch_depth * std::max<int64_t>(1, opts_.num_workers);
  while (true) {
    worker_cv_.wait(lk, [&] { return stop_ || (started_ && claimed_ < num_batches_ && claimed_ - consumed_ < ahead); });
    if (stop_) return;
    const int64_t gen = generation_, epoch = epoch_, b = claimed_++;
    const auto order = order_;
    lk.unlock();
    Done d;
    try {
      d.batch = make_batch(*order, epoch, b);
    } catch (...) {
      d.error = std::current_exception();  // never escapes the thread: std::terminate is not an option
    }
    lk.lock();
    if (gen != generation_) continue;  // start_epoch came in between: this batch belongs to no one
    done_.emplace(b, std::move(d));
    consumer_cv_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  std::unique_lock lk(mu_);
  check(started_, "DataLoader: call start_epoch(epoch) (or iterate over epoch(e)) before next()");
  if (consumed_ >= num_batches_) return std::nullopt;
  const int64_t b = consumed_;
  if (workers_.empty()) {
    // Same builder, on this thread (no worker exists to race with).
    lk.unlock();
    try {
      Batch out = make_batch(*order_, epoch_, b);
      ++consumed_;
      return out;
    } catch (...) {
      rethrow(std::current_exception(), b);
    }
  }
  consumer_cv_.wait(lk, [&] { return done_.count(b) != 0; });
  auto it = done_.find(b);
  if (it->second.error) rethrow(it->second.error, b);  // stays: every later next() of this epoch fails the same way
  Batch out = std::move(*it->second.batch);
  done_.erase(it);
  ++consumed_;
  lk.unlock();
  worker_cv_.notify_all();
  return out;
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

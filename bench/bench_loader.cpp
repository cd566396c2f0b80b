// bench_loader: CIFAR-10 loader throughput (crop + flip + normalise, batch 128), with and without prefetch,
// batched from the bytes and per example.
// Usage: bench_loader [--data DIR] [--epochs N]. Uses the real dataset when found (--data, CIFAR10_DIR,
// ./data/cifar-10-batches-bin; never downloads), else 50,000 synthetic images of the same size.
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "args.hpp"
#include "xgrad.hpp"

using namespace xg::data;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::shared_ptr<const CIFAR10> synthetic(int64_t n) {
  std::mt19937_64 rng(1);
  std::vector<uint8_t> images(static_cast<size_t>(n * kImageBytes));
  for (auto& p : images) p = static_cast<uint8_t>(rng() >> 56);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i % kClasses;
  return std::make_shared<const CIFAR10>(CIFAR10::from_memory(std::move(images), std::move(labels)));
}

// Images per second over `epochs` epochs when the consumer does nothing with the batches: the
// loader's own ceiling. Returns the checksum too so the work cannot be optimised away.
double images_per_second(DataLoader& loader, int64_t epochs, double& checksum) {
  const auto t0 = std::chrono::steady_clock::now();
  int64_t images = 0;
  for (int64_t e = 0; e < epochs; ++e)
    for (Batch& b : loader.epoch(e)) {
      images += b.labels.numel();
      checksum += b.images.data<float>()[0];
    }
  return static_cast<double>(images) / seconds_since(t0);
}

// A small training step on a batch: conv 3->32 3x3 + ReLU + 2x2 max-pool, forward and backward. It
// stands in for the model the prefetch thread overlaps with.
struct Step {
  xg::Tensor w = xg::randn({32, 3, 3, 3}).requires_grad_();
  xg::Tensor b = xg::zeros({32}).requires_grad_();
  void operator()(const Batch& batch) {
    xg::Tensor y = xg::max_pool2d(xg::relu(xg::conv2d(batch.images, w, b, {.padding = 1})));
    xg::sum(y).backward();
    w.zero_grad();
    b.zero_grad();
  }
};

struct Overlap {
  double step_ms = 0;  // the step alone
  double wait_ms = 0;  // the consumer's mean wait in next() per step
};

Overlap measure_overlap(DataLoader& loader, Step& step, int64_t steps) {
  Overlap o;
  loader.start_epoch(0);
  auto first = loader.next();  // warm-up: thread start and first batch are not steady state
  step(*first);
  for (int64_t i = 0; i < steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto batch = loader.next();
    o.wait_ms += 1e3 * seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    step(*batch);
    o.step_ms += 1e3 * seconds_since(t0);
  }
  o.step_ms /= static_cast<double>(steps);
  o.wait_ms /= static_cast<double>(steps);
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  xg::configure_process();
  std::string data_flag;
  int64_t epochs = 2;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--data") == 0 && i + 1 < argc)
      data_flag = argv[++i];
    else if (std::strcmp(argv[i], "--epochs") == 0 && i + 1 < argc)
      epochs = xg::bench::int_arg("bench_loader", "--epochs", argv[++i], 1);
    else {
      fmt::print(stderr, "usage: bench_loader [--data DIR] [--epochs N]\n");
      return 2;
    }
  }

  std::shared_ptr<const CIFAR10> train;
  std::string source;
  try {
    const std::string dir = find_cifar10_dir(data_flag, {.download = false});
    const auto t0 = std::chrono::steady_clock::now();
    train = std::make_shared<const CIFAR10>(dir, true);
    source = fmt::format("CIFAR-10 from {} (read in {:.2f} s)", dir, seconds_since(t0));
  } catch (const xg::Error&) {
    if (!data_flag.empty()) throw;
    train = synthetic(50000);
    source = "synthetic: 50000 random images (no CIFAR-10 found)";
  }
  Split split = train_val_split(train);
  auto t0 = std::chrono::steady_clock::now();
  const Normalization norm = compute_mean_std(split.train);
  const double stats_s = seconds_since(t0);

  fmt::print("data: {}\n", source);
  fmt::print("channel mean {:.4f} {:.4f} {:.4f}, std {:.4f} {:.4f} {:.4f} over {} images ({:.3f} s)\n", norm.mean[0],
             norm.mean[1], norm.mean[2], norm.std[0], norm.std[1], norm.std[2], split.train.size(), stats_s);

  double checksum = 0;
  namespace T = transforms;
  const DataLoaderOptions base{
      .batch_size = 128,
      .transform = T::Compose({T::RandomCrop(32, {.padding = 4}), T::RandomHorizontalFlip(), T::Normalize(norm)}),
      .seed = 0};
  DataLoaderOptions sync_opts = base;
  sync_opts.num_workers = 0;
  DataLoader sync(split.train, sync_opts), prefetch(split.train, base);
  DataLoaderOptions plain_opts = base;
  plain_opts.transform = T::Normalize(norm);
  plain_opts.shuffle = false;
  DataLoader plain(split.val, plain_opts);
  // The same pipeline per example (one tensor per image and per transform), the path for datasets
  // that are not uint8 images in memory, on the calling thread.
  DataLoaderOptions generic_opts = sync_opts;
  generic_opts.fused = false;
  DataLoader generic(split.train, generic_opts);

  const double sync_rate = images_per_second(sync, epochs, checksum);
  const double prefetch_rate = images_per_second(prefetch, epochs, checksum);
  const double eval_rate = images_per_second(plain, 20, checksum);
  const double generic_rate = images_per_second(generic, 1, checksum);
  fmt::print("loader, batch 128, crop+flip+normalise, {} epochs of {} images:\n", epochs, split.train.size());
  fmt::print("  on the calling thread:     {:>9.0f} images/s ({:.2f} ms per batch)\n", sync_rate, 128e3 / sync_rate);
  fmt::print("  with the prefetch thread:  {:>9.0f} images/s\n", prefetch_rate);
  fmt::print("  eval (no shuffle/augment): {:>9.0f} images/s\n", eval_rate);
  fmt::print("  per example (fused = false, calling thread, 1 epoch): {:>9.0f} images/s\n", generic_rate);
  Step step;
  const Overlap with = measure_overlap(prefetch, step, 20), without = measure_overlap(sync, step, 20);
  fmt::print("behind a training step (conv 3->32 3x3, ReLU, max-pool; forward+backward; {:.0f} ms per batch):\n",
             with.step_ms);
  fmt::print("  consumer's wait in next() per step: {:.3f} ms with prefetch, {:.3f} ms without ({:.2f}% of the step)\n",
             with.wait_ms, without.wait_ms, 100.0 * with.wait_ms / with.step_ms);
  // The pace training needs: that toy step's rate, and issue 5's PyTorch reference (~180 s per
  // 50,000-image epoch on this machine).
  const double pytorch_pace = 50000.0 / 180.0, toy_pace = 128e3 / with.step_ms;
  fmt::print(
      "training pace: the toy step consumes {:.0f} images/s, the PyTorch reference {:.0f}; the loader alone "
      "makes {:.0f} images/s on one thread ({:.0f}x the reference)\n",
      toy_pace, pytorch_pace, sync_rate, sync_rate / pytorch_pace);
  fmt::print("(checksum {:.3f})\n", checksum);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 1;
}

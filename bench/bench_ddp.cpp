// Data-parallel measurements for the README, at any world size (run it under mpirun):
//   bench_ddp allreduce [max_mib]     allreduce of f32 buffers from 4 KiB up: median time, algorithm
//                                     bandwidth (bytes / time) and bus bandwidth (2(N-1)/N bytes / time)
//   bench_ddp train [model] [global_batch] [steps] [overlap 0|1] [bucket_cap_mb]
//                                     training steps on random CIFAR-shaped batches, the global batch split
//                                     over the ranks: img/s, and the share of step time spent waiting on
//                                     the allreduces at the end of backward. World size 1 trains the model
//                                     alone, without DistributedDataParallel.
//   bench_ddp costmodel <params> <img/s per node> [batch per node] [latency_us]
//                                     predicted scaling efficiency of a ring allreduce at 2, 8 and 64 nodes
//                                     on 10 and 100 Gbit/s links, from a measured single-node speed
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "args.hpp"
#include "train/models.hpp"
#include "xgrad.hpp"

using namespace xg;
namespace dist = xg::distributed;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

void allreduce_bench(double max_mib) {
  const int w = dist::get_world_size();
  if (dist::get_rank() == 0)
    fmt::print("allreduce over {} ranks (f32, median of repeats)\n{:>10} {:>12} {:>12} {:>12}\n", w, "bytes",
               "time (us)", "algo GB/s", "bus GB/s");
  for (int64_t bytes = 4096; bytes <= static_cast<int64_t>(max_mib * 1024 * 1024); bytes *= 4) {
    Tensor t = ones({bytes / 4});
    const int reps = static_cast<int>(std::clamp<int64_t>((int64_t{256} << 20) / bytes, 5, 200));
    std::vector<double> times;
    for (int i = 0; i < reps + 2; ++i) {
      dist::barrier();
      const auto t0 = Clock::now();
      dist::all_reduce(t, dist::ReduceOp::SUM);
      if (i >= 2) times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    // Every rank's median, the slowest counts.
    Tensor m = from_vector<double>({median(times)});
    dist::all_reduce(m, dist::ReduceOp::MAX);
    const double s = m.item<double>();
    if (dist::get_rank() == 0)
      fmt::print("{:>10} {:>12.1f} {:>12.3f} {:>12.3f}\n", bytes, s * 1e6, bytes / s / 1e9,
                 2.0 * (w - 1) / w * bytes / s / 1e9);
  }
}

void train_bench(const std::string& name, int64_t global_batch, int steps, bool overlap, double cap) {
  const int w = dist::get_world_size(), r = dist::get_rank();
  const int64_t batch = global_batch / w;
  std::shared_ptr<nn::Module> model = models::make_model(name);
  std::unique_ptr<nn::DistributedDataParallel> ddp;
  if (w > 1)
    ddp = std::make_unique<nn::DistributedDataParallel>(
        model, nn::DistributedDataParallelOptions{.bucket_cap_mb = cap, .overlap = overlap});
  nn::Module& run = ddp ? static_cast<nn::Module&>(*ddp) : *model;
  optim::SGD opt(run.parameters(), {.lr = 0.01, .momentum = 0.9, .nesterov = true});
  manual_seed(1 + static_cast<uint64_t>(r));
  const Tensor x = randn({batch, 3, 32, 32}), y = randint(0, 10, {batch});
  std::vector<double> times;
  double waited = 0, reducing = 0, total = 0;
  const int warmup = 3;
  for (int s = 0; s < warmup + steps; ++s) {
    if (s == warmup && ddp) ddp->reset_stats();
    const auto t0 = Clock::now();
    opt.zero_grad();
    cross_entropy(run(x), y).backward();
    opt.step();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s >= warmup) times.push_back(dt), total += dt;
  }
  if (ddp) {  // the rank that waited longest (the other arrived later, and waited less)
    Tensor t = from_vector<double>({ddp->stats().wait_seconds, ddp->stats().allreduce_seconds});
    dist::all_reduce(t, dist::ReduceOp::MAX);
    waited = t.to_vector<double>()[0], reducing = t.to_vector<double>()[1];
  }
  const double step = median(times);
  if (r == 0) {
    int64_t n = 0;
    for (const Tensor& p : model->parameters()) n += p.numel();
    fmt::print("{} ranks x {} threads, {} global batch {} ({} per rank), {} params ({:.1f} MB of f32 gradients)", w,
               get_num_threads(), name, global_batch, batch, n, n * 4 / 1e6);
    if (ddp) fmt::print(", {} buckets, overlap {}", ddp->num_buckets(), overlap ? "on" : "off");
    fmt::print(
        "\n  median step {:.1f} ms, {:.0f} img/s; allreduce {:.2f} ms a step, of which the training thread "
        "waited {:.2f} ms ({:.2f}% of step time; the slowest rank's figures)\n",
        step * 1e3, global_batch / step, 1e3 * reducing / steps, 1e3 * waited / steps, 100.0 * waited / total);
  }
}

// A ring allreduce of G bytes over N nodes sends and receives 2(N-1)/N G bytes per node, in 2(N-1)
// steps of one message each (latency alpha per step). A step computes for T = batch / speed. Without
// overlap the step takes T + comm; with perfect overlap max(T, comm).
void cost_model(int64_t params, double speed, int64_t batch, double latency_us) {
  const double grad_bytes = static_cast<double>(params) * 4, compute = static_cast<double>(batch) / speed;
  fmt::print(
      "{} f32 parameters ({:.1f} MB of gradients), {} images a step per node at {:.0f} img/s: {:.1f} ms compute, "
      "{:.0f} us latency per ring step\n{:>6} {:>10} {:>12} {:>22} {:>22}\n",
      params, grad_bytes / 1e6, batch, speed, compute * 1e3, latency_us, "nodes", "Gbit/s", "comm (ms)",
      "efficiency, no overlap", "efficiency, overlap");
  for (int n : {2, 8, 64})
    for (double gbit : {10.0, 100.0}) {
      const double comm = 2.0 * (n - 1) / n * grad_bytes / (gbit * 1e9 / 8) + 2.0 * (n - 1) * latency_us * 1e-6;
      fmt::print("{:>6} {:>10.0f} {:>12.2f} {:>21.1f}% {:>21.1f}%\n", n, gbit, comm * 1e3,
                 100 * compute / (compute + comm), 100 * compute / std::max(compute, comm));
    }
}

}  // namespace

int main(int argc, char** argv) {
  configure_process();
  dist::init_process_group();
  const std::string what = argc > 1 ? argv[1] : "allreduce";
  auto arg = [&](int i, const char* dflt) { return std::string(argc > i ? argv[i] : dflt); };
  try {
    if (what == "allreduce")
      allreduce_bench(bench::positive_arg("bench_ddp allreduce", "max_mib", arg(2, "64")));
    else if (what == "train")
      train_bench(arg(2, "vgg"), bench::int_arg("bench_ddp train", "global_batch", arg(3, "128"), 1),
                  int(bench::int_arg("bench_ddp train", "steps", arg(4, "10"), 1)),
                  bench::int_arg("bench_ddp train", "overlap", arg(5, "1"), 0) == 1,
                  bench::positive_arg("bench_ddp train", "bucket_cap_mb", arg(6, "25")));
    else if (what == "costmodel")
      cost_model(bench::int_arg("bench_ddp costmodel", "params", arg(2, ""), 1),
                 bench::positive_arg("bench_ddp costmodel", "img/s", arg(3, "1")),
                 bench::int_arg("bench_ddp costmodel", "batch", arg(4, "128"), 1),
                 bench::positive_arg("bench_ddp costmodel", "latency_us", arg(5, "20")));
    else
      fail("bench_ddp: unknown mode '{}' (allreduce, train or costmodel)", what);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    dist::abort_job(1);
  }
  dist::destroy_process_group();
}

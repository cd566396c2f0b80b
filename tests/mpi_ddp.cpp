// Multi-rank checks of xg::distributed and DistributedDataParallel, run under mpirun by ctest through
// tests/mpi_run.sh:  mpi_ddp <case>  (collectives, equivalence, seeds, buckets, mismatch, throw, abort),
// and by tests/mpi_trainer.sh:  mpi_ddp trainer <run_dir> <max_iterations> <resume 0|1> <own_dirs 0|1>.
// Exits 0 when every check of the case holds on every rank; each failed check prints its rank.
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

#include "train/models.hpp"
#include "train/trainer.hpp"
#include "xgrad.hpp"

using namespace xg;
namespace dist = xg::distributed;

namespace {

int failures = 0;
void expect(bool ok, const std::string& what) {
  if (ok) return;
  ++failures;
  fmt::print(stderr, "rank {}: check failed: {}\n", dist::get_rank(), what);
}

std::shared_ptr<nn::Sequential> mlp(uint64_t seed, int64_t hidden = 32) {
  manual_seed(seed);
  return std::make_shared<nn::Sequential>(nn::Linear(8, hidden), nn::ReLU(), nn::Linear(hidden, hidden), nn::ReLU(),
                                          nn::Linear(hidden, 4));
}

Tensor flat_state(const nn::Module& m) {
  std::vector<Tensor> parts;
  for (const auto& [name, t] : m.state_dict()) parts.push_back(reshape(t.detach().to(Dtype::f64), {-1}));
  return cat(parts);
}

// Every rank holds the same bits as rank 0.
bool same_on_all_ranks(const Tensor& t) {
  const std::vector<Tensor> all = dist::all_gather(t);
  for (const Tensor& other : all)
    if (std::memcmp(other.data<double>(), all[0].data<double>(), static_cast<size_t>(t.numel()) * sizeof(double)) != 0)
      return false;
  return true;
}

void collectives() {
  const int r = dist::get_rank(), w = dist::get_world_size();
  Tensor f = from_vector<float>({float(r), float(2 * r + 1)});
  dist::all_reduce(f, dist::ReduceOp::SUM);
  expect(f.to_vector<float>() == std::vector<float>{float(w * (w - 1) / 2), float(w * w)}, "all_reduce SUM f32");
  Tensor d = from_vector<double>({double(r)});
  dist::all_reduce(d, dist::ReduceOp::AVG);
  expect(d.item<double>() == (w - 1) / 2.0, "all_reduce AVG f64");
  Tensor i = from_vector<int64_t>({-r, 10 * r});
  dist::all_reduce(i, dist::ReduceOp::MAX);
  expect(i.to_vector<int64_t>() == std::vector<int64_t>{0, 10 * (w - 1)}, "all_reduce MAX i64");
  Tensor b = full({3}, r + 1.0);
  dist::broadcast(b, w - 1);
  expect(b.to_vector<float>() == std::vector<float>(3, float(w)), "broadcast from the last rank");
  std::vector<Tensor> g = dist::all_gather(full({2, 2}, double(r), Dtype::f64));
  expect(static_cast<int>(g.size()) == w, "all_gather: one tensor per rank");
  for (int k = 0; k < w && k < static_cast<int>(g.size()); ++k)
    expect(g[static_cast<size_t>(k)].to_vector<double>() == std::vector<double>(4, k), "all_gather: rank order");
  // A shape that differs on one rank fails the same way on every rank.
  std::string err;
  try {
    dist::all_gather(zeros({r == 1 ? 3 : 2}));
  } catch (const Error& e) {
    err = e.what();
  }
  expect(err ==
             "all_gather: rank 1 has a tensor of f32 [3], rank 0 of f32 [2]; every rank must give the same shape and "
             "dtype",
         "all_gather mismatch message, got: " + err);
  dist::barrier();
}

// 2 ranks x 64 against 1 process x 128 (computed on every rank), 20 steps of SGD with momentum.
void equivalence(bool accumulate) {
  const int r = dist::get_rank(), w = dist::get_world_size();
  constexpr int64_t kBatch = 128, kSteps = 20;
  manual_seed(1);
  const Tensor X = randn({kSteps * kBatch, 8}), Y = randint(0, 4, {kSteps * kBatch});
  auto ref = mlp(0);
  optim::SGD ref_opt(ref->parameters(), {.lr = 0.05, .momentum = 0.9});
  auto model = mlp(0);
  nn::DistributedDataParallel ddp(model, {.bucket_cap_mb = 0.002});  // several buckets
  optim::SGD opt(ddp.parameters(), {.lr = 0.05, .momentum = 0.9});
  const int64_t per = kBatch / w;
  for (int64_t s = 0; s < kSteps; ++s) {
    ref_opt.zero_grad();
    Tensor ref_loss =
        cross_entropy((*ref)(slice(X, 0, s * kBatch, (s + 1) * kBatch)), slice(Y, 0, s * kBatch, (s + 1) * kBatch));
    ref_loss.backward();
    ref_opt.step();

    opt.zero_grad();
    const int64_t lo = s * kBatch + r * per;
    Tensor loss;
    if (accumulate) {  // two micro-batches, the first under no_sync
      {
        auto guard = ddp.no_sync();
        (cross_entropy(ddp(slice(X, 0, lo, lo + per / 2)), slice(Y, 0, lo, lo + per / 2)) * 0.5).backward();
      }
      Tensor l2 = cross_entropy(ddp(slice(X, 0, lo + per / 2, lo + per)), slice(Y, 0, lo + per / 2, lo + per)) * 0.5;
      l2.backward();
      NoGradGuard no_grad;
      loss = cross_entropy((*model)(slice(X, 0, lo, lo + per)), slice(Y, 0, lo, lo + per));  // before the step
    } else {
      loss = cross_entropy(ddp(slice(X, 0, lo, lo + per)), slice(Y, 0, lo, lo + per));
      loss.backward();
    }
    opt.step();
    Tensor global = loss.detach().clone();
    dist::all_reduce(global, dist::ReduceOp::AVG);
    expect(allclose(global, ref_loss.detach(), 1e-5, 1e-7),
           fmt::format("step {}: loss {} against {} in one process", s, global.item<float>(), ref_loss.item<float>()));
    expect(same_on_all_ranks(flat_state(*model)), fmt::format("step {}: replicas differ", s));
  }
  expect(allclose(flat_state(*model), flat_state(*ref), 1e-5, 1e-6), "parameters after 20 steps against one process");
  if (r == 0)
    fmt::print("equivalence{}: {} ranks x {} = 1 x {} over {} steps; max |difference| of a parameter {:.3g}\n",
               accumulate ? " with no_sync accumulation" : "", w, per, kBatch, kSteps,
               max(abs(flat_state(*model) - flat_state(*ref))).item<double>());
}

// Ranks seeded differently hold rank 0's parameters and buffers once DDP is built; with
// broadcast_buffers, a forward starts from rank 0's batch-norm statistics.
void seeds() {
  const int r = dist::get_rank();
  manual_seed(100 + static_cast<uint64_t>(r));
  auto model = std::make_shared<nn::Sequential>(nn::Linear(8, 16), nn::BatchNorm1d(16), nn::ReLU(), nn::Linear(16, 4));
  {
    NoGradGuard no_grad;  // running statistics that differ by rank too
    model->named_buffers()[0].second.fill_(double(r));
  }
  const Tensor before = flat_state(*model);
  expect(!same_on_all_ranks(before), "the ranks start different");
  nn::DistributedDataParallel ddp(model);
  expect(same_on_all_ranks(flat_state(*model)), "identical after DistributedDataParallel");
  if (r == 0)
    expect(std::memcmp(before.data<double>(), flat_state(*model).data<double>(), before.numel() * 8) == 0,
           "rank 0's values");
  // Per-rank data moves the statistics apart; the next forward starts again from rank 0's.
  manual_seed(5 + static_cast<uint64_t>(r));
  ddp(randn({8, 8}));
  expect(!same_on_all_ranks(flat_state(*model)), "per-rank batch statistics");
  manual_seed(6);
  ddp(randn({8, 8}));  // the same batch everywhere, from rank 0's buffers
  expect(same_on_all_ranks(flat_state(*model)), "buffers broadcast before the forward");
}

// Bucket sizes and overlap on or off: the same bits.
void buckets() {
  const int r = dist::get_rank();
  std::vector<Tensor> results;
  for (auto [cap, overlap] : {std::pair{25.0, true}, {1e-5, true}, {1e-5, false}, {0.002, true}}) {
    auto model = mlp(0);
    nn::DistributedDataParallel ddp(model, {.bucket_cap_mb = cap, .overlap = overlap});
    optim::SGD opt(ddp.parameters(), {.lr = 0.05, .momentum = 0.9, .nesterov = true});
    manual_seed(11 + static_cast<uint64_t>(r));
    for (int s = 0; s < 8; ++s) {
      opt.zero_grad();
      cross_entropy(ddp(randn({16, 8})), randint(0, 4, {16})).backward();
      opt.step();
    }
    results.push_back(flat_state(*model));
    if (r == 0) fmt::print("bucket_cap_mb {} overlap {}: {} buckets\n", cap, overlap, ddp.num_buckets());
  }
  for (size_t k = 1; k < results.size(); ++k)
    expect(std::memcmp(results[k].data<double>(), results[0].data<double>(), results[0].numel() * 8) == 0,
           fmt::format("configuration {} differs from the first", k));
  expect(same_on_all_ranks(results[0]), "replicas");
}

// Rank 1 builds another model: DistributedDataParallel fails on every rank, naming the difference.
void mismatch() {
  auto model = mlp(0, dist::get_rank() == 1 ? 24 : 32);
  nn::DistributedDataParallel ddp(model);
  expect(false, "DistributedDataParallel accepted different models");
}

// Rank 1 fails in the third step while rank 0 goes on into the allreduce: the job must end.
void fault(bool uncaught) {
  auto model = mlp(0);
  nn::DistributedDataParallel ddp(model);
  for (int s = 0; s < 50; ++s) {
    if (s == 3 && dist::get_rank() == 1) {
      if (uncaught) throw std::runtime_error("injected fault in step 3");
      fmt::print(stderr, "error: rank 1: caught a fault in step 3, aborting the job\n");
      dist::abort_job(3);
    }
    cross_entropy(ddp(randn({16, 8})), randint(0, 4, {16})).backward();
  }
  expect(false, "the job went on after a rank failed");
}

// A short Trainer run on random 32x32 images (TwoLayerNet: no batch norm, no dropout, so one process
// and N ranks agree to rounding), global batch 32, augmentation on. own_dirs: rank r > 0 gets
// run_dir-rank<r>, which must stay absent (only rank 0 writes). Rank 0 writes every loss to
// run_dir/losses.txt.
void trainer(const std::string& run_dir, int64_t max_iterations, bool resume, bool own_dirs) {
  std::mt19937 gen(3);
  std::vector<uint8_t> pixels(320 * 3072);
  for (uint8_t& p : pixels) p = static_cast<uint8_t>(gen() & 255);
  std::vector<int64_t> labels(320);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(gen() % 10);
  auto all = std::make_shared<const data::CIFAR10>(data::CIFAR10::from_memory(std::move(pixels), std::move(labels)));
  data::Split split = data::train_val_split(all, 64);
  const int r = dist::get_rank();
  train::TrainerOptions o{.model = "twolayer",
                          .epochs = 2,
                          .batch_size = 32,
                          .max_steps_per_epoch = 4,
                          .max_iterations = max_iterations,
                          .progress = 3};
  o.run_dir = own_dirs && r > 0 ? fmt::format("{}-rank{}", run_dir, r) : run_dir;
  o.resume = resume;
  train::Trainer t(std::make_shared<models::TwoLayerNet>(), split.train, split.val, data::Subset(), o);
  const train::TrainResult res = t.fit();
  if (r == 0) {
    std::ofstream out(run_dir + "/losses.txt");
    for (double l : res.losses) out << fmt::format("{:.17g}\n", l);
  }
}

}  // namespace

int main(int argc, char** argv) {
  configure_process();
  if (argc != 2 && !(argc == 6 && std::string(argv[1]) == "trainer")) {
    fmt::print(stderr,
               "usage: mpi_ddp collectives|equivalence|seeds|buckets|mismatch|throw|abort\n"
               "       mpi_ddp trainer <run_dir> <max_iterations> <resume 0|1> <own_dirs 0|1>\n");
    return 2;
  }
  const std::string what = argv[1];
  dist::init_process_group();
  try {
    if (what == "collectives")
      collectives();
    else if (what == "equivalence")
      equivalence(false), equivalence(true);
    else if (what == "seeds")
      seeds();
    else if (what == "buckets")
      buckets();
    else if (what == "mismatch")
      mismatch();
    else if (what == "throw")
      fault(true);
    else if (what == "abort")
      fault(false);
    else if (what == "trainer")
      trainer(argv[2], std::atoll(argv[3]), argv[4] == std::string("1"), argv[5] == std::string("1"));
    else
      fail("mpi_ddp: unknown case '{}'", what);
  } catch (const Error& e) {
    // Errors these cases expect arise on every rank at once, so every rank can leave cleanly.
    fmt::print(stderr, "error: rank {}: {}\n", dist::get_rank(), e.what());
    dist::destroy_process_group();
    return 1;
  }
  Tensor total = from_vector<int64_t>({failures});
  dist::all_reduce(total);
  const int rank = dist::get_rank();
  dist::destroy_process_group();
  if (rank == 0) fmt::print("{}: {}\n", what, total.item<int64_t>() == 0 ? "ok" : "FAILED");
  return total.item<int64_t>() == 0 ? 0 : 1;
}

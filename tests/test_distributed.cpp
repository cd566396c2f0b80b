// Tests of xg::distributed at world size 1 (no MPI call: the suite is not started by mpirun), of
// DistributedDataParallel's buckets, hooks and communication thread there, and of DistributedSampler.
// The multi-rank behaviour is tested under mpirun: tests/mpi_ddp.cpp.
#include <numeric>
#include <set>

#include "data_fixtures.hpp"
#include "distributed/ddp.hpp"

using namespace xg;
namespace dist = xg::distributed;

namespace {
// A process group of one for the scope of a test.
struct Group {
  Group() { dist::init_process_group(); }
  ~Group() { dist::destroy_process_group(); }
};

std::shared_ptr<nn::Sequential> mlp(uint64_t seed, int64_t hidden = 16) {
  manual_seed(seed);
  return std::make_shared<nn::Sequential>(nn::Linear(8, hidden), nn::ReLU(), nn::Linear(hidden, hidden), nn::ReLU(),
                                          nn::Linear(hidden, 3));
}

// Steps of SGD with momentum on fixed data; every third step accumulates two half-batches, the first
// under no_sync when ddp is given. Returns the parameters' values after the last step.
std::vector<std::vector<float>> train(nn::Module& model, nn::DistributedDataParallel* ddp, int steps) {
  manual_seed(7);
  const Tensor x = randn({32, 8}), y = randint(0, 3, {32});
  optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
  nn::Module& run = ddp ? static_cast<nn::Module&>(*ddp) : model;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    if (s % 3 == 2) {
      {
        std::optional<nn::DistributedDataParallel::NoSync> guard;
        if (ddp) guard.emplace(*ddp);
        (cross_entropy(run(slice(x, 0, 0, 16)), slice(y, 0, 0, 16)) * 0.5).backward();
      }
      (cross_entropy(run(slice(x, 0, 16, 32)), slice(y, 0, 16, 32)) * 0.5).backward();
    } else {
      cross_entropy(run(x), y).backward();
    }
    opt.step();
  }
  std::vector<std::vector<float>> out;
  for (const Tensor& p : model.parameters()) out.push_back(p.to_vector<float>());
  return out;
}
}  // namespace

TEST_CASE("distributed: without init_process_group, rank 0 of 1 and collectives refused") {
  CHECK_FALSE(dist::is_initialized());
  CHECK(dist::get_rank() == 0);
  CHECK(dist::get_world_size() == 1);
  CHECK_ERROR(dist::all_reduce(zeros({2})), "all_reduce: the process group is not initialized");
  CHECK_ERROR(dist::barrier(), "barrier: the process group is not initialized");
  CHECK_ERROR(dist::destroy_process_group(), "destroy_process_group: the process group is not initialized");
  CHECK_ERROR(nn::DistributedDataParallel(mlp(0)), "DistributedDataParallel: the process group is not initialized");
}

TEST_CASE("distributed: a group of one, its collectives and their errors") {
  Group g;
  CHECK(dist::is_initialized());
  CHECK(dist::get_rank() == 0);
  CHECK(dist::get_world_size() == 1);
  CHECK_ERROR(dist::init_process_group(), "init_process_group: already initialized (rank 0 of 1)");
  dist::barrier();
  Tensor t = from_vector<float>({1.5f, -2.0f, 3.0f});
  for (auto op : {dist::ReduceOp::SUM, dist::ReduceOp::AVG, dist::ReduceOp::MAX}) {
    const uint32_t v = t.version();
    dist::all_reduce(t, op);
    CHECK(t.to_vector<float>() == std::vector<float>{1.5f, -2.0f, 3.0f});
    CHECK(t.version() == v + 1);  // an in-place write, as copy_
  }
  dist::broadcast(t, 0);
  CHECK(t.to_vector<float>() == std::vector<float>{1.5f, -2.0f, 3.0f});
  std::vector<Tensor> all = dist::all_gather(t);
  REQUIRE(all.size() == 1);
  CHECK(all[0].to_vector<float>() == t.to_vector<float>());
  CHECK_FALSE(all[0].same(t));

  CHECK_ERROR(dist::all_reduce(from_vector<int64_t>({1, 2}), dist::ReduceOp::AVG),
              "all_reduce: ReduceOp::AVG needs a floating tensor, got i64");
  CHECK_ERROR(dist::broadcast(t, 1), "broadcast: src must be a rank in [0, 1), got 1");
  CHECK_ERROR(dist::all_reduce(Tensor()), "all_reduce: undefined tensor");
  Tensor w = ones({2});
  w.requires_grad_();
  CHECK_ERROR(dist::all_reduce(w), "all_reduce: the tensor (shape [2]) requires grad and recording is on");
  {
    NoGradGuard no_grad;
    dist::broadcast(w, 0);  // allowed, as an optimizer's update
  }
  {
    nn::DistributedDataParallel ddp(mlp(0));
    CHECK_ERROR(dist::destroy_process_group(),
                "destroy_process_group: 1 DistributedDataParallel object(s) still exist");
  }
}

TEST_CASE("DistributedDataParallel at world size 1: the same bits as training the module alone") {
  Group g;
  auto plain = mlp(3);
  const auto expect = train(*plain, nullptr, 7);
  // Bucket caps of one bucket, of about one parameter per bucket, and overlap on and off: the hooks,
  // the buckets and the communication thread must hand back every gradient untouched.
  for (auto [cap, overlap] : {std::pair{25.0, true}, {1e-5, true}, {1e-5, false}}) {
    CAPTURE(cap);
    CAPTURE(overlap);
    auto model = mlp(3);
    nn::DistributedDataParallel ddp(model, {.bucket_cap_mb = cap, .overlap = overlap});
    CHECK(ddp.num_buckets() == (cap > 1 ? 1 : 6));
    CHECK(train(*model, &ddp, 7) == expect);
    CHECK(ddp.stats().steps == 7);  // the no_sync half-batches are not synchronised steps
    CHECK(ddp.named_parameters()[0].first == "module.0.weight");
  }
}

namespace {
// Two heads on one input; the second is used only when asked.
struct TwoHeads : nn::Module {
  std::shared_ptr<nn::Linear> a = register_module("a", nn::Linear(4, 2));
  std::shared_ptr<nn::Linear> b = register_module("b", nn::Linear(4, 2));
  bool use_b = true;
  Tensor forward(const Tensor& x) override { return use_b ? (*a)(x) + (*b)(x) : (*a)(x); }
};
}  // namespace

TEST_CASE("DistributedDataParallel: unused parameters get zeros, frozen ones nothing; no sync outside its forward") {
  Group g;
  manual_seed(4);
  auto model = std::make_shared<TwoHeads>();
  model->a->named_parameters()[1].second.requires_grad_(false);  // a.bias frozen
  nn::DistributedDataParallel ddp(model, {.bucket_cap_mb = 1e-5});
  CHECK(ddp.num_buckets() == 3);  // below every parameter's size: one bucket each
  const Tensor x = randn({5, 4});
  model->use_b = false;
  sum(ddp(x)).backward();
  // b got no gradient on this rank: it counts as zero in the average, so every rank ends alike.
  CHECK(model->b->parameters()[0].grad().defined());
  CHECK(sum(abs(model->b->parameters()[0].grad())).item<float>() == 0.0f);
  CHECK_FALSE(model->a->parameters()[1].grad().defined());
  CHECK(ddp.stats().steps == 1);
  // Through the module itself, not the wrapper, nothing is armed: a local backward.
  model->zero_grad();
  sum((*model)(x)).backward();
  CHECK_FALSE(model->b->parameters()[0].grad().defined());
  CHECK(ddp.stats().steps == 1);

  // Converted after wrapping: the buckets were laid out for f32.
  model->to(Dtype::f64);
  model->use_b = true;
  CHECK_ERROR(sum(ddp(x.to(Dtype::f64))).backward(),
              "DistributedDataParallel: parameter 'b.bias' has a gradient of f64 [2], but was wrapped as f32 [2]; "
              "convert dtypes before wrapping");
  CHECK_ERROR(nn::DistributedDataParallel(nullptr), "DistributedDataParallel: null module");
  CHECK_ERROR(nn::DistributedDataParallel(mlp(0), {.bucket_cap_mb = 0}),
              "DistributedDataParallel: bucket_cap_mb must be positive, got 0");
}

namespace {
// A head in f32 and one in f64 on the same input.
struct MixedHeads : nn::Module {
  std::shared_ptr<nn::Linear> a = register_module("a", nn::Linear(4, 2));
  std::shared_ptr<nn::Linear> b = register_module("b", nn::Linear(4, 2));
  MixedHeads() { b->to(Dtype::f64); }
  Tensor forward(const Tensor& x) override { return (*a)(x).to(Dtype::f64) + (*b)(x.to(Dtype::f64)); }
};
}  // namespace

TEST_CASE("DistributedDataParallel: one bucket per dtype; gradients of both dtypes come back whole") {
  Group g;
  manual_seed(8);
  auto plain = std::make_shared<MixedHeads>();
  manual_seed(8);
  auto wrapped = std::make_shared<MixedHeads>();
  nn::DistributedDataParallel ddp(wrapped);
  CHECK(ddp.num_buckets() == 2);
  manual_seed(9);
  const Tensor x = randn({3, 4});
  sum((*plain)(x)).backward();
  sum(ddp(x)).backward();
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    const Tensor a = plain->parameters()[i].grad(), b = wrapped->parameters()[i].grad();
    CHECK(b.dtype() == (i < 2 ? Dtype::f32 : Dtype::f64));
    CHECK(b.dtype() == a.dtype());
    CHECK(b.to(Dtype::f64).to_vector<double>() == a.to(Dtype::f64).to_vector<double>());
  }
}

TEST_CASE("DistributedSampler: disjoint equal shards covering the dataset, reshuffled per epoch") {
  for (int64_t n : {0, 1, 10, 11, 13}) {
    for (int64_t world : {1, 2, 3, 4}) {
      for (bool drop_last : {false, true}) {
        if (drop_last && n < world) continue;
        CAPTURE(n);
        CAPTURE(world);
        CAPTURE(drop_last);
        std::multiset<int64_t> seen;
        int64_t len = -1;
        for (int64_t r = 0; r < world; ++r) {
          data::DistributedSampler s(n, world, r, {.shuffle = true, .seed = 5, .drop_last = drop_last});
          s.set_epoch(2);
          const std::vector<int64_t> idx = s.indices();
          CHECK(static_cast<int64_t>(idx.size()) == s.size());
          CHECK((len < 0 || len == s.size()));
          len = s.size();
          CHECK(idx == s.order(2));
          CHECK(idx ==
                data::DistributedSampler(n, world, r, {.seed = 5, .drop_last = drop_last}).order(2));  // deterministic
          seen.insert(idx.begin(), idx.end());
        }
        const std::set<int64_t> distinct(seen.begin(), seen.end());
        if (drop_last) {
          CHECK(len == n / world);
          CHECK(distinct.size() == seen.size());  // disjoint
          CHECK(static_cast<int64_t>(seen.size()) > n - world);
        } else {
          CHECK(len == (n + world - 1) / world);
          CHECK(static_cast<int64_t>(distinct.size()) == n);  // covers, repeating only the padding
          CHECK(static_cast<int64_t>(seen.size()) - n == (world - n % world) % world * (n > 0));
        }
        for (int64_t i : seen) CHECK((i >= 0 && i < n));
      }
    }
  }
  data::DistributedSampler a(100, 2, 1, {.seed = 3});
  CHECK(a.order(0) != a.order(1));                                                  // a new order every epoch
  CHECK(data::DistributedSampler(100, 2, 1, {.shuffle = false}).order(4)[2] == 5);  // 1, 3, 5, ...
  CHECK_ERROR(data::DistributedSampler(10, 2, 2), "DistributedSampler: rank must be in [0, 2), got 2");
  CHECK_ERROR(data::DistributedSampler(10, 0, 0), "DistributedSampler: world_size must be >= 1, got 0");
  CHECK_ERROR(data::DistributedSampler(1, 2, 0, {.drop_last = true}), "DistributedSampler: drop_last with 1 examples");
  CHECK_ERROR(a.set_epoch(-1), "DistributedSampler: epoch must be >= 0, got -1");
}

TEST_CASE("DistributedSampler in the DataLoader: the rank's shard; at world size 1 the shuffled loader's order") {
  using namespace xg::test::data_fixtures;
  auto ds = synthetic(36);  // record_of tells 37 records apart
  auto shard = std::make_shared<data::DistributedSampler>(36, 3, 1, data::DistributedSamplerOptions{.seed = 9});
  data::DataLoader loader(ds, {.batch_size = 5, .seed = 9, .num_workers = 2, .sampler = shard});
  CHECK(loader.size() == 12);
  CHECK(loader.num_batches() == 3);
  std::vector<int64_t> got;
  for (const data::Batch& b : whole_epoch(loader, 4))
    for (int64_t i = 0; i < b.images.size(0); ++i) got.push_back(record_of(b.images.data<float>() + i * kImageBytes));
  CHECK(got == shard->order(4));
  data::DataLoader whole(ds, {.batch_size = 5, .seed = 9});
  CHECK(whole.epoch_order(3) == data::DistributedSampler(36, 1, 0, {.seed = 9}).order(3));
}

TEST_CASE("DataLoader shard: the ranks' batches put together are the global batch, augmentation included") {
  using namespace xg::test::data_fixtures;
  namespace T = data::transforms;
  auto ds = synthetic(36);
  for (bool fused : {true, false}) {
    CAPTURE(fused);
    const data::DataLoaderOptions base{
        .batch_size = 8,
        .drop_last = true,
        .transform = T::Compose({T::RandomCrop(32, {.padding = 4}), T::RandomHorizontalFlip()}),
        .seed = 3,
        .fused = fused};
    data::DataLoader whole(ds, base);
    const std::vector<data::Batch> expect = whole_epoch(whole, 1);
    for (int64_t world : {2, 4}) {
      std::vector<std::vector<data::Batch>> ranks;
      for (int64_t r = 0; r < world; ++r) {
        data::DataLoaderOptions o = base;
        o.shard = {r, world};
        data::DataLoader l(ds, o);
        CHECK(l.size() == 32 / world);
        ranks.push_back(whole_epoch(l, 1));
      }
      for (size_t b = 0; b < expect.size(); ++b) {
        std::vector<Tensor> images, labels;
        for (const auto& batches : ranks) images.push_back(batches[b].images), labels.push_back(batches[b].labels);
        CHECK(same_bits({{cat(images), cat(labels)}}, {expect[b]}));
      }
    }
  }
  CHECK_ERROR(data::DataLoader(ds, {.batch_size = 8, .shard = {0, 2}}),
              "DataLoader: a shard over 2 ranks needs drop_last");
  CHECK_ERROR(data::DataLoader(ds, {.batch_size = 9, .drop_last = true, .shard = {0, 2}}), "got batch_size 9");
  CHECK_ERROR(data::DataLoader(ds, {.shard = {2, 2}}),
              "DataLoader: shard rank must be in [0, world_size), got rank 2 of 2");
}

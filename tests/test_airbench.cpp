// airbench94 in xgrad: the network's shapes and frozen parts, its whitening, the recipe's parameter
// groups, schedule and lookahead, and the whole path end to end on tiny synthetic images.
#include <cmath>
#include <filesystem>
#include <random>

#include "data_fixtures.hpp"
#include "train/airbench.hpp"
#include "data/whitening.hpp"

using namespace xg;
using test::data_fixtures::TempDir;

namespace {
// n images of two classes: class k is bright in channel k, with noise and a random vertical bar.
std::shared_ptr<const data::CIFAR10> two_classes(int64_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int> noise(0, 60), column(0, 31);
  std::vector<uint8_t> images(static_cast<size_t>(n * 3072));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % 2;
    const int bar = column(gen);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < 1024; ++p)
        images[i * 3072 + c * 1024 + p] =
            static_cast<uint8_t>(noise(gen) + (c == labels[i] ? 140 : 20) + (p % 32 == bar ? 50 : 0));
  }
  return std::make_shared<const data::CIFAR10>(data::CIFAR10::from_memory(std::move(images), std::move(labels)));
}

std::vector<double> values(const Tensor& t) { return t.detach().to_vector<double>(); }

// Trains make()'s model with `o` stopped as epoch 3 begins (after its checkpoint), then resumes it
// in a fresh model from make(); returns the resumed run's result.
template <class Make>
train::TrainResult stopped_then_resumed(Make make, const data::Split& split, train::TrainerOptions o) {
  const auto freeze = o.on_epoch_start;
  o.on_epoch_start = [&](int64_t epoch, nn::Module& m) {
    if (epoch == 2) fail("test: stopped before epoch 3");
    freeze(epoch, m);
  };
  CHECK_ERROR(train::Trainer(make(), split.train, split.val, split.val, o).fit(), "test: stopped before epoch 3");
  o.on_epoch_start = freeze;
  o.resume = true;
  return train::Trainer(make(), split.train, split.val, split.val, o).fit();
}
}  // namespace

TEST_CASE("Airbench: the published shapes, dirac-initialised convs, batch norms with frozen scales") {
  manual_seed(0);
  models::Airbench net;
  Tensor x = randn({2, 3, 32, 32});
  NoGradGuard no_grad;
  net.eval();
  Tensor y = net.activ->forward(net.whiten->forward(x));
  CHECK(y.shape() == Shape{2, 24, 31, 31});
  y = net.group1->forward(y);
  CHECK(y.shape() == Shape{2, 64, 15, 15});
  y = net.group2->forward(y);
  CHECK(y.shape() == Shape{2, 256, 7, 7});
  y = net.group3->forward(y);
  CHECK(y.shape() == Shape{2, 256, 3, 3});
  CHECK(net.forward(x).shape() == Shape{2, 10});
  CHECK(net.head->weight().shape() == Shape{10, 256});
  CHECK(!net.head->bias().defined());
  // The logits are the linear layer's times 1/9.
  Tensor feats = flatten(net.pool->forward(y), 1);
  CHECK(values(net.forward(x)) == values(mul(net.head->forward(feats), 1.0 / 9)));

  // conv1 of group 1 (24 -> 64): filters 0..23 are the identity, the rest PyTorch's default init.
  const std::vector<double> w = values(net.group1->conv1->weight());
  for (int64_t f = 0; f < 24; ++f)
    for (int64_t c = 0; c < 24; ++c)
      for (int64_t k = 0; k < 9; ++k) REQUIRE(w[static_cast<size_t>((f * 24 + c) * 9 + k)] == (f == c && k == 4 ? 1.0 : 0.0));
  double rest = 0;
  for (size_t i = 24 * 24 * 9; i < w.size(); ++i) rest = std::max(rest, std::abs(w[i]));
  CHECK(rest > 0);
  CHECK(rest <= 1 / std::sqrt(24.0 * 9));  // kaiming_uniform(a = sqrt(5)): U(+-1/sqrt(fan_in))

  for (const auto& bn : {net.group1->norm1, net.group1->norm2, net.group3->norm2}) {
    CHECK(bn->options().eps == 1e-12);
    CHECK(*bn->options().momentum == 0.4);  // PyTorch's convention, as xgrad's
    CHECK(!bn->weight().requires_grad());
    CHECK(bn->bias().requires_grad());
  }
  CHECK(!net.whiten->weight().requires_grad());
  CHECK(net.whiten->bias().requires_grad());
  CHECK(net.whiten->weight().shape() == Shape{24, 3, 2, 2});

  models::Airbench narrow({.widths = {16, 8, 32}});  // narrower than its input: every filter the identity
  const std::vector<double> w2 = values(narrow.group2->conv1->weight());  // [8, 16, 3, 3]
  CHECK(w2[(0 * 16 + 0) * 9 + 4] == 1.0);
  CHECK(w2[(7 * 16 + 7) * 9 + 4] == 1.0);
  CHECK(w2[(7 * 16 + 8) * 9 + 4] == 0.0);
  CHECK_ERROR(models::Airbench({.widths = {64, 256}}), "Airbench: widths must be three positive channel counts, got 64,256");
  CHECK(models::make_model("airbench") != nullptr);
}

TEST_CASE("Airbench: the whitening conv holds the whitening helper's filters of the normalised training images") {
  auto data = two_classes(40, 1);
  models::Airbench net({.widths = {8, 8, 8}});
  train::airbench_whitening(net, *data, 30);
  // The same first 30 images through the loader's normalisation.
  data::DataLoader loader(data, {.batch_size = 30, .shuffle = false,
                                 .transform = data::transforms::Normalize(data::compute_mean_std(*data))});
  loader.start_epoch(0);
  auto batch = loader.next();
  REQUIRE(batch);
  CHECK(values(net.whiten->weight()) == values(data::patch_whitening(batch->images, 2, 5e-4)));
  CHECK(values(net.whiten->bias()) == std::vector<double>(24, 0.0));
  CHECK_ERROR(train::airbench_whitening(net, *data, 41), "airbench: 41 whitening images asked for, the training set has 40");
  CHECK_ERROR(net.set_whitening(zeros({2, 1, 8, 8})), "Airbench: set_whitening needs images [N, 3, H, W], got [2,1,8,8]");
}

TEST_CASE("airbench_optimizer: the batch-norm shifts at 64x the lr with the same absolute decay; frozen parts stay") {
  manual_seed(3);
  models::Airbench net({.widths = {8, 16, 16}});
  const train::AirbenchRecipe recipe;
  std::unique_ptr<optim::SGD> opt = train::airbench_optimizer(net, recipe);
  REQUIRE(opt->num_param_groups() == 2);
  const auto groups = opt->param_groups();
  // Group 0: the whitening bias, 6 conv weights and the head; group 1: the 6 batch-norm biases.
  CHECK(groups[0].params.size() == 8);
  CHECK(groups[1].params.size() == 6);
  CHECK(&groups[1].params[0].impl() == &net.group1->norm1->bias().impl());
  const double scale = 1024 * (1 + 1 / (1 - 0.85)), lr = 11.5 / scale, wd = 0.0153 * 1024 / scale;
  CHECK(groups[0].options.lr == doctest::Approx(lr));
  CHECK(groups[1].options.lr == doctest::Approx(64 * lr));
  CHECK(groups[0].options.lr * groups[0].options.weight_decay == doctest::Approx(wd));
  CHECK(groups[1].options.lr * groups[1].options.weight_decay == doctest::Approx(wd));
  for (const auto& g : groups) {
    CHECK(g.options.momentum == 0.85);
    CHECK(g.options.nesterov);
  }

  // One step moves what learns and nothing that is frozen.
  auto data = two_classes(16, 2);
  train::airbench_whitening(net, *data, 16);
  auto before = [&] {
    nn::NamedTensors s;
    for (const auto& [n, t] : net.named_parameters()) s.emplace_back(n, t.detach().clone());
    return s;
  }();
  Tensor x = randn({4, 3, 32, 32});
  opt->zero_grad();
  cross_entropy(net.forward(x), from_vector<int64_t>({0, 1, 0, 1}), {.reduction = "sum", .label_smoothing = 0.2}).backward();
  opt->step();
  for (const auto& [name, t] : before) {
    const Tensor now = [&] {
      for (const auto& [n, p] : net.named_parameters())
        if (n == name) return p;
      return Tensor();
    }();
    const bool frozen = name == "whiten.weight" || name.ends_with("norm1.weight") || name.ends_with("norm2.weight");
    CHECK_MESSAGE((values(now) == values(t)) == frozen, name);
  }
}

TEST_CASE("airbench_options: 9.9 epochs, the warmup-warmdown multiplier, the lookahead decay, the bias freeze") {
  train::TrainerOptions o = train::airbench_options({.run_dir = ""}, {}, 50000);
  CHECK(o.batch_size == 1024);
  CHECK(o.epochs == 10);
  CHECK(o.max_iterations == 476);  // ceil(9.9 x 48)
  CHECK(o.loss_reduction == "sum");
  CHECK(o.label_smoothing == 0.2);
  CHECK(o.augment_shift == 2);
  CHECK((o.reflect_shift && o.alternating_flip && o.flip_tta && !o.keep_best));
  CHECK(o.tta_shifts == std::vector<std::pair<int64_t, int64_t>>{{-1, -1}, {1, 1}});
  // airbench's get_lr: warmup_steps = int(0.23 x 476) = 109
  CHECK(o.lr_lambda(0, 476) == doctest::Approx(0.2));
  CHECK(o.lr_lambda(50, 476) == doctest::Approx(0.2 * (1 - 50.0 / 109) + 50.0 / 109));
  CHECK(o.lr_lambda(109, 476) == doctest::Approx(1.0));
  CHECK(o.lr_lambda(300, 476) == doctest::Approx(1 - 0.93 * (300.0 - 109) / (476 - 109)));
  CHECK(o.lr_lambda(476, 476) == doctest::Approx(0.07));
  // alpha = 1 - decay, decay = 0.95^5 (step / total)^3
  CHECK(o.lookahead_k == 5);
  CHECK(o.lookahead_alpha(5, 476) == doctest::Approx(1 - std::pow(0.95, 5) * std::pow(5.0 / 476, 3)));
  CHECK(o.lookahead_alpha(475, 476) == doctest::Approx(1 - std::pow(0.95, 5) * std::pow(475.0 / 476, 3)));
  models::Airbench net({.widths = {8, 8, 8}});
  o.on_epoch_start(2, net);
  CHECK(net.whiten->bias().requires_grad());
  o.on_epoch_start(3, net);
  CHECK(!net.whiten->bias().requires_grad());
  nn::Sequential other(nn::Linear(2, 2));
  CHECK_ERROR(o.on_epoch_start(0, other), "airbench: the model must be a models::Airbench");
  CHECK_ERROR(train::airbench_options({}, {}, 1000), "airbench: 1000 training examples make no full batch of 1024");
  CHECK_ERROR(train::airbench_options({}, {.epochs = 0}, 50000), "airbench: epochs must be positive, got 0");
}

TEST_CASE("airbench: the whole recipe end to end on tiny synthetic images (smoke test)") {
  TempDir tmp;
  auto data = two_classes(384, 4);
  data::Split split = data::train_val_split(data, 64);
  manual_seed(0);
  auto net = std::make_shared<models::Airbench>(models::AirbenchOptions{.widths = {8, 8, 8}});
  const train::AirbenchRecipe recipe{.batch_size = 32, .epochs = 4.5, .whiten_bias_epochs = 1, .whitening_images = 100};
  train::TrainerOptions o = train::airbench_options(
      {.model = "airbench", .train_acc_samples = 64, .seed = 1, .run_dir = tmp.str(), .progress = 3}, recipe,
      split.train.size());
  train::airbench_whitening(*net, split.train, recipe.whitening_images);
  const std::vector<double> whitening = values(net->whiten->weight());
  std::vector<bool> bias_learns;
  auto freeze = o.on_epoch_start;
  o.on_epoch_start = [&](int64_t epoch, nn::Module& m) {
    freeze(epoch, m);
    bias_learns.push_back(net->whiten->bias().requires_grad());
  };
  const train::TrainResult r = train::Trainer(net, split.train, split.val, split.val, o).fit();
  CHECK(r.losses.size() == 45);  // ceil(4.5 x 10 steps)
  CHECK(r.epochs.size() == 5);
  CHECK(bias_learns == std::vector<bool>{true, false, false, false, false});
  CHECK(values(net->whiten->weight()) == whitening);
  for (const auto& [name, t] : net->named_parameters())
    if (name.ends_with("norm1.weight") || name.ends_with("norm2.weight")) CHECK(values(t) == std::vector<double>(t.numel(), 1.0));
  CHECK(r.losses.back() < r.losses.front());  // summed over 32 images
  CHECK(r.test_acc > 0.9);
  for (const char* f : {"metrics.csv", "summary.json", "best.safetensors", "model.onnx", "checkpoint.safetensors"})
    CHECK_MESSAGE(std::filesystem::exists(tmp.path / f), f);
}

TEST_CASE("airbench: a run stopped after an epoch resumes with exactly the uninterrupted run's losses") {
  TempDir a, b;
  auto data = two_classes(192, 5);
  data::Split split = data::train_val_split(data, 32);
  const train::AirbenchRecipe recipe{.batch_size = 32, .epochs = 3.5, .whiten_bias_epochs = 2, .whitening_images = 64};
  auto make = [&] {
    manual_seed(0);
    auto net = std::make_shared<models::Airbench>(models::AirbenchOptions{.widths = {8, 8, 8}});
    train::airbench_whitening(*net, split.train, recipe.whitening_images);
    return net;
  };
  auto options = [&](const TempDir& dir) {
    return train::airbench_options(
        {.model = "airbench", .train_acc_samples = 32, .seed = 1, .run_dir = dir.str(), .progress = 3}, recipe,
        split.train.size());
  };
  const train::TrainResult full = train::Trainer(make(), split.train, split.val, split.val, options(a)).fit();
  CHECK(full.losses.size() == 18);  // ceil(3.5 x 5)

  std::shared_ptr<models::Airbench> net;
  const train::TrainResult resumed = stopped_then_resumed([&] { return net = make(); }, split, options(b));
  CHECK(resumed.losses == full.losses);  // the lr schedule, momentum and lookahead average carried over
  CHECK(resumed.test_acc == full.test_acc);
  CHECK(!net->whiten->bias().requires_grad());
}

TEST_CASE("airbench_muon_optimizer: Muon on the conv filters, SGD on the shifts, whitening bias and head") {
  manual_seed(0);
  models::Airbench net(train::airbench_muon_model_options({8, 16, 16}));
  const train::AirbenchMuonRecipe r;
  auto opt = train::airbench_muon_optimizer(net, r);
  REQUIRE(opt->num_param_groups() == 4);
  const auto groups = opt->param_groups();
  const double wd = 2e-6 * 2000;  // absolute, per step
  CHECK(groups[0].params.size() == 6);  // the 3x3 filters; the whitening filters are frozen
  for (const Tensor& p : groups[0].params) CHECK(p.dim() == 4);
  CHECK(groups[1].params.size() == 1);
  CHECK(&groups[1].params[0].impl() == &net.whiten->bias().impl());
  CHECK(groups[2].params.size() == 6);  // every batch norm's shift
  CHECK(groups[3].params.size() == 1);
  CHECK(&groups[3].params[0].impl() == &net.head->weight().impl());
  const optim::MuonOptions& f = groups[0].options;
  CHECK((f.use_muon && f.normalize_weights && f.nesterov && f.adjust_lr_fn == "none"));
  CHECK(f.lr == 0.24);
  CHECK(f.momentum == 0.6);
  CHECK(f.weight_decay == 0);
  CHECK(f.ns_steps == 3);
  for (size_t g = 1; g < 4; ++g) {
    const optim::MuonOptions& o = groups[g].options;
    CHECK(!o.use_muon);
    CHECK(o.lr == (g == 3 ? 0.67 : 0.053));
    CHECK(o.lr * o.weight_decay == doctest::Approx(wd));
    CHECK(o.momentum == 0.85);
    CHECK(o.nesterov);
  }

  // airbench94_muon's head: unit standard deviation, the logits divided by the last width.
  const std::vector<double> w = values(net.head->weight());
  double mean = 0, ss = 0;
  for (double x : w) mean += x / static_cast<double>(w.size());
  for (double x : w) ss += (x - mean) * (x - mean);
  CHECK(std::sqrt(ss / static_cast<double>(w.size() - 1)) == doctest::Approx(1.0));
  Tensor x = randn({2, 3, 32, 32});
  net.eval();
  const std::vector<double> logits = values(net.forward(x));
  // The same network by hand, without the factor.
  const Tensor features = net.pool->forward(
      net.group3->forward(net.group2->forward(net.group1->forward(net.activ->forward(net.whiten->forward(x))))));
  const std::vector<double> unscaled = values(matmul(flatten(features, 1), transpose(net.head->weight(), 0, 1)));
  for (size_t i = 0; i < logits.size(); ++i) CHECK(logits[i] == doctest::Approx(unscaled[i] / 16).epsilon(1e-5));

  Tensor head = net.head->weight();
  head.requires_grad_(false);
  CHECK_ERROR(train::airbench_muon_optimizer(net, r),
              "airbench muon: expected conv filters, the whitening bias, batch-norm shifts and a head to train, got 6, 1, 6 and 0 tensors");
  head.requires_grad_(true);
  CHECK_ERROR(train::airbench_muon_optimizer(net, {.filter_momentum = 1}),
              "airbench muon: momentum (0.85) and filter_momentum (1) must be in (0, 1)");
  CHECK_ERROR(train::airbench_muon_model_options({8, 8}), "airbench muon: widths must be three positive channel counts");
  CHECK_ERROR(models::Airbench({.head_std = -1}), "Airbench: head_std must be >= 0, got -1");
}

TEST_CASE("airbench_muon_options: 8 epochs of 2000, every lr down to 0, the whitening bias's over its 3 epochs") {
  train::TrainerOptions o = train::airbench_muon_options({.run_dir = ""}, {}, 50000);
  CHECK(o.batch_size == 2000);
  CHECK(o.epochs == 8);
  CHECK(o.max_iterations == 200);
  CHECK(o.lookahead_k == 0);
  CHECK((o.loss_reduction == "sum" && o.label_smoothing == 0.2 && o.augment_shift == 2));
  CHECK((o.reflect_shift && o.alternating_flip && o.flip_tta && !o.keep_best));
  REQUIRE(o.lr_lambdas.size() == 4);
  CHECK(o.lr_lambdas[1](0, 200) == 1.0);
  CHECK(o.lr_lambdas[1](30, 200) == doctest::Approx(0.6));  // 75 steps of whitening bias
  CHECK(o.lr_lambdas[1](75, 200) == 0.0);
  CHECK(o.lr_lambdas[1](120, 200) == 0.0);
  for (size_t g : {0, 2, 3}) {
    CHECK(o.lr_lambdas[g](0, 200) == 1.0);
    CHECK(o.lr_lambdas[g](150, 200) == doctest::Approx(0.25));
    CHECK(o.lr_lambdas[g](200, 200) == 0.0);
  }
  models::Airbench net({.widths = {8, 8, 8}});
  o.on_epoch_start(3, net);
  CHECK(!net.whiten->bias().requires_grad());
  CHECK_ERROR(train::airbench_muon_options({}, {}, 1999), "airbench: 1999 training examples make no full batch of 2000");
}

TEST_CASE("airbench muon: the recipe end to end on tiny synthetic images, and an exact resume") {
  TempDir a, b;
  auto data = two_classes(352, 4);
  data::Split split = data::train_val_split(data, 64);
  const train::AirbenchMuonRecipe recipe{.batch_size = 32, .epochs = 3.5, .whiten_bias_epochs = 1, .whitening_images = 100};
  auto make = [&] {
    manual_seed(0);
    auto net = std::make_shared<models::Airbench>(train::airbench_muon_model_options({8, 8, 8}));
    train::airbench_whitening(*net, split.train, recipe.whitening_images);
    return net;
  };
  auto options = [&](const TempDir& dir) {
    return train::airbench_muon_options(
        {.model = "airbench", .train_acc_samples = 64, .seed = 1, .run_dir = dir.str(), .progress = 3}, recipe,
        split.train.size());
  };
  auto net = make();
  const train::TrainResult full = train::Trainer(net, split.train, split.val, split.val, options(a)).fit();
  CHECK(full.losses.size() == 32);  // ceil(3.5 x 9)
  CHECK(full.losses.back() < full.losses.front());
  CHECK(full.test_acc > 0.9);
  // Muon's renormalisation holds each filter bank near norm sqrt(filters): one step of lr <= 0.24 from it.
  for (const auto& [name, t] : net->named_parameters())
    if (t.dim() == 4 && name != "whiten.weight") {
      const std::vector<double> v = values(t);
      double ss = 0;
      for (double x : v) ss += x * x;
      CHECK_MESSAGE(std::abs(std::sqrt(ss) - std::sqrt(8.0)) < 0.24 * 1.5 * std::sqrt(8.0), name);
    }

  const train::TrainResult resumed = stopped_then_resumed(make, split, options(b));
  CHECK(resumed.losses == full.losses);  // Muon's momentum and the per-group schedule carried over
}

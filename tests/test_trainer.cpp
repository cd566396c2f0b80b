// The Trainer on synthetic CIFAR-format data: learning, outputs, exact resume, a NaN stop, models.
#include <filesystem>
#include <fstream>
#include <random>

#include "data_fixtures.hpp"
#include "train/models.hpp"
#include "train/trainer.hpp"

using namespace xg;
using test::data_fixtures::TempDir;

namespace {
// Two easy classes: class k images are bright in channel k, plus noise. Another 8 classes absent.
std::shared_ptr<const data::CIFAR10> easy_data(int64_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int> noise(0, 60);
  std::vector<uint8_t> images(static_cast<size_t>(n * 3072));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % 2;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < 1024; ++p)
        images[i * 3072 + c * 1024 + p] = static_cast<uint8_t>(noise(gen) + (c == labels[i] ? 150 : 20));
  }
  return std::make_shared<const data::CIFAR10>(data::CIFAR10::from_memory(std::move(images), std::move(labels)));
}

train::TrainerOptions small(const std::string& dir, int64_t epochs) {
  return {.model = "twolayer", .epochs = epochs, .batch_size = 16, .optimizer = "sgd", .lr = 0.01,
          .schedule = "decay", .train_acc_samples = 64, .max_steps_per_epoch = 4, .seed = 3, .run_dir = dir,
          .progress = 0};
}
}  // namespace

TEST_CASE("trainer: learns an easy problem and writes its run directory") {
  TempDir tmp;
  auto data = easy_data(160, 1);
  data::Split split = data::train_val_split(data, 32);
  auto model = models::make_model("twolayer");
  train::TrainerOptions o = small(tmp.str(), 3);
  train::Trainer trainer(model, split.train, split.val, split.val, o);
  train::TrainResult r = trainer.fit();
  CHECK(r.losses.size() == 12);
  CHECK(r.epochs.size() == 3);
  CHECK(r.best_val_acc > 0.9);
  CHECK(r.test_acc > 0.9);
  for (const char* f : {"metrics.csv", "loss.svg", "accuracy.svg", "filters.png", "best.safetensors", "summary.json",
                        "checkpoint.safetensors"})
    CHECK_MESSAGE(std::filesystem::exists(tmp.path / f), f);
  std::ifstream csv(tmp.path / "metrics.csv");
  std::string header;
  std::getline(csv, header);
  CHECK(header == "epoch,train_loss,train_acc,val_acc,lr,seconds,images_per_second");
}

TEST_CASE("trainer: --resume continues with exactly the losses of an uninterrupted run") {
  TempDir a, b;
  auto data = easy_data(160, 2);
  data::Split split = data::train_val_split(data, 32);
  auto run = [&](const std::string& dir, int64_t epochs, bool resume) {
    manual_seed(99);  // the model's initialisation
    auto model = std::make_shared<models::FullyConnectedNet>(std::vector<int64_t>{32}, 3072, 10,
                                                             models::Norm::batch, 0.2);
    train::TrainerOptions o = small(dir, epochs);
    o.model = "fc-test";
    o.optimizer = "adam";
    o.resume = resume;
    o.augment = true;
    train::Trainer t(model, split.train, split.val, data::Subset(), o);
    return t.fit();
  };
  train::TrainResult full = run(a.str(), 3, false);
  run(b.str(), 2, false);                           // interrupted after epoch 2 ...
  train::TrainResult resumed = run(b.str(), 3, true);  // ... and resumed
  REQUIRE(resumed.losses.size() == full.losses.size());
  CHECK(resumed.losses == full.losses);  // bit for bit: dropout, augmentation, optimizer state
  CHECK(resumed.epochs.back().val_acc == full.epochs.back().val_acc);
  // A checkpoint from another configuration is refused, naming the difference.
  auto model = models::make_model("twolayer");
  train::TrainerOptions o = small(b.str(), 4);
  o.resume = true;
  train::Trainer other(model, split.train, split.val, data::Subset(), o);
  CHECK_ERROR(other.fit(), "was written with model = fc-test, this run has twolayer");
}

TEST_CASE("trainer: a non-finite loss stops the run with the step and keeps the last good checkpoint") {
  TempDir tmp;
  auto data = easy_data(160, 3);
  data::Split split = data::train_val_split(data, 32);
  auto model = models::make_model("twolayer");
  train::TrainerOptions o = small(tmp.str(), 3);
  o.lr = 1e30;
  o.schedule = "none";
  train::Trainer t(model, split.train, split.val, data::Subset(), o);
  CHECK_ERROR(t.fit(), "Trainer: the loss is");
  CHECK_ERROR(train::Trainer(model, split.train, split.val, data::Subset(), [&] {
                auto bad = small(tmp.str(), 1);
                bad.optimizer = "lbfgs";
                return bad;
              }()),
              "Trainer: unknown optimizer 'lbfgs'");
}

TEST_CASE("model zoo: shapes, names and the first-layer images") {
  Tensor x = randn({2, 3, 32, 32});
  for (const std::string& name : models::model_names()) {
    CAPTURE(name);
    auto m = models::make_model(name);
    CHECK(m->forward(x).shape() == Shape{2, 10});
    Tensor imgs = models::first_layer_images(*m);
    REQUIRE(imgs.defined());
    CHECK(imgs.dim() == 4);
  }
  CHECK_ERROR(models::make_model("resnet"), "make_model: unknown model 'resnet'");
  CHECK_ERROR(models::VGG({32, 64, 128}), "VGG: channels must come in pairs");
  // The residual networks: parameter counts as in PyTorch's definitions (ResNet-18 for CIFAR
  // 11,173,962; Page's ResNet-9 6,573,120), and each stride-2 BasicBlock's 1x1 shortcut.
  CHECK(nn::count_parameters(*models::make_model("resnet18")) == 11173962);
  CHECK(nn::count_parameters(*models::make_model("resnet9")) == 6573120);
  models::BasicBlock down(64, 128, 2), same(64, 64, 1);
  CHECK(down.shortcut->size() == 2);
  CHECK(same.shortcut->size() == 0);
  CHECK(down.forward(randn({1, 64, 8, 8})).shape() == Shape{1, 128, 4, 4});
  CHECK_ERROR(models::BasicBlock(64, 0), "BasicBlock: channels (64 -> 0) and stride (1) must be positive");
}

TEST_CASE("accuracy: mirror-image averaging classifies each image by its summed logits") {
  auto data = easy_data(60, 2);
  data::Split split = data::train_val_split(data, 30);
  manual_seed(5);
  auto model = models::make_model("convnet");
  const data::Normalization norm = data::compute_mean_std(split.train);
  data::DataLoader loader(split.val, {.batch_size = 30, .shuffle = false, .transform = data::transforms::Normalize(norm)});
  loader.start_epoch(0);
  auto batch = loader.next();
  REQUIRE(batch);
  model->eval();
  NoGradGuard no_grad;
  Tensor x = batch->images, plain = model->forward(x), both = add(plain, model->forward(flip(x, {3})));
  auto correct = [&](const Tensor& logits) { return sum(eq(argmax(logits, 1), batch->labels)).item<int64_t>() / 30.0; };
  model->train();
  CHECK(train::accuracy(*model, split.val, norm, 7, true) == doctest::Approx(correct(both)));
  CHECK(train::accuracy(*model, split.val, norm, 7, false) == doctest::Approx(correct(plain)));
  CHECK(model->is_training());  // restored
}

namespace {
// Not images: x in R^4, target class 1 when x0 + x1 > 0, else 0.
struct Points : data::Dataset {
  std::vector<float> x;
  explicit Points(int64_t n) {
    std::mt19937_64 g(4);
    std::normal_distribution<float> d;
    for (int64_t i = 0; i < 4 * n; ++i) x.push_back(d(g));
  }
  int64_t size() const override { return static_cast<int64_t>(x.size()) / 4; }
  data::Example get(int64_t i) const override {
    std::vector<float> v(x.begin() + 4 * i, x.begin() + 4 * i + 4);
    return {from_vector(v, {4}), scalar_tensor(v[0] + v[1] > 0 ? 1 : 0, Dtype::i64)};
  }
};
}  // namespace

TEST_CASE("trainer: any dataset, a loss callback and a regulariser, no files, iteration budget") {
  TempDir tmp;
  auto train_set = std::make_shared<const Points>(256), val_set = std::make_shared<const Points>(64);
  manual_seed(1);
  auto model = std::make_shared<models::TwoLayerNet>(4, 16, 2);
  int64_t loss_calls = 0, reg_calls = 0;
  train::TrainerOptions o{.model = "points", .epochs = 5, .batch_size = 32, .lr = 0.1, .schedule = "none",
                          .max_iterations = 20, .run_dir = "", .progress = 3};
  o.loss = [&](const Tensor& out, const Tensor& target) { ++loss_calls; return cross_entropy(out, target); };
  o.regularizer = [&](nn::Module& m) { ++reg_calls; return mul(sum(mul(m.parameters()[0], m.parameters()[0])), 1e-4); };
  train::Trainer t(model, train_set, val_set, nullptr, o);
  const train::TrainResult r = t.fit();
  CHECK(r.losses.size() == 20);  // 8 steps per epoch: 8 + 8 + 4
  CHECK(r.epochs.size() == 3);
  CHECK(loss_calls == 20);
  CHECK(reg_calls == 20);
  CHECK(r.best_val_acc > 0.85);
  CHECK(r.test_acc == -1);
  // A NaN loss ends the run quietly when asked, reported in the result.
  o.loss = [](const Tensor& out, const Tensor&) { return div(sum(out), 0.0) * 0.0; };
  o.nonfinite_is_error = false;
  const train::TrainResult nan = train::Trainer(model, train_set, val_set, nullptr, o).fit();
  CHECK(nan.diverged);
  CHECK(nan.losses.size() == 1);
  o.max_iterations = -1;
  CHECK_ERROR(train::Trainer(model, train_set, val_set, nullptr, o), "Trainer: max_iterations must be >= 0, got -1");
  CHECK_ERROR(train::Trainer(model, std::make_shared<const Points>(0), val_set, nullptr, o),
              "Trainer: the training set is empty");
}

namespace {
// Linear - BatchNorm1d - ReLU - Linear on the points: parameters and batch-norm buffers.
std::shared_ptr<nn::Sequential> points_net() {
  return std::make_shared<nn::Sequential>(nn::Linear(4, 16), nn::BatchNorm1d(16), nn::ReLU(), nn::Linear(16, 2));
}
nn::NamedTensors snapshot(const nn::Module& m) {
  nn::NamedTensors out;
  for (const auto& [n, t] : m.state_dict()) out.emplace_back(n, t.detach().clone());
  return out;
}
// The floating parameters and buffers equal s's within tol (num_batches_tracked is not compared).
bool same_state(const nn::Module& m, const nn::NamedTensors& s, double tol = 0) {
  const nn::NamedTensors now = m.state_dict();
  for (size_t i = 0; i < now.size(); ++i) {
    if (!is_floating(now[i].second.dtype())) continue;
    const std::vector<double> a = now[i].second.to_vector<double>(), b = s[i].second.to_vector<double>();
    for (size_t j = 0; j < a.size(); ++j)
      if (std::abs(a[j] - b[j]) > tol) return false;
  }
  return true;
}
}  // namespace

TEST_CASE("trainer: recipe hooks (optimizer factory, lambda schedule, epoch callback, summed loss)") {
  auto train_set = std::make_shared<const Points>(256), val_set = std::make_shared<const Points>(64);
  train::TrainerOptions o{.model = "points", .epochs = 5, .batch_size = 32, .lr = 0.01, .schedule = "lambda",
                          .max_iterations = 20, .run_dir = "", .progress = 3};
  int64_t factory_calls = 0, seen_total = 0;
  std::vector<int64_t> epochs_started;
  o.make_optimizer = [&](nn::Module& m) -> std::unique_ptr<optim::Optimizer> {
    ++factory_calls;
    return std::make_unique<optim::SGD>(m.parameters(), optim::SGDOptions{.lr = 0.02, .momentum = 0.9});
  };
  o.lr_lambda = [&](int64_t step, int64_t total) {
    seen_total = total;
    return 1.0 + static_cast<double>(step);
  };
  o.on_epoch_start = [&](int64_t epoch, nn::Module&) { epochs_started.push_back(epoch); };
  manual_seed(1);
  auto model = points_net();
  const nn::NamedTensors init = snapshot(*model);
  const train::TrainResult r = train::Trainer(model, train_set, val_set, nullptr, o).fit();
  CHECK(factory_calls == 1);
  CHECK(seen_total == 20);  // min(5 epochs x 8 steps, max_iterations)
  CHECK(epochs_started == std::vector<int64_t>{0, 1, 2});
  REQUIRE(r.epochs.size() == 3);  // each epoch's lr at its start: the factory's 0.02 x (1 + step)
  CHECK(r.epochs[0].lr == doctest::Approx(0.02));
  CHECK(r.epochs[1].lr == doctest::Approx(0.02 * 9));
  CHECK(r.epochs[2].lr == doctest::Approx(0.02 * 17));

  // The summed loss of the first batch is the batch size times its mean (same weights, same batch).
  train::TrainerOptions sum_o{.model = "points", .epochs = 1, .batch_size = 32, .lr = 0.01, .schedule = "none",
                              .max_iterations = 1, .run_dir = "", .progress = 3};
  model->load_state_dict(init);
  const double mean_loss = train::Trainer(model, train_set, val_set, nullptr, sum_o).fit().losses.at(0);
  sum_o.loss_reduction = "sum";
  model->load_state_dict(init);
  const double sum_loss = train::Trainer(model, train_set, val_set, nullptr, sum_o).fit().losses.at(0);
  CHECK(sum_loss == doctest::Approx(32 * mean_loss).epsilon(1e-5));

  sum_o.loss_reduction = "avg";
  CHECK_ERROR(train::Trainer(model, train_set, val_set, nullptr, sum_o),
              "Trainer: loss_reduction must be \"mean\" or \"sum\", got \"avg\"");
  sum_o.loss_reduction = "mean";
  sum_o.schedule = "lambda";
  CHECK_ERROR(train::Trainer(model, train_set, val_set, nullptr, sum_o), "Trainer: schedule \"lambda\" needs an lr_lambda");
  sum_o.schedule = "none";
  sum_o.lookahead_k = 5;
  CHECK_ERROR(train::Trainer(model, train_set, val_set, nullptr, sum_o),
              "Trainer: lookahead_k (5) needs to be >= 0, and a lookahead_alpha when positive");
}

TEST_CASE("trainer: lookahead over parameters and batch-norm buffers, last weights, no validation") {
  auto train_set = std::make_shared<const Points>(256);
  train::TrainerOptions o{.model = "points", .epochs = 3, .batch_size = 32, .lr = 0.1, .schedule = "none",
                          .run_dir = "", .progress = 3, .keep_best = false};
  // alpha 0 every step: the average never moves, so the run ends on the initial weights and statistics.
  o.lookahead_k = 1;
  o.lookahead_alpha = [](int64_t, int64_t) { return 0.0; };
  manual_seed(2);
  auto model = points_net();
  const nn::NamedTensors init = snapshot(*model);
  train::TrainResult r = train::Trainer(model, train_set, nullptr, nullptr, o).fit();
  CHECK(r.losses.size() == 24);
  CHECK(same_state(*model, init));

  // alpha 1: plain training; with keep_best off (and without validation, where every epoch counts as
  // best) the model ends on its last weights.
  o.lookahead_alpha = [](int64_t, int64_t) { return 1.0; };
  model->load_state_dict(init);
  r = train::Trainer(model, train_set, nullptr, nullptr, o).fit();
  CHECK(!same_state(*model, init));
  CHECK(r.best_epoch == 3);
  const nn::NamedTensors last = snapshot(*model);
  o.lookahead_k = 0;
  o.keep_best = true;
  model->load_state_dict(init);
  r = train::Trainer(model, train_set, nullptr, nullptr, o).fit();
  CHECK(r.best_epoch == 3);  // no validation: the last epoch is the best, not the first
  CHECK(same_state(*model, last, 1e-5));  // alpha 1 every step is the plain run (up to rounding)
}

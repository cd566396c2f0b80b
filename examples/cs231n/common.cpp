// Data splits, preprocessing, the Solver loop and result output shared by the CS231n subcommands.
#include "common.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "train/files.hpp"
#include "train/models.hpp"
#include "train/plot.hpp"
#include "train/trainer.hpp"

namespace cs231n {

using namespace xg;

Cifar load_cifar(const Common& c, int64_t num_train, int64_t num_val, int64_t num_test) {
  const std::string dir = data::find_cifar10_dir(c.data_dir);
  Cifar d;
  d.train_set = std::make_shared<const data::CIFAR10>(dir, true);
  d.test_set = std::make_shared<const data::CIFAR10>(dir, false);
  const int64_t n = d.train_set->size();
  check(num_val >= 0 && num_val < n, "cs231n: --num-val must be in [0, {}), got {}", n, num_val);
  data::Split split = data::train_val_split(d.train_set, 1000);  // CS231n's val: images 49,000..49,999
  if (num_val < 1000) split.val = split.val.first(num_val);
  if (num_val > 1000) split = data::train_val_split(d.train_set, num_val);
  check(num_train >= 0, "cs231n: --num-train must be non-negative, got {}", num_train);
  d.train = num_train > 0 ? split.train.first(std::min(num_train, split.train.size())) : split.train;
  d.val = split.val;
  data::Subset test(d.test_set);
  d.test = num_test > 0 ? test.first(std::min(num_test, test.size())) : test;
  return d;
}

Preprocess per_channel(const data::Subset& train) { return {data::compute_mean_std(train), nullptr}; }

Preprocess mean_image(const data::Subset& train) {
  std::vector<double> sum(data::kImageBytes, 0.0);
  for (int64_t i = 0; i < train.size(); ++i) {
    const uint8_t* img = train.image(i);
    for (int64_t p = 0; p < data::kImageBytes; ++p) sum[p] += img[p];
  }
  auto mean = std::make_shared<std::vector<float>>(data::kImageBytes);
  for (int64_t p = 0; p < data::kImageBytes; ++p) (*mean)[p] = static_cast<float>(sum[p] / std::max<int64_t>(1, train.size()));
  return {data::Normalization{}, mean};
}

data::DataLoaderOptions loader_options(const Preprocess& p, int64_t batch_size, bool shuffle, uint64_t seed) {
  data::DataLoaderOptions o{.batch_size = batch_size, .shuffle = shuffle, .drop_last = shuffle, .seed = seed,
                            .num_workers = 0};
  if (!p.normalize.mean.empty()) o.transform = data::transforms::Normalize(p.normalize);
  if (p.mean_image) {
    // The loader hands over pixels in [0, 1]; CS231n's linear classifiers see pixel - mean in 0..255.
    o.batch_transform = [mean = p.mean_image](data::Batch& b) {
      float* x = b.images.data<float>();
      const float* m = mean->data();
      const int64_t n = b.images.shape()[0];
      for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < data::kImageBytes; ++k) x[i * data::kImageBytes + k] = x[i * data::kImageBytes + k] * 255.0f - m[k];
    };
  }
  return o;
}

double accuracy(nn::Module& model, const data::Subset& images, const Preprocess& p) {
  if (images.empty()) return 0.0;
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  data::DataLoader loader(images, loader_options(p, 500, false));
  int64_t correct = 0;
  loader.start_epoch(0);
  while (auto b = loader.next()) correct += sum(eq(argmax(model.forward(b->images), 1), b->labels)).item<int64_t>();
  model.train(was_training);
  return static_cast<double>(correct) / static_cast<double>(images.size());
}

Tensor l2_penalty(nn::Module& model, double l2) {
  Tensor reg;
  for (const Tensor& w : model.parameters())
    if (w.dim() >= 2) reg = reg.defined() ? add(reg, sum(mul(w, w))) : sum(mul(w, w));
  return reg.defined() ? mul(reg, l2) : zeros({}, Dtype::f32);
}

Tensor regularized_loss(nn::Module& model, const Tensor& scores, const Tensor& labels, const std::string& loss,
                        double l2) {
  // CS231n's svm_loss sums the hinge over the C - 1 wrong classes: C times PyTorch's multi_margin_loss.
  Tensor data_loss = loss == "svm" ? mul(multi_margin_loss(scores, labels), static_cast<double>(scores.shape()[1]))
                                   : cross_entropy(scores, labels);
  return l2 == 0 ? data_loss : add(data_loss, l2_penalty(model, l2));
}

SolverResult solve(nn::Module& model, const data::Subset& train, const data::Subset& val, const Preprocess& p,
                   const SolverOptions& o) {
  check(!train.empty() && o.batch_size > 0 && o.epochs > 0, "solve: needs training images ({}), a positive batch size "
        "({}) and epochs ({})", train.size(), o.batch_size, o.epochs);
  const std::string& u = o.update_rule;
  check(u == "sgd" || u == "sgd_momentum" || u == "rmsprop" || u == "adam",
        "solve: unknown update rule '{}'; choose sgd, sgd_momentum, rmsprop or adam", u);
  // CS231n's Solver is the Trainer without files, augmentation or label smoothing: the course's update
  // rules (plain momentum, no weight decay: the l2 term is in the loss), lr *= lr_decay per epoch.
  const data::DataLoaderOptions lo = loader_options(p, 1, false);
  train::TrainerOptions to{.model = "cs231n", .epochs = o.epochs, .batch_size = std::min(o.batch_size, train.size()),
                           .optimizer = u == "sgd_momentum" ? "sgd" : u, .lr = o.lr,
                           .momentum = u == "sgd_momentum" ? 0.9 : 0.0, .weight_decay = 0.0,
                           .schedule = o.lr_decay == 1.0 ? "none" : "decay", .lr_decay = o.lr_decay,
                           .augment = false, .label_smoothing = 0.0, .flip_tta = false,
                           .train_acc_samples = o.train_acc_samples, .seed = o.seed, .max_iterations = o.iterations,
                           .nesterov = false, .run_dir = "", .progress = o.verbose ? 2 : 3,
                           .nonfinite_is_error = false};
  to.loss = [loss = o.loss](const Tensor& scores, const Tensor& labels) {
    // CS231n's svm_loss sums the hinge over the C - 1 wrong classes: C times PyTorch's multi_margin_loss.
    return loss == "svm" ? mul(multi_margin_loss(scores, labels), static_cast<double>(scores.shape()[1]))
                         : cross_entropy(scores, labels);
  };
  if (o.l2 != 0) to.regularizer = [l2 = o.l2](nn::Module& m) { return l2_penalty(m, l2); };
  to.train_transform = to.eval_transform = lo.transform;
  to.image_recipe = false;
  to.batch_transform = lo.batch_transform;
  if (o.verbose && !o.name.empty()) fmt::print("{}\n", o.name);
  // The Trainer holds the model by shared_ptr; this one belongs to the caller.
  std::shared_ptr<nn::Module> borrowed(&model, [](nn::Module*) {});
  train::Trainer trainer(borrowed, std::make_shared<const data::Subset>(train),
                         val.empty() ? nullptr : std::make_shared<const data::Subset>(val), nullptr, to);
  const train::TrainResult t = trainer.fit();
  SolverResult r;
  r.losses = t.losses;
  for (const train::EpochMetrics& m : t.epochs) r.train_acc.push_back(m.train_acc), r.val_acc.push_back(m.val_acc);
  r.best_val_acc = t.best_val_acc;
  r.seconds = t.train_seconds;
  return r;
}

void first_layer_picture(nn::Module& model, const std::string& path) {
  if (Tensor w = models::first_layer_images(model); w.defined())
    plot::image_grid(path, w, w.shape()[2] >= 16 ? 2 : 6, 1);
}

void plot_runs(const std::string& dir, const std::string& title, const Runs& runs, int64_t smooth) {
  std::vector<plot::Series> loss, acc;
  for (const auto& [label, r] : runs) {
    plot::Series s{label, {}, {}};
    double window = 0;
    for (size_t i = 0; i < r.losses.size(); ++i) {
      window += r.losses[i];
      if (i >= static_cast<size_t>(smooth)) window -= r.losses[i - static_cast<size_t>(smooth)];
      const double n = static_cast<double>(std::min<size_t>(i + 1, static_cast<size_t>(smooth)));
      s.x.push_back(static_cast<double>(i + 1)), s.y.push_back(window / n);
    }
    loss.push_back(s);
    plot::Series tr{label + " train", {}, r.train_acc}, va{label + " val", {}, r.val_acc};
    for (size_t e = 0; e < r.val_acc.size(); ++e) tr.x.push_back(double(e + 1)), va.x.push_back(double(e + 1));
    acc.push_back(tr), acc.push_back(va);
  }
  plot::line_chart(dir + "/loss.svg", title + ": training loss", smooth > 1 ? fmt::format("iteration (running mean of {})", smooth) : "iteration",
                   "loss", loss);
  plot::line_chart(dir + "/accuracy.svg", title + ": accuracy", "epoch", "accuracy", acc);
}

std::string out_dir(const Common& c, const std::string& name) {
  const std::string dir = c.out.empty() ? "runs/cs231n/" + name : c.out;
  xg::train::create_directories(dir, "cs231n");
  return dir;
}

void write_summary(const std::string& dir, const nlohmann::json& j) {
  const std::string path = dir + "/summary.json";
  xg::train::write_text_file(path, j.dump(2) + "\n", "cs231n");
  nlohmann::json scalars;  // the headline numbers; lists stay in the file
  for (auto& [key, value] : j.items())
    if (!value.is_array() && !value.is_object()) scalars[key] = value;
  fmt::print("summary {}: {}\n", path, scalars.dump());
}

}  // namespace cs231n

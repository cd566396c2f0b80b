// cs231n features: HOG + hue-histogram features of every image, normalised, then a linear SVM and a
// two-layer net trained on them over hyperparameter grids; misclassified test images per class.
#include <algorithm>
#include <random>

#include "common.hpp"
#include "train/models.hpp"
#include "train/plot.hpp"

namespace cs231n {

using namespace xg;

namespace {

// The features of every image of `s`: [N, 144 HOG + nbin hue] f32, from 0..255 pixels as the course's.
Tensor extract(const data::Subset& s, int64_t nbin, bool course_hog) {
  constexpr int64_t chunk = 2000;  // images per batch of pixels: 25 MB of f32
  std::vector<Tensor> parts;
  for (int64_t begin = 0; begin < s.size(); begin += chunk) {
    const int64_t n = std::min(chunk, s.size() - begin);
    Tensor px = Tensor::empty({n, data::kC, data::kH, data::kW});
    float* p = px.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* img = s.image(begin + i);
      for (int64_t k = 0; k < data::kImageBytes; ++k) p[i * data::kImageBytes + k] = img[k];
    }
    parts.push_back(
        cat({data::hog_features(px, {.course_half_plane = course_hog}), data::color_histogram_hsv(px, nbin)}, 1));
  }
  return cat(parts, 0);
}

std::vector<int64_t> labels_of(const data::Subset& s) {
  std::vector<int64_t> y(static_cast<size_t>(s.size()));
  for (int64_t i = 0; i < s.size(); ++i) y[static_cast<size_t>(i)] = s.label(i);
  return y;
}

// The course's preprocessing: subtract the training mean, divide by the training std (a constant
// column is left unscaled), append a bias dimension of ones. Applied to train, val and test alike.
struct Standardize {
  Tensor mean, std;
  explicit Standardize(const Tensor& train) {
    NoGradGuard no_grad;
    mean = xg::mean(train, {0}, true);
    Tensor sd = sqrt(var(train, {0}, false, true));
    std = where(gt(sd, 0.0), sd, ones_like(sd));
  }
  Tensor operator()(const Tensor& x) const {
    NoGradGuard no_grad;
    Tensor z = div(sub(x, mean), std);
    return cat({z, ones({x.shape()[0], 1})}, 1);
  }
};

struct FitOptions {
  int64_t iterations = 1500, batch_size = 200;
  double lr = 1e-2, lr_decay = 1.0;  // lr *= lr_decay after every epoch (of train size / batch steps)
  double l2 = 0;                     // adds l2 * sum(W^2) over every weight matrix
  std::string loss = "svm";
  bool keep_best = false;  // check validation every epoch and keep the best weights (CS231n's Solver)
  uint64_t seed = 0;
};

struct Split {
  Tensor x, y;
};

std::vector<int64_t> predict(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<int64_t> out;
  for (int64_t b = 0; b < x.shape()[0]; b += 5000) {
    const auto p = argmax(model.forward(slice(x, 0, b, std::min(b + 5000, x.shape()[0]))), 1).to_vector<int64_t>();
    out.insert(out.end(), p.begin(), p.end());
  }
  model.train(was_training);
  return out;
}

double accuracy_of(nn::Module& model, const Split& s) {
  if (s.x.shape()[0] == 0) return 0.0;
  const auto p = predict(model, s.x), y = s.y.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < p.size(); ++i) correct += p[i] == y[i];
  return static_cast<double>(correct) / static_cast<double>(p.size());
}

struct FitResult {
  double train_acc = 0, val_acc = 0, final_loss = 0;
};

// Minibatch SGD with batches drawn with replacement (the course's np.random.choice), through the tape.
FitResult fit(nn::Module& model, const Split& train, const Split& val, const FitOptions& o) {
  optim::SGD opt(model.parameters(), optim::SGDOptions{.lr = o.lr});
  std::mt19937_64 rng(o.seed);
  const int64_t N = train.x.shape()[0];
  std::uniform_int_distribution<int64_t> pick(0, N - 1);
  const int64_t per_epoch = std::max<int64_t>(1, N / o.batch_size);
  FitResult r;
  double best = -1;
  nn::NamedTensors best_state;
  std::vector<int64_t> idx(static_cast<size_t>(o.batch_size));
  model.train();
  for (int64_t it = 1; it <= o.iterations; ++it) {
    for (auto& i : idx) i = pick(rng);
    const Tensor index = from_vector(idx);
    Tensor loss = regularized_loss(model, model.forward(index_select(train.x, 0, index)),
                                   index_select(train.y, 0, index), o.loss, o.l2);
    opt.zero_grad();
    loss.backward();
    opt.step();
    r.final_loss = loss.item<double>();
    if (!std::isfinite(r.final_loss)) break;  // diverged: reported as such
    const bool epoch_end = it % per_epoch == 0 || it == o.iterations;
    if (epoch_end && o.keep_best) {
      const double v = accuracy_of(model, val);
      if (v > best) {
        best = v;
        best_state.clear();
        for (auto& [name, t] : model.state_dict()) best_state.emplace_back(name, t.detach().clone());
      }
    }
    if (it % per_epoch == 0) opt.set_lr(opt.lr() * o.lr_decay);
  }
  if (o.keep_best && !best_state.empty()) model.load_state_dict(best_state);
  const Split train_eval{slice(train.x, 0, 0, std::min<int64_t>(N, 1000)),
                         slice(train.y, 0, 0, std::min<int64_t>(N, 1000))};
  r.train_acc = accuracy_of(model, train_eval);
  r.val_acc = accuracy_of(model, val);
  return r;
}

// The course's picture: for each class (a column), test images predicted as that class that are not
// of it, `per_class` rows; a slot with no such image stays white.
void misclassified_picture(const std::string& path, const data::Subset& test, const std::vector<int64_t>& pred,
                           int64_t per_class, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tensor grid = full({per_class * data::kClasses, data::kC, data::kH, data::kW}, 255.0);
  float* g = grid.data<float>();
  for (int64_t cls = 0; cls < data::kClasses; ++cls) {
    std::vector<int64_t> wrong;
    for (int64_t i = 0; i < test.size(); ++i)
      if (pred[static_cast<size_t>(i)] == cls && test.label(i) != cls) wrong.push_back(i);
    std::shuffle(wrong.begin(), wrong.end(), rng);
    for (int64_t r = 0; r < std::min<int64_t>(per_class, static_cast<int64_t>(wrong.size())); ++r) {
      const uint8_t* img = test.image(wrong[static_cast<size_t>(r)]);
      float* dst = g + (r * data::kClasses + cls) * data::kImageBytes;
      for (int64_t k = 0; k < data::kImageBytes; ++k) dst[k] = img[k];
    }
  }
  plot::image_grid(path, grid, 2, 2, data::kClasses, false);
}

}  // namespace

int run_features(const Common& c, const FeaturesOptions& o) {
  const Timer total;
  const std::string dir = out_dir(c, "features");
  Cifar d = load_cifar(c, o.num_train, o.num_val, o.num_test);
  Timer t;
  const Tensor ftr = extract(d.train, o.nbin, o.course_hog), fval = extract(d.val, o.nbin, o.course_hog),
               fte = extract(d.test, o.nbin, o.course_hog);
  const double extract_s = t.seconds();
  fmt::print(
      "features: {} train, {} val, {} test images; HOG ({}) + hue histogram ({}) = {} features each, "
      "extracted in {:.1f} s\n",
      d.train.size(), d.val.size(), d.test.size(), ftr.shape()[1] - o.nbin, o.nbin, ftr.shape()[1], extract_s);
  const Standardize norm(ftr);
  const Split train{norm(ftr), from_vector(labels_of(d.train))}, val{norm(fval), from_vector(labels_of(d.val))},
      test{norm(fte), from_vector(labels_of(d.test))};
  const int64_t D = train.x.shape()[1];  // with the bias dimension
  nlohmann::json summary{{"command", "features"},        {"feature_dim", D},
                         {"extract_seconds", extract_s}, {"train_images", d.train.size()},
                         {"val_images", d.val.size()},   {"test_images", d.test.size()}};

  // (1) Linear SVM, loss = hinge + reg * sum(W^2), W over the bias dimension too, no separate bias.
  // The course's grid (lr 1e-9..1e-7, reg 5e4..5e6) and a grid around lr * reg ~ 1e-4 for features of unit scale.
  struct Setting {
    double lr, reg;
  };
  std::vector<Setting> svm_grid{{1e-2, 1e-3}};
  if (o.sweep) {
    svm_grid.clear();
    for (double lr : {1e-9, 1e-8, 1e-7})
      for (double reg : {5e4, 5e5, 5e6}) svm_grid.push_back({lr, reg});
    for (double lr : {1e-3, 1e-2, 1e-1})
      for (double reg : {0.0, 1e-3, 1e-2, 1e-1}) svm_grid.push_back({lr, reg});
  }
  t = Timer();
  double svm_best = -1;
  Setting svm_cfg{};
  std::shared_ptr<nn::Linear> svm;
  nlohmann::json svm_runs = nlohmann::json::array();
  for (const Setting& s : svm_grid) {
    manual_seed(c.seed);
    auto model = std::make_shared<nn::Linear>(D, data::kClasses, false);
    nn::init::normal_(model->weight(), 0.0, 1e-3);  // the course's 0.001 randn
    const FitResult r =
        fit(*model, train, val, {.iterations = o.iterations, .lr = s.lr, .l2 = s.reg, .loss = "svm", .seed = c.seed});
    fmt::print("svm lr {:.0e} reg {:.0e}: final loss {:.3f}, train acc {:.1f}%, val acc {:.1f}%\n", s.lr, s.reg,
               r.final_loss, 100 * r.train_acc, 100 * r.val_acc);
    svm_runs.push_back({{"lr", s.lr}, {"reg", s.reg}, {"train_acc", r.train_acc}, {"val_acc", r.val_acc}});
    if (r.val_acc > svm_best) svm_best = r.val_acc, svm_cfg = s, svm = model;
  }
  const std::vector<int64_t> svm_pred = predict(*svm, test.x);
  const double svm_test = accuracy_of(*svm, test), svm_s = t.seconds();
  fmt::print("SVM on features: best lr {:.0e} reg {:.0e}: val {:.1f}%, test {:.1f}% ({} settings, {:.0f} s)\n",
             svm_cfg.lr, svm_cfg.reg, 100 * svm_best, 100 * svm_test, svm_grid.size(), svm_s);
  misclassified_picture(dir + "/svm_misclassified.png", d.test, svm_pred, 8, c.seed);

  // (2) Two-layer net (affine - ReLU - affine, PyTorch's initialisation), loss = softmax + 0.5 reg
  // ||W||^2, plain SGD, lr x 0.95 per epoch, the best-validation weights kept (CS231n's Solver).
  struct NetSetting {
    int64_t hidden;
    double lr, reg;
  };
  std::vector<NetSetting> net_grid{{500, 0.3, 1e-3}};
  if (o.sweep) {
    net_grid.clear();
    for (int64_t hidden : {200, 500})
      for (double lr : {0.1, 0.3, 1.0})
        for (double reg : {1e-4, 1e-3}) net_grid.push_back({hidden, lr, reg});
  }
  t = Timer();
  double net_best = -1;
  NetSetting net_cfg{};
  std::shared_ptr<models::TwoLayerNet> net;
  nlohmann::json net_runs = nlohmann::json::array();
  for (const NetSetting& s : net_grid) {
    manual_seed(c.seed);
    auto model = std::make_shared<models::TwoLayerNet>(D, s.hidden, data::kClasses);
    const FitResult r = fit(*model, train, val,
                            {.iterations = o.iterations,
                             .lr = s.lr,
                             .lr_decay = 0.95,
                             .l2 = 0.5 * s.reg,
                             .loss = "softmax",
                             .keep_best = true,
                             .seed = c.seed});
    fmt::print("net hidden {} lr {:g} reg {:.0e}: final loss {:.3f}, train acc {:.1f}%, val acc {:.1f}%\n", s.hidden,
               s.lr, s.reg, r.final_loss, 100 * r.train_acc, 100 * r.val_acc);
    std::fflush(stdout);
    net_runs.push_back(
        {{"hidden", s.hidden}, {"lr", s.lr}, {"reg", s.reg}, {"train_acc", r.train_acc}, {"val_acc", r.val_acc}});
    if (r.val_acc > net_best) net_best = r.val_acc, net_cfg = s, net = model;
  }
  const double net_test = accuracy_of(*net, test), net_s = t.seconds();
  fmt::print(
      "two-layer net on features: best hidden {} lr {:g} reg {:.0e}: val {:.1f}%, test {:.1f}% ({} settings, "
      "{:.0f} s)\n",
      net_cfg.hidden, net_cfg.lr, net_cfg.reg, 100 * net_best, 100 * net_test, net_grid.size(), net_s);

  summary["svm_val_accuracy"] = svm_best;
  summary["svm_test_accuracy"] = svm_test;
  summary["svm"] = {{"lr", svm_cfg.lr}, {"reg", svm_cfg.reg}, {"seconds", svm_s}, {"runs", svm_runs}};
  summary["net_val_accuracy"] = net_best;
  summary["net_test_accuracy"] = net_test;
  summary["net"] = {
      {"hidden", net_cfg.hidden}, {"lr", net_cfg.lr}, {"reg", net_cfg.reg}, {"seconds", net_s}, {"runs", net_runs}};
  summary["iterations"] = o.iterations;
  summary["seconds"] = total.seconds();
  write_summary(dir, summary);
  return 0;
}

}  // namespace cs231n

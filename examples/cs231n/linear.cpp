// cs231n linear: softmax and multiclass SVM linear classifiers on mean-subtracted pixels, trained by
// minibatch SGD through the tape; the course's grid search; the learned weights as class templates.
#include <cmath>

#include "common.hpp"
#include "train/plot.hpp"

namespace cs231n {

using namespace xg;

namespace {

// scores = x W^T + b on flattened images; W starts as std * randn (CS231n: 0.001), b at zero.
class LinearClassifier : public nn::Module {
 public:
  explicit LinearClassifier(double std) {
    fc = register_module("fc", nn::Linear(data::kImageBytes, data::kClasses));
    nn::init::normal_(fc->weight(), 0.0, std);
    nn::init::zeros_(fc->bias());
  }
  Tensor forward(const Tensor& x) override { return fc->forward(flatten(x, 1)); }
  std::shared_ptr<nn::Linear> fc;
};

// The mean loss of a fresh classifier on `images`: CS231n's sanity check (softmax: -log(0.1) = 2.303).
double initial_loss(const data::Subset& images, const Preprocess& p, const std::string& loss) {
  LinearClassifier model(1e-4);
  NoGradGuard no_grad;
  data::DataLoader loader(images, loader_options(p, images.size(), false));
  loader.start_epoch(0);
  auto b = loader.next();
  return regularized_loss(model, model.forward(b->images), b->labels, loss, 0.0).item<double>();
}

}  // namespace

int run_linear(const Common& c, const LinearOptions& o) {
  const Timer total;
  const std::string dir = out_dir(c, "linear");
  Cifar d = load_cifar(c, o.num_train, o.num_val, o.num_test);
  const Preprocess pre = mean_image(d.train);
  fmt::print("linear classifiers: {} train, {} val, {} test images, pixels minus the mean image (0..255)\n",
             d.train.size(), d.val.size(), d.test.size());
  const data::Subset dev = d.train.first(std::min<int64_t>(500, d.train.size()));
  const double loss0_softmax = initial_loss(dev, pre, "softmax"), loss0_svm = initial_loss(dev, pre, "svm");
  fmt::print("initial loss with W = 1e-4 randn: softmax {:.4f} (expected -log(0.1) = {:.4f}), svm {:.4f} (expected "
             "about C - 1 = 9)\n", loss0_softmax, -std::log(0.1), loss0_svm);

  // The course's grid: learning rates x regularisation strengths, loss = data + reg * sum(W^2).
  // --wide-grid: learning rates up to 30x the course's and regularisation down to 1/25 of it.
  std::vector<double> lrs = o.sweep ? std::vector<double>{1e-7, 5e-7} : std::vector<double>{1e-7};
  std::vector<double> regs = o.sweep ? std::vector<double>{2.5e4, 5e4} : std::vector<double>{2.5e4};
  if (o.wide_grid) lrs = {1e-7, 3e-7, 1e-6, 3e-6}, regs = {1e3, 5e3, 2.5e4, 5e4};
  nlohmann::json summary{{"command", "linear"}, {"iterations", o.iterations}, {"wide_grid", o.wide_grid}, {"initial_loss_softmax", loss0_softmax}, {"initial_loss_svm", loss0_svm}};
  std::vector<plot::Series> curves;
  for (const std::string loss : {"softmax", "svm"}) {
    double best_val = -1, best_lr = 0, best_reg = 0;
    std::shared_ptr<LinearClassifier> best;
    SolverResult best_run;
    for (double lr : lrs)
      for (double reg : regs) {
        manual_seed(c.seed);
        auto model = std::make_shared<LinearClassifier>(1e-3);
        const int64_t per_epoch = std::max<int64_t>(1, d.train.size() / 200);
        SolverOptions so{.epochs = (o.iterations + per_epoch - 1) / per_epoch, .batch_size = 200,
                         .iterations = o.iterations, .lr = lr, .l2 = reg, .loss = loss, .seed = c.seed,
                         .verbose = false};
        SolverResult r = solve(*model, d.train, d.val, pre, so);
        fmt::print("{:7} lr {:.0e} reg {:.1e}: final loss {:.3f}, train acc {:.1f}%, val acc {:.1f}% ({:.1f} s)\n", loss,
                   lr, reg, r.losses.back(), 100 * r.train_acc.back(), 100 * r.best_val_acc, r.seconds);
        if (r.best_val_acc > best_val) best_val = r.best_val_acc, best_lr = lr, best_reg = reg, best = model, best_run = r;
      }
    const double test = accuracy(*best, d.test, pre);
    fmt::print("{}: best lr {:.0e} reg {:.1e}: val {:.1f}%, test {:.1f}%\n", loss, best_lr, best_reg, 100 * best_val,
               100 * test);
    summary[loss] = {{"val_acc", best_val}, {"test_acc", test}, {"lr", best_lr}, {"reg", best_reg}};
    summary[loss + "_val_acc"] = best_val;
    summary[loss + "_test_acc"] = test;
    plot::Series s{loss, {}, best_run.losses};
    for (size_t i = 0; i < s.y.size(); ++i) s.x.push_back(static_cast<double>(i + 1));
    curves.push_back(s);
    // Each class's weights viewed as a 3x32x32 image, rescaled to 0..255 (CS231n's template picture).
    plot::image_grid(dir + "/" + loss + "_templates.png", reshape(best->fc->weight().detach(), {10, 3, 32, 32}), 4, 2);
  }
  plot::line_chart(dir + "/loss.svg", "linear classifiers: training loss (best setting)", "iteration", "loss", curves);
  summary["seconds"] = total.seconds();
  write_summary(dir, summary);
  return 0;
}

}  // namespace cs231n

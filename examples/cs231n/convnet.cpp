// cs231n convnet | bn-scale: ThreeLayerConvNet with and without spatial batchnorm, and the batchnorm
// weight-initialisation-scale experiment of assignment 2.
#include <cmath>

#include "common.hpp"
#include "train/models.hpp"
#include "train/plot.hpp"

namespace cs231n {

using namespace xg;

int run_convnet(const Common& c, const NetOptions& o) {
  const Timer total;
  const std::string dir = out_dir(c, "convnet");
  Cifar d = load_cifar(c, o.num_train, o.num_val, o.num_test);
  const Preprocess pre = per_channel(d.train);
  nlohmann::json summary{{"command", "convnet"}, {"test_images", d.test.size()}};
  Runs runs;
  for (const bool bn : {false, true}) {
    const std::string name = bn ? "batchnorm" : "plain";
    manual_seed(c.seed);
    models::ThreeLayerConvNet model(32, 7, 100, 10, bn);
    // The scale of what enters the big affine layer (8192 -> 100, 99% of the weights) at
    // initialisation: batch norm sits only after the conv, so it sets this scale, and with it how far
    // each Adam step moves the affine layer's outputs.
    double rms = 0;
    {
      xg::NoGradGuard no_grad;
      data::DataLoader loader(d.val, loader_options(pre, 500, false));
      for (data::Batch& b : loader.epoch(0)) {
        Tensor f = model.features->forward(b.images);
        rms = std::sqrt(mean(f * f).item<float>());
        break;
      }
    }
    summary[name + "_affine_input_rms_at_init"] = rms;
    SolverResult r = solve(model, d.train, d.val, pre,
                           {.epochs = o.epochs > 0 ? o.epochs : 4, .batch_size = 100, .update_rule = "adam",
                            .lr = o.lr > 0 ? o.lr : 1e-3, .lr_decay = 0.7, .l2 = 0.5 * 1e-3, .seed = c.seed,
                            .name = "ThreeLayerConvNet " + name + ": "});
    const double test = accuracy(model, d.test, pre);
    fmt::print("ThreeLayerConvNet {}: epoch-1 val {:.1f}%, best val {:.1f}%, test {:.1f}% ({:.0f} s); rms of the "
               "affine layer's input at init {:.3f}\n", name, 100 * r.val_acc.front(), 100 * r.best_val_acc, 100 * test,
               r.seconds, rms);
    summary[name + "_val_acc_epoch1"] = r.val_acc.front();
    summary[name + "_val_acc"] = r.best_val_acc;
    summary[name + "_test_acc"] = test;
    summary[name + "_seconds"] = r.seconds;
    summary[name + "_val_acc_per_epoch"] = r.val_acc;
    first_layer_picture(model, dir + "/" + name + "_filters.png");
    runs.push_back({name, r});
  }
  plot_runs(dir, "ThreeLayerConvNet", runs, 50);
  summary["seconds"] = total.seconds();
  write_summary(dir, summary);
  return 0;
}

int run_bn_scale(const Common& c, const NetOptions& o) {
  const Timer total;
  const std::string dir = out_dir(c, "bn-scale");
  // CS231n: 1,000 training images, pixels minus the mean image, weights weight_scale * randn.
  Cifar d = load_cifar(c, std::min<int64_t>(o.num_train, 1000), o.num_val, 1);
  const Preprocess pre = mean_image(d.train);
  const int64_t points = o.sweep ? 20 : 5;
  std::vector<double> scales;
  for (int64_t i = 0; i < points; ++i) scales.push_back(std::pow(10.0, -4.0 + 4.0 * double(i) / double(points - 1)));
  plot::Series val[2], train[2], loss[2];
  for (const bool bn : {false, true}) {
    const std::string name = bn ? "batchnorm" : "baseline";
    val[bn] = train[bn] = loss[bn] = plot::Series{name, {}, {}};
    for (double scale : scales) {
      manual_seed(c.seed);
      // Six affine layers: five hidden layers of 50 units, then the classifier.
      models::FullyConnectedNet model({50, 50, 50, 50, 50}, data::kImageBytes, data::kClasses,
                                      bn ? models::Norm::batch : models::Norm::none);
      for (auto& [pname, p] : model.named_parameters()) {
        if (p.dim() >= 2) nn::init::normal_(p, 0.0, scale);
        else if (pname.ends_with("bias")) nn::init::zeros_(p);
      }
      SolverResult r = solve(model, d.train, d.val, pre,
                             {.epochs = o.epochs > 0 ? o.epochs : 10, .batch_size = 50, .update_rule = "adam",
                              .lr = 1e-3, .seed = c.seed, .verbose = false});
      const double best_train = *std::max_element(r.train_acc.begin(), r.train_acc.end());
      fmt::print("{:9} weight scale {:.2e}: best val {:.1f}%, best train {:.1f}%, final loss {:.3g}\n", name, scale,
                 100 * r.best_val_acc, 100 * best_train, r.losses.back());
      val[bn].x.push_back(scale), val[bn].y.push_back(r.best_val_acc);
      train[bn].x.push_back(scale), train[bn].y.push_back(best_train);
      loss[bn].x.push_back(scale), loss[bn].y.push_back(r.losses.back());
    }
  }
  plot::line_chart(dir + "/val_acc.svg", "best validation accuracy vs weight initialization scale", "weight scale",
                   "validation accuracy", {val[0], val[1]}, true);
  plot::line_chart(dir + "/train_acc.svg", "best training accuracy vs weight initialization scale", "weight scale",
                   "training accuracy", {train[0], train[1]}, true);
  plot::line_chart(dir + "/final_loss.svg", "final training loss vs weight initialization scale", "weight scale",
                   "loss", {loss[0], loss[1]}, true);
  auto best = [](const plot::Series& s) { return *std::max_element(s.y.begin(), s.y.end()); };
  write_summary(dir, {{"command", "bn-scale"},
                      {"scales", scales},
                      {"baseline_val_acc", val[0].y},
                      {"batchnorm_val_acc", val[1].y},
                      {"baseline_best_val_acc", best(val[0])},
                      {"batchnorm_best_val_acc", best(val[1])},
                      {"baseline_final_loss", loss[0].y},
                      {"batchnorm_final_loss", loss[1].y},
                      {"seconds", total.seconds()}});
  return 0;
}

}  // namespace cs231n

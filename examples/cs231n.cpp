// cs231n: Stanford CS231n's assignments 1 and 2 reproduced with xgrad, one subcommand per result.
//   cs231n knn | linear | features | two-layer | fc | overfit | update-rules | convnet | bn-scale | gradcheck
// Each prints its figures, writes its pictures and a summary.json into --out (default
// runs/cs231n/<subcommand>), and takes flags that shrink it to a seconds-long smoke run.
#include <CLI/CLI.hpp>

#include "cs231n/common.hpp"

int main(int argc, char** argv) {
  using namespace cs231n;
  xg::configure_process();  // malloc and OpenBLAS settings for speed (autograd/process.hpp)
  Common c;
  int threads = 0;
  CLI::App app{"CS231n assignments 1-2 reproduced with xgrad"};
  app.require_subcommand(1);
  app.add_option("--data", c.data_dir, "CIFAR-10 binary directory (else $CIFAR10_DIR, ./data/cifar-10-batches-bin)");
  app.add_option("--out", c.out, "directory for pictures and summary.json (default runs/cs231n/<subcommand>)");
  app.add_option("--seed", c.seed)->capture_default_str();
  app.add_option("--threads", threads, "worker threads (0: all cores)")->capture_default_str();

  KnnOptions knn;
  CLI::App* knn_cmd = app.add_subcommand("knn", "k-nearest neighbours: distances three ways, cross-validation of k");
  knn_cmd->add_option("--num-train", knn.num_train, "first N training images")->capture_default_str()->check(CLI::PositiveNumber);
  knn_cmd->add_option("--num-test", knn.num_test, "first N test images")->capture_default_str()->check(CLI::PositiveNumber);
  knn_cmd->add_option("--folds", knn.folds)->capture_default_str()->check(CLI::Range(2, 100));

  LinearOptions lin;
  CLI::App* lin_cmd = app.add_subcommand("linear", "softmax and SVM linear classifiers, class templates");
  lin_cmd->add_option("--num-train", lin.num_train)->capture_default_str()->check(CLI::PositiveNumber);
  lin_cmd->add_option("--num-val", lin.num_val)->capture_default_str()->check(CLI::PositiveNumber);
  lin_cmd->add_option("--num-test", lin.num_test)->capture_default_str()->check(CLI::PositiveNumber);
  lin_cmd->add_option("--iterations", lin.iterations, "SGD steps per run")->capture_default_str()->check(CLI::PositiveNumber);
  lin_cmd->add_flag("!--no-sweep", lin.sweep, "train only the course's first setting, no grid search");
  lin_cmd->add_flag("--wide-grid", lin.wide_grid, "search lr 1e-7..3e-6 x reg 1e3..5e4 instead of the course's grid");

  FeaturesOptions feat;
  CLI::App* feat_cmd = app.add_subcommand("features", "HOG + hue histogram features: linear SVM and two-layer net grids");
  feat_cmd->add_option("--num-train", feat.num_train, "first N training images")->capture_default_str()->check(CLI::PositiveNumber);
  feat_cmd->add_option("--num-val", feat.num_val)->capture_default_str()->check(CLI::PositiveNumber);
  feat_cmd->add_option("--num-test", feat.num_test, "first N test images")->capture_default_str()->check(CLI::PositiveNumber);
  feat_cmd->add_option("--iterations", feat.iterations, "SGD steps per setting")->capture_default_str()->check(CLI::PositiveNumber);
  feat_cmd->add_option("--nbin", feat.nbin, "hue histogram bins")->capture_default_str()->check(CLI::PositiveNumber);
  feat_cmd->add_flag("--course-hog", feat.course_hog, "HOG as the course's code computes it: only gradients with gx > 0");
  feat_cmd->add_flag("!--no-sweep", feat.sweep, "train one setting of each model, no grid search");

  NetOptions net;
  auto net_cmd = [&](const char* name, const char* help) {
    CLI::App* cmd = app.add_subcommand(name, help);
    cmd->add_option("--num-train", net.num_train, "first N training images")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--num-val", net.num_val)->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--num-test", net.num_test, "first N test images (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--epochs", net.epochs, "0: the subcommand's default")->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--lr", net.lr, "learning rate (0: the subcommand's default)")->capture_default_str();
    cmd->add_flag("!--no-sweep", net.sweep, "skip the hyperparameter search (two-layer) / use 5 scales (bn-scale)");
    return cmd;
  };
  CLI::App* two_cmd = net_cmd("two-layer", "TwoLayerNet with a small hyperparameter search, first-layer weights");
  CLI::App* fc_cmd = net_cmd("fc", "FullyConnectedNet [512, 256, 100] with batchnorm, dropout and Adam");
  CLI::App* overfit_cmd = net_cmd("overfit", "3-layer and 5-layer nets overfit 50 images");
  CLI::App* rules_cmd = net_cmd("update-rules", "SGD, momentum, RMSprop and Adam on one problem: loss curves");
  CLI::App* conv_cmd = net_cmd("convnet", "ThreeLayerConvNet with and without spatial batchnorm");
  CLI::App* bn_cmd = net_cmd("bn-scale", "6-layer nets with and without batchnorm over weight scales 1e-4..1");

  GradcheckDemoOptions gc;
  CLI::App* gc_cmd = app.add_subcommand("gradcheck", "sparse gradient check of every layer and model, in f64");
  gc_cmd->add_option("--checks", gc.checks, "random coordinates per input")->capture_default_str()->check(CLI::PositiveNumber);

  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) xg::set_num_threads(threads);
    if (*knn_cmd) return run_knn(c, knn);
    if (*lin_cmd) return run_linear(c, lin);
    if (*feat_cmd) return run_features(c, feat);
    if (*two_cmd) return run_two_layer(c, net);
    if (*fc_cmd) return run_fc(c, net);
    if (*overfit_cmd) return run_overfit(c, net);
    if (*rules_cmd) return run_update_rules(c, net);
    if (*conv_cmd) return run_convnet(c, net);
    if (*bn_cmd) return run_bn_scale(c, net);
    if (*gc_cmd) return run_gradcheck(c, gc);
  } catch (const xg::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}

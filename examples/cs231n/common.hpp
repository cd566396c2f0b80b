// Shared pieces of the CS231n reproductions: the data splits, the two input preprocessings, a small
// Solver (CS231n's, with the tape doing the backward pass), timing and result output.
#pragma once

#include <time.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <xgrad.hpp>

#include "data/data.hpp"

namespace cs231n {

using xg::Tensor;
namespace data = xg::data;

// Options every subcommand has.
struct Common {
  std::string data_dir{};        // --data (else $CIFAR10_DIR, ./data/cifar-10-batches-bin)
  std::string out{};             // --out: where pictures and summary.json go ("" : runs/cs231n/<name>)
  uint64_t seed = 0;
};

// CIFAR-10 as CS231n splits it: the first 49,000 training images train, the next 1,000 validate,
// and the first 1,000 test images test (the linear-classifier notebooks) or all 10,000.
struct Cifar {
  std::shared_ptr<const data::CIFAR10> train_set, test_set;
  data::Subset train, val, test;
};
// num_train / num_val / num_test: how many of each (0: CS231n's 49,000 / 1,000 / the whole test set).
Cifar load_cifar(const Common& c, int64_t num_train = 0, int64_t num_val = 1000, int64_t num_test = 0);

// How images reach a model: per-channel normalisation (the networks), or CS231n's mean-image
// subtraction on 0..255 pixels (the linear classifiers and the batchnorm weight-scale experiment,
// whose learning rates and weight scales assume that scale).
struct Preprocess {
  data::Normalization normalize{};
  std::shared_ptr<const std::vector<float>> mean_image;  // 3072 values in 0..255, or null
};
Preprocess per_channel(const data::Subset& train);
Preprocess mean_image(const data::Subset& train);
data::DataLoaderOptions loader_options(const Preprocess& p, int64_t batch_size, bool shuffle, uint64_t seed = 0);

// Fraction of `images` classified correctly, in eval mode, without recording.
double accuracy(xg::nn::Module& model, const data::Subset& images, const Preprocess& p);

struct SolverOptions {
  int64_t epochs = 10;
  int64_t batch_size = 200;
  int64_t iterations = 0;   // > 0: stop after this many steps (CS231n's num_iters), mid-epoch if need be
  std::string update_rule = "sgd";  // sgd, sgd_momentum, rmsprop, adam
  double lr = 1e-3;
  double lr_decay = 1.0;    // lr *= lr_decay after every epoch
  double l2 = 0.0;          // adds l2 * sum(W^2) over every weight matrix / filter bank (not biases)
  std::string loss = "softmax";  // softmax or svm (CS231n's multiclass hinge: sum over wrong classes)
  int64_t train_acc_samples = 1000;
  uint64_t seed = 0;
  bool verbose = true;
  std::string name{};       // printed before progress lines
};

struct SolverResult {
  std::vector<double> losses;                 // per iteration
  std::vector<double> train_acc, val_acc;     // per epoch
  double best_val_acc = 0;
  double seconds = 0;
};

// CS231n's Solver: minibatch training of `model` on `train`, validation after every epoch, and the
// best-validation weights restored at the end; xg::train::Trainer does the work.
SolverResult solve(xg::nn::Module& model, const data::Subset& train, const data::Subset& val, const Preprocess& p,
                   const SolverOptions& o);

// l2 * sum(W^2) over every weight matrix and filter bank (parameters of 2 or more dims).
Tensor l2_penalty(xg::nn::Module& model, double l2);
// The loss the Solver minimises, data term plus l2_penalty: what the gradient check also checks.
Tensor regularized_loss(xg::nn::Module& model, const Tensor& scores, const Tensor& labels, const std::string& loss,
                        double l2);

// dir/loss.svg (per-iteration training loss, a running mean over `smooth` iterations) and
// dir/accuracy.svg (train and validation accuracy per epoch) for one or more labelled runs.
using Runs = std::vector<std::pair<std::string, SolverResult>>;
void plot_runs(const std::string& dir, const std::string& title, const Runs& runs, int64_t smooth = 1);
// The model's first-layer weights as an image grid (CS231n's visualize_grid), when it has any.
void first_layer_picture(xg::nn::Module& model, const std::string& path);

// Wall-clock seconds since construction.
struct Timer {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};

// CPU seconds of the whole process (every thread) since construction: on a shared machine, where
// wall time depends on the neighbours, this is what compares two methods fairly.
struct CpuTimer {
  static double now() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  double start = now();
  double seconds() const { return now() - start; }
};

// The output directory for subcommand `name` (created); `c.out` when given.
std::string out_dir(const Common& c, const std::string& name);
// Writes dir/summary.json and prints it as the last line (the README table is read from these).
void write_summary(const std::string& dir, const nlohmann::json& j);

// The subcommands.
struct KnnOptions { int64_t num_train = 5000, num_test = 500, folds = 5; };
int run_knn(const Common& c, const KnnOptions& o);
struct LinearOptions {
  int64_t num_train = 49000, num_val = 1000, num_test = 1000, iterations = 1500;
  bool sweep = true;       // the course's 2x2 grid; without, its first setting only
  bool wide_grid = false;  // a 4x4 grid of larger learning rates and smaller regularisation
};
int run_linear(const Common& c, const LinearOptions& o);
struct NetOptions {
  int64_t num_train = 49000, num_val = 1000, num_test = 0;  // num_test 0: all 10,000
  int64_t epochs = 0;  // 0: the subcommand's own default
  double lr = 0;       // 0: the subcommand's own default
  bool sweep = true;   // the hyperparameter search (two-layer) or the full list of scales (bn-scale)
};
int run_two_layer(const Common& c, const NetOptions& o);
int run_fc(const Common& c, const NetOptions& o);
int run_overfit(const Common& c, const NetOptions& o);
int run_update_rules(const Common& c, const NetOptions& o);
int run_convnet(const Common& c, const NetOptions& o);
int run_bn_scale(const Common& c, const NetOptions& o);
struct FeaturesOptions {
  int64_t num_train = 49000, num_val = 1000, num_test = 1000;
  int64_t iterations = 1500;  // SGD steps per setting, for the SVM and the net
  int64_t nbin = 10;          // hue histogram bins
  bool course_hog = false;    // HOG as the course's code computes it (gradients with gx > 0 only)
  bool sweep = true;          // the grids; without, one setting each
};
int run_features(const Common& c, const FeaturesOptions& o);
struct GradcheckDemoOptions { int64_t checks = 10; };
int run_gradcheck(const Common& c, const GradcheckDemoOptions& o);

}  // namespace cs231n

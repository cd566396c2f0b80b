// The Trainer: CS231n's Solver grown up. Epochs of minibatch training with an optimizer and a
// schedule, loss history, train/val accuracy per epoch, best weights kept, a checkpoint every epoch
// with exact resume, a clean stop on a non-finite loss, progress output, and a run directory of
// results (metrics.csv, plots, best.safetensors, summary.json).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/data.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"

namespace xg::train {

struct TrainerOptions {
  std::string model = "vgg";        // recorded in the checkpoint; resume refuses another model
  int64_t epochs = 13;              // the default recipe: about 14 minutes on 2 cores
  int64_t batch_size = 128;
  std::string optimizer = "sgd";    // sgd, adam, adamw, rmsprop, adagrad
  double lr = 0.05;
  double momentum = 0.9;            // sgd, rmsprop
  double weight_decay = 5e-4;
  std::string schedule = "onecycle";  // none, step, cosine, onecycle, decay (CS231n: lr *= lr_decay per epoch)
  double lr_decay = 0.95;
  int64_t step_size = 5;            // step schedule: epochs between decays (gamma = lr_decay)
  bool augment = true;              // random crop (4-pixel padding) and horizontal flip
  double label_smoothing = 0.1;     // cross_entropy's (PyTorch's label_smoothing)
  bool flip_tta = true;             // val/test accuracy from the logits of each image plus its mirror image
  int64_t train_acc_samples = 1000; // train accuracy is measured on this fixed subset
  int64_t max_steps_per_epoch = 0;  // 0: whole epochs (a positive value makes short smoke runs)
  uint64_t seed = 0;
  std::string run_dir = "runs/cifar10";
  bool resume = false;              // continue from run_dir/checkpoint.safetensors
  int progress = -1;                // -1: a progress bar on a terminal, periodic lines otherwise
};

struct EpochMetrics {
  int64_t epoch = 0;
  double train_loss = 0, train_acc = 0, val_acc = 0, lr = 0, seconds = 0, images_per_second = 0;
};

struct TrainResult {
  double best_val_acc = 0;
  int64_t best_epoch = 0;
  double test_acc = -1;  // -1 without a test set
  double train_seconds = 0, images_per_second = 0;
  std::vector<double> losses;  // per iteration
  std::vector<EpochMetrics> epochs;
};

// Fraction of correctly classified images, in eval mode without recording. With flip_tta, each
// image is classified by the sum of its logits and those of its horizontal mirror image.
double accuracy(nn::Module& model, const data::Subset& images, const data::Normalization& norm,
                int64_t batch_size = 500, bool flip_tta = false);

class Trainer {
 public:
  // train, val and test are views of CIFAR-10; normalisation statistics come from `train`.
  Trainer(std::shared_ptr<nn::Module> model, data::Subset train, data::Subset val, data::Subset test,
          TrainerOptions options);
  TrainResult fit();

 private:
  void make_optimizer();
  void save_checkpoint(int64_t epoch, const std::string& path) const;
  int64_t load_checkpoint(const std::string& path);  // returns the next epoch to run
  void write_outputs(const TrainResult& r) const;

  std::shared_ptr<nn::Module> model_;
  data::Subset train_, val_, test_, train_eval_;
  TrainerOptions opts_;
  data::Normalization norm_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  std::unique_ptr<optim::LRScheduler> scheduler_;
  bool per_step_schedule_ = false;
  int64_t steps_per_epoch_ = 0;
  TrainResult result_;
  nn::NamedTensors best_state_;
};

}  // namespace xg::train

// The Trainer: CS231n's Solver grown up, for any module, any dataset and any loss. Epochs of
// minibatch training with an optimizer and a schedule, loss history, train/val accuracy per epoch,
// best weights kept, a checkpoint every epoch with exact resume, a clean stop on a non-finite loss,
// progress output, and a run directory of results (metrics.csv, plots, best.safetensors, summary.json).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/data.hpp"
#include "distributed/ddp.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"
#include "train/tta.hpp"

namespace xg::train {

struct TrainerOptions {
  std::string model = "vgg";        // recorded in the checkpoint; resume refuses another model
  int64_t epochs = 13;              // the default recipe: about 14 minutes on 2 cores
  int64_t batch_size = 128;          // the global batch: split over the ranks of a data-parallel job
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
  int64_t max_iterations = 0;       // > 0: stop after this many steps in all (mid-epoch), then evaluate
  bool nesterov = true;             // sgd with momentum: Nesterov's
  std::string run_dir = "runs/cifar10";  // "": no files at all (no checkpoint, no outputs)
  bool resume = false;              // continue from run_dir/checkpoint.safetensors
  int progress = -1;                // -1: a progress bar on a terminal, step lines otherwise; 0: step
                                    // lines; 1: the bar; 2: one line per epoch; 3: nothing
  bool nonfinite_is_error = true;   // false: a NaN/inf loss ends the run quietly (TrainResult::diverged)

  // The objective: loss(output, target) on each batch, plus regularizer(model) when given. Default:
  // cross_entropy with label_smoothing. Accuracy (argmax over dim 1 against the target) is what the
  // evaluation reports.
  std::function<Tensor(const Tensor& output, const Tensor& target)> loss{};
  std::function<Tensor(nn::Module& model)> regularizer{};
  // How examples reach the model. With image_recipe and no transforms given, a training set of
  // in-memory images gets the default recipe: normalisation with its own per-channel statistics,
  // and with augment a random crop (4-pixel zero padding) and a horizontal flip.
  data::transforms::AnyTransform train_transform{}, eval_transform{};
  bool image_recipe = true;
  std::function<void(data::Batch&)> batch_transform{};  // on every batch, training and evaluation
  // The image recipe's augmentation (with augment): a shift of up to augment_shift pixels each way,
  // as RandomCrop with zero padding or, with reflect_shift, RandomTranslate (reflect-padded); then a
  // RandomHorizontalFlip or, with alternating_flip, an AlternatingFlip.
  int64_t augment_shift = 4;
  bool reflect_shift = false;
  bool alternating_flip = false;
  std::string loss_reduction = "mean";  // the default loss over the batch: "mean" or "sum"
  // More test-time views for val and test (4-D images): translations (dy, dx), reflect-padded, each
  // weighted tta_shift_weight (train::TTAOptions); mirrored too with flip_tta.
  std::vector<std::pair<int64_t, int64_t>> tta_shifts{};
  double tta_shift_weight = 0.25;
  bool keep_best = true;  // false: the run ends on its last weights, not on the best validation epoch's

  // Recipes beyond the named optimizers and schedules. total_steps is the run's length in steps:
  // epochs x steps per epoch, or max_iterations when positive and smaller.
  // Builds the optimizer (parameter groups, say) instead of `optimizer`, which is then only recorded.
  std::function<std::unique_ptr<optim::Optimizer>(nn::Module& model)> make_optimizer{};
  // With schedule "lambda", stepped per batch: every group's lr is its base lr x lr_lambda(step, total_steps).
  std::function<double(int64_t step, int64_t total_steps)> lr_lambda{};
  // With schedule "lambda": one multiplier per parameter group instead (PyTorch's list form); when
  // not empty it replaces lr_lambda and must have as many entries as the optimizer has groups.
  std::vector<std::function<double(int64_t step, int64_t total_steps)>> lr_lambdas{};
  // lookahead_k > 0: optim::Lookahead over the parameters and the model's floating buffers (batch-norm
  // statistics), its alpha for step s (from 1) lookahead_alpha(s, total_steps); after the last step
  // the model takes the slow weights (Lookahead::finalize).
  int64_t lookahead_k = 0;
  std::function<double(int64_t step, int64_t total_steps)> lookahead_alpha{};
  // Called before each epoch's training with the epoch (from 0) and the model, on resume too (e.g.
  // freezing a parameter after some epochs).
  std::function<void(int64_t epoch, nn::Module& model)> on_epoch_start{};
};

// Optimizer steps per epoch for `examples` training examples under `options` (full batches only,
// capped by max_steps_per_epoch): what the Trainer runs.
int64_t steps_per_epoch(int64_t examples, const TrainerOptions& options);

struct EpochMetrics {
  int64_t epoch = 0;
  double train_loss = 0, train_acc = 0, val_acc = 0, lr = 0, seconds = 0, images_per_second = 0;
};

struct TrainResult {
  double best_val_acc = 0;
  int64_t best_epoch = 0;
  double test_acc = -1;  // -1 without a test set
  double train_seconds = 0, images_per_second = 0;
  bool diverged = false;  // a non-finite loss ended the run (with nonfinite_is_error false)
  std::vector<double> losses;  // per iteration
  std::vector<EpochMetrics> epochs;
};

// Fraction of correctly classified examples (argmax of the output over dim 1), in eval mode without
// recording, each example through `transform` and every batch through `batch_transform`. With
// flip_tta, each image (of a 4-D batch) is classified by the sum of its logits and those of its mirror image.
double accuracy(nn::Module& model, std::shared_ptr<const data::Dataset> examples,
                const data::transforms::AnyTransform& transform, int64_t batch_size = 500, bool flip_tta = false,
                const std::function<void(data::Batch&)>& batch_transform = {});
// The same with any test-time views (tta_logits) for 4-D batches.
double accuracy(nn::Module& model, std::shared_ptr<const data::Dataset> examples,
                const data::transforms::AnyTransform& transform, int64_t batch_size, const TTAOptions& tta,
                const std::function<void(data::Batch&)>& batch_transform = {});
// The same for images normalised with `norm`.
double accuracy(nn::Module& model, const data::Subset& images, const data::Normalization& norm,
                int64_t batch_size = 500, bool flip_tta = false);

// Data-parallel training: in a job started by mpirun (after distributed::init_process_group), every
// rank runs the same Trainer. The model is wrapped in nn::DistributedDataParallel, each rank trains
// on its share of every global batch (augmented as in one process: data::DataLoaderOptions::shard),
// the reported loss is the global batch's, and evaluation is split over the ranks. Only rank 0
// prints and writes files; to resume, every rank reads the checkpoint in its own run_dir (a shared
// file system, or a copy on every node). A checkpoint written at one world size resumes at any other.
class Trainer {
 public:
  // val and test may be null or empty (no validation: every epoch counts as best; no test accuracy).
  Trainer(std::shared_ptr<nn::Module> model, std::shared_ptr<const data::Dataset> train,
          std::shared_ptr<const data::Dataset> val, std::shared_ptr<const data::Dataset> test, TrainerOptions options);
  Trainer(std::shared_ptr<nn::Module> model, data::Subset train, data::Subset val, data::Subset test,
          TrainerOptions options);
  TrainResult fit();

 private:
  void make_optimizer();
  void save_checkpoint(int64_t epoch, const std::string& path) const;
  int64_t load_checkpoint(const std::string& path);  // returns the next epoch to run
  void write_outputs(const TrainResult& r) const;

  void apply_image_recipe();
  double evaluate(const std::shared_ptr<const data::Dataset>& d, bool tta) const;
  Tensor objective(const data::Batch& batch) const;

  std::shared_ptr<nn::Module> model_;
  std::shared_ptr<const data::Dataset> train_, val_, test_, train_eval_;
  TrainerOptions opts_;
  std::shared_ptr<nn::DistributedDataParallel> ddp_;  // the model's wrapper when the job has several ranks
  int world_ = 1, rank_ = 0;
  std::unique_ptr<optim::Optimizer> optimizer_;
  std::unique_ptr<optim::LRScheduler> scheduler_;
  std::unique_ptr<optim::Lookahead> lookahead_;
  bool per_step_schedule_ = false;
  int64_t steps_per_epoch_ = 0, total_steps_ = 0;
  TrainResult result_;
  nn::NamedTensors best_state_;
  data::Normalization norm_;  // the image recipe's (for model.onnx and the checkpoint metadata); else empty
};

}  // namespace xg::train

// airbench94's training recipe for models::Airbench (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a
// single GPU", arXiv 2404.00498) as Trainer options: per-group Nesterov SGD, a warmup-warmdown lr,
// decaying Lookahead averaging, reflect translation and alternating flip, and its test-time views.
#pragma once

#include <cstdint>
#include <memory>

#include "data/dataset.hpp"
#include "optim/optimizers.hpp"
#include "train/models.hpp"
#include "train/trainer.hpp"

namespace xg::train {

struct AirbenchRecipe {
  int64_t batch_size = 1024;
  double epochs = 9.9;            // the run is ceil(epochs x steps per epoch) steps (the last epoch cut short)
  double lr = 11.5;               // per 1024 examples, before the momentum scaling (airbench_optimizer)
  double momentum = 0.85;         // Nesterov
  double weight_decay = 0.0153;   // per 1024 examples
  double bias_scaler = 64;        // the batch-norm shifts' lr factor (their absolute decay unchanged)
  double label_smoothing = 0.2;   // of the cross-entropy summed over the batch
  int64_t whiten_bias_epochs = 3; // the whitening conv's bias learns in these first epochs only
  int64_t translate = 2;          // pixels each way, reflect-padded
  // lr multiplier: lr_start -> 1 linearly over the first floor(warmup x steps), then down to lr_end.
  double warmup = 0.23, lr_start = 0.2, lr_end = 0.07;
  // Every lookahead_k steps the average moves 1 - d of the way to the weights and the weights return
  // to it, d = lookahead_decay x (step / steps)^3; the run ends on the average.
  int64_t lookahead_k = 5;
  double lookahead_decay = 0.7737809375;  // 0.95^5
  int64_t whitening_images = 5000;        // the first this many training images set the whitening
};

// SGD with two parameter groups (the rest, then every batch norm's bias): with s = 1024 (1 + 1 / (1 -
// momentum)) the rest get lr = recipe lr / s, the shifts bias_scaler times that; both the same absolute
// weight decay wd = weight_decay x batch_size / s, written as PyTorch's coupled weight_decay = wd / lr
// of each group. Parameters that do not require grad (the whitening weight, the batch-norm scales) are
// left out.
std::unique_ptr<optim::SGD> airbench_optimizer(nn::Module& model, const AirbenchRecipe& recipe);

// `base` (run_dir, seed, progress, ...) with the recipe's batch size, length, optimizer, schedule, loss,
// augmentation, lookahead, whitening-bias freeze and test-time views, for `train_examples` training
// examples. The model given to the Trainer must be a models::Airbench.
TrainerOptions airbench_options(TrainerOptions base, const AirbenchRecipe& recipe, int64_t train_examples);

// airbench94_muon's recipe (Keller Jordan's later record, 94.01% in 8 epochs on an A100): the 3x3 conv
// filters learn by Muon (Nesterov, weights renormalised before each step, no decay), the whitening
// bias, the batch-norm shifts and the head by Nesterov SGD with the same absolute weight decay; every
// lr falls linearly to 0 over the run (the whitening bias's over its epochs); no lookahead. The data,
// loss and test-time views are airbench94's. Its model: models::AirbenchOptions{.scale = 1 / widths[2],
// .head_std = 1} (airbench_muon_model_options).
struct AirbenchMuonRecipe {
  int64_t batch_size = 2000;
  double epochs = 8;
  double filter_lr = 0.24, filter_momentum = 0.6;  // Muon
  int64_t ns_steps = 3;                             // Newton-Schulz iterations per update (torch.optim.Muon: 5)
  double bias_lr = 0.053, head_lr = 0.67, momentum = 0.85;  // SGD
  double weight_decay = 2e-6;     // per example: the absolute decay per step is this x batch_size
  double label_smoothing = 0.2;
  int64_t whiten_bias_epochs = 3;
  int64_t translate = 2;
  int64_t whitening_images = 5000;
};

// Muon with four groups, in this order: the conv filters (Muon), the whitening bias (SGD, bias_lr),
// the batch-norm shifts (SGD, bias_lr), and the head with any other trainable parameter (SGD,
// head_lr). Each SGD group's coupled weight_decay is wd / its lr, wd = weight_decay x batch_size.
// Parameters that do not require grad (but the whitening bias) are left out.
std::unique_ptr<optim::Muon> airbench_muon_optimizer(models::Airbench& model, const AirbenchMuonRecipe& recipe);

// airbench_options's counterpart for AirbenchMuonRecipe.
TrainerOptions airbench_muon_options(TrainerOptions base, const AirbenchMuonRecipe& recipe, int64_t train_examples);

// The model options airbench94_muon uses: the logits divided by the last width, the head's weights
// starting at standard deviation 1.
models::AirbenchOptions airbench_muon_model_options(std::vector<int64_t> widths = {64, 256, 256});

// model.set_whitening on the first `images` training images normalised with the training set's
// per-channel statistics (those the Trainer's image recipe computes). Call it before constructing the
// Trainer: its Lookahead starts the average from the model's values at that point.
void airbench_whitening(models::Airbench& model, const data::ImageDataset& train, int64_t images = 5000);

}  // namespace xg::train

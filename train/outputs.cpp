// What a run leaves in its directory: metrics.csv, loss and accuracy plots, the first-layer filters,
// the best weights, model.onnx and summary.json.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/parallel.hpp"
#include "train/models.hpp"
#include "train/plot.hpp"
#include "train/deploy.hpp"
#include "train/files.hpp"
#include "train/trainer.hpp"

namespace xg::train {

void Trainer::write_outputs(const TrainResult& r) const {
  const std::filesystem::path dir(opts_.run_dir);
  {
    std::ofstream csv(dir / "metrics.csv");
    csv << "epoch,train_loss,train_acc,val_acc,lr,seconds,images_per_second\n";
    for (const EpochMetrics& m : r.epochs)
      csv << fmt::format("{},{:.6f},{:.4f},{:.4f},{:.6g},{:.2f},{:.1f}\n", m.epoch, m.train_loss, m.train_acc,
                         m.val_acc, m.lr, m.seconds, m.images_per_second);
    check(static_cast<bool>(csv), "Trainer: cannot write {}", (dir / "metrics.csv").string());
  }
  plot::Series loss{"loss", {}, r.losses};
  for (size_t i = 0; i < r.losses.size(); ++i) loss.x.push_back(static_cast<double>(i + 1));
  plot::line_chart((dir / "loss.svg").string(), "training loss", "iteration", "cross-entropy", {loss});
  plot::Series train_acc{"train", {}, {}}, val_acc{"val", {}, {}};
  for (const EpochMetrics& m : r.epochs) {
    train_acc.x.push_back(m.epoch), train_acc.y.push_back(m.train_acc);
    val_acc.x.push_back(m.epoch), val_acc.y.push_back(m.val_acc);
  }
  plot::line_chart((dir / "accuracy.svg").string(), "classification accuracy", "epoch", "accuracy",
                   {train_acc, val_acc});
  if (Tensor filters = models::first_layer_images(*model_); filters.defined())
    plot::image_grid((dir / "filters.png").string(), filters, filters.shape()[2] >= 16 ? 2 : 6);

  // the weights saved: the best validation epoch's, or with keep_best off the last epoch's
  const int64_t saved_epoch = opts_.keep_best || r.epochs.empty() ? r.best_epoch : r.epochs.back().epoch;
  nn::Metadata meta{{"model", opts_.model}, {"epoch", std::to_string(saved_epoch)},
                    {"val_acc", fmt::format("{:.4f}", r.best_val_acc)}};
  // RGB images under the image recipe: the normalisation is recorded, and model.onnx takes raw
  // pixels in [0, 1] and normalises them itself (other datasets and transforms get neither).
  const data::ImageDataset* images = train_->as_images();
  const bool deployable = norm_.mean.size() == 3 && images && images->image_shape() == Shape{3, 32, 32};
  if (deployable) meta.insert({{"norm_mean", channel_list(norm_.mean)}, {"norm_std", channel_list(norm_.std)}});
  model_->save((dir / "best.safetensors").string(), meta);
  if (deployable) export_onnx(model_, norm_, (dir / "model.onnx").string());  // raw pixels in [0, 1] in, logits out
  nlohmann::json j;
  j["model"] = opts_.model;
  j["test_accuracy"] = r.test_acc;
  j["best_val_accuracy"] = r.best_val_acc;
  j["best_epoch"] = r.best_epoch;
  j["train_seconds"] = r.train_seconds;
  j["images_per_second"] = r.images_per_second;
  j["iterations"] = r.losses.size();
  j["threads"] = get_num_threads();  // per rank
  j["world_size"] = world_;
  j["config"] = {{"epochs", opts_.epochs},         {"batch_size", opts_.batch_size}, {"optimizer", opts_.optimizer},
                 {"lr", opts_.lr},                 {"momentum", opts_.momentum},     {"weight_decay", opts_.weight_decay},
                 {"schedule", opts_.schedule},     {"lr_decay", opts_.lr_decay},     {"augment", opts_.augment},
                 {"label_smoothing", opts_.label_smoothing}, {"flip_tta", opts_.flip_tta},
                 {"seed", opts_.seed},             {"max_steps_per_epoch", opts_.max_steps_per_epoch},
                 {"train_images", train_->size()}, {"val_images", val_ ? val_->size() : 0},
                 {"test_images", test_ ? test_->size() : 0},
                 {"max_iterations", opts_.max_iterations}, {"loss_reduction", opts_.loss_reduction},
                 {"tta_shifts", opts_.tta_shifts.size()}, {"lookahead_k", opts_.lookahead_k},
                 {"keep_best", opts_.keep_best}};
  write_text_file((dir / "summary.json").string(), j.dump(2) + "\n", "Trainer");
}

}  // namespace xg::train

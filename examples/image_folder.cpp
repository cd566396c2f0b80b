// Trains a small classifier on a folder of images, one subfolder per class, with the generic pieces:
// data::ImageFolder, data::transforms, data::DataLoader (inside the Trainer) and train::Trainer.
//   build/examples/image_folder --root DIR [--size 32] [--epochs 5] [--skip-bad] ...
#include <CLI/CLI.hpp>

#include <numeric>
#include <random>
#include <xgrad.hpp>

#include "train/trainer.hpp"

using namespace xg;
namespace T = xg::data::transforms;

namespace {

// Two conv-batchnorm-ReLU-pool stages, global average pool, linear: any input size, any class count.
struct SmallNet : nn::Module {
  std::shared_ptr<nn::Sequential> features = register_module("features", nn::Sequential());
  std::shared_ptr<nn::Linear> fc;
  explicit SmallNet(int64_t classes, int64_t width = 32) {
    int64_t in = 3;
    for (int64_t out : {width, 2 * width}) {
      features->push_back(nn::Conv2d({.in_channels = in, .out_channels = out, .kernel_size = 3, .padding = 1,
                                      .bias = false}));
      features->push_back(nn::BatchNorm2d(out));
      features->push_back(nn::ReLU());
      features->push_back(nn::MaxPool2d(2));
      in = out;
    }
    features->push_back(nn::AdaptiveAvgPool2d(1));
    fc = register_module("fc", nn::Linear(in, classes));
  }
  Tensor forward(const Tensor& x) override { return fc->forward(flatten(features->forward(x), 1)); }
};

}  // namespace

int main(int argc, char** argv) {
  configure_process();
  std::string root, run_dir = "runs/image_folder";
  int64_t size = 32, epochs = 5, batch_size = 32, threads = 0;
  double lr = 0.05, val_fraction = 0.2;
  uint64_t seed = 0;
  bool skip_bad = false;
  CLI::App app{"Train a small CNN on an image folder (root/<class>/<image>.png|jpg|bmp) with xgrad"};
  app.add_option("--root", root, "the folder of class subfolders")->required();
  app.add_option("--size", size, "images are resized to 9/8 of this and cropped to it")->capture_default_str();
  app.add_option("--epochs", epochs)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch_size)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "peak learning rate (SGD, one-cycle)")->capture_default_str();
  app.add_option("--val-fraction", val_fraction, "share of the images held out for validation")
      ->capture_default_str()->check(CLI::Range(0.0, 0.9));
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--threads", threads, "worker threads (0: all cores)")->capture_default_str();
  app.add_option("--run-dir", run_dir, "where metrics, plots and checkpoints go")->capture_default_str();
  app.add_flag("--skip-bad", skip_bad, "leave out files that cannot be decoded (counted) instead of failing");
  CLI11_PARSE(app, argc, argv);
  try {
    check(size >= 8, "image_folder: --size must be at least 8, got {}", size);
    if (threads > 0) set_num_threads(static_cast<int>(threads));
    auto folder = std::make_shared<const data::ImageFolder>(root, data::ImageFolderOptions{.skip_bad = skip_bad});
    fmt::print("{}: {} images in {} classes ({}), {} skipped\n", root, folder->size(), folder->classes().size(),
               fmt::join(folder->classes(), ", "), folder->skipped());
    for (const std::string& f : folder->skipped_files()) fmt::print("  skipped {}\n", f);
    // A seeded random split: the last val_fraction of a permutation validates.
    std::vector<int64_t> perm(static_cast<size_t>(folder->size()));
    std::iota(perm.begin(), perm.end(), int64_t{0});
    std::shuffle(perm.begin(), perm.end(), std::mt19937_64(seed));
    const auto n_val = static_cast<int64_t>(val_fraction * static_cast<double>(folder->size()));
    const auto cut = perm.end() - n_val;
    auto train_set = std::make_shared<const data::Subset>(folder, std::vector<int64_t>(perm.begin(), cut));
    auto val_set = std::make_shared<const data::Subset>(folder, std::vector<int64_t>(cut, perm.end()));

    const int64_t big = size + size / 8;
    const T::Normalize norm({0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f});
    train::TrainerOptions o{.model = "image_folder_smallnet", .epochs = epochs,
                            .batch_size = std::min(batch_size, train_set->size()), .lr = lr, .augment = true,
                            .label_smoothing = 0.0, .flip_tta = false, .seed = seed, .run_dir = run_dir};
    o.train_transform = T::Compose({T::Resize(big, big), T::RandomCrop(size), T::RandomHorizontalFlip(), norm});
    o.eval_transform = T::Compose({T::Resize(big, big), T::CenterCrop(size), norm});
    manual_seed(seed);
    auto model = std::make_shared<SmallNet>(static_cast<int64_t>(folder->classes().size()));
    train::Trainer trainer(model, train_set, val_set, nullptr, o);
    const train::TrainResult r = trainer.fit();
    fmt::print("best val accuracy {:.2f}% (epoch {}) on {} images, {:.0f} img/s; results in {}\n",
               100 * r.best_val_acc, r.best_epoch, val_set->size(), r.images_per_second, run_dir);
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}

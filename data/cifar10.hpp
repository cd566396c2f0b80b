// xg::data::CIFAR10: the official binary CIFAR-10 files read into compact uint8 memory, and where to find them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace xg::data {

// CIFAR-10 geometry, defined once: C channels (R, G, B planes) of H x W pixels, K classes.
inline constexpr int64_t kC = 3, kH = 32, kW = 32, kClasses = 10;
inline constexpr int64_t kImageBytes = kC * kH * kW;      // 3072
inline constexpr int64_t kRecordBytes = 1 + kImageBytes;  // label byte + pixels: 3073
inline constexpr const char* kCifar10Url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";

// The file names of one split, in reading order.
std::vector<std::string> cifar10_files(bool train);

// Appends the records in `bytes` (one file's contents, named `name` in errors) to `images` and
// `labels`; throws xg::Error, leaving both untouched, unless every record is whole with a label 0..9.
void decode_records(std::span<const uint8_t> bytes, const std::string& name, std::vector<uint8_t>& images,
                    std::vector<int64_t>& labels);

// The images of one split, 3072 bytes each (R plane, G plane, B plane; row-major 32x32), and the
// labels 0..9. Pixel values reach tensors as f32 in [0, 1] (PyTorch's ToTensor convention), before
// any normalisation. One ImageDataset among others: get(i) gives f32 [3, 32, 32] and a 0-d label.
class CIFAR10 : public ImageDataset {
 public:
  // Reads data_batch_1..5.bin (train) or test_batch.bin from `root`. Throws xg::Error naming the
  // file on a missing, empty, truncated or corrupt file; nothing is kept from a failed load.
  CIFAR10(const std::string& root, bool train);

  // In-memory images (size() * 3072 bytes) and labels, validated like a file: for synthetic data.
  static CIFAR10 from_memory(std::vector<uint8_t> images, std::vector<int64_t> labels);
  // The contents of one batch file (records of label byte + pixels), checked as a file is; `name`
  // appears in errors. The entry point for fuzzing the decoder.
  static CIFAR10 from_bytes(std::span<const uint8_t> file_bytes, const std::string& name = "<memory>");

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Shape image_shape() const override { return {kC, kH, kW}; }
  const uint8_t* image(int64_t i) const override { return images_.data() + i * kImageBytes; }
  int64_t label(int64_t i) const override { return labels_[static_cast<size_t>(i)]; }
  const std::vector<uint8_t>& images() const { return images_; }
  const std::vector<int64_t>& labels() const { return labels_; }

  // The records at `indices`, f32 [B, 3, 32, 32] in [0, 1] and i64 [B].
  Batch get_batch(std::span<const int64_t> indices) const;

 private:
  CIFAR10() = default;
  std::vector<uint8_t> images_;
  std::vector<int64_t> labels_;
};

struct FindOptions {
  bool download = true;       // fetch the archive with curl + tar when nothing is found
  std::string base = "data";  // the default location is base/cifar-10-batches-bin
};

// The directory holding the six .bin files, from, in order: `flag_value` (a --data flag; "" when
// absent), the CIFAR10_DIR environment variable, base/cifar-10-batches-bin, and finally a download
// into `base`. An explicitly given directory (flag or environment) that lacks the files is an
// error rather than skipped. Either directory may also be the parent of cifar-10-batches-bin.
// Throws xg::Error with exact instructions when every source fails.
std::string find_cifar10_dir(const std::string& flag_value, const FindOptions& opts = {});

}  // namespace xg::data

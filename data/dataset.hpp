// xg::data::Dataset, the interface every dataset implements (size and get(i)), and ImageDataset, the
// datasets of same-sized uint8 images held in memory whose bytes the DataLoader batches directly.
#pragma once

#include <cstdint>
#include <memory>

#include "autograd/tensor.hpp"

namespace xg::data {

// One example: the input (an image f32 [C, H, W], or any tensor) and its target (a 0-d i64 label, or
// any tensor). libtorch's torch::data::Example.
struct Example {
  Tensor data;
  Tensor target;
};

// One batch as the model sees it: the examples' data stacked on a new first dimension (images f32
// [B, C, H, W]) and their targets likewise (labels i64 [B]).
struct Batch {
  Tensor images;
  Tensor labels;
};

class ImageDataset;

// A dataset: size() examples, get(i) for i in [0, size()). get is const and may run on several
// loader threads at once, so it must not change shared state unguarded.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t i) const = 0;
  // This dataset as same-sized uint8 images in memory, or null: what lets the DataLoader skip get()
  // and its per-example tensors.
  virtual const ImageDataset* as_images() const { return nullptr; }
};

// Same-sized uint8 images (C planes of H x W, row-major) with integer labels, held in memory.
// get(i) gives f32 [C, H, W] = byte / 255 (PyTorch's ToTensor convention) and a 0-d i64 label.
class ImageDataset : public Dataset {
 public:
  virtual Shape image_shape() const = 0;               // [C, H, W]
  virtual const uint8_t* image(int64_t i) const = 0;   // C*H*W bytes
  virtual int64_t label(int64_t i) const = 0;
  Example get(int64_t i) const override;
  const ImageDataset* as_images() const override { return this; }
};

// Throws xg::Error naming `op` unless 0 <= i < size.
void check_index(const char* op, int64_t i, int64_t size);

}  // namespace xg::data

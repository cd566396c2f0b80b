// xg::data::Subset: a view of some examples of a shared dataset by index (train/val splits, "first 5000").
#pragma once

#include <memory>
#include <vector>

#include "data/cifar10.hpp"

namespace xg::data {

// Indices into a dataset that the view keeps alive; copying a Subset copies indices, never pixels.
// A Subset is itself a dataset; over an ImageDataset (CIFAR10, another Subset of one) it is an
// ImageDataset too, so the DataLoader's batched path reads its bytes directly.
class Subset : public ImageDataset {
 public:
  Subset() = default;                                                         // empty, no dataset
  explicit Subset(std::shared_ptr<const Dataset> data);                       // every example, in order
  Subset(std::shared_ptr<const Dataset> data, std::vector<int64_t> indices);  // indices checked

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t i) const override;
  const ImageDataset* as_images() const override { return images_ != nullptr ? this : nullptr; }
  bool empty() const { return indices_.empty(); }
  int64_t index(int64_t i) const { return indices_[static_cast<size_t>(i)]; }  // into dataset()
  const std::vector<int64_t>& indices() const { return indices_; }

  // Only over an ImageDataset (as_images() non-null); throw otherwise.
  Shape image_shape() const override;
  const uint8_t* image(int64_t i) const override { return images_ ? images_->image(index(i)) : no_images(); }
  int64_t label(int64_t i) const override { return images_ ? images_->label(index(i)) : (no_images(), 0); }

  const Dataset& dataset() const;
  const std::shared_ptr<const Dataset>& dataset_ptr() const { return data_; }

  // Positions [begin, end) of this view, as a view of the same dataset.
  Subset slice(int64_t begin, int64_t end) const;
  Subset first(int64_t n) const { return slice(0, n); }

  // Positions [begin, begin + count), unshuffled and untransformed, stacked: for images f32
  // [count, C, H, W] in [0, 1] and i64 [count].
  Batch get_batch(int64_t begin, int64_t count) const;

 private:
  [[noreturn]] const uint8_t* no_images() const;
  std::shared_ptr<const Dataset> data_;
  const ImageDataset* images_ = nullptr;  // data_->as_images(), cached
  std::vector<int64_t> indices_;
};

struct Split {
  Subset train;
  Subset val;
};

// The last `num_val` examples become the validation set, the rest the training set (CS231n's
// 49,000 / 1,000 for the default on CIFAR-10's 50,000).
Split train_val_split(std::shared_ptr<const Dataset> train, int64_t num_val = 1000);

// The examples at `indices` of `data` stacked into one batch (data on a new first dim, targets
// likewise); every example must have the shape and dtype of the first. `op` names the caller in errors.
Batch collate(const Dataset& data, std::span<const int64_t> indices, const char* op = "collate");
// The same for examples already fetched; indices[i] (dataset index of examples[i]) appears in errors.
Batch stack_examples(const std::vector<Example>& examples, std::span<const int64_t> indices, const char* op);

}  // namespace xg::data

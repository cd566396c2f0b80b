// xg::data::Subset: a view of some images of a shared CIFAR10 by index (train/val splits, "first 5000").
#pragma once

#include <memory>
#include <vector>

#include "data/cifar10.hpp"

namespace xg::data {

// Indices into a dataset that the view keeps alive; copying a Subset copies indices, never pixels.
class Subset {
 public:
  Subset() = default;                                                         // empty, no dataset
  explicit Subset(std::shared_ptr<const CIFAR10> data);                       // every image, in order
  Subset(std::shared_ptr<const CIFAR10> data, std::vector<int64_t> indices);  // indices checked

  int64_t size() const { return static_cast<int64_t>(indices_.size()); }
  bool empty() const { return indices_.empty(); }
  int64_t index(int64_t i) const { return indices_[static_cast<size_t>(i)]; }  // into dataset()
  const std::vector<int64_t>& indices() const { return indices_; }
  const uint8_t* image(int64_t i) const { return data_->image(index(i)); }  // 3072 bytes
  int64_t label(int64_t i) const { return data_->label(index(i)); }
  const CIFAR10& dataset() const;
  const std::shared_ptr<const CIFAR10>& dataset_ptr() const { return data_; }

  // Positions [begin, end) of this view, as a view of the same dataset.
  Subset slice(int64_t begin, int64_t end) const;
  Subset first(int64_t n) const { return slice(0, n); }

  // Positions [begin, begin + count), unshuffled and unaugmented: f32 [count,3,32,32] in [0, 1], i64 [count].
  Batch get_batch(int64_t begin, int64_t count) const;

 private:
  std::shared_ptr<const CIFAR10> data_;
  std::vector<int64_t> indices_;
};

struct Split {
  Subset train;
  Subset val;
};

// The last `num_val` images become the validation set, the rest the training set (CS231n's
// 49,000 / 1,000 for the default on CIFAR-10's 50,000).
Split train_val_split(std::shared_ptr<const CIFAR10> train, int64_t num_val = 1000);

}  // namespace xg::data

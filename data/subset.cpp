// Subset views of a CIFAR10 and the train/validation split.
#include "data/subset.hpp"

#include <numeric>

namespace xg::data {

namespace {
std::vector<int64_t> iota_indices(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}
}  // namespace

Subset::Subset(std::shared_ptr<const CIFAR10> data) : data_(std::move(data)) {
  check(data_ != nullptr, "Subset: null dataset");
  indices_ = iota_indices(data_->size());
}

Subset::Subset(std::shared_ptr<const CIFAR10> data, std::vector<int64_t> indices)
    : data_(std::move(data)), indices_(std::move(indices)) {
  check(data_ != nullptr, "Subset: null dataset");
  for (size_t i = 0; i < indices_.size(); ++i)
    check(indices_[i] >= 0 && indices_[i] < data_->size(),
          "Subset: index {} at position {} is out of range for {} images", indices_[i], i, data_->size());
}

const CIFAR10& Subset::dataset() const {
  check(data_ != nullptr, "Subset: an empty default-constructed subset has no dataset");
  return *data_;
}

Subset Subset::slice(int64_t begin, int64_t end) const {
  check(0 <= begin && begin <= end && end <= size(), "Subset: slice [{}, {}) out of range for {} images", begin, end,
        size());
  Subset s;
  s.data_ = data_;
  s.indices_.assign(indices_.begin() + begin, indices_.begin() + end);
  return s;
}

Batch Subset::get_batch(int64_t begin, int64_t count) const {
  check(count >= 0 && 0 <= begin && begin + count <= size(), "Subset: get_batch [{}, {}) out of range for {} images",
        begin, begin + count, size());
  return dataset().get_batch(std::span<const int64_t>(indices_.data() + begin, static_cast<size_t>(count)));
}

Split train_val_split(std::shared_ptr<const CIFAR10> train, int64_t num_val) {
  check(train != nullptr, "train_val_split: null dataset");
  const int64_t n = train->size();
  check(0 <= num_val && num_val < n, "train_val_split: num_val must be in [0, {}) for {} images, got {}", n, n,
        num_val);
  Subset all(std::move(train));
  return {all.slice(0, n - num_val), all.slice(n - num_val, n)};
}

}  // namespace xg::data

// Subset views of a dataset, the train/validation split, and stacking examples into a batch.
#include "data/subset.hpp"

#include <cstring>
#include <numeric>

namespace xg::data {

namespace {
std::vector<int64_t> iota_indices(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}
}  // namespace

Subset::Subset(std::shared_ptr<const Dataset> data) : Subset(data, iota_indices(data ? data->size() : 0)) {}

Subset::Subset(std::shared_ptr<const Dataset> data, std::vector<int64_t> indices)
    : data_(std::move(data)), indices_(std::move(indices)) {
  check(data_ != nullptr, "Subset: null dataset");
  images_ = data_->as_images();
  for (size_t i = 0; i < indices_.size(); ++i)
    check(indices_[i] >= 0 && indices_[i] < data_->size(),
          "Subset: index {} at position {} is out of range for {} images", indices_[i], i, data_->size());
}

Example Subset::get(int64_t i) const {
  check_index("Subset::get", i, size());
  return data_->get(index(i));
}

Shape Subset::image_shape() const {
  if (images_ == nullptr) no_images();
  return images_->image_shape();
}

const uint8_t* Subset::no_images() const {
  fail("Subset: the dataset holds no in-memory images (as_images() is null); use get(i)");
}

const Dataset& Subset::dataset() const {
  check(data_ != nullptr, "Subset: an empty default-constructed subset has no dataset");
  return *data_;
}

Subset Subset::slice(int64_t begin, int64_t end) const {
  check(0 <= begin && begin <= end && end <= size(), "Subset: slice [{}, {}) out of range for {} images", begin, end,
        size());
  Subset s;
  s.data_ = data_;
  s.images_ = images_;
  s.indices_.assign(indices_.begin() + begin, indices_.begin() + end);
  return s;
}

Batch Subset::get_batch(int64_t begin, int64_t count) const {
  check(count >= 0 && 0 <= begin && begin + count <= size(), "Subset: get_batch [{}, {}) out of range for {} images",
        begin, begin + count, size());
  const std::span<const int64_t> idx(indices_.data() + begin, static_cast<size_t>(count));
  if (const auto* cifar = dynamic_cast<const CIFAR10*>(data_.get())) return cifar->get_batch(idx);
  return collate(dataset(), idx, "Subset::get_batch");
}

Split train_val_split(std::shared_ptr<const Dataset> train, int64_t num_val) {
  check(train != nullptr, "train_val_split: null dataset");
  const int64_t n = train->size();
  check(0 <= num_val && num_val < n, "train_val_split: num_val must be in [0, {}) for {} images, got {}", n, n,
        num_val);
  Subset all(std::move(train));
  return {all.slice(0, n - num_val), all.slice(n - num_val, n)};
}

namespace {
// Copies t's elements to dst (bytes), checking it matches the first example's shape and dtype.
void put(const Tensor& t, const Tensor& first, std::byte* dst, const char* op, const char* what, int64_t i,
         int64_t index) {
  check(t.defined(), "{}: example {} (index {}) has no {}", op, i, index, what);
  check(t.shape() == first.shape() && t.dtype() == first.dtype(),
        "{}: example {} (index {}) has {} {} {}, the first example {} {}; resize or crop examples to one shape", op, i,
        index, what, dtype_name(t.dtype()), t.shape(), dtype_name(first.dtype()), first.shape());
  const size_t bytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
  switch (t.dtype()) {
    case Dtype::f32: std::memcpy(dst, t.data<float>(), bytes); break;
    case Dtype::f64: std::memcpy(dst, t.data<double>(), bytes); break;
    case Dtype::i64: std::memcpy(dst, t.data<int64_t>(), bytes); break;
  }
}

std::byte* bytes_of(const Tensor& t) {
  switch (t.dtype()) {
    case Dtype::f32: return reinterpret_cast<std::byte*>(t.data<float>());
    case Dtype::f64: return reinterpret_cast<std::byte*>(t.data<double>());
    case Dtype::i64: break;
  }
  return reinterpret_cast<std::byte*>(t.data<int64_t>());
}

Tensor stacked(const Tensor& first, int64_t n) {
  Shape s{n};
  s.insert(s.end(), first.shape().begin(), first.shape().end());
  return Tensor::empty(s, first.dtype());
}
}  // namespace

Batch stack_examples(const std::vector<Example>& examples, std::span<const int64_t> indices, const char* op) {
  const int64_t n = static_cast<int64_t>(examples.size());
  check(n > 0, "{}: no examples to stack", op);
  const Example& f = examples[0];
  check(f.data.defined() && f.target.defined(), "{}: example 0 (index {}) lacks data or target", op, indices[0]);
  Batch out{stacked(f.data, n), stacked(f.target, n)};
  std::byte *x = bytes_of(out.images), *y = bytes_of(out.labels);
  const size_t xs = static_cast<size_t>(f.data.numel()) * dtype_size(f.data.dtype());
  const size_t ys = static_cast<size_t>(f.target.numel()) * dtype_size(f.target.dtype());
  for (int64_t i = 0; i < n; ++i) {
    const Example& e = examples[static_cast<size_t>(i)];
    put(e.data, f.data, x + static_cast<size_t>(i) * xs, op, "data", i, indices[static_cast<size_t>(i)]);
    put(e.target, f.target, y + static_cast<size_t>(i) * ys, op, "target", i, indices[static_cast<size_t>(i)]);
  }
  return out;
}

Batch collate(const Dataset& data, std::span<const int64_t> indices, const char* op) {
  std::vector<Example> examples;
  examples.reserve(indices.size());
  for (int64_t i : indices) {
    check_index(op, i, data.size());
    examples.push_back(data.get(i));
  }
  return stack_examples(examples, indices, op);
}

}  // namespace xg::data

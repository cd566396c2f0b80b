// xtensor interop: tensors from xt::xarray (moved in without a copy) and xtensor views of a tensor's
// storage. Kept out of xgrad.hpp because xtensor is heavy to compile.
#pragma once

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>

#include "xgrad.hpp"

namespace xg {

namespace detail {
template <class T>
class XarrayStorage final : public Storage {
 public:
  explicit XarrayStorage(xt::xarray<T>&& a) : a_(std::move(a)) {
    data_ = a_.data();
    size_ = static_cast<int64_t>(a_.size());
  }

 private:
  xt::xarray<T> a_;
};
}  // namespace detail

// Takes over a (row-major) xarray's buffer without copying; pass std::move(a) to avoid a copy here too.
template <class T>
Tensor from_xarray(xt::xarray<T> a) {
  Shape shape(a.shape().begin(), a.shape().end());
  auto impl = std::make_shared<TensorImpl>();
  impl->numel = checked_numel(shape, "from_xarray");
  impl->shape = std::move(shape);
  impl->dtype = dtype_of<T>();
  impl->storage = std::make_shared<detail::XarrayStorage<T>>(std::move(a));
  return Tensor(std::move(impl));
}

// A zero-copy xtensor view of t's storage; writes through it change t.
template <class T>
auto as_xtensor(const Tensor& t) {
  std::vector<std::size_t> shape(t.shape().begin(), t.shape().end());
  return xt::adapt(t.data<T>(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), shape);
}

// A copy into a fresh xarray.
template <class T>
xt::xarray<T> to_xarray(const Tensor& t) {
  return xt::xarray<T>(as_xtensor<T>(t));
}

}  // namespace xg

// Index ops: gather and its adjoint scatter_add, index_select, one_hot.
#include "ops/kernels.hpp"

namespace xg {

using detail::Grads;

namespace {

// Checks gather/scatter arguments; returns the wrapped dim.
int64_t check_index(const Tensor& x, int64_t dim, const Tensor& index, const char* op) {
  check(x.defined() && index.defined(), "{}: undefined tensor", op);
  check(index.dtype() == Dtype::i64, "{}: index must be i64, got {}", op, dtype_name(index.dtype()));
  check(index.dim() == x.dim(), "{}: index has rank {} (shape {}) but input has rank {} (shape {})", op, index.dim(),
        index.shape(), x.dim(), x.shape());
  int64_t d = wrap_dim(dim, x.dim(), op);
  for (int64_t i = 0; i < x.dim(); ++i)
    check(i == d || index.shape()[i] <= x.shape()[i], "{}: index shape {} exceeds input shape {} in dim {}", op,
          index.shape(), x.shape(), i);
  const int64_t n = x.dim() == 0 ? 1 : x.shape()[d];
  const int64_t* pi = index.data<int64_t>();
  for (int64_t k = 0; k < index.numel(); ++k)
    check(pi[k] >= 0 && pi[k] < n, "{}: index {} is out of range for dim {} of size {}", op, pi[k], d, n);
  return d;
}

// Calls f(x_offset, index_position) for every element of index, x_offset pointing at the indexed x.
template <class F>
void for_each_indexed(const Tensor& x, int64_t d, const Tensor& index, F&& f) {
  if (x.dim() == 0) {
    if (index.numel() == 1) f(int64_t{0}, int64_t{0});
    return;
  }
  std::vector<int64_t> xs = contiguous_strides(x.shape());
  const int64_t dstride = xs[d];
  xs[d] = 0;
  const int64_t* pi = index.data<int64_t>();
  detail::broadcast_rows<1>(index.shape(), {xs}, [&](int64_t n, auto off, auto st, int64_t o) {
    for (int64_t i = 0; i < n; ++i) f(off[0] + i * st[0] + pi[o + i] * dstride, o + i);
  });
}

}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  int64_t d = check_index(x, dim, index, "gather");
  Tensor out = Tensor::empty(index.shape(), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_each_indexed(x, d, index, [&](int64_t xo, int64_t io) { po[io] = px[xo]; });
  });
  return record("gather", out, {x}, [d, index, shape = x.shape(), dt = x.dtype()](const GradArgs& g) {
    return Grads{scatter_add(zeros(shape, dt), d, index, g.grad)};
  }, {.tensors = {index}});
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  int64_t d = check_index(x, dim, index, "scatter_add");
  check(src.defined() && src.shape() == index.shape(), "scatter_add: src shape {} must equal index shape {}",
        src.defined() ? src.shape() : Shape{}, index.shape());
  Tensor s = src.to(x.dtype());
  Tensor out = x.detach().clone();
  dispatch(x.dtype(), [&]<class T>() {
    const T* ps = s.data<T>();
    T* po = out.data<T>();
    for_each_indexed(x, d, index, [&](int64_t xo, int64_t io) { po[xo] += ps[io]; });
  });
  return record("scatter_add", out, {x, s}, [d, index](const GradArgs& g) {
    return Grads{g.needs[0] ? g.grad : Tensor(), g.needs[1] ? gather(g.grad, d, index) : Tensor()};
  }, {.tensors = {index}});
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check(x.defined() && index.defined(), "index_select: undefined tensor");
  check(index.dim() == 1, "index_select: index must be 1-D, got shape {}", index.shape());
  check(x.dim() > 0, "index_select: cannot index a 0-d tensor");
  int64_t d = wrap_dim(dim, x.dim(), "index_select");
  check(index.dtype() == Dtype::i64, "index_select: index must be i64, got {}", dtype_name(index.dtype()));
  const std::vector<int64_t> ids = index.to_vector<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i)
    check(ids[i] >= 0 && ids[i] < x.shape()[d], "index_select: index {} at position {} is out of range for dim {} of "
          "size {}", ids[i], i, d, x.shape()[d]);
  Shape view(x.dim(), 1), shape = x.shape();
  view[d] = index.numel();
  shape[d] = index.numel();
  return gather(x, d, expand(reshape(index, view), shape));
}

Tensor one_hot(const Tensor& labels, int64_t num_classes, Dtype dtype) {
  check(labels.defined() && labels.dtype() == Dtype::i64, "one_hot: labels must be an i64 tensor");
  check(num_classes > 0, "one_hot: num_classes must be positive, got {}", num_classes);
  Shape shape = labels.shape();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, dtype);
  const int64_t* pl = labels.data<int64_t>();
  dispatch(dtype, [&]<class T>() {
    T* po = out.data<T>();
    for (int64_t i = 0; i < labels.numel(); ++i) {
      check(pl[i] >= 0 && pl[i] < num_classes, "one_hot: label {} at position {} is out of range [0, {})", pl[i], i,
            num_classes);
      po[i * num_classes + pl[i]] = T(1);
    }
  });
  return out;
}

}  // namespace xg

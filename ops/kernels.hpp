// Internal loop helpers shared by the op families: broadcasting iteration over raw buffers.
#pragma once

#include <array>

#include "autograd/engine.hpp"
#include "autograd/parallel.hpp"
#include "ops/ops.hpp"

namespace xg::detail {

// Strides (in elements) of a contiguous tensor of shape `in` read as `out` under broadcasting:
// 0 on dims that broadcast.
inline std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  std::vector<int64_t> cs = contiguous_strides(in);
  size_t lead = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) st[lead + i] = in[i] == 1 ? 0 : cs[i];
  return st;
}

// Walks `out` in row-major order one innermost row at a time, calling
// f(row_length, offsets, inner_strides, out_offset) with each operand's offset at the row start.
template <size_t K, class F>
void broadcast_rows(const Shape& out, const std::array<std::vector<int64_t>, K>& strides, F&& f) {
  int64_t total = 1;
  for (int64_t d : out) total *= d;
  if (total == 0) return;
  const size_t r = out.size();
  if (r == 0) {
    f(int64_t{1}, std::array<int64_t, K>{}, std::array<int64_t, K>{}, int64_t{0});
    return;
  }
  const int64_t n = out[r - 1];
  std::array<int64_t, K> inner{}, off{};
  for (size_t k = 0; k < K; ++k) inner[k] = strides[k][r - 1];
  std::vector<int64_t> idx(r, 0);
  for (int64_t o = 0; o < total; o += n) {
    f(n, off, inner, o);
    for (size_t d = r - 1; d-- > 0;) {  // odometer over the outer dims
      if (++idx[d] < out[d]) {
        for (size_t k = 0; k < K; ++k) off[k] += strides[k][d];
        break;
      }
      for (size_t k = 0; k < K; ++k) off[k] -= strides[k][d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

// Elementwise loops split over threads only past this many elements (below it, waking a worker
// costs more than it saves).
inline constexpr int64_t elementwise_grain = int64_t{1} << 16;

// out[i] = op(a[i], b[i]) with broadcasting; a and b share dtype T, out has dtype O.
template <class T, class O, class Op>
Tensor binary_kernel(const Tensor& a, const Tensor& b, const Shape& shape, Dtype out_dtype, Op op) {
  Tensor out = Tensor::empty(shape, out_dtype);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  O* po = out.data<O>();
  if (a.shape() == shape && b.shape() == shape) {
    parallel_for(0, out.numel(), elementwise_grain, [&](int64_t lo, int64_t hi) {
      const T *__restrict x = pa, *__restrict y = pb;  // local copies: the loop vectorises
      O* __restrict z = po;
      for (int64_t i = lo; i < hi; ++i) z[i] = op(x[i], y[i]);
    });
    return out;
  }
  if (b.numel() == 1 && a.shape() == shape) {  // tensor-scalar, the other common case
    const T y = pb[0];
    parallel_for(0, out.numel(), elementwise_grain, [&](int64_t lo, int64_t hi) {
      const T* __restrict x = pa;
      O* __restrict z = po;
      for (int64_t i = lo; i < hi; ++i) z[i] = op(x[i], y);
    });
    return out;
  }
  broadcast_rows<2>(shape, {broadcast_strides(a.shape(), shape), broadcast_strides(b.shape(), shape)},
                    [&](int64_t n, auto off, auto st, int64_t o) {
                      const T* x = pa + off[0];
                      const T* y = pb + off[1];
                      O* z = po + o;
                      if (st[0] == 1 && st[1] == 1) for (int64_t i = 0; i < n; ++i) z[i] = op(x[i], y[i]);
                      else if (st[0] == 1 && st[1] == 0) for (int64_t i = 0; i < n; ++i) z[i] = op(x[i], *y);
                      else if (st[0] == 0 && st[1] == 1) for (int64_t i = 0; i < n; ++i) z[i] = op(*x, y[i]);
                      else for (int64_t i = 0; i < n; ++i) z[i] = op(x[i * st[0]], y[i * st[1]]);
                    });
  return out;
}

// out[i] = op(x[i]) on one dtype.
template <class T, class Op>
Tensor unary_kernel(const Tensor& x, Op op) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const T* p = x.data<T>();
  T* q = out.data<T>();
  parallel_for(0, x.numel(), elementwise_grain, [&](int64_t lo, int64_t hi) {
    const T* __restrict a = p;
    T* __restrict b = q;
    for (int64_t i = lo; i < hi; ++i) b[i] = op(a[i]);
  });
  return out;
}

using Grads = std::vector<Tensor>;

}  // namespace xg::detail

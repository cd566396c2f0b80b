// The fused convolution's kernels (ops/fused/im2col.cpp, depthwise.cpp), shared by conv2d and
// conv_transpose2d: a transposed convolution's forward is a convolution's input gradient, and its
// backward a convolution's forward and weight gradient. Winograd takes the shapes it serves.
#pragma once

#include <cstdint>
#include <functional>

#include "ops/geometry.hpp"

namespace xg::detail {

// The range of output columns wo whose input column wo*S - P + k falls inside [0, in) (k: the tap's
// offset, kw * DW).
inline void valid_range(int64_t k, int64_t S, int64_t P, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = 0;
  while (lo < out && lo * S - P + k < 0) ++lo;
  hi = out;
  while (hi > lo && (hi - 1) * S - P + k >= in) --hi;
}

// F planes of P values each = relu(plane + bias[f]) in place (bias may be null; without `relu`,
// plane + bias[f]). NaN stays NaN, as in relu. The im2col epilogue and the conv + pool pass's.
template <class T>
inline void bias_relu_planes(T* planes, const T* bias, int64_t F, int64_t P, bool relu) {
  for (int64_t f = 0; f < F; ++f) {
    T* plane = planes + f * P;
    const T b = bias ? bias[f] : T(0);
    if (relu)
      for (int64_t p = 0; p < P; ++p) plane[p] = plane[p] + b < T(0) ? T(0) : plane[p] + b;
    else
      for (int64_t p = 0; p < P; ++p) plane[p] += b;
  }
}

// Depthwise convolutions (one input channel per group, G = C > 1) run direct loops over the planes
// (ops/fused/depthwise.cpp) instead of im2col and a GEMM of one row per group.
inline bool use_depthwise(const ConvGeometry& g) { return g.G > 1 && g.G == g.C; }
template <class T>
void depthwise_forward(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out, bool relu = false);
template <class T>
void depthwise_backward(const T* x, const T* w, const T* dout, const ConvGeometry& g, T* dx, T* dw);

// out [N,F,HO,WO] = conv(x, w) + bias (bias may be null), clamped at zero with `relu` (NaN stays NaN)
// in the kernel's own output pass, while the values are in cache: the inference epilogue.
template <class T>
void conv_forward(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out, bool relu = false);

// Whether conv_forward computes this convolution one image at a time (im2col), so that each image's
// output can be handed on while in cache: conv_forward_images.
bool conv_per_image(const ConvGeometry& g);
// conv_forward for conv_per_image geometries, each image's output [F, HO, WO] written to a per-thread
// buffer and passed to sink(n, image) on the thread that computed it, instead of to an output tensor.
template <class T>
void conv_forward_images(const T* x, const T* w, const T* bias, const ConvGeometry& g, bool relu,
                         const std::function<void(int64_t n, const T* image)>& sink);

// Max pooling's values (no argmax) for planes [lo, hi) of x, in the calling thread (ops/fused/pool.cpp).
template <class T>
void max_pool_planes(const T* x, const PoolGeometry& g, T* out, int64_t lo, int64_t hi);
// The 2x2/2 max-pool (pairs(g)) of planes [lo, hi) of x with each window's winning tap (0-3, row-major),
// as max_pool2d keeps them, in the calling thread; and its backward: planes [lo, hi) of dst [H, W] from
// the pooled gradient, each window's at its tap and zeros elsewhere.
template <class T>
void max_pool_pairs_planes(const T* x, const PoolGeometry& g, T* out, uint8_t* taps, int64_t lo, int64_t hi);
template <class T>
void max_unpool_pairs_planes(const T* grad, const uint8_t* taps, const PoolGeometry& g, T* dst, int64_t lo, int64_t hi);

// The gradients of conv_forward for the upstream gradient dout; dx, dw and db may each be null when
// not needed (x is read only for dw), and are overwritten.
template <class T>
void conv_backward(const T* x, const T* w, const T* dout, const ConvGeometry& g, T* dx, T* dw, T* db);

}  // namespace xg::detail

// The fused convolution's im2col kernels (ops/fused/im2col.cpp), shared by conv2d and
// conv_transpose2d: a transposed convolution's forward is a convolution's input gradient, and its
// backward a convolution's forward and weight gradient. Winograd takes the shapes it serves.
#pragma once

#include "ops/geometry.hpp"

namespace xg::detail {

// out [N,F,HO,WO] = conv(x, w) + bias (bias may be null).
template <class T>
void conv_forward(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out);

// The gradients of conv_forward for the upstream gradient dout; dx, dw and db may each be null when
// not needed (x is read only for dw), and are overwritten.
template <class T>
void conv_backward(const T* x, const T* w, const T* dout, const ConvGeometry& g, T* dx, T* dw, T* db);

}  // namespace xg::detail

// f32 convolutions through oneDNN (ops/fused/onednn_conv.cpp): in bfloat16 on Intel AMX under
// set_float32_matmul_precision("medium") (the products' inputs rounded to bf16, their sums in f32), and
// otherwise 3x3 stride-1 convolutions by oneDNN's f32 Winograd kernel on CPUs with AVX-512.
#pragma once

#include <cstdint>

#include "ops/geometry.hpp"

namespace xg::detail {

// Whether conv_forward and conv_backward hand this f32 convolution to oneDNN: one group, and either
// "medium" precision on a CPU with AMX and a shape its AMX kernels cover, or a 3x3 stride-1 shape its
// Winograd kernel takes (16+ channels each way and more than one 4x4 output tile, unless
// ConvAlgorithm::onednn_winograd is forced; never when xgrad's own im2col or Winograd is forced).
bool use_onednn_conv(const ConvGeometry& g);
// Whether this CPU runs oneDNN's f32 Winograd kernel (AVX-512): for tests.
bool onednn_winograd_available();
void onednn_conv_forward(const float* x, const float* w, const float* bias, const ConvGeometry& g, float* out,
                         bool relu);
// dx and dw may each be null; both are overwritten.
void onednn_conv_backward(const float* x, const float* w, const float* dout, const ConvGeometry& g, float* dx,
                          float* dw);

// A convolution followed by a 2x2 max-pool at stride 2 (no padding; an odd last row or column left out),
// the pool taken from each chunk's output while it is in cache, in the Winograd kernel's own layout:
// the unpooled output is neither written out nor copied back for the backward. For f32 geometries
// that use_onednn_conv hands to the Winograd kernel.
bool onednn_conv_pool_applies(const ConvGeometry& g);
// Bytes of onednn_conv_pool_forward's taps (one per pooled value of 16-channel blocks).
inline int64_t onednn_conv_pool_taps(const ConvGeometry& g) {
  return g.N * ((g.F + 15) / 16 * 16) * (g.HO / 2) * (g.WO / 2);
}
// out [N, F, HO/2, WO/2] = max_pool2d(conv2d(x, w, bias), 2) to the bit (bias may be null); taps: each
// window's winning tap, for the backward (null: not kept).
void onednn_conv_pool_forward(const float* x, const float* w, const float* bias, const ConvGeometry& g, float* out,
                              uint8_t* taps);
// dx and dw (each may be null, both overwritten) from the pooled output's gradient and the taps.
void onednn_conv_pool_backward(const float* x, const float* w, const float* dpooled, const uint8_t* taps,
                               const ConvGeometry& g, float* dx, float* dw);

}  // namespace xg::detail

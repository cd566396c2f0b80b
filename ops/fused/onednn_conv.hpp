// f32 convolutions through oneDNN (ops/fused/onednn_conv.cpp): in bfloat16 on Intel AMX under
// set_float32_matmul_precision("medium") (the products' inputs rounded to bf16, their sums in f32), and
// otherwise 3x3 stride-1 convolutions by oneDNN's f32 Winograd kernel on CPUs with AVX-512.
#pragma once

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

}  // namespace xg::detail

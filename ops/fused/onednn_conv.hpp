// Convolutions in bfloat16 on Intel AMX through oneDNN, under set_float32_matmul_precision("medium")
// (ops/fused/onednn_conv.cpp). f32 in and out; the products' inputs rounded to bf16, their sums in f32.
#pragma once

#include "ops/geometry.hpp"

namespace xg::detail {

// Whether conv_forward and conv_backward hand this f32 convolution to oneDNN's bf16 kernels: "medium"
// precision on a CPU with AMX, one group, and a shape oneDNN's AMX kernels cover.
bool use_onednn_conv(const ConvGeometry& g);
void onednn_conv_forward(const float* x, const float* w, const float* bias, const ConvGeometry& g, float* out,
                         bool relu);
// dx and dw may each be null; both are overwritten.
void onednn_conv_backward(const float* x, const float* w, const float* dout, const ConvGeometry& g, float* dx,
                          float* dw);

}  // namespace xg::detail

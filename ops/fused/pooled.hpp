// An op followed by a max-pool, as one recorded op where the kernels allow: a convolution
// (ops/fused/conv_pool.cpp), what nn::Conv2d::forward_pooled runs while gradients are recorded, and a
// batch norm with its activation (ops/fused/batch_norm.cpp), what nn::Sequential runs for BatchNorm2d,
// ReLU or GELU, MaxPool2d.
#pragma once

#include "ops/ops.hpp"

namespace xg::detail {

// max_pool2d(conv2d(x, weight, bias, conv), pool), to the bit, with its gradients. An f32 convolution on
// oneDNN's Winograd kernel followed by a 2x2 window at stride 2 runs as one op (onednn_conv_pool_forward):
// the unpooled output is never stored, and the backward builds its gradient from the pooled one in the
// kernel's own layout. Anything else (and under an ONNX trace) runs the two ops.
Tensor conv2d_max_pool2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& conv,
                         const Pool2dOptions& pool);

// max_pool2d(batch_norm_activation(x, ...), pool), checked as the two ops. For a 2x2 window at stride 2
// on [N, C, H, W] input one op: the pool runs in the batch norm's output pass, so the unpooled activation
// and its gradient are never stored (the backward rebuilds each plane's gradient from the pooled one
// while it sums). Values and gradients equal the two ops' to the bit.
Tensor batch_norm_activation_pool(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                                  const Tensor& running_var, bool training, double momentum, double eps,
                                  PostActivation act, const Pool2dOptions& pool);

}  // namespace xg::detail

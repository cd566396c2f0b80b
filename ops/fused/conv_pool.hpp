// A convolution followed by a max-pool, as one recorded op where a kernel takes both
// (ops/fused/conv_pool.cpp): what nn::Conv2d::forward_pooled runs while gradients are recorded.
#pragma once

#include "ops/ops.hpp"

namespace xg::detail {

// max_pool2d(conv2d(x, weight, bias, conv), pool), to the bit, with its gradients. An f32 convolution on
// oneDNN's Winograd kernel followed by a 2x2 window at stride 2 runs as one op (onednn_conv_pool_forward):
// the unpooled output is never stored, and the backward builds its gradient from the pooled one in the
// kernel's own layout. Anything else (and under an ONNX trace) runs the two ops.
Tensor conv2d_max_pool2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& conv,
                         const Pool2dOptions& pool);

}  // namespace xg::detail

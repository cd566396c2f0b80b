// Inference-only forwards for layers that nn::fuse_for_inference (nn/fuse.hpp) has given a ReLU or a packed weight:
// the layer's bias and the ReLU are applied in one pass over the output (the epilogue), instead of
// a bias pass and a separate relu op that allocates, reads and writes a second tensor. Nothing is
// recorded on the tape: the layers call these only when no gradient is needed.
#pragma once

#include "ops/ops.hpp"

namespace xg::detail {

// relu(conv2d(x, weight, bias, opts)), checked as conv2d; bias may be undefined.
Tensor conv2d_relu_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts);
// max_pool2d(relu(conv2d(x, weight, bias, opts)), pool) (without `relu`, of conv2d(...)), checked as
// the two ops. An im2col convolution pools each image's output while it is in cache, oneDNN's Winograd
// kernel each chunk's for a 2x2 window at stride 2 (onednn_conv_pool_forward); other kernels run the
// two ops.
Tensor conv2d_pool_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts,
                             bool relu, const Pool2dOptions& pool);
// relu(linear(x, weight, bias)) (linear(...) without `relu`), checked as linear; bias may be undefined.
// With weight_t (weight^T, [in, out], of weight's dtype: nn::fuse_for_inference's packed weight) the
// GEMM reads it as B directly, with no per-call transpose.
Tensor linear_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& weight_t = Tensor(),
                        bool relu = true);

}  // namespace xg::detail

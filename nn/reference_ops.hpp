// The switch that routes modules' fused ops (conv2d, pooling, batch_norm) through xg::ref:: instead.
#pragma once

#include "ops/ops.hpp"

namespace xg::nn {

// Global (all threads): while on, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d and BatchNorm1d/2d call the
// compositions of primitives in xg::ref:: rather than the fused kernels, so a whole model can be
// run both ways and its losses and gradients compared.
void set_use_reference_ops(bool on);
bool use_reference_ops();

// Sets the switch for a scope and restores the previous value.
class ReferenceOpsGuard {
 public:
  explicit ReferenceOpsGuard(bool on = true) : prev_(use_reference_ops()) { set_use_reference_ops(on); }
  ~ReferenceOpsGuard() { set_use_reference_ops(prev_); }
  ReferenceOpsGuard(const ReferenceOpsGuard&) = delete;
  ReferenceOpsGuard& operator=(const ReferenceOpsGuard&) = delete;

 private:
  bool prev_;
};

namespace detail {  // the routed calls, with xg::'s signatures
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const xg::Conv2dOptions& opts);
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const xg::ConvTranspose2dOptions& opts);
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts);
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps);
Tensor batch_norm_activation(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             PostActivation act);
Tensor batch_norm_activation_pool(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                                  const Tensor& running_var, bool training, double momentum, double eps,
                                  PostActivation act, const Pool2dOptions& pool);
}  // namespace detail

}  // namespace xg::nn

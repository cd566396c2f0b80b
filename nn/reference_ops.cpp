// The fused-or-reference switch and the calls it routes.
#include "nn/reference_ops.hpp"

#include <atomic>

#include "ops/fused/pooled.hpp"

namespace xg::nn {

namespace {
std::atomic<bool> reference_ops{false};
}

void set_use_reference_ops(bool on) { reference_ops.store(on); }
bool use_reference_ops() { return reference_ops.load(); }

namespace detail {

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const xg::Conv2dOptions& opts) {
  return use_reference_ops() ? xg::ref::conv2d(x, weight, bias, opts) : xg::conv2d(x, weight, bias, opts);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const xg::ConvTranspose2dOptions& opts) {
  return use_reference_ops() ? xg::ref::conv_transpose2d(x, weight, bias, opts)
                             : xg::conv_transpose2d(x, weight, bias, opts);
}

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  return use_reference_ops() ? xg::ref::max_pool2d(x, opts) : xg::max_pool2d(x, opts);
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  return use_reference_ops() ? xg::ref::avg_pool2d(x, opts) : xg::avg_pool2d(x, opts);
}

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  return use_reference_ops()
             ? xg::ref::batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps)
             : xg::batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps);
}

Tensor batch_norm_activation(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             PostActivation act) {
  return use_reference_ops() ? xg::ref::batch_norm_activation(x, gamma, beta, running_mean, running_var, training,
                                                              momentum, eps, act)
                             : xg::batch_norm_activation(x, gamma, beta, running_mean, running_var, training,
                                                         momentum, eps, act);
}

Tensor batch_norm_activation_pool(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                                  const Tensor& running_var, bool training, double momentum, double eps,
                                  PostActivation act, const Pool2dOptions& pool) {
  if (use_reference_ops())
    return xg::ref::max_pool2d(
        xg::ref::batch_norm_activation(x, gamma, beta, running_mean, running_var, training, momentum, eps, act), pool);
  return xg::detail::batch_norm_activation_pool(x, gamma, beta, running_mean, running_var, training, momentum, eps, act,
                                                pool);
}

}  // namespace detail
}  // namespace xg::nn

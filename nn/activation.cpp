// Activation modules and Identity: each forward is one functional op.
#include "nn/activation.hpp"

#include <cmath>

namespace xg::nn {

GELU::GELU(std::string approximate) : approximate_(std::move(approximate)) {
  check(approximate_ == "none" || approximate_ == "tanh", "GELU: approximate must be \"none\" or \"tanh\", got \"{}\"",
        approximate_);
}
Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate_); }
std::string GELU::extra_repr() const { return fmt::format("approximate={}", approximate_); }

Tensor SiLU::forward(const Tensor& x) { return silu(x); }

ELU::ELU(double alpha) : alpha_(alpha) { check(std::isfinite(alpha), "ELU: alpha must be finite, got {}", alpha); }
Tensor ELU::forward(const Tensor& x) { return elu(x, alpha_); }
std::string ELU::extra_repr() const { return fmt::format("alpha={}", alpha_); }

Softplus::Softplus(double beta, double threshold) : beta_(beta), threshold_(threshold) {
  check(beta != 0 && std::isfinite(beta), "Softplus: beta must be finite and non-zero, got {}", beta);
}
Tensor Softplus::forward(const Tensor& x) { return softplus(x, beta_, threshold_); }
std::string Softplus::extra_repr() const { return fmt::format("beta={}, threshold={}", beta_, threshold_); }

Tensor Hardswish::forward(const Tensor& x) { return hardswish(x); }
Tensor Mish::forward(const Tensor& x) { return mish(x); }

Tensor Identity::forward(const Tensor& x) {
  check(x.defined(), "Identity: undefined input");
  return x;
}

}  // namespace xg::nn

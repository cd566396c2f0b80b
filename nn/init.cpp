// Parameter initialisers: fan computation and the uniform, normal and Kaiming fills.
#include "nn/init.hpp"

#include <cmath>

#include "autograd/grad_mode.hpp"

namespace xg::nn::init {

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  check(t.dim() >= 2, "calculate_fan_in_and_fan_out: needs a tensor with at least 2 dims, got shape {}", t.shape());
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.shape()[d];
  return {t.shape()[1] * receptive, t.shape()[0] * receptive};
}

void uniform_(const Tensor& t, double lo, double hi) {
  check(is_floating(t.dtype()), "uniform_: needs a floating tensor, got {}", dtype_name(t.dtype()));
  NoGradGuard no_grad;  // initialising is not an op on the tape, as in PyTorch
  t.copy_(uniform(t.shape(), lo, hi, t.dtype()));
}

void normal_(const Tensor& t, double mean, double std) {
  check(is_floating(t.dtype()), "normal_: needs a floating tensor, got {}", dtype_name(t.dtype()));
  check(std >= 0 && std::isfinite(std) && std::isfinite(mean), "normal_: needs a finite mean and std >= 0, got mean {} and std {}",
        mean, std);
  NoGradGuard no_grad;
  t.copy_(add(mul(randn(t.shape(), t.dtype()), std), mean));
}

void constant_(const Tensor& t, double value) {
  NoGradGuard no_grad;
  t.fill_(value);
}
void zeros_(const Tensor& t) { constant_(t, 0.0); }
void ones_(const Tensor& t) { constant_(t, 1.0); }

void kaiming_uniform_(const Tensor& t, double a) {
  const int64_t fan_in = calculate_fan_in_and_fan_out(t).first;
  check(fan_in > 0, "kaiming_uniform_: fan_in is 0 for shape {}", t.shape());
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = std::sqrt(3.0) * gain / std::sqrt(static_cast<double>(fan_in));
  uniform_(t, -bound, bound);
}

}  // namespace xg::nn::init

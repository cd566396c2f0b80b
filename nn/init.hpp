// Parameter initialisers (torch.nn.init): they overwrite a tensor's values in place, off the tape.
#pragma once

#include <utility>

#include "autograd/tensor.hpp"

namespace xg::nn::init {

// (fan_in, fan_out) of a weight: [out, in] -> (in, out); [out, in, kh, kw] -> (in*kh*kw, out*kh*kw).
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

void uniform_(const Tensor& t, double lo, double hi);
void normal_(const Tensor& t, double mean = 0.0, double std = 1.0);  // N(mean, std^2)
void constant_(const Tensor& t, double value);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);
// He initialisation in fan_in mode for leaky_relu with slope `a`: U(-bound, bound), bound =
// sqrt(3) * sqrt(2 / (1 + a^2)) / sqrt(fan_in). With a = sqrt(5), PyTorch's default for Linear and
// Conv2d weights, bound = 1 / sqrt(fan_in).
void kaiming_uniform_(const Tensor& t, double a = 0.0);

}  // namespace xg::nn::init

// Parameter initialisers (torch.nn.init): they overwrite a tensor's values in place, off the tape
// (under NoGradGuard, through Tensor::copy_/fill_), and return the same handle. A tensor with no
// elements is left alone, as PyTorch does.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "autograd/tensor.hpp"

namespace xg::nn::init {

// (fan_in, fan_out) of a weight, PyTorch's rule: fan_in = size(1) * receptive field, fan_out =
// size(0) * receptive field, the receptive field being the product of dims 2...: [out, in] ->
// (in, out); [out, in, kh, kw] -> (in*kh*kw, out*kh*kw).
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);
// The recommended gain for a nonlinearity: 1 for "linear", "conv1d", "conv2d", "conv3d",
// "conv_transpose1d/2d/3d" and "sigmoid"; 5/3 "tanh"; sqrt(2) "relu"; sqrt(2 / (1 + slope^2))
// "leaky_relu" (param: the slope, default 0.01); 3/4 "selu".
double calculate_gain(const std::string& nonlinearity, std::optional<double> param = std::nullopt);

Tensor uniform_(const Tensor& t, double lo = 0.0, double hi = 1.0);
Tensor normal_(const Tensor& t, double mean = 0.0, double std = 1.0);  // N(mean, std^2)
Tensor constant_(const Tensor& t, double value);
Tensor zeros_(const Tensor& t);
Tensor ones_(const Tensor& t);
// He initialisation: std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a), fan the
// fan_in or fan_out (mode); uniform draws from U(-sqrt(3) std, sqrt(3) std). With a = sqrt(5)
// (PyTorch's default for Linear and Conv2d weights) the uniform bound is 1 / sqrt(fan_in).
Tensor kaiming_uniform_(const Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu");
Tensor kaiming_normal_(const Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                       const std::string& nonlinearity = "leaky_relu");
// Glorot initialisation: std = gain sqrt(2 / (fan_in + fan_out)); uniform bound sqrt(3) std.
Tensor xavier_uniform_(const Tensor& t, double gain = 1.0);
Tensor xavier_normal_(const Tensor& t, double gain = 1.0);
// A (semi-)orthogonal matrix times gain: t viewed as [size(0), numel / size(0)] has orthonormal rows
// or columns (whichever are fewer), from the QR decomposition of a Gaussian matrix (Gram-Schmidt in
// f64, signs fixed so R has a positive diagonal, as PyTorch's q * sign(diag(r))).
Tensor orthogonal_(const Tensor& t, double gain = 1.0);
// The identity of a convolution ([out, in, k...], 3 to 5 dims): 1 at the centre of the kernel of
// filter g * out/groups + d, input channel d, for d < min(out/groups, in); 0 elsewhere.
Tensor dirac_(const Tensor& t, int64_t groups = 1);

}  // namespace xg::nn::init

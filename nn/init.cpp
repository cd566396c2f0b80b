// Parameter initialisers: fans and gains, the uniform, normal, Kaiming, Xavier, orthogonal and Dirac fills.
#include "nn/init.hpp"

#include <cmath>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "ops/ops.hpp"

namespace xg::nn::init {

namespace {

void check_floating(const Tensor& t, const char* op) {
  check(t.defined(), "{}: undefined tensor", op);
  check(is_floating(t.dtype()), "{}: needs a floating tensor, got {}", op, dtype_name(t.dtype()));
}

// Writes values (f64, row-major, t's shape) into t in place.
Tensor assign(const Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  t.copy_(values);
  return t;
}

int64_t fan(const Tensor& t, const std::string& mode, const char* op) {
  check(mode == "fan_in" || mode == "fan_out", "{}: mode must be \"fan_in\" or \"fan_out\", got \"{}\"", op, mode);
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  return mode == "fan_in" ? in : out;
}

}  // namespace

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  check(t.defined(), "calculate_fan_in_and_fan_out: undefined tensor");
  check(t.dim() >= 2, "calculate_fan_in_and_fan_out: needs a tensor with at least 2 dims, got shape {}", t.shape());
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.shape()[d];
  return {t.shape()[1] * receptive, t.shape()[0] * receptive};
}

double calculate_gain(const std::string& nonlinearity, std::optional<double> param) {
  for (const char* linear : {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                             "conv_transpose3d", "sigmoid"})
    if (nonlinearity == linear) return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "selu") return 3.0 / 4.0;
  check(nonlinearity == "leaky_relu", "calculate_gain: unsupported nonlinearity \"{}\"", nonlinearity);
  const double slope = param.value_or(0.01);
  check(std::isfinite(slope), "calculate_gain: negative_slope {} is not a valid number", slope);
  return std::sqrt(2.0 / (1.0 + slope * slope));
}

Tensor uniform_(const Tensor& t, double lo, double hi) {
  check_floating(t, "uniform_");
  check(lo <= hi && std::isfinite(lo) && std::isfinite(hi), "uniform_: needs finite lo <= hi, got [{}, {}]", lo, hi);
  return assign(t, uniform(t.shape(), lo, hi, t.dtype()));
}

Tensor normal_(const Tensor& t, double mean, double std) {
  check_floating(t, "normal_");
  check(std >= 0 && std::isfinite(std) && std::isfinite(mean), "normal_: needs a finite mean and std >= 0, got mean {} and std {}",
        mean, std);
  NoGradGuard no_grad;
  return assign(t, add(mul(randn(t.shape(), t.dtype()), std), mean));
}

Tensor constant_(const Tensor& t, double value) {
  check_floating(t, "constant_");
  NoGradGuard no_grad;
  t.fill_(value);
  return t;
}
Tensor zeros_(const Tensor& t) { return constant_(t, 0.0); }
Tensor ones_(const Tensor& t) { return constant_(t, 1.0); }

Tensor kaiming_uniform_(const Tensor& t, double a, const std::string& mode, const std::string& nonlinearity) {
  check_floating(t, "kaiming_uniform_");
  const int64_t f = fan(t, mode, "kaiming_uniform_");
  if (t.numel() == 0) return t;
  const double bound = std::sqrt(3.0) * calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(f));
  return uniform_(t, -bound, bound);
}

Tensor kaiming_normal_(const Tensor& t, double a, const std::string& mode, const std::string& nonlinearity) {
  check_floating(t, "kaiming_normal_");
  const int64_t f = fan(t, mode, "kaiming_normal_");
  if (t.numel() == 0) return t;
  return normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(f)));
}

Tensor xavier_uniform_(const Tensor& t, double gain) {
  check_floating(t, "xavier_uniform_");
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  if (t.numel() == 0) return t;
  const double bound = std::sqrt(3.0) * gain * std::sqrt(2.0 / static_cast<double>(in + out));
  return uniform_(t, -bound, bound);
}

Tensor xavier_normal_(const Tensor& t, double gain) {
  check_floating(t, "xavier_normal_");
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  if (t.numel() == 0) return t;
  return normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(in + out)));
}

Tensor orthogonal_(const Tensor& t, double gain) {
  check_floating(t, "orthogonal_");
  check(t.dim() >= 2, "orthogonal_: needs a tensor with at least 2 dims, got shape {}", t.shape());
  if (t.numel() == 0) return t;
  const int64_t rows = t.shape()[0], cols = t.numel() / rows;
  // Orthonormalise the k = min(rows, cols) vectors of length n = max(rows, cols): the columns of a
  // tall Gaussian matrix (or the rows of a wide one), by modified Gram-Schmidt run twice.
  const int64_t n = std::max(rows, cols), k = std::min(rows, cols);
  std::vector<double> q = randn({k, n}, Dtype::f64).to_vector<double>();  // vector j at q[j*n ...]
  for (int64_t j = 0; j < k; ++j) {
    double* v = q.data() + j * n;
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t i = 0; i < j; ++i) {
        const double* u = q.data() + i * n;
        double dot = 0;
        for (int64_t e = 0; e < n; ++e) dot += u[e] * v[e];
        for (int64_t e = 0; e < n; ++e) v[e] -= dot * u[e];
      }
    double norm = 0;
    for (int64_t e = 0; e < n; ++e) norm += v[e] * v[e];
    norm = std::sqrt(norm);
    check(norm > 0, "orthogonal_: the random matrix for shape {} was rank-deficient", t.shape());
    for (int64_t e = 0; e < n; ++e) v[e] /= norm;
  }
  Tensor m = mul(from_vector(q, {k, n}), gain);  // rows orthogonal, of norm gain
  if (rows > cols) m = transpose(m, 0, 1);  // a tall matrix: orthonormal columns
  return assign(t, reshape(m, t.shape()));
}

Tensor dirac_(const Tensor& t, int64_t groups) {
  check_floating(t, "dirac_");
  check(t.dim() >= 3 && t.dim() <= 5, "dirac_: needs a 3-, 4- or 5-D tensor, got shape {}", t.shape());
  check(groups > 0 && t.shape()[0] % groups == 0, "dirac_: dim 0 of shape {} must be divisible by groups {}",
        t.shape(), groups);
  const int64_t per_group = t.shape()[0] / groups, in = t.shape()[1];
  std::vector<double> v(static_cast<size_t>(t.numel()), 0.0);
  int64_t kernel = 1, centre = 0;  // the kernel's size and its centre's row-major offset
  for (int64_t d = 2; d < t.dim(); ++d) {
    kernel *= t.shape()[d];
    centre = centre * t.shape()[d] + t.shape()[d] / 2;
  }
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t d = 0; d < std::min(per_group, in); ++d) v[((g * per_group + d) * in + d) * kernel + centre] = 1.0;
  return assign(t, from_vector(v, t.shape()));
}

}  // namespace xg::nn::init

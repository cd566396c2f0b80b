// Muon: momentum orthogonalised by a Newton-Schulz iteration, with an SGD fallback for the groups
// that are not matrices.
#include <fmt/ranges.h>

#include <cmath>
#include <utility>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "ops/blas.hpp"
#include "optim/optimizers.hpp"
#include "optim/sgd_step.hpp"

namespace xg::optim {

namespace {

template <class T>
double frobenius(const T* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return std::sqrt(s);
}

// out = newton_schulz of g [rows, cols] (see the header), both row-major; out may not alias g.
template <class T>
void newton_schulz_into(const T* g, int64_t rows, int64_t cols, int64_t steps, const std::array<double, 3>& abc,
                        double eps, T* out) {
  const bool tall = rows > cols;
  const int64_t m = tall ? cols : rows, n = tall ? rows : cols;  // X is m x n, m <= n
  const double norm = frobenius(g, rows * cols);
  const T scale = norm > 0 ? static_cast<T>(1 / std::max(norm, eps)) : T(0);  // a zero matrix stays zero, even at eps 0
  std::vector<T> x(static_cast<size_t>(m * n)), next(x.size()), a(static_cast<size_t>(m * m)), b(a.size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) x[tall ? j * n + i : i * n + j] = g[i * cols + j] * scale;
  const T ca = static_cast<T>(abc[0]), cb = static_cast<T>(abc[1]), cc = static_cast<T>(abc[2]);
  for (int64_t s = 0; s < steps; ++s) {
    xg::detail::gemm<T>(false, true, m, m, n, T(1), x.data(), n, x.data(), n, T(0), a.data(), m);           // A = X X^T
    for (size_t i = 0; i < a.size(); ++i) b[i] = cb * a[i];
    xg::detail::gemm<T>(false, false, m, m, m, cc, a.data(), m, a.data(), m, T(1), b.data(), m);             // B = b A + c A A
    for (size_t i = 0; i < x.size(); ++i) next[i] = ca * x[i];
    xg::detail::gemm<T>(false, false, m, n, m, T(1), b.data(), m, x.data(), n, T(1), next.data(), n);        // X = a X + B X
    std::swap(x, next);
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) out[i * cols + j] = x[tall ? j * n + i : i * n + j];
}

void check_muon(const MuonOptions& o) {
  check(o.lr >= 0, "Muon: learning rate must be non-negative, got {}", o.lr);
  check(o.weight_decay >= 0, "Muon: weight_decay must be non-negative, got {}", o.weight_decay);
  check(o.momentum >= 0, "Muon: momentum must be non-negative, got {}", o.momentum);
  check(!o.nesterov || o.momentum > 0, "Muon: nesterov needs momentum > 0, got {}", o.momentum);
  check(o.eps >= 0, "Muon: eps must be non-negative, got {}", o.eps);
  check(o.ns_steps >= 1, "Muon: ns_steps must be at least 1, got {}", o.ns_steps);
  for (double c : o.ns_coefficients)
    check(std::isfinite(c), "Muon: ns_coefficients must be finite, got ({})", fmt::join(o.ns_coefficients, ", "));
  check(o.adjust_lr_fn == "original" || o.adjust_lr_fn == "match_rms_adamw" || o.adjust_lr_fn == "none",
        "Muon: adjust_lr_fn must be \"original\", \"match_rms_adamw\" or \"none\", got \"{}\"", o.adjust_lr_fn);
}

}  // namespace

Tensor newton_schulz(const Tensor& g, int64_t steps, std::array<double, 3> coefficients, double eps) {
  check(g.defined() && g.dim() == 2 && is_floating(g.dtype()),
        "newton_schulz: needs a 2-D f32 or f64 matrix, got {}", g.defined() ? fmt::format("{} {}", g.shape(), dtype_name(g.dtype())) : "an undefined tensor");
  check(steps >= 0, "newton_schulz: steps must be non-negative, got {}", steps);
  check(eps >= 0, "newton_schulz: eps must be non-negative, got {}", eps);
  NoGradGuard no_grad;
  Tensor out = Tensor::empty(g.shape(), g.dtype());
  dispatch_floating(g.dtype(), [&]<class T>() {
    newton_schulz_into(g.data<T>(), g.shape()[0], g.shape()[1], steps, coefficients, eps, out.data<T>());
  });
  return out;
}

Muon::Muon(std::vector<Tensor> params, const MuonOptions& o)
    : Muon(std::vector<ParamGroup<MuonOptions>>{{std::move(params), o}}) {}

Muon::Muon(std::vector<ParamGroup<MuonOptions>> groups) : OptimizerWith("Muon") { add_param_groups(std::move(groups)); }

void Muon::check_options(const MuonOptions& o) const { check_muon(o); }

void Muon::check_group(const ParamGroup<MuonOptions>& g) const {
  if (!g.options.use_muon) return;
  for (size_t k = 0; k < g.params.size(); ++k) {
    const Tensor& p = g.params[k];
    check(!p.defined() || (p.dim() >= 2 && p.numel() > 0),
          "Muon: parameter {} (shape {}) of group {} is not a matrix: groups with use_muon need parameters of at "
          "least two dimensions (put biases and norm parameters in a group with use_muon = false)",
          params().size() + k, p.shape(), num_param_groups());
  }
}

void Muon::store_momentum(size_t g, double m) {
  MuonOptions o = options_[g];
  o.momentum = m;
  check_muon(o);
  options_[g] = o;
}

void Muon::update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) {
  const MuonOptions& o = options_[group];
  if (!o.use_muon) {
    const bool first = !state.buffers.count("momentum_buffer");
    detail::sgd_step(param, grad, o.momentum != 0 ? buffer(state, "momentum_buffer", param) : Tensor(), first,
                     {.lr = o.lr, .momentum = o.momentum, .weight_decay = o.weight_decay, .nesterov = o.nesterov});
    return;
  }
  Tensor buf = buffer(state, "momentum_buffer", param);
  const int64_t rows = param.shape()[0], cols = param.numel() / rows;
  double adjust = 1;
  if (o.adjust_lr_fn == "original") adjust = std::sqrt(std::max(1.0, static_cast<double>(rows) / static_cast<double>(cols)));
  else if (o.adjust_lr_fn == "match_rms_adamw") adjust = 0.2 * std::sqrt(static_cast<double>(std::max(rows, cols)));
  dispatch_floating(param.dtype(), [&]<class T>() {
    T* w = param.data<T>();
    const T* g = grad.data<T>();
    T* b = buf.data<T>();
    const int64_t n = param.numel();
    const T mom = static_cast<T>(o.momentum);
    std::vector<T> u(static_cast<size_t>(n)), ortho(u.size());
    for (int64_t i = 0; i < n; ++i) {
      b[i] = mom * b[i] + g[i];
      u[static_cast<size_t>(i)] = o.nesterov ? g[i] + mom * b[i] : b[i];
    }
    newton_schulz_into(u.data(), rows, cols, o.ns_steps, o.ns_coefficients, o.eps, ortho.data());
    double keep = 1 - o.lr * o.weight_decay;
    if (o.normalize_weights) {
      const double norm = frobenius(w, n);
      if (norm > 0) keep *= std::sqrt(static_cast<double>(rows)) / norm;
    }
    const T k = static_cast<T>(keep), step = static_cast<T>(o.lr * adjust);
    for (int64_t i = 0; i < n; ++i) w[i] = k * w[i] - step * ortho[static_cast<size_t>(i)];
  });
}

}  // namespace xg::optim

// Adam and AdamW (decoupled weight decay): option checks and the per-element update loop.
#include <algorithm>
#include <cmath>

#include "autograd/parallel.hpp"
#include "optim/flags.hpp"
#include "optim/optimizers.hpp"

namespace xg::optim {

using detail::with_flag;

namespace {
void check_adam(const AdamOptions& o, const char* op) {
  check(o.lr >= 0, "{}: learning rate must be non-negative, got {}", op, o.lr);
  check(o.eps >= 0, "{}: eps must be non-negative, got {}", op, o.eps);
  check(o.weight_decay >= 0, "{}: weight_decay must be non-negative, got {}", op, o.weight_decay);
  check(o.betas.first >= 0 && o.betas.first < 1 && o.betas.second >= 0 && o.betas.second < 1,
        "{}: betas must be in [0, 1), got ({}, {})", op, o.betas.first, o.betas.second);
}

AdamOptions as_adam(const AdamWOptions& o) { return {o.lr, o.betas, o.eps, o.weight_decay, o.amsgrad}; }

std::vector<ParamGroup<AdamOptions>> as_adam(std::vector<ParamGroup<AdamWOptions>> groups) {
  std::vector<ParamGroup<AdamOptions>> out;
  for (auto& g : groups) out.push_back({std::move(g.params), as_adam(g.options)});
  return out;
}
}  // namespace

Adam::Adam(std::vector<Tensor> params, const AdamOptions& o)
    : Adam(std::vector<ParamGroup<AdamOptions>>{{std::move(params), o}}, false, "Adam") {}

Adam::Adam(std::vector<ParamGroup<AdamOptions>> groups) : Adam(std::move(groups), false, "Adam") {}

Adam::Adam(std::vector<ParamGroup<AdamOptions>> groups, bool decoupled, const char* name)
    : OptimizerWith(name), decoupled_(decoupled) {
  add_param_groups(std::move(groups));
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& o)
    : Adam(std::vector<ParamGroup<AdamOptions>>{{std::move(params), as_adam(o)}}, true, "AdamW") {}

AdamW::AdamW(std::vector<ParamGroup<AdamWOptions>> groups) : Adam(as_adam(std::move(groups)), true, "AdamW") {}

void Adam::check_options(const AdamOptions& o) const { check_adam(o, name().c_str()); }

void Adam::store_momentum(size_t g, double beta1) {
  check(beta1 >= 0 && beta1 < 1, "{}: beta1 must be in [0, 1), got {}", name(), beta1);
  options_[g].betas.first = beta1;
}

void Adam::update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) {
  const AdamOptions& o = options_[group];
  Tensor m = buffer(state, "exp_avg", param);
  Tensor v = buffer(state, "exp_avg_sq", param);
  Tensor vmax = o.amsgrad ? buffer(state, "max_exp_avg_sq", param) : Tensor();
  const auto [b1, b2] = o.betas;
  const double t = static_cast<double>(state.step);
  const double step_size = o.lr / (1 - std::pow(b1, t));
  const double bc2_sqrt = std::sqrt(1 - std::pow(b2, t));
  dispatch_floating(param.dtype(), [&]<class T>() {
    T* w = param.data<T>();
    const T* g = grad.data<T>();
    T* pm = m.data<T>();
    T* pv = v.data<T>();
    T* pmax = vmax.defined() ? vmax.data<T>() : nullptr;
    const T wd = static_cast<T>(o.weight_decay), decay = static_cast<T>(1 - o.lr * o.weight_decay),
            beta1 = static_cast<T>(b1), beta2 = static_cast<T>(b2), eps = static_cast<T>(o.eps),
            ss = static_cast<T>(step_size), bc = static_cast<T>(bc2_sqrt);
    auto kernel = [&](auto decoupled, auto l2, auto ams) {
      parallel_for(0, param.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
        T* __restrict pw = w;
        const T* __restrict pg = g;
        T *__restrict m1 = pm, *__restrict v2 = pv, *__restrict vm = pmax;
        // Local copies: read through the lambda's references, GCC reloads them after every store and
        // leaves the loop scalar.
        const T k_decay = decay, k_wd = wd, k_b1 = beta1, k_b2 = beta2, k_ss = ss, k_bc = bc, k_eps = eps;
        for (int64_t i = lo; i < hi; ++i) {
          T d = pg[i];
          if constexpr (decoupled) pw[i] *= k_decay;
          else if constexpr (l2) d += k_wd * pw[i];
          const T mi = m1[i] + (1 - k_b1) * (d - m1[i]);  // lerp towards g
          m1[i] = mi;
          const T vi = k_b2 * v2[i] + (1 - k_b2) * d * d;
          v2[i] = vi;
          T second = vi;
          if constexpr (ams) second = vm[i] = std::max(vm[i], vi);
          pw[i] -= k_ss * (mi / (std::sqrt(second) / k_bc + k_eps));
        }
      });
    };
    with_flag(decoupled_, [&](auto decoupled) {
      with_flag(o.weight_decay != 0, [&](auto l2) {
        with_flag(pmax != nullptr, [&](auto ams) { kernel(decoupled, l2, ams); });
      });
    });
  });
}

}  // namespace xg::optim

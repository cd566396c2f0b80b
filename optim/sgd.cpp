// SGD, RMSprop and Adagrad: option checks and the per-element update loops.
#include <cmath>

#include "autograd/parallel.hpp"
#include "optim/flags.hpp"
#include "optim/optimizers.hpp"
#include "optim/sgd_step.hpp"

namespace xg::optim {

using detail::with_flag;

namespace {
void check_common(const char* op, double lr, double weight_decay) {
  check(lr >= 0, "{}: learning rate must be non-negative, got {}", op, lr);
  check(weight_decay >= 0, "{}: weight_decay must be non-negative, got {}", op, weight_decay);
}

void check_sgd(const SGDOptions& o) {
  check_common("SGD", o.lr, o.weight_decay);
  check(o.momentum >= 0, "SGD: momentum must be non-negative, got {}", o.momentum);
  check(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
        "SGD: nesterov needs momentum > 0 and dampening = 0, got momentum {} and dampening {}", o.momentum,
        o.dampening);
}
}  // namespace

SGD::SGD(std::vector<Tensor> params, const SGDOptions& o) : SGD(std::vector<ParamGroup<SGDOptions>>{{std::move(params), o}}) {}

SGD::SGD(std::vector<ParamGroup<SGDOptions>> groups) : OptimizerWith("SGD") { add_param_groups(std::move(groups)); }

void SGD::check_options(const SGDOptions& o) const { check_sgd(o); }

void SGD::store_momentum(size_t g, double m) {
  SGDOptions o = options_[g];
  o.momentum = m;
  check_sgd(o);
  options_[g] = o;
}

void SGD::update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) {
  const SGDOptions& o = options_[group];
  const bool first = !state.buffers.count("momentum_buffer");  // PyTorch: "buf is None"
  detail::sgd_step(param, grad, o.momentum != 0 ? buffer(state, "momentum_buffer", param) : Tensor(), first, o);
}

void detail::sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buf, bool first, const SGDOptions& o) {
  dispatch_floating(param.dtype(), [&]<class T>() {
    T* w = param.data<T>();
    const T* g = grad.data<T>();
    T* b = buf.defined() ? buf.data<T>() : nullptr;
    const T lr = static_cast<T>(o.lr), wd = static_cast<T>(o.weight_decay), mom = static_cast<T>(o.momentum),
            keep = static_cast<T>(1 - o.dampening);
    // One loop per combination of the options, so that each runs as plain vector arithmetic.
    auto kernel = [&](auto decay, auto use_buf, auto nesterov, auto init) {
      parallel_for(0, param.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
        T* __restrict pw = w;
        const T* __restrict pg = g;
        T* __restrict pb = b;
        for (int64_t i = lo; i < hi; ++i) {
          T d = pg[i];
          if constexpr (decay) d += wd * pw[i];
          if constexpr (use_buf) {
            T bi;
            if constexpr (init) bi = d;
            else bi = mom * pb[i] + keep * d;
            pb[i] = bi;
            if constexpr (nesterov) d += mom * bi;
            else d = bi;
          }
          pw[i] -= lr * d;
        }
      });
    };
    with_flag(o.weight_decay != 0, [&](auto decay) {
      with_flag(b != nullptr, [&](auto use_buf) {
        with_flag(o.nesterov, [&](auto nesterov) {
          with_flag(first, [&](auto init) { kernel(decay, use_buf, nesterov, init); });
        });
      });
    });
  });
}

RMSprop::RMSprop(std::vector<Tensor> params, const RMSpropOptions& o)
    : RMSprop(std::vector<ParamGroup<RMSpropOptions>>{{std::move(params), o}}) {}

RMSprop::RMSprop(std::vector<ParamGroup<RMSpropOptions>> groups) : OptimizerWith("RMSprop") {
  add_param_groups(std::move(groups));
}

void RMSprop::check_options(const RMSpropOptions& o) const {
  check_common("RMSprop", o.lr, o.weight_decay);
  check(o.alpha >= 0, "RMSprop: alpha must be non-negative, got {}", o.alpha);
  check(o.eps >= 0, "RMSprop: eps must be non-negative, got {}", o.eps);
  check(o.momentum >= 0, "RMSprop: momentum must be non-negative, got {}", o.momentum);
}

void RMSprop::store_momentum(size_t g, double m) {
  check(m >= 0, "RMSprop: momentum must be non-negative, got {}", m);
  options_[g].momentum = m;
}

void RMSprop::update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) {
  const RMSpropOptions& o = options_[group];
  Tensor sq = buffer(state, "square_avg", param);
  Tensor mb = o.momentum > 0 ? buffer(state, "momentum_buffer", param) : Tensor();
  Tensor ga = o.centered ? buffer(state, "grad_avg", param) : Tensor();
  dispatch_floating(param.dtype(), [&]<class T>() {
    T* w = param.data<T>();
    const T* g = grad.data<T>();
    T* s = sq.data<T>();
    T* b = mb.defined() ? mb.data<T>() : nullptr;
    T* a = ga.defined() ? ga.data<T>() : nullptr;
    const T lr = static_cast<T>(o.lr), wd = static_cast<T>(o.weight_decay), alpha = static_cast<T>(o.alpha),
            eps = static_cast<T>(o.eps), mom = static_cast<T>(o.momentum);
    auto kernel = [&](auto l2, auto centered, auto use_mom) {
      parallel_for(0, param.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
        T* __restrict pw = w;
        const T* __restrict pg = g;
        T *__restrict ps = s, *__restrict pa = a, *__restrict pb = b;
        for (int64_t i = lo; i < hi; ++i) {
          T d = pg[i];
          if constexpr (l2) d += wd * pw[i];
          const T si = alpha * ps[i] + (1 - alpha) * d * d;
          ps[i] = si;
          T avg;
          if constexpr (centered) {
            const T ai = pa[i] + (1 - alpha) * (d - pa[i]);
            pa[i] = ai;
            avg = std::sqrt(si - ai * ai) + eps;
          } else {
            avg = std::sqrt(si) + eps;
          }
          if constexpr (use_mom) {
            const T bi = mom * pb[i] + d / avg;
            pb[i] = bi;
            pw[i] -= lr * bi;
          } else {
            pw[i] -= lr * (d / avg);
          }
        }
      });
    };
    with_flag(o.weight_decay != 0, [&](auto l2) {
      with_flag(a != nullptr, [&](auto centered) {
        with_flag(b != nullptr, [&](auto use_mom) { kernel(l2, centered, use_mom); });
      });
    });
  });
}

Adagrad::Adagrad(std::vector<Tensor> params, const AdagradOptions& o)
    : Adagrad(std::vector<ParamGroup<AdagradOptions>>{{std::move(params), o}}) {}

Adagrad::Adagrad(std::vector<ParamGroup<AdagradOptions>> groups) : OptimizerWith("Adagrad") {
  add_param_groups(std::move(groups));
}

void Adagrad::check_options(const AdagradOptions& o) const {
  check_common("Adagrad", o.lr, o.weight_decay);
  check(o.lr_decay >= 0, "Adagrad: lr_decay must be non-negative, got {}", o.lr_decay);
  check(o.initial_accumulator_value >= 0, "Adagrad: initial_accumulator_value must be non-negative, got {}",
        o.initial_accumulator_value);
  check(o.eps >= 0, "Adagrad: eps must be non-negative, got {}", o.eps);
}

void Adagrad::update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) {
  const AdagradOptions& o = options_[group];
  Tensor sum = buffer(state, "sum", param, o.initial_accumulator_value);
  const double clr = o.lr / (1 + static_cast<double>(state.step - 1) * o.lr_decay);
  dispatch_floating(param.dtype(), [&]<class T>() {
    T* w = param.data<T>();
    const T* g = grad.data<T>();
    T* s = sum.data<T>();
    const T lr = static_cast<T>(clr), wd = static_cast<T>(o.weight_decay), eps = static_cast<T>(o.eps);
    with_flag(o.weight_decay != 0, [&](auto l2) {
      parallel_for(0, param.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
        T* __restrict pw = w;
        const T* __restrict pg = g;
        T* __restrict ps = s;
        for (int64_t i = lo; i < hi; ++i) {
          T d = pg[i];
          if constexpr (l2) d += wd * pw[i];
          const T si = ps[i] + d * d;
          ps[i] = si;
          pw[i] -= lr * (d / (std::sqrt(si) + eps));
        }
      });
    });
  });
}

}  // namespace xg::optim

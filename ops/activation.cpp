// Activations composed of primitives (silu, elu, softplus, hardswish, mish), with accurate
// log1p/expm1 built from primitives; erf is a custom op (std::erf cannot be composed), and exact gelu
// a fused one (one pass forward and one backward), checked against its composition ref::gelu.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>

#include "autograd/function.hpp"
#include "autograd/parallel.hpp"
#include "ops/kernels.hpp"
#include "ops/normal.hpp"
#include "ops/ops.hpp"

namespace xg {

namespace {

void check_floating(const Tensor& x, const char* op) {
  check(x.defined(), "{}: undefined tensor", op);
  check(is_floating(x.dtype()), "{}: needs a floating tensor, got {}", op, dtype_name(x.dtype()));
}

// A denominator that is 1 where `zero` holds: keeps the branch where() discards finite, so the zero
// gradient it receives does not turn into 0 * inf = NaN.
Tensor nonzero_where(const Tensor& d, const Tensor& zero) { return add(d, zero.to(d.dtype())); }

// erf on raw buffers; its backward is written with xgrad ops, so it differentiates again.
struct Erf : Function<Erf> {
  static constexpr const char* name = "erf";
  static Tensor forward(Context& ctx, const Tensor& x) {
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), [&]<class T>() {
      const T* px = x.data<T>();
      T* py = y.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) py[i] = std::erf(px[i]);
    });
    ctx.save_for_backward({x});
    return y;
  }
  // d/dx erf(x) = 2/sqrt(pi) exp(-x^2)
  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    if (!ctx.needs_input_grad(0)) return {Tensor()};
    const Tensor& x = ctx.saved()[0];
    return {mul(grads[0], mul(exp(neg(mul(x, x))), 2.0 / std::sqrt(std::numbers::pi)))};
  }
};

// gelu(x) = x Phi(x), gelu'(x) = Phi(x) + x phi(x): one pass over the buffers each way. With
// create_graph, the gradient of ref::gelu's composition, which differentiates again.
struct Gelu : Function<Gelu> {
  static constexpr const char* name = "gelu";
  static Tensor forward(Context& ctx, const Tensor& x) {
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), [&]<class T>() {
      const T* px = x.data<T>();
      T* py = y.data<T>();
      parallel_for(0, x.numel(), detail::elementwise_grain, [&, px, py](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) py[i] = px[i] * detail::normal_cdf(px[i]);
      });
    });
    ctx.save_for_backward({x});
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    if (!ctx.needs_input_grad(0)) return {Tensor()};
    if (GradMode::is_enabled())
      return composite_backward([](const std::vector<Tensor>& v) { return ref::gelu(v[0]); }, ctx.saved(),
                                grads[0], {true});
    const Tensor& x = ctx.saved()[0];
    const Tensor& dy = grads[0];
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), [&]<class T>() {
      const T *px = x.data<T>(), *pdy = dy.data<T>();
      T* pdx = dx.data<T>();
      parallel_for(0, x.numel(), detail::elementwise_grain, [&, px, pdy, pdx](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) pdx[i] = pdy[i] * (detail::normal_cdf(px[i]) + px[i] * detail::normal_pdf(px[i]));
      });
    });
    return {dx};
  }
};

// log(1 + u) for u in [0, 1], by Kahan's trick: with w = 1 + u rounded, log(w) u / (w - 1) is
// accurate to a few ulps also for u far below the rounding unit, where log(1 + u) gives 0.
Tensor log1p_unit(const Tensor& u) {
  Tensor w = add(u, 1.0);
  Tensor one = eq(w, 1.0);
  return where(one, u, div(mul(log(w), u), nonzero_where(sub(w, 1.0), one)));
}

// exp(min(x, 0)) - 1: Kahan's (u - 1) x / log(u), u = exp(x) rounded, on [-1, 0] (accurate near 0,
// where exp(x) - 1 cancels); below -1 the plain form has no cancellation. Every branch sees x clamped
// to its own range, so no discarded branch overflows into the gradient.
Tensor expm1_nonpositive(const Tensor& x) {
  Tensor xs = clamp(x, -1.0, 0.0);
  Tensor u = exp(xs);
  Tensor one = eq(u, 1.0);
  Tensor kahan = where(one, xs, div(mul(sub(u, 1.0), xs), nonzero_where(log(u), one)));
  return where(lt(x, -1.0), sub(exp(clamp(x, -INFINITY, -1.0)), 1.0), kahan);
}

// log(1 + exp(z)) without overflow, with the gradient sigmoid(z) everywhere (also at z = 0, where
// max(z, 0) + log1p(exp(-|z|)) would give the subgradient 0): each branch sees only its half-line.
Tensor softplus_stable(const Tensor& z) {
  Tensor pos = clamp_min(z, 0.0), nonpos = clamp(z, -INFINITY, 0.0);
  return where(gt(z, 0.0), add(pos, log1p_unit(exp(neg(pos)))), log1p_unit(exp(nonpos)));
}

}  // namespace

Tensor erf(const Tensor& x) {
  if (trace::enabled()) return trace::op("erf", {x}, {}, [&] { return erf(x); });
  check_floating(x, "erf");
  return Erf::apply(x);
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  if (trace::enabled())
    return trace::op("gelu", {x}, {{"approximate", approximate}}, [&] { return gelu(x, approximate); });
  check_floating(x, "gelu");
  check(approximate == "none" || approximate == "tanh",
        "gelu: approximate must be \"none\" or \"tanh\", got \"{}\"", approximate);
  if (approximate == "none") return Gelu::apply(x);
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  const double k = std::sqrt(2.0 / std::numbers::pi);
  Tensor inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), k);
  return mul(mul(x, 0.5), add(tanh(inner), 1.0));
}

namespace ref {
Tensor gelu(const Tensor& x) {
  check_floating(x, "gelu");
  return mul(mul(x, 0.5), add(erf(mul(x, std::numbers::sqrt2 / 2)), 1.0));
}
}  // namespace ref

Tensor silu(const Tensor& x) {
  if (trace::enabled()) return trace::op("silu", {x}, {}, [&] { return silu(x); });
  check_floating(x, "silu");
  return mul(x, sigmoid(x));
}

Tensor elu(const Tensor& x, double alpha) {
  if (trace::enabled()) return trace::op("elu", {x}, {{"alpha", alpha}}, [&] { return elu(x, alpha); });
  check_floating(x, "elu");
  check(std::isfinite(alpha), "elu: alpha must be finite, got {}", alpha);
  return where(gt(x, 0.0), x, mul(expm1_nonpositive(x), alpha));
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  if (trace::enabled())
    return trace::op("softplus", {x}, {{"beta", beta}, {"threshold", threshold}},
                     [&] { return softplus(x, beta, threshold); });
  check_floating(x, "softplus");
  check(beta != 0 && std::isfinite(beta), "softplus: beta must be finite and non-zero, got {}", beta);
  Tensor bx = mul(x, beta);
  // PyTorch's rule: x itself where beta x > threshold, else log(1 + exp(beta x)) / beta.
  return where(gt(bx, threshold), x, div(softplus_stable(bx), beta));
}

Tensor hardswish(const Tensor& x) {
  if (trace::enabled()) return trace::op("hardswish", {x}, {}, [&] { return hardswish(x); });
  check_floating(x, "hardswish");
  // x relu6(x + 3) / 6; clamp passes the gradient at both ends, as PyTorch's backward does at -3 and 3.
  return div(mul(x, clamp(add(x, 3.0), 0.0, 6.0)), 6.0);
}

Tensor mish(const Tensor& x) {
  if (trace::enabled()) return trace::op("mish", {x}, {}, [&] { return mish(x); });
  check_floating(x, "mish");
  return mul(x, tanh(softplus_stable(x)));
}

}  // namespace xg

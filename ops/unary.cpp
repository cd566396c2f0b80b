// Unary elementwise ops, each with its backward right below the forward.
#include <cmath>

#include "ops/kernels.hpp"

namespace xg {

using detail::Grads;

namespace {

// Runs op over a floating tensor (an i64 input is promoted to f32 first, as PyTorch does for exp, log...).
template <class Op>
Tensor map_floating(const Tensor& x, const char* name, Op op) {
  check(x.defined(), "{}: undefined tensor", name);
  Tensor xf = is_floating(x.dtype()) ? x : x.to(Dtype::f32);
  return dispatch_floating(xf.dtype(), [&]<class T>() { return detail::unary_kernel<T>(xf, [&](T v) { return static_cast<T>(op(v)); }); });
}

template <class Op>
Tensor map_any(const Tensor& x, const char* name, Op op) {
  check(x.defined(), "{}: undefined tensor", name);
  return dispatch(x.dtype(), [&]<class T>() { return detail::unary_kernel<T>(x, [&](T v) { return static_cast<T>(op(v)); }); });
}

Tensor zero_of(const Tensor& g) { return scalar_tensor(0.0, g.dtype()); }

}  // namespace

Tensor neg(const Tensor& x) {
  if (trace::enabled()) return trace::op("neg", {x}, {}, [&] { return neg(x); });
  return record("neg", map_any(x, "neg", [](auto v) { return -v; }), {x},
                [](const GradArgs& g) { return Grads{neg(g.grad)}; }, {});
}

Tensor exp(const Tensor& x) {
  if (trace::enabled()) return trace::op("exp", {x}, {}, [&] { return exp(x); });
  return record("exp", map_floating(x, "exp", [](auto v) { return std::exp(v); }), {x},
                [](const GradArgs& g) { return Grads{mul(g.grad, g.out)}; }, {.output = true});
}

Tensor log(const Tensor& x) {
  if (trace::enabled()) return trace::op("log", {x}, {}, [&] { return log(x); });
  return record("log", map_floating(x, "log", [](auto v) { return std::log(v); }), {x},
                [x](const GradArgs& g) { return Grads{div(g.grad, x)}; });
}

Tensor sqrt(const Tensor& x) {
  if (trace::enabled()) return trace::op("sqrt", {x}, {}, [&] { return sqrt(x); });
  return record("sqrt", map_floating(x, "sqrt", [](auto v) { return std::sqrt(v); }), {x},
                [](const GradArgs& g) { return Grads{div(g.grad, mul(g.out, 2.0))}; }, {.output = true});
}

Tensor pow(const Tensor& x, double p) {
  if (trace::enabled()) return trace::op("pow", {x}, {{"exponent", p}}, [&] { return pow(x, p); });
  if (p == 2.0) return mul(x, x);  // exact, and its gradient is the usual 2x
  return record("pow", map_floating(x, "pow", [p](auto v) { return std::pow(v, p); }), {x},
                [x, p](const GradArgs& g) { return Grads{mul(g.grad, mul(pow(x, p - 1.0), p))}; });
}

Tensor sign(const Tensor& x) {
  return map_any(x.detach(), "sign", [](auto v) { return (v > 0) - (v < 0); });
}

Tensor abs(const Tensor& x) {
  if (trace::enabled()) return trace::op("abs", {x}, {}, [&] { return abs(x); });
  return record("abs", map_any(x, "abs", [](auto v) { return v < 0 ? -v : v; }), {x},
                [x](const GradArgs& g) { return Grads{mul(g.grad, sign(x).to(g.grad.dtype()))}; });
}

namespace {
// relu's backward: g where out > 0, else 0. Differentiable in g (the mask is constant almost everywhere).
Tensor relu_backward(const Tensor& g, const Tensor& out) {
  Tensor dx = Tensor::empty(g.shape(), g.dtype());
  dispatch(g.dtype(), [&]<class T>() {
    const T* pg = g.data<T>();
    const T* po = out.data<T>();
    T* pd = dx.data<T>();
    parallel_for(0, g.numel(), detail::elementwise_grain, [&](int64_t lo, int64_t hi) {
      const T *__restrict gi = pg, *__restrict oi = po;  // local copies and no branch: the loop vectorises
      T* __restrict di = pd;
      for (int64_t i = lo; i < hi; ++i) {
        const T v = gi[i];
        di[i] = oi[i] > T(0) ? v : T(0);
      }
    });
  });
  return record("relu_backward", dx, {g}, [out](const GradArgs& gg) { return Grads{relu_backward(gg.grad, out)}; },
                {.tensors = {out}});
}
}  // namespace

Tensor relu(const Tensor& x) {
  if (trace::enabled()) return trace::op("relu", {x}, {}, [&] { return relu(x); });
  return record("relu", map_any(x, "relu", [](auto v) { return v < 0 ? decltype(v)(0) : v; }), {x},
                [](const GradArgs& g) { return Grads{relu_backward(g.grad, g.out.detach())}; }, {.output = true});
}

Tensor leaky_relu(const Tensor& x, double slope) {
  if (trace::enabled())
    return trace::op("leaky_relu", {x}, {{"negative_slope", slope}}, [&] { return leaky_relu(x, slope); });
  return record("leaky_relu", map_floating(x, "leaky_relu", [slope](auto v) { return v > 0 ? v : v * slope; }), {x},
                [x, slope](const GradArgs& g) { return Grads{where(gt(x, 0.0), g.grad, mul(g.grad, slope))}; });
}

Tensor sigmoid(const Tensor& x) {
  if (trace::enabled()) return trace::op("sigmoid", {x}, {}, [&] { return sigmoid(x); });
  return record("sigmoid", map_floating(x, "sigmoid", [](auto v) { return 1 / (1 + std::exp(-v)); }), {x},
                [](const GradArgs& g) { return Grads{mul(g.grad, mul(g.out, 1.0 - g.out))}; }, {.output = true});
}

Tensor tanh(const Tensor& x) {
  if (trace::enabled()) return trace::op("tanh", {x}, {}, [&] { return tanh(x); });
  return record("tanh", map_floating(x, "tanh", [](auto v) { return std::tanh(v); }), {x},
                [](const GradArgs& g) { return Grads{mul(g.grad, 1.0 - mul(g.out, g.out))}; }, {.output = true});
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  if (trace::enabled()) return trace::op("clamp", {x}, {{"min", lo}, {"max", hi}}, [&] { return clamp(x, lo, hi); });
  check(!(lo > hi), "clamp: lo {} is greater than hi {}", lo, hi);
  return record("clamp", map_any(x, "clamp", [lo, hi](auto v) { return v < lo ? lo : (v > hi ? hi : v); }), {x},
                [x, lo, hi](const GradArgs& g) {
                  Tensor inside = mul(ge(x, lo), le(x, hi));
                  return Grads{where(inside, g.grad, zero_of(g.grad))};
                });
}

Tensor clamp_min(const Tensor& x, double lo) {
  if (trace::enabled()) return trace::op("clamp", {x}, {{"min", lo}}, [&] { return clamp_min(x, lo); });
  return record("clamp_min", map_any(x, "clamp_min", [lo](auto v) { return v < lo ? lo : v; }), {x},
                [x, lo](const GradArgs& g) { return Grads{where(ge(x, lo), g.grad, zero_of(g.grad))}; });
}

}  // namespace xg

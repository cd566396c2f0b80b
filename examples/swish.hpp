// A user-defined fused op: Swish (x * sigmoid(x)) with a hand-written kernel and backward, the
// worked example of README's "Writing a custom op".
#pragma once

#include <cmath>

#include <xgrad.hpp>

struct Swish : xg::Function<Swish> {
  static constexpr const char* name = "swish";
  static constexpr bool once_differentiable = true;  // backward works on raw buffers

  // Runs with recording off; saves what backward reads.
  static xg::Tensor forward(xg::Context& ctx, const xg::Tensor& x) {
    xg::Tensor y = xg::Tensor::empty(x.shape(), x.dtype());
    xg::dispatch_floating(x.dtype(), [&]<class T>() {
      const T* px = x.data<T>();
      T* py = y.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) py[i] = px[i] / (T(1) + std::exp(-px[i]));
    });
    ctx.save_for_backward({x});
    return y;
  }

  // d/dx x*s(x) = s + x*s*(1 - s), with s = sigmoid(x).
  static std::vector<xg::Tensor> backward(xg::Context& ctx, const std::vector<xg::Tensor>& grads) {
    if (!ctx.needs_input_grad(0)) return {xg::Tensor()};
    const xg::Tensor& x = ctx.saved()[0];
    xg::Tensor dx = xg::Tensor::empty(x.shape(), x.dtype());
    xg::dispatch_floating(x.dtype(), [&]<class T>() {
      const T* px = x.data<T>();
      const T* pg = grads[0].data<T>();
      T* pd = dx.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const T s = T(1) / (T(1) + std::exp(-px[i]));
        pd[i] = pg[i] * (s + px[i] * s * (T(1) - s));
      }
    });
    return {dx};
  }
};

// The same op composed of primitives: the tape derives its gradient. The executable specification.
inline xg::Tensor swish_reference(const xg::Tensor& x) { return x * xg::sigmoid(x); }

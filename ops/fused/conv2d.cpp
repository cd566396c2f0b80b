// Fused conv2d and conv_transpose2d, on the kernels of ops/fused/im2col.cpp (and Winograd where it
// serves). A transposed convolution is a convolution's input gradient: its forward runs the
// convolution's backward-data kernel (col2im), its backward the convolution's forward (input
// gradient) and weight gradient. Registered through the public custom-op API (xg::Function).
#include "autograd/function.hpp"
#include "ops/fused/conv_kernels.hpp"

namespace xg {

namespace {

using detail::ConvGeometry;

// Zeroes the gradients asked for (an empty batch or output has nothing to add).
void zero_defined(std::initializer_list<Tensor*> ts) {
  for (Tensor* t : ts)
    if (t->defined()) t->zero_();
}

struct Conv2dFn : Function<Conv2dFn> {
  static constexpr const char* name = "conv2d";

  static Tensor forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g) {
    ctx.save_for_backward({x, w});
    ctx.save("g", g);
    ctx.save("has_bias", b.defined());
    Tensor out = Tensor::empty({g.N, g.F, g.HO, g.WO}, x.dtype());
    if (out.numel() == 0) return out;
    dispatch_floating(x.dtype(), [&]<class T>() {
      detail::conv_forward<T>(x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, g, out.data<T>());
    });
    return out;
  }

  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    const Tensor &x = ctx.saved()[0], &w = ctx.saved()[1];
    const auto& g = ctx.get<ConvGeometry>("g");
    Tensor dout = grads[0], dx, dw, db;
    if (GradMode::is_enabled()) {  // create_graph: gradients the tape can differentiate again
      const Conv2dOptions o{.stride = {g.SH, g.SW}, .padding = {g.PH, g.PW}, .dilation = {g.DH, g.DW}, .groups = g.G};
      std::vector<Tensor> d = composite_backward([&o](const std::vector<Tensor>& v) { return ref::conv2d(v[0], v[1], Tensor(), o); },
                                                 {x, w}, dout, {ctx.needs_input_grad(0), ctx.needs_input_grad(1)});
      if (ctx.needs_input_grad(2) && ctx.get<bool>("has_bias")) db = sum(dout, {0, 2, 3});
      return {d[0], d[1], db};
    }
    if (ctx.needs_input_grad(0)) dx = Tensor::empty(x.shape(), x.dtype());
    if (ctx.needs_input_grad(1)) dw = Tensor::empty(w.shape(), w.dtype());
    if (ctx.needs_input_grad(2) && ctx.get<bool>("has_bias")) db = Tensor::empty({g.F}, x.dtype());
    dispatch_floating(x.dtype(), [&]<class T>() {
      auto ptr = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
      if (dout.numel() == 0) return zero_defined({&dx, &dw, &db});
      detail::conv_backward<T>(x.data<T>(), w.data<T>(), dout.data<T>(), g, ptr(dx), ptr(dw), ptr(db));
    });
    return {dx, dw, db};
  }
};

// g is the convolution whose input gradient this op is: x [N,F,HO,WO] -> out [N,C,H,W].
struct ConvTranspose2dFn : Function<ConvTranspose2dFn> {
  static constexpr const char* name = "conv_transpose2d";

  static Tensor forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g,
                        const ConvTranspose2dOptions& o) {
    ctx.save_for_backward({x, w});
    ctx.save("g", g);
    ctx.save("o", o);
    ctx.save("has_bias", b.defined());
    Tensor out = Tensor::empty({g.N, g.C, g.H, g.W}, x.dtype());
    if (out.numel() == 0) return out;
    dispatch_floating(x.dtype(), [&]<class T>() {
      T* po = out.data<T>();
      if (x.numel() == 0) std::fill(po, po + out.numel(), T(0));
      else detail::conv_backward<T>(nullptr, w.data<T>(), x.data<T>(), g, po, nullptr, nullptr);
      if (!b.defined()) return;
      const T* pb = b.data<T>();
      const int64_t P = g.H * g.W;
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t c = 0; c < g.C; ++c) {
          T* dst = po + (n * g.C + c) * P;
          for (int64_t p = 0; p < P; ++p) dst[p] += pb[c];
        }
    });
    return out;
  }

  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    const Tensor &x = ctx.saved()[0], &w = ctx.saved()[1];
    const auto& g = ctx.get<ConvGeometry>("g");
    Tensor dout = grads[0], dx, dw, db;
    if (ctx.needs_input_grad(2) && ctx.get<bool>("has_bias")) db = sum(dout, {0, 2, 3});
    if (GradMode::is_enabled()) {  // create_graph: through the reference composition
      const auto& o = ctx.get<ConvTranspose2dOptions>("o");
      std::vector<Tensor> d = composite_backward(
          [&o](const std::vector<Tensor>& v) { return ref::conv_transpose2d(v[0], v[1], Tensor(), o); }, {x, w}, dout,
          {ctx.needs_input_grad(0), ctx.needs_input_grad(1)});
      return {d[0], d[1], db};
    }
    if (ctx.needs_input_grad(0)) dx = Tensor::empty(x.shape(), x.dtype());
    if (ctx.needs_input_grad(1)) dw = Tensor::empty(w.shape(), w.dtype());
    dispatch_floating(x.dtype(), [&]<class T>() {
      if (dout.numel() == 0 || x.numel() == 0) return zero_defined({&dx, &dw});
      // dx: the convolution of dout; dw: the convolution's weight gradient with dout as its input.
      if (dx.defined()) detail::conv_forward<T>(dout.data<T>(), w.data<T>(), nullptr, g, dx.data<T>());
      if (dw.defined())
        detail::conv_backward<T>(dout.data<T>(), w.data<T>(), x.data<T>(), g, nullptr, dw.data<T>(), nullptr);
    });
    return {dx, dw, db};
  }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts) {
  if (trace::enabled())
    return trace::op("conv2d", {x, weight, bias}, trace::conv_attrs(opts),
                     [&] { return conv2d(x, weight, bias, opts); });
  ConvGeometry g = detail::conv_geometry(x, weight, bias, opts, "conv2d");
  return Conv2dFn::apply(x, weight, bias, g);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvTranspose2dOptions& opts) {
  ConvGeometry g = detail::conv_transpose_geometry(x, weight, bias, opts, "conv_transpose2d");
  return ConvTranspose2dFn::apply(x, weight, bias, g, opts);
}

}  // namespace xg

// conv2d + 2x2 max-pool as one op (ops/fused/conv_pool.hpp). airbench94's conv groups open with a conv
// and a max-pool: at its default widths and batch, the conv's unpooled output is 393 MB per group
// that the two ops write, read, and (as its gradient) write and read again.
#include <memory>

#include "autograd/allocator.hpp"
#include "autograd/function.hpp"
#include "autograd/trace.hpp"
#include "ops/fused/onednn_conv.hpp"
#include "ops/fused/pooled.hpp"
#include "ops/geometry.hpp"

namespace xg::detail {

namespace {

Conv2dOptions options_of(const ConvGeometry& g) {
  return {.stride = {g.SH, g.SW}, .padding = {g.PH, g.PW}, .dilation = {g.DH, g.DW}, .groups = g.G};
}

struct ConvMaxPoolFn : Function<ConvMaxPoolFn> {
  static constexpr const char* name = "conv2d_max_pool2d";

  static Tensor forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g) {
    const auto bytes = static_cast<std::size_t>(std::max<int64_t>(onednn_conv_pool_taps(g), 1));
    std::shared_ptr<uint8_t> taps(static_cast<uint8_t*>(alloc_bytes(bytes)),
                                  [bytes](uint8_t* p) { free_bytes(p, bytes); });
    Tensor out = Tensor::empty({g.N, g.F, g.HO / 2, g.WO / 2}, x.dtype());
    onednn_conv_pool_forward(x.data<float>(), w.data<float>(), b.defined() ? b.data<float>() : nullptr, g,
                             out.data<float>(), taps.get());
    ctx.save_for_backward({x, w, b});
    ctx.save("g", g);
    ctx.save("taps", taps);
    return out;
  }

  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    const Tensor &x = ctx.saved()[0], &w = ctx.saved()[1], &b = ctx.saved()[2];
    const auto& g = ctx.get<ConvGeometry>("g");
    const Tensor& dout = grads[0];
    // Each window's gradient goes to one conv output, so the bias's is the pooled gradient's sum.
    Tensor db = ctx.needs_input_grad(2) && b.defined() ? sum(dout, {0, 2, 3}) : Tensor();
    if (GradMode::is_enabled()) {  // create_graph: through the reference composition
      const Conv2dOptions o = options_of(g);
      const Tensor bias = b.defined() ? b.detach() : Tensor();  // its gradient is db
      std::vector<Tensor> d = composite_backward(
          [&](const std::vector<Tensor>& v) {
            return ref::max_pool2d(ref::conv2d(v[0], v[1], bias, o), {.kernel = 2});
          },
          {x, w}, dout, {ctx.needs_input_grad(0), ctx.needs_input_grad(1)});
      return {d[0], d[1], db};
    }
    Tensor dx = ctx.needs_input_grad(0) ? Tensor::empty(x.shape(), x.dtype()) : Tensor();
    Tensor dw = ctx.needs_input_grad(1) ? Tensor::empty(w.shape(), w.dtype()) : Tensor();
    if (dx.defined() || dw.defined())
      onednn_conv_pool_backward(x.data<float>(), w.data<float>(), dout.data<float>(),
                                ctx.get<std::shared_ptr<uint8_t>>("taps").get(), g,
                                dx.defined() ? dx.data<float>() : nullptr, dw.defined() ? dw.data<float>() : nullptr);
    return {dx, dw, db};
  }
};

}  // namespace

Tensor conv2d_max_pool2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& conv,
                         const Pool2dOptions& pool) {
  if (!trace::enabled() && x.defined() && x.dtype() == Dtype::f32) {
    const ConvGeometry g = conv_geometry(x, weight, bias, conv, "conv2d");
    if (pairs(pool_geometry(Shape{g.N, g.F, g.HO, g.WO}, pool, "max_pool2d")) && onednn_conv_pool_applies(g))
      return ConvMaxPoolFn::apply(x, weight, bias, g);
  }
  return max_pool2d(conv2d(x, weight, bias, conv), pool);
}

}  // namespace xg::detail

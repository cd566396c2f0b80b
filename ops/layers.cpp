// Layer checks shared by fused and reference ops, and the norms built only from primitives.
#include <limits>
#include <string_view>

#include "autograd/engine.hpp"
#include "ops/geometry.hpp"

namespace xg {

namespace detail {

namespace {
// Output size of a sliding window of k taps d apart; throws when the window does not fit. ceil_mode:
// PyTorch's pooling rule (round up, but the last window starts inside the input or the left padding).
int64_t window_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode, const char* op,
                   const char* what, const Shape& shape) {
  int64_t padded = 0, span = 0;  // in + 2p and d (k - 1) + 1, which hostile options would overflow
  check(!__builtin_mul_overflow(p, 2, &padded) && !__builtin_add_overflow(in, padded, &padded),
        "{}: padding {} is too large for input {} {} (shape {})", op, p, what, in, shape);
  check(!__builtin_mul_overflow(d, k - 1, &span) && span < std::numeric_limits<int64_t>::max(),
        "{}: dilation {} is too large for kernel {} {}", op, d, what, k);
  ++span;
  if (d == 1)
    check(padded >= k, "{}: kernel {} {} is larger than the padded input {} ({} + 2*{}) of shape {}", op, what, k,
          padded, in, p, shape);
  else
    check(padded >= span,
          "{}: kernel {} {} with dilation {} spans {}, more than the padded input {} ({} + 2*{}) of shape {}", op, what,
          k, d, span, padded, in, p, shape);
  int64_t out = (padded - span + (ceil_mode ? s - 1 : 0)) / s + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

void check_float_input(const Tensor& x, const char* op) {
  check(x.defined(), "{}: undefined input", op);
  check(is_floating(x.dtype()), "{}: input must be f32 or f64, got {}", op, dtype_name(x.dtype()));
}

// The checks conv2d and conv_transpose2d share: ranks, dtypes, positive strides and dilations.
void check_conv_args(const Tensor& x, const Tensor& w, const Tensor& b, Pair2 stride, Pair2 padding, Pair2 dilation,
                     int64_t groups, const char* op, const char* weight_layout) {
  check_float_input(x, op);
  check(x.dim() == 4, "{}: input must be 4-D (N,C,H,W), got shape {}", op, x.shape());
  check(w.defined() && w.dim() == 4, "{}: weight must be 4-D {}, got shape {}", op, weight_layout,
        w.defined() ? w.shape() : Shape{});
  check(w.dtype() == x.dtype(), "{}: weight dtype {} does not match input dtype {}", op, dtype_name(w.dtype()),
        dtype_name(x.dtype()));
  check(stride.h > 0 && stride.w > 0, "{}: stride must be positive, got ({}, {}) for input shape {}", op, stride.h,
        stride.w, x.shape());
  check(padding.h >= 0 && padding.w >= 0, "{}: padding must be non-negative, got ({}, {}) for input shape {}", op,
        padding.h, padding.w, x.shape());
  check(dilation.h > 0 && dilation.w > 0, "{}: dilation must be positive, got ({}, {}) for input shape {}", op,
        dilation.h, dilation.w, x.shape());
  check(groups > 0, "{}: groups must be positive, got {}", op, groups);
  check(x.shape()[1] % groups == 0, "{}: {} groups do not divide the input's {} channels (shape {})", op, groups,
        x.shape()[1], x.shape());
  check(w.shape()[2] > 0 && w.shape()[3] > 0, "{}: empty kernel in weight shape {}", op, w.shape());
  if (b.defined())
    check(b.dtype() == x.dtype(), "{}: bias dtype {} does not match input dtype {}", op, dtype_name(b.dtype()),
          dtype_name(x.dtype()));
}
}  // namespace

ConvGeometry conv_geometry(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o, const char* op) {
  check_conv_args(x, w, b, o.stride, o.padding, o.dilation, o.groups, op, "(F,C/groups,KH,KW)");
  const int64_t G = o.groups;
  if (G == 1)
    check(w.shape()[1] == x.shape()[1], "{}: input has {} channels (shape {}) but weight expects {} (shape {})", op,
          x.shape()[1], x.shape(), w.shape()[1], w.shape());
  else
    check(w.shape()[1] * G == x.shape()[1],
          "{}: input has {} channels (shape {}) but weight expects {} ({} per group, {} groups; shape {})", op,
          x.shape()[1], x.shape(), w.shape()[1] * G, w.shape()[1], G, w.shape());
  check(w.shape()[0] % G == 0, "{}: {} groups do not divide the weight's {} filters (shape {})", op, G, w.shape()[0],
        w.shape());
  if (b.defined())
    check(b.dim() == 1 && b.shape()[0] == w.shape()[0], "{}: bias shape {} does not match {} filters", op, b.shape(),
          w.shape()[0]);
  ConvGeometry g{x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], w.shape()[0], w.shape()[2], w.shape()[3],
                 0, 0, o.stride.h, o.stride.w, o.padding.h, o.padding.w, o.dilation.h, o.dilation.w, G};
  g.HO = window_out(g.H, g.KH, g.SH, g.PH, g.DH, false, op, "height", x.shape());
  g.WO = window_out(g.W, g.KW, g.SW, g.PW, g.DW, false, op, "width", x.shape());
  return g;
}

ConvGeometry conv_transpose_geometry(const Tensor& x, const Tensor& w, const Tensor& b, const ConvTranspose2dOptions& o,
                                     const char* op) {
  check_conv_args(x, w, b, o.stride, o.padding, o.dilation, o.groups, op, "(C_in,C_out/groups,KH,KW)");
  check(w.shape()[0] == x.shape()[1], "{}: input has {} channels (shape {}) but weight expects {} (shape {})", op,
        x.shape()[1], x.shape(), w.shape()[0], w.shape());
  const Pair2 s = o.stride, d = o.dilation, op_ = o.output_padding;
  check(op_.h >= 0 && op_.w >= 0 && (op_.h < s.h || op_.h < d.h) && (op_.w < s.w || op_.w < d.w),
        "{}: output_padding ({}, {}) must be non-negative and smaller than stride ({}, {}) or dilation ({}, {})", op,
        op_.h, op_.w, s.h, s.w, d.h, d.w);
  const int64_t G = o.groups, F = w.shape()[1] * G;
  if (b.defined())
    check(b.dim() == 1 && b.shape()[0] == F, "{}: bias shape {} does not match {} output channels", op, b.shape(), F);
  // (in - 1) s - 2 p + d (k - 1) + output_padding + 1, in 128 bits: hostile options overflow 64.
  auto out = [&](int64_t in, int64_t k, int64_t s_, int64_t p, int64_t d_, int64_t op_pad, const char* what) {
    const __int128 n = static_cast<__int128>(in - 1) * s_ - 2 * static_cast<__int128>(p) +
                       static_cast<__int128>(d_) * (k - 1) + op_pad + 1;
    check(n > 0,
          "{}: output {} would be {} for input {} {} (shape {}) with stride {}, padding {}, dilation {}, kernel {}", op,
          what, static_cast<int64_t>(std::max<__int128>(n, std::numeric_limits<int64_t>::min())), what, in, x.shape(),
          s_, p, d_, k);
    check(n <= std::numeric_limits<int64_t>::max(), "{}: output {} is too large for input shape {}", op, what,
          x.shape());
    return static_cast<int64_t>(n);
  };
  const int64_t H = x.shape()[2], W = x.shape()[3], KH = w.shape()[2], KW = w.shape()[3];
  return ConvGeometry{x.shape()[0], F, out(H, KH, s.h, o.padding.h, d.h, op_.h, "height"),
                      out(W, KW, s.w, o.padding.w, d.w, op_.w, "width"), x.shape()[1], KH, KW, H, W, s.h, s.w,
                      o.padding.h, o.padding.w, d.h, d.w, G};
}

PoolGeometry pool_geometry(const Tensor& x, const Pool2dOptions& o, const char* op) {
  check_float_input(x, op);
  return pool_geometry(x.shape(), o, op);
}

PoolGeometry pool_geometry(const Shape& shape, const Pool2dOptions& o, const char* op) {
  check(shape.size() == 4, "{}: input must be 4-D (N,C,H,W), got shape {}", op, shape);
  check(o.kernel.h > 0 && o.kernel.w > 0, "{}: kernel must be positive, got ({}, {}) for input shape {}", op, o.kernel.h,
        o.kernel.w, shape);
  Pair2 s = o.stride == Pair2(0) ? o.kernel : o.stride;
  check(s.h > 0 && s.w > 0, "{}: stride must be positive, got ({}, {}) for input shape {}", op, s.h, s.w, shape);
  check(o.padding.h >= 0 && o.padding.w >= 0 && 2 * o.padding.h <= o.kernel.h && 2 * o.padding.w <= o.kernel.w,
        "{}: padding ({}, {}) must be non-negative and at most half the kernel ({}, {})", op, o.padding.h,
        o.padding.w, o.kernel.h, o.kernel.w);
  check(o.dilation.h > 0 && o.dilation.w > 0, "{}: dilation must be positive, got ({}, {}) for input shape {}", op,
        o.dilation.h, o.dilation.w, shape);
  check(o.dilation == Pair2(1) || std::string_view(op) != "avg_pool2d",
        "{}: dilation ({}, {}) is not supported (PyTorch's avg_pool2d has none)", op, o.dilation.h, o.dilation.w);
  PoolGeometry g{shape[0], shape[1], shape[2], shape[3], o.kernel.h, o.kernel.w, 0, 0, s.h, s.w,
                 o.padding.h, o.padding.w, o.dilation.h, o.dilation.w, o.ceil_mode, o.count_include_pad};
  g.HO = window_out(g.H, g.KH, g.SH, g.PH, g.DH, g.ceil_mode, op, "height", shape);
  g.WO = window_out(g.W, g.KW, g.SW, g.PW, g.DW, g.ceil_mode, op, "width", shape);
  return g;
}

int64_t check_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                         const Tensor& running_var, bool training, double momentum, double eps, const char* op) {
  check_float_input(x, op);
  check(x.dim() == 2 || x.dim() == 4, "{}: input must be [N,C] or [N,C,H,W], got shape {}", op, x.shape());
  const int64_t C = x.shape()[1];
  auto per_channel = [&](const Tensor& t, const char* name) {
    if (!t.defined()) return;
    check(t.dim() == 1 && t.shape()[0] == C, "{}: {} has shape {}, expected [{}] for input shape {}", op, name,
          t.shape(), C, x.shape());
    check(t.dtype() == x.dtype(), "{}: {} dtype {} does not match input dtype {}", op, name, dtype_name(t.dtype()),
          dtype_name(x.dtype()));
  };
  per_channel(gamma, "weight");
  per_channel(beta, "bias");
  per_channel(running_mean, "running_mean");
  per_channel(running_var, "running_var");
  check(running_mean.defined() == running_var.defined(), "{}: give both running_mean and running_var, or neither", op);
  check(eps > 0, "{}: eps must be positive, got {}", op, eps);
  check(momentum >= 0 && momentum <= 1, "{}: momentum must be in [0, 1], got {}", op, momentum);
  if (training || !running_mean.defined())
    check(x.numel() / std::max<int64_t>(C, 1) > 1, "{}: expected more than 1 value per channel when training, got input shape {}",
          op, x.shape());
  return C;
}

void check_post_activation(PostActivation act, const char* op) {
  check(act == PostActivation::none || act == PostActivation::relu || act == PostActivation::gelu,
        "{}: unknown activation {} (none, relu or gelu)", op, static_cast<int>(act));
}

Tensor apply_post_activation(const Tensor& y, PostActivation act) {
  return act == PostActivation::relu ? relu(y) : act == PostActivation::gelu ? gelu(y) : y;
}

}  // namespace detail

const char* post_activation_name(PostActivation act) {
  detail::check_post_activation(act, "post_activation_name");
  return act == PostActivation::relu ? "relu" : act == PostActivation::gelu ? "gelu" : "none";
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& gamma, const Tensor& beta, double eps) {
  check(x.defined() && is_floating(x.dtype()), "layer_norm: input must be a floating tensor");
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  check(k > 0 && k <= x.dim() && Shape(x.shape().end() - k, x.shape().end()) == normalized_shape,
        "layer_norm: normalized_shape {} does not match the trailing dims of input shape {}", normalized_shape,
        x.shape());
  for (const Tensor* t : {&gamma, &beta})
    if (t->defined())
      check(t->shape() == normalized_shape, "layer_norm: weight/bias shape {} must equal normalized_shape {}",
            t->shape(), normalized_shape);
  check(eps > 0, "layer_norm: eps must be positive, got {}", eps);
  Dims dims;
  for (int64_t i = x.dim() - k; i < x.dim(); ++i) dims.push_back(i);
  Tensor mu = mean(x, dims, true);
  Tensor y = (x - mu) / sqrt(var(x, dims, false, true) + eps);
  if (gamma.defined()) y = y * gamma;
  if (beta.defined()) y = y + beta;
  return y;
}

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, double eps) {
  check(x.defined() && is_floating(x.dtype()), "group_norm: input must be a floating tensor");
  check(x.dim() >= 2, "group_norm: input must be [N,C,*], got shape {}", x.shape());
  const int64_t N = x.shape()[0], C = x.shape()[1];
  check(groups > 0 && C % groups == 0, "group_norm: {} groups do not divide {} channels (input shape {})", groups, C,
        x.shape());
  for (const Tensor* t : {&gamma, &beta})
    if (t->defined()) check(t->shape() == Shape{C}, "group_norm: weight/bias shape {} must be [{}]", t->shape(), C);
  check(eps > 0, "group_norm: eps must be positive, got {}", eps);
  Tensor g = reshape(x, {N, groups, -1});  // statistics per sample and group
  Tensor y = reshape((g - mean(g, {2}, true)) / sqrt(var(g, {2}, false, true) + eps), x.shape());
  Shape per_channel(x.dim(), 1);
  per_channel[1] = C;
  if (gamma.defined()) y = y * reshape(gamma, per_channel);
  if (beta.defined()) y = y + reshape(beta, per_channel);
  return y;
}

}  // namespace xg

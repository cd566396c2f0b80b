// Layer checks shared by fused and reference ops, and the norms built only from primitives.
#include "autograd/engine.hpp"
#include "ops/geometry.hpp"

namespace xg {

namespace detail {

namespace {
// Output size of a sliding window; throws when the window does not fit.
int64_t window_out(int64_t in, int64_t k, int64_t s, int64_t p, const char* op, const char* what, const Shape& shape) {
  int64_t padded = 0;  // in + 2p, which a hostile padding would overflow
  check(!__builtin_mul_overflow(p, 2, &padded) && !__builtin_add_overflow(in, padded, &padded),
        "{}: padding {} is too large for input {} {} (shape {})", op, p, what, in, shape);
  check(padded >= k, "{}: kernel {} {} is larger than the padded input {} ({} + 2*{}) of shape {}", op, what, k,
        padded, in, p, shape);
  return (padded - k) / s + 1;
}

void check_float_input(const Tensor& x, const char* op) {
  check(x.defined(), "{}: undefined input", op);
  check(is_floating(x.dtype()), "{}: input must be f32 or f64, got {}", op, dtype_name(x.dtype()));
}
}  // namespace

ConvGeometry conv_geometry(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o, const char* op) {
  check_float_input(x, op);
  check(x.dim() == 4, "{}: input must be 4-D (N,C,H,W), got shape {}", op, x.shape());
  check(w.defined() && w.dim() == 4, "{}: weight must be 4-D (F,C,KH,KW), got shape {}", op,
        w.defined() ? w.shape() : Shape{});
  check(w.dtype() == x.dtype(), "{}: weight dtype {} does not match input dtype {}", op, dtype_name(w.dtype()),
        dtype_name(x.dtype()));
  check(w.shape()[1] == x.shape()[1], "{}: input has {} channels (shape {}) but weight expects {} (shape {})", op,
        x.shape()[1], x.shape(), w.shape()[1], w.shape());
  check(o.stride.h > 0 && o.stride.w > 0, "{}: stride must be positive, got ({}, {}) for input shape {}", op,
        o.stride.h, o.stride.w, x.shape());
  check(o.padding.h >= 0 && o.padding.w >= 0, "{}: padding must be non-negative, got ({}, {}) for input shape {}", op,
        o.padding.h, o.padding.w, x.shape());
  check(w.shape()[2] > 0 && w.shape()[3] > 0, "{}: empty kernel in weight shape {}", op, w.shape());
  if (b.defined()) {
    check(b.dim() == 1 && b.shape()[0] == w.shape()[0], "{}: bias shape {} does not match {} filters", op, b.shape(),
          w.shape()[0]);
    check(b.dtype() == x.dtype(), "{}: bias dtype {} does not match input dtype {}", op, dtype_name(b.dtype()),
          dtype_name(x.dtype()));
  }
  ConvGeometry g{x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], w.shape()[0], w.shape()[2], w.shape()[3],
                 0, 0, o.stride.h, o.stride.w, o.padding.h, o.padding.w};
  g.HO = window_out(g.H, g.KH, g.SH, g.PH, op, "height", x.shape());
  g.WO = window_out(g.W, g.KW, g.SW, g.PW, op, "width", x.shape());
  return g;
}

PoolGeometry pool_geometry(const Tensor& x, const Pool2dOptions& o, const char* op) {
  check_float_input(x, op);
  check(x.dim() == 4, "{}: input must be 4-D (N,C,H,W), got shape {}", op, x.shape());
  check(o.kernel.h > 0 && o.kernel.w > 0, "{}: kernel must be positive, got ({}, {}) for input shape {}", op, o.kernel.h,
        o.kernel.w, x.shape());
  Pair2 s = o.stride == Pair2(0) ? o.kernel : o.stride;
  check(s.h > 0 && s.w > 0, "{}: stride must be positive, got ({}, {}) for input shape {}", op, s.h, s.w, x.shape());
  check(o.padding.h >= 0 && o.padding.w >= 0 && 2 * o.padding.h <= o.kernel.h && 2 * o.padding.w <= o.kernel.w,
        "{}: padding ({}, {}) must be non-negative and at most half the kernel ({}, {})", op, o.padding.h,
        o.padding.w, o.kernel.h, o.kernel.w);
  PoolGeometry g{x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], o.kernel.h, o.kernel.w, 0, 0,
                 s.h, s.w, o.padding.h, o.padding.w};
  g.HO = window_out(g.H, g.KH, g.SH, g.PH, op, "height", x.shape());
  g.WO = window_out(g.W, g.KW, g.SW, g.PW, op, "width", x.shape());
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

}  // namespace detail

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

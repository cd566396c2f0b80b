// The reference layers: conv2d, pooling and batch norm composed only of primitives, so the tape
// derives their gradients. They are the executable specification the fused kernels are tested against.
#include <cmath>

#include "autograd/grad_mode.hpp"
#include "ops/geometry.hpp"

namespace xg::ref {

namespace {
// The KH*KW shifted, strided views of a padded input, stacked on a new dim 2:
// [N,C,H+2PH,W+2PW] -> [N,C,KH*KW,HO,WO], window position (kh, kw) at index kh*KW + kw.
template <class G>
Tensor windows(const Tensor& xp, const G& g) {
  std::vector<Tensor> taps;
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      Tensor rows = slice(xp, 2, kh, kh + g.SH * (g.HO - 1) + 1, g.SH);
      taps.push_back(slice(rows, 3, kw, kw + g.SW * (g.WO - 1) + 1, g.SW));
    }
  return stack(taps, 2);
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts) {
  auto g = detail::conv_geometry(x, weight, bias, opts, "conv2d");
  Tensor xp = pad(x, {g.PW, g.PW, g.PH, g.PH});
  Tensor cols = reshape(windows(xp, g), {g.N, g.C * g.KH * g.KW, g.HO * g.WO});  // im2col as a gather
  Tensor out = matmul(reshape(weight, {g.F, -1}), cols);                         // [N, F, HO*WO]
  out = reshape(out, {g.N, g.F, g.HO, g.WO});
  return bias.defined() ? out + reshape(bias, {1, g.F, 1, 1}) : out;
}

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  auto g = detail::pool_geometry(x, opts, "max_pool2d");
  Tensor xp = pad(x, {g.PW, g.PW, g.PH, g.PH}, -INFINITY);
  return max(windows(xp, g), 2);  // ties: the first window position, like the fused kernel
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  auto g = detail::pool_geometry(x, opts, "avg_pool2d");
  Tensor xp = pad(x, {g.PW, g.PW, g.PH, g.PH});
  return mean(windows(xp, g), {2});  // zero padding counts in the average
}

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  const int64_t C = detail::check_batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                                             "batch_norm");
  const Dims dims = x.dim() == 2 ? Dims{0} : Dims{0, 2, 3};
  Shape bshape(x.dim(), 1);
  bshape[1] = C;
  Tensor mu, v;
  if (training || !running_mean.defined()) {
    mu = mean(x, dims, true);
    v = var(x, dims, false, true);
    if (training && running_mean.defined()) {
      NoGradGuard no_grad;
      const double n = static_cast<double>(x.numel() / C);
      Tensor m = reshape(mu, {C}).detach(), uv = reshape(v, {C}).detach() * (n / (n - 1));
      running_mean.copy_(running_mean * (1 - momentum) + m * momentum);
      running_var.copy_(running_var * (1 - momentum) + uv * momentum);
    }
  } else {
    mu = reshape(running_mean, bshape);
    v = reshape(running_var, bshape);
  }
  Tensor y = (x - mu) / sqrt(v + eps);
  if (gamma.defined()) y = y * reshape(gamma, bshape);
  if (beta.defined()) y = y + reshape(beta, bshape);
  return y;
}

}  // namespace xg::ref

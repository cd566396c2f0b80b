// The reference layers: conv2d, pooling and batch norm composed only of primitives, so the tape
// derives their gradients. They are the executable specification the fused kernels are tested against.
#include <cmath>
#include <utility>

#include "autograd/grad_mode.hpp"
#include "ops/geometry.hpp"

namespace xg::ref {

namespace {
// The KH*KW shifted, strided views of a padded input, stacked on a new dim 2:
// [N,C,H+2PH,W+2PW] -> [N,C,KH*KW,HO,WO], window position (kh, kw) at index kh*KW + kw, its taps
// DH and DW apart.
template <class G>
Tensor windows(const Tensor& xp, const G& g) {
  std::vector<Tensor> taps;
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      Tensor rows = slice(xp, 2, kh * g.DH, kh * g.DH + g.SH * (g.HO - 1) + 1, g.SH);
      taps.push_back(slice(rows, 3, kw * g.DW, kw * g.DW + g.SW * (g.WO - 1) + 1, g.SW));
    }
  return stack(taps, 2);
}

// Pads dim (2 or 3) by lo before and hi after; a negative amount crops instead.
Tensor pad_or_crop(const Tensor& x, int64_t dim, int64_t lo, int64_t hi, double value = 0.0) {
  Dims pads = dim == 3 ? Dims{std::max<int64_t>(lo, 0), std::max<int64_t>(hi, 0), 0, 0}
                       : Dims{0, 0, std::max<int64_t>(lo, 0), std::max<int64_t>(hi, 0)};
  Tensor y = pad(x, pads, value);
  const int64_t n = y.shape()[dim];
  return slice(y, dim, std::max<int64_t>(-lo, 0), n - std::max<int64_t>(-hi, 0));
}

// Inserts S - 1 zeros between neighbours along dim: length L -> (L - 1) S + 1.
Tensor spread(const Tensor& x, int64_t dim, int64_t S) {
  if (S == 1) return x;
  Shape zs = x.shape(), merged = x.shape();
  zs.insert(zs.begin() + dim + 1, S - 1);
  merged[dim] *= S;
  Tensor y = reshape(cat({unsqueeze(x, dim + 1), zeros(zs, x.dtype())}, dim + 1), merged);
  return slice(y, dim, 0, (x.shape()[dim] - 1) * S + 1);
}

// The bottom/right padding a ceil_mode pooling needs beyond PH/PW for its last window to fit.
std::pair<int64_t, int64_t> ceil_extra(const detail::PoolGeometry& g) {
  auto extra = [](int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int64_t out) {
    return std::max<int64_t>((out - 1) * s + d * (k - 1) + 1 - (in + 2 * p), 0);
  };
  return {extra(g.H, g.KH, g.SH, g.PH, g.DH, g.HO), extra(g.W, g.KW, g.SW, g.PW, g.DW, g.WO)};
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts) {
  auto g = detail::conv_geometry(x, weight, bias, opts, "conv2d");
  Tensor xp = pad(x, {g.PW, g.PW, g.PH, g.PH});
  Tensor cols = reshape(windows(xp, g), {g.N, g.C * g.KH * g.KW, g.HO * g.WO});  // im2col as a gather
  Tensor out;
  if (g.G == 1) {
    out = matmul(reshape(weight, {g.F, -1}), cols);  // [N, F, HO*WO]
  } else {
    // Group gi: its F/G filters times its C/G channels' rows of cols, batched over the groups.
    const int64_t Kg = g.C / g.G * g.KH * g.KW;
    out = matmul(reshape(weight, {g.G, g.F / g.G, Kg}), reshape(cols, {g.N, g.G, Kg, g.HO * g.WO}));
  }
  out = reshape(out, {g.N, g.F, g.HO, g.WO});
  return bias.defined() ? out + reshape(bias, {1, g.F, 1, 1}) : out;
}

// The full correlation of the zero-spread input with the flipped kernels, transposed per group:
// out[i] = sum_k spread(x)[i + P - (K-1) D + k D] w[K-1-k], from pad (or crop) + conv2d.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvTranspose2dOptions& opts) {
  auto g = detail::conv_transpose_geometry(x, weight, bias, opts, "conv_transpose2d");
  Tensor z = spread(spread(x, 2, g.SH), 3, g.SW);
  const int64_t lo_h = g.DH * (g.KH - 1) - g.PH, lo_w = g.DW * (g.KW - 1) - g.PW;
  z = pad_or_crop(z, 2, lo_h, g.H + g.DH * (g.KH - 1) - lo_h - z.shape()[2]);
  z = pad_or_crop(z, 3, lo_w, g.W + g.DW * (g.KW - 1) - lo_w - z.shape()[3]);
  const int64_t Fg = g.F / g.G, Cg = g.C / g.G;  // in conv terms: F = C_in, C = C_out
  Tensor wc = reshape(transpose(reshape(weight, {g.G, Fg, Cg, g.KH, g.KW}), 1, 2), {g.C, Fg, g.KH, g.KW});
  return ref::conv2d(z, flip(wc, {2, 3}), bias, {.dilation = {g.DH, g.DW}, .groups = g.G});
}

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  auto g = detail::pool_geometry(x, opts, "max_pool2d");
  auto [eh, ew] = ceil_extra(g);
  Tensor xp = pad(x, {g.PW, g.PW + ew, g.PH, g.PH + eh}, -INFINITY);
  return max(windows(xp, g), 2);  // ties: the first window position, like the fused kernel
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  auto g = detail::pool_geometry(x, opts, "avg_pool2d");
  auto [eh, ew] = ceil_extra(g);
  Tensor xp = pad(x, {g.PW, g.PW + ew, g.PH, g.PH + eh});
  if (eh == 0 && ew == 0 && g.count_include_pad) return mean(windows(xp, g), {2});  // zero padding counts
  // The divisor per window: its positions inside the input, and inside the padding when counted
  // (never those beyond the padding, which only ceil_mode's last windows reach), as PyTorch.
  Tensor divisor;
  {
    NoGradGuard no_grad;
    Tensor in = pad(ones({1, 1, g.H, g.W}, x.dtype()), {g.PW, g.PW, g.PH, g.PH}, g.count_include_pad ? 1.0 : 0.0);
    divisor = sum(windows(pad(in, {0, ew, 0, eh}), g), {2});  // [1, 1, HO, WO]
  }
  return sum(windows(xp, g), {2}) / divisor;
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

Tensor batch_norm_activation(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             PostActivation act) {
  detail::check_post_activation(act, "batch_norm_activation");
  Tensor y = ref::batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps);
  return act == PostActivation::relu ? relu(y) : act == PostActivation::gelu ? ref::gelu(y) : y;
}

}  // namespace xg::ref

// The inference epilogues of ops/fused/inference.hpp. A convolution's bias and ReLU run inside conv2d's
// kernels (ops/fused/im2col.cpp, winograd.cpp, depthwise.cpp), per image or per Winograd tile while
// the output is in cache; a linear layer's run in one parallel pass after its GEMM.
#include "ops/fused/inference.hpp"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.hpp"
#include "autograd/parallel.hpp"
#include "ops/blas.hpp"
#include "ops/fused/conv_kernels.hpp"
#include "ops/fused/onednn_conv.hpp"

namespace xg::detail {

namespace {

// Rows lo..hi of y [rows, F] = relu(row + bias) in place (bias may be null; without `relu`, row +
// bias). NaN stays NaN, as in relu.
template <class T>
void bias_relu_rows(T* y, const T* bias, int64_t lo, int64_t hi, int64_t F, bool relu) {
  auto clamp = [relu](T v) { return relu && v < T(0) ? T(0) : v; };
  for (int64_t r = lo; r < hi; ++r) {
    T* row = y + r * F;
    for (int64_t f = 0; f < F; ++f) row[f] = clamp(row[f] + (bias ? bias[f] : T(0)));
  }
}

template <class T>
void bias_relu(T* y, const T* bias, int64_t rows, int64_t F, bool relu) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, F));
  parallel_for(0, rows, grain, [=](int64_t lo, int64_t hi) { bias_relu_rows(y, bias, lo, hi, F, relu); });
}

}  // namespace

Tensor conv2d_relu_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts) {
  const ConvGeometry g = conv_geometry(x, weight, bias, opts, "conv2d");  // checks shapes and dtypes
  Tensor out = Tensor::empty({g.N, g.F, g.HO, g.WO}, x.dtype());
  if (out.numel() == 0) return out;
  dispatch_floating(x.dtype(), [&]<class T>() {
    conv_forward<T>(x.data<T>(), weight.data<T>(), bias.defined() ? bias.data<T>() : nullptr, g, out.data<T>(),
                    /*relu=*/true);
  });
  return out;
}

Tensor conv2d_pool_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts,
                             bool relu, const Pool2dOptions& pool) {
  NoGradGuard no_grad;
  const ConvGeometry g = conv_geometry(x, weight, bias, opts, "conv2d");
  PoolGeometry pg = pool_geometry(Shape{g.N, g.F, g.HO, g.WO}, pool, "max_pool2d");
  if (x.dtype() == Dtype::f32 && pairs(pg) && onednn_conv_pool_applies(g)) {
    // Pooled in oneDNN's own layout; the ReLU after the pool (max(relu(v)) = relu(max(v)), NaN too).
    Tensor out = Tensor::empty({g.N, g.F, pg.HO, pg.WO}, x.dtype());
    onednn_conv_pool_forward(x.data<float>(), weight.data<float>(), bias.defined() ? bias.data<float>() : nullptr, g,
                             out.data<float>(), nullptr);
    if (relu) bias_relu<float>(out.data<float>(), nullptr, g.N * g.F, pg.HO * pg.WO, true);
    return out;
  }
  if (!conv_per_image(g))
    return max_pool2d(relu ? conv2d_relu_inference(x, weight, bias, opts) : conv2d(x, weight, bias, opts), pool);
  Tensor out = Tensor::empty({g.N, g.F, pg.HO, pg.WO}, x.dtype());
  if (out.numel() == 0) return out;
  pg.N = 1;  // the sink pools one image's F planes
  dispatch_floating(x.dtype(), [&]<class T>() {
    T* po = out.data<T>();
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    const int64_t per_image = g.F * pg.HO * pg.WO, plane = pg.HO * pg.WO;
    // With a finite bias, the bias and ReLU go on the pooled values, a quarter as many for 2x2: rounding
    // is monotonic, so max(x + b) = max(x) + b and max(relu(v)) = relu(max(v)) to the bit (NaN too). An
    // infinite bias (-inf + inf = NaN inside the window) keeps the epilogue before the pool.
    const bool after_pool = !pb || std::all_of(pb, pb + g.F, [](T b) { return std::isfinite(b); });
    conv_forward_images<T>(x.data<T>(), weight.data<T>(), after_pool ? nullptr : pb, g, relu && !after_pool,
                           [&](int64_t n, const T* image) {
                             T* pooled = po + n * per_image;
                             max_pool_planes<T>(image, pg, pooled, 0, g.F);
                             if (after_pool && (pb || relu)) bias_relu_planes(pooled, pb, g.F, plane, relu);
                           });
  });
  return out;
}

Tensor linear_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& weight_t, bool relu) {
  NoGradGuard no_grad;
  // (A weight that is not [out, in] takes the unpacked path, whose linear() names the fault.)
  const int64_t F = weight.dim() == 2 ? weight.shape()[0] : -1, K = weight.dim() == 2 ? weight.shape()[1] : -1;
  const bool packed = weight_t.defined() && x.dtype() == weight.dtype() && x.dim() >= 1 && x.shape().back() == K &&
                      weight_t.dtype() == weight.dtype() && weight_t.shape() == Shape{K, F};
  auto check_bias = [&](const Tensor& y) {
    check(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == F && bias.dtype() == y.dtype()),
          "linear: bias shape {} ({}) does not match out_features {} ({})", bias.defined() ? bias.shape() : Shape{},
          bias.defined() ? dtype_name(bias.dtype()) : "none", F, dtype_name(y.dtype()));
  };
  Tensor y;
  if (packed) {  // x [*, K] . W^T [K, F]
    Shape out_shape = x.shape();
    out_shape.back() = F;
    y = Tensor::empty(out_shape, x.dtype());
    check_bias(y);
    const int64_t M = x.numel() / std::max<int64_t>(K, 1);
    dispatch_floating(x.dtype(), [&]<class T>() {
      if (M == 0) return;
      const T *px = x.data<T>(), *pw = weight_t.data<T>(), *pb = bias.defined() ? bias.data<T>() : nullptr;
      T* py = y.data<T>();
      if (F >= M || !gemm_shares_out<T>(M, F, K)) {  // gemm would not share out C's rows
        gemm<T>(false, false, M, F, K, T(1), px, K, pw, F, T(0), py, F);
        if (relu || pb) bias_relu<T>(py, pb, M, F, relu);
        return;
      }
      // gemm would share out the rows: each thread multiplies its rows, takes the last F % 16 columns
      // from W's own rows (no gather from W^T, ops/blas.cpp), and adds the bias and ReLU while they
      // are in cache, all in one parallel pass.
      parallel_for(0, M, 16, [&](int64_t lo, int64_t hi) {
        int64_t r = 0;
        if constexpr (std::is_same_v<T, float>) r = sgemm_tail_columns(false, hi - lo, F, K);
        gemm_serial<T>(false, false, hi - lo, F - r, K, T(1), px + lo * K, K, pw, F, T(0), py + lo * F, F);
        if constexpr (std::is_same_v<T, float>)
          if (r) sgemm_tail(false, hi - lo, F - r, r, K, 1.f, px + lo * K, K, weight.data<T>(), K, true, 0.f, py + lo * F, F);
        if (relu || pb) bias_relu_rows<T>(py, pb, lo, hi, F, relu);
      });
    });
    return y;
  }
  y = linear(x, weight);  // a new tensor of its own: the epilogue may write it
  if (y.numel() == 0) return y;
  check_bias(y);
  dispatch_floating(y.dtype(), [&]<class T>() {
    if (relu || bias.defined()) bias_relu<T>(y.data<T>(), bias.defined() ? bias.data<T>() : nullptr, y.numel() / F, F, relu);
  });
  return y;
}

}  // namespace xg::detail

// Fused conv2d: im2col + a BLAS GEMM per image; backward with GEMMs and col2im. 3x3
// stride-1 convolutions with enough channels go through Winograd instead (ops/fused/winograd.cpp).
// Registered through the public custom-op API (xg::Function), like any user op.
#include <cstring>
#include <functional>
#include <vector>

#include "autograd/function.hpp"
#include "autograd/parallel.hpp"
#include "ops/blas.hpp"
#include "ops/fused/winograd.hpp"
#include "ops/geometry.hpp"
#include "ops/lanes.hpp"

namespace xg {

namespace {

using detail::ConvGeometry;

// The range of output columns wo whose input column wo*SW - PW + kw falls inside [0, W).
inline void valid_range(int64_t k, int64_t S, int64_t P, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = 0;
  while (lo < out && lo * S - P + k < 0) ++lo;
  hi = out;
  while (hi > lo && (hi - 1) * S - P + k >= in) --hi;
}

// For one image x (C x H x W): cols[(c*KH + kh)*KW + kw][ho*WO + wo] = x[c, ho*SH-PH+kh, wo*SW-PW+kw]
// (0 in the padding). col2im (scatter = true) is the adjoint: x += cols.
template <class T, bool scatter>
void im2col(std::conditional_t<scatter, T*, const T*> x, const ConvGeometry& g, T* cols) {
  const int64_t P = g.HO * g.WO;
  for (int64_t c = 0; c < g.C; ++c) {
    auto* plane = x + c * g.H * g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      int64_t h_lo, h_hi;
      valid_range(kh, g.SH, g.PH, g.H, g.HO, h_lo, h_hi);
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        int64_t w_lo, w_hi;
        valid_range(kw, g.SW, g.PW, g.W, g.WO, w_lo, w_hi);
        T* col = cols + ((c * g.KH + kh) * g.KW + kw) * P;
        for (int64_t ho = 0; ho < g.HO; ++ho) {
          T* dst = col + ho * g.WO;
          if (ho < h_lo || ho >= h_hi) {
            if constexpr (!scatter) std::fill(dst, dst + g.WO, T(0));
            continue;
          }
          auto* src = plane + (ho * g.SH - g.PH + kh) * g.W - g.PW + kw;
          if constexpr (scatter) {
            for (int64_t wo = w_lo; wo < w_hi; ++wo) src[wo * g.SW] += dst[wo];
          } else {
            std::fill(dst, dst + w_lo, T(0));
            if (g.SW == 1) std::memcpy(dst + w_lo, src + w_lo, (w_hi - w_lo) * sizeof(T));
            else for (int64_t wo = w_lo; wo < w_hi; ++wo) dst[wo] = src[wo * g.SW];
            std::fill(dst + w_hi, dst + g.WO, T(0));
          }
        }
      }
    }
  }
}

// Images are shared out over the threads; each thread unfolds one image at a time into its own
// buffer (cache-resident) and runs single-threaded GEMMs on it, reading and writing the image's
// planes in place. With fewer images than threads, the images run in turn with threaded GEMMs.
void for_images(int64_t blocks, const std::function<void(int64_t, int64_t, bool)>& f) {
  if (blocks >= get_num_threads() && detail::blas_single_threaded()) {
    parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) { f(lo, hi, false); });
  } else {
    f(0, blocks, true);
  }
}

template <class T>
void mm(bool threaded, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
        int64_t ldb, T beta, T* C, int64_t ldc) {
  if (threaded) detail::gemm<T>(ta, tb, M, N, K, T(1), A, lda, B, ldb, beta, C, ldc);
  else detail::gemm_serial<T>(ta, tb, M, N, K, T(1), A, lda, B, ldb, beta, C, ldc);
}

// out[n] (F x P) = w (F x CKK) cols[n] (CKK x P) + bias.
template <class T>
void conv_forward(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out) {
  if (detail::use_winograd(g)) return detail::winograd_forward(x, w, bias, g, out);
  const int64_t P = g.HO * g.WO, CKK = g.C * g.KH * g.KW;
  for_images(g.N, [&](int64_t lo, int64_t hi, bool threaded) {
    T* cols = detail::scratch<T>(0, CKK * P);
    for (int64_t n = lo; n < hi; ++n) {
      im2col<T, false>(x + n * g.C * g.H * g.W, g, cols);
      T* o = out + n * g.F * P;
      mm<T>(threaded, false, false, g.F, P, CKK, w, CKK, cols, P, T(0), o, P);
      if (bias)
        for (int64_t f = 0; f < g.F; ++f)
          for (int64_t p = 0; p < P; ++p) o[f * P + p] += bias[f];
    }
  });
}

// dx[n] = col2im(w^T dout[n]); dw = sum_n dout[n] cols[n]^T, summed per block of images into a
// partial per block and the partials added in a fixed order, so the result does not depend on
// which thread ran which block. dx, dw, db may each be null when not needed.
template <class T>
void conv_backward(const T* x, const T* w, const T* dout, const ConvGeometry& g, T* dx, T* dw, T* db) {
  const int64_t P = g.HO * g.WO, CKK = g.C * g.KH * g.KW;
  if (db) {
    parallel_for(0, g.F, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t f = lo; f < hi; ++f) {
        double s = 0;
        for (int64_t n = 0; n < g.N; ++n) {
          const T* src = dout + (n * g.F + f) * P;
          s += detail::lane_sum<T>(P, [&](int64_t p) { return src[p]; });
        }
        db[f] = static_cast<T>(s);
      }
    });
  }
  if (!dx && !dw) return;
  if (detail::use_winograd(g)) {
    detail::winograd_backward(x, w, dout, g, dx, dw);
    return;
  }
  const int64_t blocks = std::min<int64_t>(g.N, get_num_threads()), FK = g.F * CKK;
  std::vector<T> partial(dw ? static_cast<size_t>(blocks * FK) : 0);
  for_images(blocks, [&](int64_t lo, int64_t hi, bool threaded) {
    T* cols = detail::scratch<T>(0, CKK * P);
    for (int64_t k = lo; k < hi; ++k)
      for (int64_t n = g.N * k / blocks; n < g.N * (k + 1) / blocks; ++n) {
        const T* dy = dout + n * g.F * P;
        if (dw) {
          im2col<T, false>(x + n * g.C * g.H * g.W, g, cols);
          mm<T>(threaded, false, true, g.F, CKK, P, dy, P, cols, P, T(1), partial.data() + k * FK, CKK);
        }
        if (dx) {
          T* dxn = dx + n * g.C * g.H * g.W;
          std::fill(dxn, dxn + g.C * g.H * g.W, T(0));
          mm<T>(threaded, true, false, CKK, P, g.F, w, CKK, dy, P, T(0), cols, P);
          im2col<T, true>(dxn, g, cols);
        }
      }
  });
  if (dw) {
    std::fill(dw, dw + FK, T(0));
    for (int64_t k = 0; k < blocks; ++k)
      for (int64_t i = 0; i < FK; ++i) dw[i] += partial[k * FK + i];
  }
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
      conv_forward<T>(x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, g, out.data<T>());
    });
    return out;
  }

  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    const Tensor &x = ctx.saved()[0], &w = ctx.saved()[1];
    const auto& g = ctx.get<ConvGeometry>("g");
    Tensor dout = grads[0], dx, dw, db;
    if (GradMode::is_enabled()) {  // create_graph: gradients the tape can differentiate again
      const Conv2dOptions o{.stride = {g.SH, g.SW}, .padding = {g.PH, g.PW}};
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
      if (dout.numel() == 0) {
        for (Tensor* t : {&dx, &dw, &db})
          if (t->defined()) t->zero_();
        return;
      }
      conv_backward<T>(x.data<T>(), w.data<T>(), dout.data<T>(), g, ptr(dx), ptr(dw), ptr(db));
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

}  // namespace xg

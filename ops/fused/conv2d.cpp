// Fused conv2d: im2col + one BLAS GEMM per chunk of images; backward with GEMMs and col2im. 3x3
// stride-1 convolutions with enough channels go through Winograd instead (ops/fused/winograd.cpp).
// Registered through the public custom-op API (xg::Function), like any user op.
#include <cstring>

#include "autograd/function.hpp"
#include "autograd/parallel.hpp"
#include "ops/blas.hpp"
#include "ops/fused/winograd.hpp"
#include "ops/geometry.hpp"

namespace xg {

namespace {

using detail::ConvGeometry;

constexpr int64_t chunk_bytes = 8 << 20;  // im2col buffer per chunk: large GEMMs, still cache-friendly

// The range of output columns wo whose input column wo*SW - PW + kw falls inside [0, W).
inline void valid_range(int64_t k, int64_t S, int64_t P, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = 0;
  while (lo < out && lo * S - P + k < 0) ++lo;
  hi = out;
  while (hi > lo && (hi - 1) * S - P + k >= in) --hi;
}

// cols[(c*KH + kh)*KW + kw][b*P + ho*WO + wo] = x[n0+b, c, ho*SH-PH+kh, wo*SW-PW+kw] (0 in the padding),
// with P = HO*WO, for images n0 .. n0+B-1. col2im (scatter = true) is the adjoint: x += cols.
template <class T, bool scatter>
void im2col(std::conditional_t<scatter, T*, const T*> x, const ConvGeometry& g, int64_t n0, int64_t B, T* cols) {
  const int64_t P = g.HO * g.WO, ld = B * P;
  parallel_for(0, B * g.C, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t bc = lo; bc < hi; ++bc) {
      const int64_t b = bc / g.C, c = bc % g.C;
      auto* plane = x + ((n0 + b) * g.C + c) * g.H * g.W;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        int64_t h_lo, h_hi;
        valid_range(kh, g.SH, g.PH, g.H, g.HO, h_lo, h_hi);
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          int64_t w_lo, w_hi;
          valid_range(kw, g.SW, g.PW, g.W, g.WO, w_lo, w_hi);
          T* col = cols + ((c * g.KH + kh) * g.KW + kw) * ld + b * P;
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
  });
}

int64_t chunk_images(const ConvGeometry& g, int64_t elem) {
  const int64_t per_image = g.C * g.KH * g.KW * g.HO * g.WO * elem;
  return std::clamp<int64_t>(chunk_bytes / std::max<int64_t>(per_image, 1), 1, std::max<int64_t>(g.N, 1));
}

template <class T>
void conv_forward(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out) {
  if (detail::use_winograd(g)) return detail::winograd_forward(x, w, bias, g, out);
  const int64_t P = g.HO * g.WO, CKK = g.C * g.KH * g.KW, chunk = chunk_images(g, sizeof(T));
  T* cols = detail::scratch<T>(0, CKK * chunk * P);
  T* tmp = detail::scratch<T>(1, g.F * chunk * P);
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    const int64_t B = std::min(chunk, g.N - n0), BP = B * P;
    im2col<T, false>(x, g, n0, B, cols);
    detail::gemm<T>(false, false, g.F, BP, CKK, T(1), w, CKK, cols, BP, T(0), tmp, BP);
    parallel_for(0, B * g.F, 8, [&](int64_t lo, int64_t hi) {
      for (int64_t bf = lo; bf < hi; ++bf) {
        const int64_t b = bf / g.F, f = bf % g.F;
        const T add = bias ? bias[f] : T(0);
        const T* src = tmp + f * BP + b * P;
        T* dst = out + ((n0 + b) * g.F + f) * P;
        for (int64_t p = 0; p < P; ++p) dst[p] = src[p] + add;
      }
    });
  }
}

// dx, dw, db may each be null when not needed.
template <class T>
void conv_backward(const T* x, const T* w, const T* dout, const ConvGeometry& g, T* dx, T* dw, T* db) {
  const int64_t P = g.HO * g.WO, CKK = g.C * g.KH * g.KW, chunk = chunk_images(g, sizeof(T));
  T* cols = detail::scratch<T>(0, CKK * chunk * P);
  T* dtmp = detail::scratch<T>(1, g.F * chunk * P);
  if (db) {
    parallel_for(0, g.F, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t f = lo; f < hi; ++f) {
        T s = 0;
        for (int64_t n = 0; n < g.N; ++n) {
          const T* src = dout + (n * g.F + f) * P;
          for (int64_t p = 0; p < P; ++p) s += src[p];
        }
        db[f] = s;
      }
    });
  }
  if (!dx && !dw) return;
  if (detail::use_winograd(g)) {
    detail::winograd_backward(x, w, dout, g, dx, dw);
    return;
  }
  if (dw) std::fill(dw, dw + g.F * CKK, T(0));
  if (dx) std::fill(dx, dx + g.N * g.C * g.H * g.W, T(0));
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    const int64_t B = std::min(chunk, g.N - n0), BP = B * P;
    parallel_for(0, B * g.F, 8, [&](int64_t lo, int64_t hi) {
      for (int64_t bf = lo; bf < hi; ++bf) {
        const int64_t b = bf / g.F, f = bf % g.F;
        std::memcpy(dtmp + f * BP + b * P, dout + ((n0 + b) * g.F + f) * P, P * sizeof(T));
      }
    });
    if (dw) {
      im2col<T, false>(x, g, n0, B, cols);
      detail::gemm<T>(false, true, g.F, CKK, BP, T(1), dtmp, BP, cols, BP, T(1), dw, CKK);
    }
    if (dx) {
      detail::gemm<T>(true, false, CKK, BP, g.F, T(1), w, CKK, dtmp, BP, T(0), cols, BP);
      im2col<T, true>(dx, g, n0, B, cols);
    }
  }
}

struct Conv2dFn : Function<Conv2dFn> {
  static constexpr const char* name = "conv2d";
  static constexpr bool once_differentiable = true;

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
  ConvGeometry g = detail::conv_geometry(x, weight, bias, opts, "conv2d");
  return Conv2dFn::apply(x, weight, bias, g);
}

}  // namespace xg

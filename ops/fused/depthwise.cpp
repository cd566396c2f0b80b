// Depthwise convolution (groups = C: input channel c feeds output channels c*M .. c*M + M - 1, M =
// F / C) as direct loops over contiguous planes: each tap adds a scaled, shifted row of one plane
// into another. A GEMM per group would have a single row (M x KH*KW times KH*KW x HO*WO), which
// BLAS runs far below its speed; these loops vectorise along the row when the stride is 1.
#include <algorithm>
#include <vector>

#include "autograd/parallel.hpp"
#include "ops/fused/conv_kernels.hpp"
#include "ops/lanes.hpp"

namespace xg::detail {

namespace {

// Calls f(tap, ho_lo, ho_hi, wo_lo, wo_hi, shift) for each tap (kh*KW + kw) reaching the input:
// output (ho, wo) in those ranges reads input plane offset ho*SH*W + wo*SW + shift, inside the plane.
template <class F>
void for_taps(const ConvGeometry& g, F&& f) {
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    int64_t h_lo, h_hi;
    valid_range(kh * g.DH, g.SH, g.PH, g.H, g.HO, h_lo, h_hi);
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      int64_t w_lo, w_hi;
      valid_range(kw * g.DW, g.SW, g.PW, g.W, g.WO, w_lo, w_hi);
      if (h_lo < h_hi && w_lo < w_hi)
        f(kh * g.KW + kw, h_lo, h_hi, w_lo, w_hi, (kh * g.DH - g.PH) * g.W + kw * g.DW - g.PW);
    }
  }
}

}  // namespace

// out[n, f] = bias[f] + sum over taps of w[f, tap] * (the tap's shifted view of x[n, f / M]).
template <class T>
void depthwise_forward(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out, bool relu) {
  const int64_t M = g.F / g.C, P = g.HO * g.WO, KK = g.KH * g.KW;
  parallel_for(0, g.N * g.F, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const int64_t n = plane / g.F, f = plane % g.F;
      const T* src = x + (n * g.C + f / M) * g.H * g.W;
      T* __restrict o = out + plane * P;
      std::fill(o, o + P, bias ? bias[f] : T(0));
      for_taps(g, [&](int64_t tap, int64_t h_lo, int64_t h_hi, int64_t w_lo, int64_t w_hi, int64_t shift) {
        const T wt = w[f * KK + tap];
        for (int64_t ho = h_lo; ho < h_hi; ++ho) {
          const T* __restrict s = src + ho * g.SH * g.W + shift;
          T* __restrict d = o + ho * g.WO;
          if (g.SW == 1)
            for (int64_t wo = w_lo; wo < w_hi; ++wo) d[wo] += wt * s[wo];
          else
            for (int64_t wo = w_lo; wo < w_hi; ++wo) d[wo] += wt * s[wo * g.SW];
        }
      });
      if (relu)
        for (int64_t p = 0; p < P; ++p) o[p] = o[p] < T(0) ? T(0) : o[p];
    }
  });
}

// dx[n, c] = the adjoint scatter of dout[n, c*M + m] over taps and m; dw[f, tap] = the sum over
// images and positions of dout[n, f] times the tap's view of x[n, f / M], summed image by image in
// a fixed order (no dependence on the threads). dx and dw may each be null.
template <class T>
void depthwise_backward(const T* x, const T* w, const T* dout, const ConvGeometry& g, T* dx, T* dw) {
  const int64_t M = g.F / g.C, P = g.HO * g.WO, KK = g.KH * g.KW, HW = g.H * g.W;
  if (dx) {
    parallel_for(0, g.N * g.C, 4, [&](int64_t lo, int64_t hi) {
      for (int64_t plane = lo; plane < hi; ++plane) {
        const int64_t n = plane / g.C, c = plane % g.C;
        T* dst = dx + plane * HW;
        std::fill(dst, dst + HW, T(0));
        for (int64_t f = c * M; f < (c + 1) * M; ++f) {
          const T* dy = dout + (n * g.F + f) * P;
          for_taps(g, [&](int64_t tap, int64_t h_lo, int64_t h_hi, int64_t w_lo, int64_t w_hi, int64_t shift) {
            const T wt = w[f * KK + tap];
            for (int64_t ho = h_lo; ho < h_hi; ++ho) {
              T* __restrict d = dst + ho * g.SH * g.W + shift;
              const T* __restrict s = dy + ho * g.WO;
              if (g.SW == 1)
                for (int64_t wo = w_lo; wo < w_hi; ++wo) d[wo] += wt * s[wo];
              else
                for (int64_t wo = w_lo; wo < w_hi; ++wo) d[wo * g.SW] += wt * s[wo];
            }
          });
        }
      }
    });
  }
  if (dw) {
    parallel_for(0, g.F, 1, [&](int64_t lo, int64_t hi) {
      std::vector<double> acc(static_cast<size_t>(KK));
      for (int64_t f = lo; f < hi; ++f) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t n = 0; n < g.N; ++n) {
          const T* src = x + (n * g.C + f / M) * HW;
          const T* dy = dout + (n * g.F + f) * P;
          for_taps(g, [&](int64_t tap, int64_t h_lo, int64_t h_hi, int64_t w_lo, int64_t w_hi, int64_t shift) {
            for (int64_t ho = h_lo; ho < h_hi; ++ho) {
              const T* s = src + ho * g.SH * g.W + shift;
              const T* d = dy + ho * g.WO + w_lo;
              acc[tap] += lane_sum<T>(w_hi - w_lo, [&](int64_t i) { return d[i] * s[(w_lo + i) * g.SW]; });
            }
          });
        }
        for (int64_t t = 0; t < KK; ++t) dw[f * KK + t] = static_cast<T>(acc[t]);
      }
    });
  }
}

template void depthwise_forward<float>(const float*, const float*, const float*, const ConvGeometry&, float*, bool);
template void depthwise_forward<double>(const double*, const double*, const double*, const ConvGeometry&, double*,
                                        bool);
template void depthwise_backward<float>(const float*, const float*, const float*, const ConvGeometry&, float*,
                                        float*);
template void depthwise_backward<double>(const double*, const double*, const double*, const ConvGeometry&, double*,
                                         double*);

}  // namespace xg::detail

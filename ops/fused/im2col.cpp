// The fused convolution by im2col: each image unfolded into columns, then one BLAS GEMM per group
// (forward, weight gradient) and col2im for the input gradient. 3x3 stride-1 convolutions with
// enough channels go through Winograd instead (ops/fused/winograd.cpp).
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

#include "autograd/parallel.hpp"
#include "ops/blas.hpp"
#include "ops/fused/conv_kernels.hpp"
#include "ops/fused/onednn_conv.hpp"
#include "ops/fused/winograd.hpp"
#include "ops/lanes.hpp"
#include "ops/rows.hpp"

namespace xg::detail {

namespace {

// im2col for unit column stride: each channel is first copied into a zero-bordered plane (when there
// is padding), so that every row of cols is one unconditional copy of WO values from it.
template <class T>
void im2col_unit_stride(const T* x, const ConvGeometry& g, T* cols) {
  const int64_t P = g.HO * g.WO, Hp = g.H + 2 * g.PH, Wp = g.W + 2 * g.PW;
  const bool padded = g.PH > 0 || g.PW > 0;
  T* staged = padded ? scratch<T>(5, Hp * Wp) : nullptr;
  for (int64_t c = 0; c < g.C; ++c) {
    const T* plane = x + c * g.H * g.W;
    if (padded) {
      zero_row(staged, g.PH * Wp);
      for (int64_t h = 0; h < g.H; ++h) {
        T* row = staged + (g.PH + h) * Wp;
        zero_row(row, g.PW);
        copy_row(row + g.PW, plane + h * g.W, g.W);
        zero_row(row + g.PW + g.W, Wp - g.PW - g.W);
      }
      zero_row(staged + (g.PH + g.H) * Wp, (Hp - g.PH - g.H) * Wp);
      plane = staged;
    }
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* col = cols + ((c * g.KH + kh) * g.KW + kw) * P;
        const T* src = plane + kh * g.DH * Wp + kw * g.DW;
        for (int64_t ho = 0; ho < g.HO; ++ho) copy_row(col + ho * g.WO, src + ho * g.SH * Wp, g.WO);
      }
  }
}

// For one image x (C x H x W): cols[(c*KH + kh)*KW + kw][ho*WO + wo] = x[c, ho*SH-PH+kh*DH, wo*SW-PW+kw*DW]
// (0 in the padding). col2im (scatter = true) is the adjoint: x += cols. Group g's rows are the
// contiguous block of its C/G channels.
template <class T, bool scatter>
void im2col(std::conditional_t<scatter, T*, const T*> x, const ConvGeometry& g, T* cols) {
  if constexpr (!scatter)
    if (g.SW == 1 && (g.HO - 1) * g.SH + (g.KH - 1) * g.DH < g.H + 2 * g.PH &&
        g.WO + (g.KW - 1) * g.DW <= g.W + 2 * g.PW)  // every window inside the padded plane
      return im2col_unit_stride(x, g, cols);
  const int64_t P = g.HO * g.WO;
  for (int64_t c = 0; c < g.C; ++c) {
    auto* plane = x + c * g.H * g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      int64_t h_lo, h_hi;
      valid_range(kh * g.DH, g.SH, g.PH, g.H, g.HO, h_lo, h_hi);
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        int64_t w_lo, w_hi;
        valid_range(kw * g.DW, g.SW, g.PW, g.W, g.WO, w_lo, w_hi);
        T* col = cols + ((c * g.KH + kh) * g.KW + kw) * P;
        for (int64_t ho = 0; ho < g.HO; ++ho) {
          T* dst = col + ho * g.WO;
          if (ho < h_lo || ho >= h_hi) {
            if constexpr (!scatter) std::fill(dst, dst + g.WO, T(0));
            continue;
          }
          auto* src = plane + (ho * g.SH - g.PH + kh * g.DH) * g.W - g.PW + kw * g.DW;
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

// Whether the weight gradient is computed transposed, dw^T = cols dy^T. Both forms take a transposed
// B with a long inner dimension (the P positions), which the GEMM layer writes out untransposed first
// (oneDNN runs such a B at half rate): dy (F x P) is then the smaller to write out when F < C KH KW,
// as in a first layer (ThreeLayerConvNet's 7x7: 32 against 147 rows per image; that transpose was
// 11% of its training step in perf).
template <class T>
bool dw_transposed(int64_t Fg, int64_t Kg, int64_t P) {
  if constexpr (std::is_same_v<T, float>) return Fg < Kg && sgemm_transposes_b(Fg, Kg, P);
  else return false;
}

// Images are shared out over the threads; each thread unfolds one image at a time into its own
// buffer (cache-resident) and runs single-threaded GEMMs on it, reading and writing the image's
// planes in place. With fewer images than threads, the images run in turn with threaded GEMMs.
template <class T>
void for_images(int64_t blocks, const std::function<void(int64_t, int64_t, bool)>& f) {
  if (blocks >= get_num_threads() && serial_gemms<T>()) {
    parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) { f(lo, hi, false); });
  } else {
    f(0, blocks, true);
  }
}

template <class T>
void mm(bool threaded, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
        int64_t ldb, T beta, T* C, int64_t ldc) {
  if (threaded) gemm<T>(ta, tb, M, N, K, T(1), A, lda, B, ldb, beta, C, ldc);
  else gemm_serial<T>(ta, tb, M, N, K, T(1), A, lda, B, ldb, beta, C, ldc);
}

// conv_forward by im2col: into out, or with a sink into a per-thread buffer handed to it per image.
// Per group gi: out[n][gi] (F/G x P) = w[gi] (F/G x CKK/G) cols[n][gi] (CKK/G x P), plus bias.
template <class T>
void conv_by_images(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out, bool relu,
                    const std::function<void(int64_t, const T*)>* sink) {
  const int64_t P = g.HO * g.WO, CKK = g.C * g.KH * g.KW, Fg = g.F / g.G, Kg = CKK / g.G;
  for_images<T>(g.N, [&](int64_t lo, int64_t hi, bool threaded) {
    T* cols = scratch<T>(0, CKK * P);
    T* image = sink ? scratch<T>(1, g.F * P) : nullptr;
    for (int64_t n = lo; n < hi; ++n) {
      im2col<T, false>(x + n * g.C * g.H * g.W, g, cols);
      T* o = sink ? image : out + n * g.F * P;
      for (int64_t gi = 0; gi < g.G; ++gi)
        mm<T>(threaded, false, false, Fg, P, Kg, w + gi * Fg * Kg, Kg, cols + gi * Kg * P, P, T(0), o + gi * Fg * P, P);
      if (bias || relu) bias_relu_planes(o, bias, g.F, P, relu);
      if (sink) (*sink)(n, o);
    }
  });
}

}  // namespace

bool conv_per_image(const ConvGeometry& g) { return !use_winograd(g) && !use_depthwise(g) && !use_onednn_conv(g); }

template <class T>
void conv_forward(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out, bool relu) {
  if constexpr (std::is_same_v<T, float>)
    if (use_onednn_conv(g)) return onednn_conv_forward(x, w, bias, g, out, relu);
  if (use_winograd(g)) return winograd_forward(x, w, bias, g, out, relu);
  if (use_depthwise(g)) return depthwise_forward(x, w, bias, g, out, relu);
  conv_by_images<T>(x, w, bias, g, out, relu, nullptr);
}

template <class T>
void conv_forward_images(const T* x, const T* w, const T* bias, const ConvGeometry& g, bool relu,
                         const std::function<void(int64_t, const T*)>& sink) {
  check(conv_per_image(g), "conv_forward_images: not an im2col convolution");
  conv_by_images<T>(x, w, bias, g, nullptr, relu, &sink);
}

// dx[n] = col2im(w^T dout[n]); dw = sum_n dout[n] cols[n]^T (per group), summed per block of images
// into a partial per block and the partials added in a fixed order, so the result does not depend
// on which thread ran which block.
template <class T>
void conv_backward(const T* x, const T* w, const T* dout, const ConvGeometry& g, T* dx, T* dw, T* db) {
  const int64_t P = g.HO * g.WO, CKK = g.C * g.KH * g.KW, Fg = g.F / g.G, Kg = CKK / g.G;
  if (db) {
    parallel_for(0, g.F, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t f = lo; f < hi; ++f) {
        double s = 0;
        for (int64_t n = 0; n < g.N; ++n) {
          const T* src = dout + (n * g.F + f) * P;
          s += lane_sum<T>(P, [&](int64_t p) { return src[p]; });
        }
        db[f] = static_cast<T>(s);
      }
    });
  }
  if (!dx && !dw) return;
  if constexpr (std::is_same_v<T, float>)
    if (use_onednn_conv(g)) return onednn_conv_backward(x, w, dout, g, dx, dw);
  if (use_winograd(g)) {
    winograd_backward(x, w, dout, g, dx, dw);
    return;
  }
  if (use_depthwise(g)) return depthwise_backward(x, w, dout, g, dx, dw);
  const int64_t blocks = std::min<int64_t>(g.N, get_num_threads()), FK = Fg * CKK;  // FK: dw's size
  std::vector<T> partial(dw ? static_cast<size_t>(blocks * FK) : 0);
  const bool transposed = dw && dw_transposed<T>(Fg, Kg, P);
  for_images<T>(blocks, [&](int64_t lo, int64_t hi, bool threaded) {
    T* cols = scratch<T>(0, CKK * P);
    for (int64_t k = lo; k < hi; ++k)
      for (int64_t n = g.N * k / blocks; n < g.N * (k + 1) / blocks; ++n) {
        const T* dy = dout + n * g.F * P;
        if (dw) {
          im2col<T, false>(x + n * g.C * g.H * g.W, g, cols);
          for (int64_t gi = 0; gi < g.G; ++gi) {
            T* part = partial.data() + k * FK + gi * Fg * Kg;
            if (transposed)  // dw[gi]^T (Kg x Fg) += cols[gi] dy[gi]^T
              mm<T>(threaded, false, true, Kg, Fg, P, cols + gi * Kg * P, P, dy + gi * Fg * P, P, T(1), part, Fg);
            else
              mm<T>(threaded, false, true, Fg, Kg, P, dy + gi * Fg * P, P, cols + gi * Kg * P, P, T(1), part, Kg);
          }
        }
        if (dx) {
          T* dxn = dx + n * g.C * g.H * g.W;
          std::fill(dxn, dxn + g.C * g.H * g.W, T(0));
          for (int64_t gi = 0; gi < g.G; ++gi)
            mm<T>(threaded, true, false, Kg, P, Fg, w + gi * Fg * Kg, Kg, dy + gi * Fg * P, P, T(0), cols + gi * Kg * P,
                  P);
          im2col<T, true>(dxn, g, cols);
        }
      }
  });
  if (dw) {
    std::fill(dw, dw + FK, T(0));
    for (int64_t k = 0; k < blocks; ++k) {
      const T* part = partial.data() + k * FK;
      if (!transposed) {
        for (int64_t i = 0; i < FK; ++i) dw[i] += part[i];
        continue;
      }
      for (int64_t gi = 0; gi < g.G; ++gi)  // group gi's block is Kg x Fg
        for (int64_t f = 0; f < Fg; ++f)
          for (int64_t kk = 0; kk < Kg; ++kk) dw[gi * Fg * Kg + f * Kg + kk] += part[gi * Fg * Kg + kk * Fg + f];
    }
  }
}

template void conv_forward<float>(const float*, const float*, const float*, const ConvGeometry&, float*, bool);
template void conv_forward<double>(const double*, const double*, const double*, const ConvGeometry&, double*, bool);
template void conv_forward_images<float>(const float*, const float*, const float*, const ConvGeometry&, bool,
                                         const std::function<void(int64_t, const float*)>&);
template void conv_forward_images<double>(const double*, const double*, const double*, const ConvGeometry&, bool,
                                          const std::function<void(int64_t, const double*)>&);
template void conv_backward<float>(const float*, const float*, const float*, const ConvGeometry&, float*, float*,
                                   float*);
template void conv_backward<double>(const double*, const double*, const double*, const ConvGeometry&, double*,
                                    double*, double*);

}  // namespace xg::detail

// Fused max and average pooling over contiguous (N,C) planes. Max pooling remembers each window's
// argmax; both backwards accumulate with += so overlapping windows (kernel > stride) are right.
// Max-pool ties: the first maximum in row-major window order takes the whole gradient (as PyTorch).
// Both gradients are linear maps whose own backward is their adjoint (max: scatter and gather by the
// argmax; average: the backward and the forward), so neither op keeps its input for any order.
// Max pooling's taps may be dilated; with ceil_mode, the last windows are cut at the input's edge.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "autograd/allocator.hpp"
#include "autograd/function.hpp"
#include "autograd/parallel.hpp"
#include "ops/geometry.hpp"
#include "ops/lanes.hpp"

namespace xg {

namespace {

using detail::pairs;
using detail::PoolGeometry;

// The first position h0 + k d (k >= 0) of a window's taps that is not above or left of the input.
inline int64_t first_tap(int64_t h0, int64_t d) { return h0 >= 0 ? h0 : h0 + (-h0 + d - 1) / d * d; }

// 1 / the divisor of each window (ho, wo) of avg_pool2d, as PyTorch: the window cut at the end of
// the padding (ceil_mode windows may reach beyond it), then, without count_include_pad, to the input.
template <class T>
std::vector<T> avg_scales(const PoolGeometry& g) {
  auto counts = [&](int64_t in, int64_t k, int64_t s, int64_t p, int64_t out) {
    std::vector<int64_t> c(static_cast<size_t>(out));
    for (int64_t o = 0; o < out; ++o) {
      const int64_t lo = o * s - p, hi = std::min(lo + k, in + p);
      c[o] = g.count_include_pad ? hi - lo : std::min(hi, in) - std::max<int64_t>(lo, 0);
    }
    return c;
  };
  const std::vector<int64_t> ch = counts(g.H, g.KH, g.SH, g.PH, g.HO), cw = counts(g.W, g.KW, g.SW, g.PW, g.WO);
  std::vector<T> scale(static_cast<size_t>(g.HO * g.WO));
  for (int64_t ho = 0; ho < g.HO; ++ho)
    for (int64_t wo = 0; wo < g.WO; ++wo) scale[ho * g.WO + wo] = T(1) / static_cast<T>(ch[ho] * cw[wo]);
  return scale;
}

// The 2x2/2 max-pool in f32, 16 windows at a time: each row's 32 inputs split into even and odd taps by
// shuffles (__builtin_shufflevector, which GCC and Clang share), the four taps combined in row-major
// order by window_max16 (ops/lanes.hpp). Rows shorter than a vector go through a padded copy. The scalar loop did not
// vectorise at airbench's rows of 15 and 7 windows (perf annotate: vcomiss and branches), 7% of a step.
using detail::f32x16;
using detail::load16;
using detail::u8x16;
using detail::window_max16;
using detail::window_scatter16;

// k <= 16 windows of one output row: out[j] and (with_arg) arg[j] = which of the window's taps won
// (0-3 in row-major order: 1 the right one, 2 the one below).
template <bool with_arg>
void max_pool_pairs16(const float* r0, const float* r1, int64_t k, float* out, uint8_t* arg) {
  float pad[2][32];  // zeroed only for a short row: a full one reads the rows themselves
  if (k < 16) {
    std::fill_n(pad[0], 2 * 32, 0.0f);
    std::copy(r0, r0 + 2 * k, pad[0]);
    std::copy(r1, r1 + 2 * k, pad[1]);
    r0 = pad[0], r1 = pad[1];
  }
  const f32x16 a0 = load16(r0), b0 = load16(r0 + 16), a1 = load16(r1), b1 = load16(r1 + 16);
  const f32x16 e0 = __builtin_shufflevector(a0, b0, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const f32x16 o0 = __builtin_shufflevector(a0, b0, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const f32x16 e1 = __builtin_shufflevector(a1, b1, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const f32x16 o1 = __builtin_shufflevector(a1, b1, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  u8x16 tap;
  const f32x16 best = window_max16(e0, o0, e1, o1, tap);
  if (k == 16)
    std::memcpy(out, &best, sizeof best);
  else
    for (int64_t j = 0; j < k; ++j) out[j] = best[j];
  if constexpr (with_arg) {
    if (k == 16)
      std::memcpy(arg, &tap, sizeof tap);
    else
      for (int64_t j = 0; j < k; ++j) arg[j] = tap[j];
  }
}

// One plane of the 2x2/2 max-pool: selects only, no branches. Same tie and NaN rule as the general loop:
// a later tap wins only if it is larger, or NaN where the best so far is not. arg (each window's winning
// tap, 0-3) may be null: nothing to differentiate.
template <class T, bool with_arg>
void max_pool_pairs_plane(const T* src, const PoolGeometry& g, T* out, uint8_t* arg) {
  for (int64_t ho = 0; ho < g.HO; ++ho) {
    const T* r0 = src + 2 * ho * g.W;
    const T* r1 = r0 + g.W;
    T* o = out + ho * g.WO;
    if constexpr (std::is_same_v<T, float>) {
      for (int64_t wo = 0; wo < g.WO; wo += 16)
        max_pool_pairs16<with_arg>(r0 + 2 * wo, r1 + 2 * wo, std::min<int64_t>(16, g.WO - wo), o + wo,
                                   with_arg ? arg + ho * g.WO + wo : nullptr);
      continue;
    }
    for (int64_t wo = 0; wo < g.WO; ++wo) {
      T best = r0[2 * wo];
      uint8_t at = 0;
      auto tap = [&](T v, uint8_t i) {
        const bool take = v > best || (v != v && best == best);
        best = take ? v : best;
        at = take ? i : at;
      };
      tap(r0[2 * wo + 1], 1);
      tap(r1[2 * wo], 2);
      tap(r1[2 * wo + 1], 3);
      o[wo] = best;
      if constexpr (with_arg) arg[ho * g.WO + wo] = at;
    }
  }
}

// k <= 16 windows of one output row of the f32 backward: the gradient d[j] at the window's winning tap
// a[j] (0-3 as above), zeros at its three others; the taps interleaved back into rows by shuffles.
inline void max_pool_pairs_backward16(const float* d, const uint8_t* a, int64_t k, float* r0, float* r1) {
  f32x16 dv = {};
  u8x16 taps = {};
  if (k == 16) {
    std::memcpy(&dv, d, sizeof dv);
    std::memcpy(&taps, a, sizeof taps);
  } else {
    for (int64_t j = 0; j < k; ++j) dv[j] = d[j], taps[j] = a[j];
  }
  f32x16 q[4];  // e0, o0, e1, o1
  window_scatter16(dv, taps, q);
  const f32x16 &e0 = q[0], &o0 = q[1], &e1 = q[2], &o1 = q[3];
  float rows[2][32];
  const f32x16 rs[4] = {__builtin_shufflevector(e0, o0, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                        __builtin_shufflevector(e0, o0, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31),
                        __builtin_shufflevector(e1, o1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                        __builtin_shufflevector(e1, o1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)};
  if (k == 16) {
    std::memcpy(r0, rs, 2 * sizeof(f32x16));
    std::memcpy(r1, rs + 2, 2 * sizeof(f32x16));
    return;
  }
  std::memcpy(rows, rs, sizeof rows);
  std::copy(rows[0], rows[0] + 2 * k, r0);
  std::copy(rows[1], rows[1] + 2 * k, r1);
}

// Its backward writes every input of the plane once: the window's gradient at its argmax, zeros at
// the other three taps and in an odd last row or column. No zero-filled tensor and no scatter.
template <class T>
void max_pool_pairs_backward_plane(const T* grad, const uint8_t* arg, const PoolGeometry& g, T* dst) {
  for (int64_t ho = 0; ho < g.HO; ++ho) {
    T* r0 = dst + 2 * ho * g.W;
    T* r1 = r0 + g.W;
    const T* d = grad + ho * g.WO;
    const uint8_t* a = arg + ho * g.WO;
    if constexpr (std::is_same_v<T, float>) {
      for (int64_t wo = 0; wo < g.WO; wo += 16)
        max_pool_pairs_backward16(d + wo, a + wo, std::min<int64_t>(16, g.WO - wo), r0 + 2 * wo, r1 + 2 * wo);
    } else {
      for (int64_t wo = 0; wo < g.WO; ++wo) {
        r0[2 * wo] = a[wo] == 0 ? d[wo] : T(0);
        r0[2 * wo + 1] = a[wo] == 1 ? d[wo] : T(0);
        r1[2 * wo] = a[wo] == 2 ? d[wo] : T(0);
        r1[2 * wo + 1] = a[wo] == 3 ? d[wo] : T(0);
      }
    }
    for (int64_t w = 2 * g.WO; w < g.W; ++w) r0[w] = r1[w] = T(0);
  }
  std::fill(dst + 2 * g.HO * g.W, dst + g.H * g.W, T(0));
}

// Where each output's maximum is. The 2x2/2 window (pairs) keeps which of its four taps won in a byte
// (0-3, row-major); other windows keep the tap's offset in the input plane in an int32 (-1: a dilated
// window with no tap inside the input). One byte, not four, took the argmax of airbench94_muon's step
// at batch 2000 (widths 48/192/192) from 221 to 55 MB. From the tensor allocator's cache, uninitialised
// (the forward writes every entry): a std::vector here was value-initialised memory from malloc, which
// maps blocks this large afresh on every call, and at airbench's batch of 1024 (120 MB of these per
// step) the kernel's page zeroing was 8.5% of a training profile.
struct Argmax {
  std::shared_ptr<void> buffer;
  bool taps = false;

  Argmax(int64_t n, bool taps_) : taps(taps_) {
    const std::size_t bytes =
        static_cast<std::size_t>(std::max<int64_t>(n, 1)) * (taps ? sizeof(uint8_t) : sizeof(int32_t));
    buffer = std::shared_ptr<void>(detail::alloc_bytes(bytes), [bytes](void* p) { detail::free_bytes(p, bytes); });
  }
  uint8_t* tap() const { return static_cast<uint8_t*>(buffer.get()); }
  int32_t* offset() const { return static_cast<int32_t*>(buffer.get()); }
  void* from(int64_t o) const { return taps ? static_cast<void*>(tap() + o) : offset() + o; }  // output o's entries
  // f(o, at) for each output o of the plane: at its argmax's offset in the input plane (-1: none).
  template <class F>
  void for_plane(int64_t plane, const PoolGeometry& g, F&& f) const {
    int64_t o = plane * g.HO * g.WO;
    if (!taps) {
      for (const int64_t end = o + g.HO * g.WO; o < end; ++o) f(o, int64_t{offset()[o]});
      return;
    }
    for (int64_t ho = 0; ho < g.HO; ++ho)
      for (int64_t wo = 0; wo < g.WO; ++wo, ++o) {
        const int64_t t = tap()[o];
        f(o, (2 * ho + t / 2) * g.W + 2 * wo + t % 2);
      }
  }
};

// One plane of max_pool2d: out (HO x WO) and, unless arg is null, each output's argmax in the plane's
// entries of arg (as Argmax keeps it for g).
template <class T>
void max_pool_plane(const T* src, const PoolGeometry& g, T* out, void* arg) {
  if (pairs(g)) {
    if (arg)
      max_pool_pairs_plane<T, true>(src, g, out, static_cast<uint8_t*>(arg));
    else max_pool_pairs_plane<T, false>(src, g, out, nullptr);
    return;
  }
  for (int64_t ho = 0; ho < g.HO; ++ho)
    for (int64_t wo = 0; wo < g.WO; ++wo) {
      const int64_t h0 = ho * g.SH - g.PH, w0 = wo * g.SW - g.PW;
      T best = -std::numeric_limits<T>::infinity();
      int64_t at = -1;  // stays -1 for a dilated window with no tap inside the input: -inf, no gradient
      for (int64_t h = first_tap(h0, g.DH); h < std::min(h0 + (g.KH - 1) * g.DH + 1, g.H); h += g.DH)
        for (int64_t w = first_tap(w0, g.DW); w < std::min(w0 + (g.KW - 1) * g.DW + 1, g.W); w += g.DW) {
          const T v = src[h * g.W + w];
          if (at < 0 || v > best || (std::isnan(v) && !std::isnan(best))) best = v, at = h * g.W + w;
        }
      out[ho * g.WO + wo] = best;
      if (arg) static_cast<int32_t*>(arg)[ho * g.WO + wo] = static_cast<int32_t>(at);
    }
}

// max_pool2d's gradient is linear in the output gradient and fixed by the forward's argmax: a scatter
// (each output's gradient to its argmax) whose adjoint is a gather (each output takes its argmax's
// value). Each is the other's backward, so gradients of every order need the argmax alone and the
// forward keeps no reference to its input: an airbench training step at batch 1024 peaked at 1,717 MB
// of RSS against 2,194 when the input was kept for the create_graph backward.
struct MaxPoolGatherFn : Function<MaxPoolGatherFn> {
  static constexpr const char* name = "max_pool2d_backward_backward";
  static Tensor forward(Context& ctx, const Tensor& ddx, const Argmax& arg, const PoolGeometry& g) {
    Tensor out = Tensor::empty({g.N, g.C, g.HO, g.WO}, ddx.dtype());
    dispatch_floating(ddx.dtype(), [&]<class T>() {
      const T* src = ddx.data<T>();
      T* po = out.data<T>();
      parallel_for(0, g.N * g.C, 4, [&](int64_t lo, int64_t hi) {
        for (int64_t plane = lo; plane < hi; ++plane) {
          const T* in = src + plane * g.H * g.W;
          arg.for_plane(plane, g, [&](int64_t o, int64_t at) { po[o] = at >= 0 ? in[at] : T(0); });
        }
      });
    });
    ctx.save("arg", arg);
    ctx.save("g", g);
    return out;
  }
  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads);
};

struct MaxPoolScatterFn : Function<MaxPoolScatterFn> {
  static constexpr const char* name = "max_pool2d_backward";
  static Tensor forward(Context& ctx, const Tensor& dy, const Argmax& arg, const PoolGeometry& g) {
    ctx.save("arg", arg);
    ctx.save("g", g);
    const int64_t per_plane = g.HO * g.WO;
    // Rows of at least 8 windows: every input written once, no zero-fill (at batch 1024, 64x31x31 went from
    // 88 to 71 ms forward + backward; f32's 16-window vectors took its backward from 107-117 to 61-82 ms).
    // Below that zero-fill and scatter win (256x7x7: 15 ms against 21 for the vectors, 31 for the loop).
    if (pairs(g) && g.WO >= 8) {
      Tensor dx = Tensor::empty({g.N, g.C, g.H, g.W}, dy.dtype());  // every entry written below
      dispatch_floating(dy.dtype(), [&]<class T>() {
        const T* pg = dy.data<T>();
        T* pd = dx.data<T>();
        parallel_for(0, g.N * g.C, 4, [&](int64_t lo, int64_t hi) {
          for (int64_t plane = lo; plane < hi; ++plane)
            max_pool_pairs_backward_plane(pg + plane * per_plane, arg.tap() + plane * per_plane, g,
                                          pd + plane * g.H * g.W);
        });
      });
      return dx;
    }
    Tensor dx = zeros({g.N, g.C, g.H, g.W}, dy.dtype());
    dispatch_floating(dx.dtype(), [&]<class T>() {
      const T* pg = dy.data<T>();
      T* pd = dx.data<T>();
      parallel_for(0, g.N * g.C, 4, [&](int64_t lo, int64_t hi) {
        for (int64_t plane = lo; plane < hi; ++plane) {
          T* dst = pd + plane * g.H * g.W;
          arg.for_plane(plane, g, [&](int64_t o, int64_t at) {
            if (at >= 0) dst[at] += pg[o];
          });
        }
      });
    });
    return dx;
  }
  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    return {MaxPoolGatherFn::apply(grads[0], ctx.get<Argmax>("arg"), ctx.get<PoolGeometry>("g"))};
  }
};

std::vector<Tensor> MaxPoolGatherFn::backward(Context& ctx, const std::vector<Tensor>& grads) {
  return {MaxPoolScatterFn::apply(grads[0], ctx.get<Argmax>("arg"), ctx.get<PoolGeometry>("g"))};
}

struct MaxPool2dFn : Function<MaxPool2dFn> {
  static constexpr const char* name = "max_pool2d";

  // out = the pooled x; arg (may be null) each output's argmax.
  static void pool(const Tensor& x, const PoolGeometry& g, Tensor& out, const Argmax* arg) {
    dispatch_floating(x.dtype(), [&]<class T>() {
      const T* px = x.data<T>();
      T* po = out.data<T>();
      const int64_t in = g.H * g.W, per = g.HO * g.WO;
      parallel_for(0, g.N * g.C, 4, [&](int64_t lo, int64_t hi) {
        for (int64_t p = lo; p < hi; ++p)
          max_pool_plane(px + p * in, g, po + p * per, arg ? arg->from(p * per) : nullptr);
      });
    });
  }

  static Tensor forward(Context& ctx, const Tensor& x, const PoolGeometry& g) {
    Tensor out = Tensor::empty({g.N, g.C, g.HO, g.WO}, x.dtype());
    const Argmax arg(out.numel(), pairs(g));
    pool(x, g, out, &arg);
    ctx.save("g", g);
    ctx.save("arg", arg);
    return out;
  }

  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    return {MaxPoolScatterFn::apply(grads[0], ctx.get<Argmax>("arg"), ctx.get<PoolGeometry>("g"))};
  }
};

// Visits each avg_pool2d window's in-bounds positions: f(plane, output index, input offset in plane).
template <class F>
void for_avg_windows(const PoolGeometry& g, F&& f) {
  parallel_for(0, g.N * g.C, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane)
      for (int64_t ho = 0; ho < g.HO; ++ho)
        for (int64_t wo = 0; wo < g.WO; ++wo) {
          const int64_t h0 = ho * g.SH - g.PH, w0 = wo * g.SW - g.PW, o = (plane * g.HO + ho) * g.WO + wo;
          for (int64_t h = std::max<int64_t>(h0, 0); h < std::min(h0 + g.KH, g.H); ++h)
            for (int64_t w = std::max<int64_t>(w0, 0); w < std::min(w0 + g.KW, g.W); ++w) f(plane, o, h * g.W + w);
        }
  });
}

// avg_pool2d is linear: its backward (each output's gradient spread over its window, scaled) has the
// forward as its own backward, and neither keeps its input.
struct AvgPoolBackwardFn : Function<AvgPoolBackwardFn> {
  static constexpr const char* name = "avg_pool2d_backward";
  static Tensor forward(Context& ctx, const Tensor& dy, const PoolGeometry& g) {
    Tensor dx = zeros({g.N, g.C, g.H, g.W}, dy.dtype());
    dispatch_floating(dx.dtype(), [&]<class T>() {
      const T* pg = dy.data<T>();
      T* pd = dx.data<T>();
      const std::vector<T> scale = avg_scales<T>(g);
      const int64_t P = g.HO * g.WO;
      for_avg_windows(
          g, [&](int64_t plane, int64_t o, int64_t i) { pd[plane * g.H * g.W + i] += pg[o] * scale[o - plane * P]; });
    });
    ctx.save("g", g);
    return dx;
  }
  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads);
};

struct AvgPool2dFn : Function<AvgPool2dFn> {
  static constexpr const char* name = "avg_pool2d";

  static Tensor forward(Context& ctx, const Tensor& x, const PoolGeometry& g) {
    Tensor out = zeros({g.N, g.C, g.HO, g.WO}, x.dtype());
    dispatch_floating(x.dtype(), [&]<class T>() {
      const T* px = x.data<T>();
      T* po = out.data<T>();
      const std::vector<T> scale = avg_scales<T>(g);
      const int64_t P = g.HO * g.WO;
      for_avg_windows(g, [&](int64_t plane, int64_t o, int64_t i) { po[o] += px[plane * g.H * g.W + i]; });
      for (int64_t plane = 0; plane < g.N * g.C; ++plane)
        for (int64_t p = 0; p < P; ++p) po[plane * P + p] *= scale[p];
    });
    ctx.save("g", g);
    return out;
  }

  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    return {AvgPoolBackwardFn::apply(grads[0], ctx.get<PoolGeometry>("g"))};
  }
};

std::vector<Tensor> AvgPoolBackwardFn::backward(Context& ctx, const std::vector<Tensor>& grads) {
  return {AvgPool2dFn::apply(grads[0], ctx.get<PoolGeometry>("g"))};
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  if (trace::enabled())
    return trace::op("max_pool2d", {x}, trace::pool_attrs(opts), [&] { return max_pool2d(x, opts); });
  PoolGeometry g = detail::pool_geometry(x, opts, "max_pool2d");
  check(g.H * g.W <= std::numeric_limits<int32_t>::max(), "max_pool2d: planes of {}x{} are too large", g.H, g.W);
  if (GradMode::is_enabled() && x.requires_grad()) return MaxPool2dFn::apply(x, g);
  Tensor out = Tensor::empty({g.N, g.C, g.HO, g.WO}, x.dtype());  // nothing to record: no argmax
  MaxPool2dFn::pool(x, g, out, nullptr);
  return out;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  if (trace::enabled())
    return trace::op("avg_pool2d", {x}, trace::pool_attrs(opts), [&] { return avg_pool2d(x, opts); });
  return AvgPool2dFn::apply(x, detail::pool_geometry(x, opts, "avg_pool2d"));
}

namespace detail {

template <class T>
void max_pool_planes(const T* x, const PoolGeometry& g, T* out, int64_t lo, int64_t hi) {
  for (int64_t p = lo; p < hi; ++p) max_pool_plane(x + p * g.H * g.W, g, out + p * g.HO * g.WO, nullptr);
}
template void max_pool_planes<float>(const float*, const PoolGeometry&, float*, int64_t, int64_t);
template void max_pool_planes<double>(const double*, const PoolGeometry&, double*, int64_t, int64_t);

template <class T>
void max_pool_pairs_planes(const T* x, const PoolGeometry& g, T* out, uint8_t* taps, int64_t lo, int64_t hi) {
  const int64_t in = g.H * g.W, per = g.HO * g.WO;
  for (int64_t p = lo; p < hi; ++p) max_pool_pairs_plane<T, true>(x + p * in, g, out + p * per, taps + p * per);
}
template void max_pool_pairs_planes<float>(const float*, const PoolGeometry&, float*, uint8_t*, int64_t, int64_t);
template void max_pool_pairs_planes<double>(const double*, const PoolGeometry&, double*, uint8_t*, int64_t, int64_t);

template <class T>
void max_unpool_pairs_planes(const T* grad, const uint8_t* taps, const PoolGeometry& g, T* dst, int64_t lo,
                             int64_t hi) {
  const int64_t in = g.H * g.W, per = g.HO * g.WO;
  for (int64_t p = lo; p < hi; ++p) max_pool_pairs_backward_plane(grad + p * per, taps + p * per, g, dst + p * in);
}
template void max_unpool_pairs_planes<float>(const float*, const uint8_t*, const PoolGeometry&, float*, int64_t,
                                             int64_t);
template void max_unpool_pairs_planes<double>(const double*, const uint8_t*, const PoolGeometry&, double*, int64_t,
                                              int64_t);

}  // namespace detail

}  // namespace xg

// f32 convolutions through oneDNN's convolution primitives, of two kinds:
// - in bfloat16 on Intel AMX (direct convolutions), when set_float32_matmul_precision("medium")
//   allows it (ops/blas.cpp);
// - in f32 by oneDNN's Winograd F(4x4, 3x3) kernel (jit_wino_4x3, AVX-512) for 3x3 stride-1
//   convolutions, otherwise xgrad's own Winograd (ops/fused/winograd.cpp). oneDNN's keeps the
//   transformed tiles in cache between its transforms and products, where xgrad's go through memory
//   (perf: xgrad's staging and input transform wait on loads): forward + backward at batch 128, with
//   the layout copies, 1.1-1.3x xgrad's at VGG's shapes, alternated; VGG training 1.26x, inference 1.33x.
// Each worker takes its share of the batch in chunks of images: the chunk is copied from NCHW to the
// primitive's own layout (bf16 NHWC, or f32 with 16 channels interleaved), convolved, and the f32
// result copied back. Like every GEMM in xgrad, the calls run on one OpenMP thread each, the
// parallelism being xgrad's workers.
//
// Why not xgrad's Winograd or im2col kernels with bf16 GEMMs: Winograd's transforms amplify bf16's
// rounding (relative error 2% against 0.23% for a direct product, measured at airbench's shapes), and
// im2col's per-image products, with the weights rounded again for every image, ran no faster than f32.
// build/bench/bench_airbench alternates the whole network in both precisions.
#include "ops/fused/onednn_conv.hpp"

#ifdef XGRAD_HAVE_ONEDNN

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "autograd/parallel.hpp"
#include "ops/blas.hpp"
#include "ops/fused/winograd.hpp"
#include "ops/lanes.hpp"
#include "ops/onednn.hpp"

namespace xg::detail {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// Images per primitive call. For the Winograd kernel, chunks of 64 ran no faster within this machine's
// noise (VGG training, alternated) and raised the peak RSS by 10 MB.
constexpr int64_t kChunk = 32;

// oneDNN's right/bottom padding for PyTorch's output size (negative when the floor drops input rows).
int64_t pad_end(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (out - 1) * s + d * (k - 1) + 1 - in - p;
}

// Per image, dst [HW][C] (bf16) = src [C][HW] (f32) transposed and rounded: 8 x 8 squares in registers.
void nchw_to_nhwc_bf16(const float* src, int64_t N, int64_t C, int64_t HW, uint16_t* dst) {
  for (int64_t n = 0; n < N; ++n, src += C * HW, dst += C * HW) {
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) {
      int64_t p = 0;
      for (; p + 8 <= HW; p += 8) {
        f32x8 m[8], t[8];
        for (int i = 0; i < 8; ++i) std::memcpy(&m[i], src + (c + i) * HW + p, sizeof(f32x8));
        transpose8x8(m, t);
        for (int q = 0; q < 8; ++q) store_bfloat16(t[q], dst + (p + q) * C + c);
      }
      for (; p < HW; ++p)
        for (int i = 0; i < 8; ++i) dst[p * C + c + i] = to_bfloat16(src[(c + i) * HW + p]);
    }
    for (; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) dst[p * C + c] = to_bfloat16(src[c * HW + p]);
  }
}

// Per image, dst [C/16][HW][16] = src [C][HW] (oneDNN's nChw16c), channels past C zero: 8 x 8 squares in
// registers.
void nchw_to_blocked16(const float* src, int64_t N, int64_t C, int64_t HW, float* dst) {
  const int64_t CB = (C + 15) / 16;
  for (int64_t n = 0; n < N; ++n, src += C * HW, dst += CB * 16 * HW)
    for (int64_t cb = 0; cb < CB; ++cb)
      for (int64_t h = 0; h < 2; ++h) {
        const int64_t c0 = cb * 16 + h * 8, cnt = std::clamp<int64_t>(C - c0, 0, 8);
        float* d = dst + cb * 16 * HW + h * 8;
        int64_t p = 0;
        for (; p + 8 <= HW; p += 8) {
          f32x8 m[8] = {}, t[8];
          for (int64_t i = 0; i < cnt; ++i) std::memcpy(&m[i], src + (c0 + i) * HW + p, sizeof(f32x8));
          transpose8x8(m, t);
          for (int q = 0; q < 8; ++q) std::memcpy(d + (p + q) * 16, &t[q], sizeof(f32x8));
        }
        for (; p < HW; ++p)
          for (int64_t i = 0; i < 8; ++i) d[p * 16 + i] = i < cnt ? src[(c0 + i) * HW + p] : 0.f;
      }
}

// The inverse for the first C channels, plus bias[c] (may be null), then ReLU when asked.
void blocked16_to_nchw(const float* src, int64_t N, int64_t C, int64_t HW, const float* bias, bool relu, float* dst) {
  const int64_t CB = (C + 15) / 16;
  for (int64_t n = 0; n < N; ++n, src += CB * 16 * HW, dst += C * HW)
    for (int64_t cb = 0; cb < CB; ++cb)
      for (int64_t h = 0; h < 2; ++h) {
        const int64_t c0 = cb * 16 + h * 8, cnt = std::clamp<int64_t>(C - c0, 0, 8);
        const float* s = src + cb * 16 * HW + h * 8;
        int64_t p = 0;
        for (; p + 8 <= HW; p += 8) {
          f32x8 m[8], t[8];
          for (int q = 0; q < 8; ++q) std::memcpy(&m[q], s + (p + q) * 16, sizeof(f32x8));
          transpose8x8(m, t);
          for (int64_t i = 0; i < cnt; ++i) {
            f32x8 v = t[i] + (bias ? bias[c0 + i] : 0.f);
            if (relu) v = v < 0.f ? f32x8{} : v;
            std::memcpy(dst + (c0 + i) * HW + p, &v, sizeof(f32x8));
          }
        }
        for (; p < HW; ++p)
          for (int64_t i = 0; i < cnt; ++i) {
            const float v = s[p * 16 + i] + (bias ? bias[c0 + i] : 0.f);
            dst[(c0 + i) * HW + p] = relu && v < 0.f ? 0.f : v;
          }
      }
}

// A user buffer in plain layout (NCHW, OIHW) and a primitive's own, with the copy from one to the
// other. Activations in NHWC (bf16 in, f32 out), the layout oneDNN's AMX kernels choose, and in f32
// nChw16c, the Winograd kernel's, go through xgrad's own transposes: oneDNN's reorders between NCHW
// f32 and NHWC ran at 1.5-6 GB/s and took 40% of an airbench step (ONEDNN_VERBOSE=1).
struct Staged {
  memory user, own;
  dnnl::reorder to_own, to_user;
  int64_t N = 0, C = 0, HW = 0;  // set when own is NHWC or nChw16c: xgrad's transposes
  bool blocked = false;          // nChw16c
  int slot = -1;                 // own's storage: its own, or (>= 0) the thread's scratch<float>(slot)
  Staged() = default;
  // Activations (4-D) live in a per-thread scratch slot, shared by every shape: with buffers of their
  // own per shape, VGG training's peak RSS was 387 MB (chunks of 64) against 236.
  Staged(const memory::desc& plain, const memory::desc& wanted, bool in, bool out, int scratch_slot = -1)
      : user(plain, onednn_engine(), DNNL_MEMORY_NONE),
        own(scratch_slot >= 0 ? memory(wanted, onednn_engine(), DNNL_MEMORY_NONE) : memory(wanted, onednn_engine())),
        slot(scratch_slot) {
    const memory::dims d = plain.dims();
    if (d.size() == 4 && in != out) {
      blocked = wanted == memory::desc(d, dt::f32, tag::nChw16c);
      if (blocked ||
          (wanted == memory::desc(d, wanted.data_type(), tag::nhwc) && in == (wanted.data_type() == dt::bf16))) {
        N = d[0], C = d[1], HW = d[2] * d[3];
        return;
      }
    }
    if (in) to_own = dnnl::reorder(user, own);
    if (out) to_user = dnnl::reorder(own, user);
  }
  // own, its storage bound (a scratch slot's address changes when the slot grows).
  memory& mem() {
    if (slot >= 0) own.set_data_handle(scratch<float>(slot, static_cast<int64_t>(own.get_desc().get_size() / 4 + 1)));
    return own;
  }
  void load(const float* p) {
    if (blocked) return nchw_to_blocked16(p, N, C, HW, static_cast<float*>(mem().get_data_handle()));
    if (N) return nchw_to_nhwc_bf16(p, N, C, HW, static_cast<uint16_t*>(mem().get_data_handle()));
    user.set_data_handle(const_cast<float*>(p));
    to_own.execute(onednn_stream(), user, mem());
  }
  // bias and relu: the forward's epilogue, applied here for the Winograd kernel (nChw16c) only.
  void store(float* p, const float* bias = nullptr, bool relu = false) {
    const float* src = static_cast<const float*>(mem().get_data_handle());
    if (blocked) return blocked16_to_nchw(src, N, C, HW, bias, relu, p);
    check(!bias && !relu, "onednn_conv: an epilogue on a copy out of NHWC or through a reorder");
    if (N) {
      for (int64_t n = 0; n < N; ++n) transpose_rows(src + n * HW * C, C, HW, C, p + n * C * HW);
      return;
    }
    user.set_data_handle(p);
    to_user.execute(onednn_stream(), own, user);
  }
};

// Which of the two: bf16 direct convolutions on AMX, or oneDNN's f32 Winograd kernel.
enum class Kind { bf16_direct, f32_winograd };

// bf16 when "medium" precision is on and the CPU has AMX; f32 Winograd otherwise.
Kind current_kind() { return bf16_gemm_active() ? Kind::bf16_direct : Kind::f32_winograd; }
dt operand_type(Kind k) { return k == Kind::bf16_direct ? dt::bf16 : dt::f32; }
dnnl::algorithm algorithm_of(Kind k) {
  return k == Kind::bf16_direct ? dnnl::algorithm::convolution_direct : dnnl::algorithm::convolution_winograd;
}

// The three primitives for one geometry at n images, and their staged operands (per thread).
struct Prims {
  ConvGeometry g;  // N = the images per call
  Kind kind;
  bool bias, relu;  // in the primitive (bf16 only: the Winograd kernel's epilogue is in Staged::store)
  dnnl::convolution_forward::primitive_desc fpd;
  dnnl::convolution_forward fwd;
  Staged x, w, y, bias_mem;
  uint64_t w_call = 0, w_d_call = 0;  // the call whose weights w and w_d hold
  bool backward_ready = false;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  Staged dy_d, w_d, dx, x_w, dy_w, dw;
};

bool same(const ConvGeometry& a, const ConvGeometry& b) {
  return a.N == b.N && a.C == b.C && a.H == b.H && a.W == b.W && a.F == b.F && a.KH == b.KH && a.KW == b.KW &&
         a.HO == b.HO && a.WO == b.WO && a.SH == b.SH && a.SW == b.SW && a.PH == b.PH && a.PW == b.PW &&
         a.DH == b.DH && a.DW == b.DW && a.G == b.G;
}

struct Descs {
  memory::dims x, w, y, stride, dil, pl, pr;
  explicit Descs(const ConvGeometry& g)
      : x{g.N, g.C, g.H, g.W},
        w{g.F, g.C, g.KH, g.KW},
        y{g.N, g.F, g.HO, g.WO},
        stride{g.SH, g.SW},
        dil{g.DH - 1, g.DW - 1},
        pl{g.PH, g.PW},
        pr{pad_end(g.H, g.HO, g.KH, g.SH, g.PH, g.DH), pad_end(g.W, g.WO, g.KW, g.SW, g.PW, g.DW)} {}
};

dnnl::convolution_forward::primitive_desc forward_pd(const ConvGeometry& g, Kind kind, bool bias, bool relu) {
  const Descs d(g);
  const dt in = operand_type(kind);
  const memory::desc x(d.x, in, tag::any), w(d.w, in, tag::any), y(d.y, dt::f32, tag::any);
  const memory::desc b = bias ? memory::desc({g.F}, dt::f32, tag::a) : memory::desc();
  const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, algorithm_of(kind), x, w, b, y,
                                             d.stride, d.dil, d.pl, d.pr);
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  return dnnl::convolution_forward::primitive_desc(desc, attr, onednn_engine());
}

Prims& prims(const ConvGeometry& g, Kind kind, bool bias, bool relu) {
  if (kind == Kind::f32_winograd) bias = relu = false;  // applied by Staged::store
  thread_local std::vector<std::unique_ptr<Prims>> cache;
  for (auto& p : cache)
    if (same(p->g, g) && p->kind == kind && p->bias == bias && p->relu == relu) return *p;
  if (cache.size() >= 32) cache.erase(cache.begin());
  std::lock_guard<std::mutex> lock(onednn_create_mutex());
  auto p = std::make_unique<Prims>();
  p->g = g;
  p->kind = kind;
  p->bias = bias;
  p->relu = relu;
  p->fpd = forward_pd(g, kind, bias, relu);
  p->fwd = dnnl::convolution_forward(p->fpd);
  const Descs d(g);
  p->x = Staged({d.x, dt::f32, tag::nchw}, p->fpd.src_desc(), true, false, 1);
  p->w = Staged({d.w, dt::f32, tag::oihw}, p->fpd.weights_desc(), true, false);
  p->y = Staged({d.y, dt::f32, tag::nchw}, p->fpd.dst_desc(), false, true, 2);
  if (p->bias) p->bias_mem = Staged({{g.F}, dt::f32, tag::a}, p->fpd.bias_desc(), true, false);
  cache.push_back(std::move(p));
  return *cache.back();
}

// The weight gradient as one GEMM over the output pixels of a chunk (weight_grad) where the planes
// are small; oneDNN's backward-weights kernel elsewhere. Alone, forward + backward at batch 256
// (2 threads): 256->256 at 3x3 20.4 -> 10.0 ms and at 7x7 39.7 -> 36.5 ms with the GEMM, but 64->64
// at 15x15 11.5 -> 17.8 ms and 24->64 at 31x31 26.9 -> 37.3 ms.
bool weight_grad_by_gemm(const ConvGeometry& g, Kind kind) { return kind == Kind::bf16_direct && g.HO * g.WO <= 64; }

void make_backward(Prims& p) {
  if (p.backward_ready) return;
  std::lock_guard<std::mutex> lock(onednn_create_mutex());
  const ConvGeometry& g = p.g;
  const Descs d(g);
  const dt in = operand_type(p.kind);
  const dnnl::algorithm alg = algorithm_of(p.kind);
  const memory::desc x(d.x, in, tag::any), w(d.w, in, tag::any), y(d.y, in, tag::any);
  const memory::desc dx(d.x, dt::f32, tag::any), dw(d.w, dt::f32, tag::any);
  const dnnl::convolution_backward_data::primitive_desc dpd(
      dnnl::convolution_backward_data::desc(alg, dx, w, y, d.stride, d.dil, d.pl, d.pr), onednn_engine(), p.fpd);
  p.bwd_data = dnnl::convolution_backward_data(dpd);
  p.dy_d = Staged({d.y, dt::f32, tag::nchw}, dpd.diff_dst_desc(), true, false, 1);
  p.w_d = Staged({d.w, dt::f32, tag::oihw}, dpd.weights_desc(), true, false);
  p.dx = Staged({d.x, dt::f32, tag::nchw}, dpd.diff_src_desc(), false, true, 2);
  if (!weight_grad_by_gemm(g, p.kind)) {
    const dnnl::convolution_backward_weights::primitive_desc wpd(
        dnnl::convolution_backward_weights::desc(alg, x, dw, y, d.stride, d.dil, d.pl, d.pr), onednn_engine(), p.fpd);
    p.bwd_weights = dnnl::convolution_backward_weights(wpd);
    p.x_w = Staged({d.x, dt::f32, tag::nchw}, wpd.src_desc(), true, false, 2);  // dx is stored by then
    p.dy_w = Staged({d.y, dt::f32, tag::nchw}, wpd.diff_dst_desc(), true, false, 3);
    p.dw = Staged({d.w, dt::f32, tag::oihw}, wpd.diff_weights_desc(), false, true);
  }
  p.backward_ready = true;
}

bool implementation_is_fast(const ConvGeometry& g, Kind kind) {
  // oneDNN falls back to reference loops for what its AMX kernels do not cover; those stay on xgrad's
  // own, as do the shapes (and CPUs) its Winograd kernel refuses.
  std::lock_guard<std::mutex> lock(onednn_create_mutex());
  try {
    const auto pd = forward_pd(g, kind, false, false);
    if (kind == Kind::bf16_direct) return std::string(pd.impl_info_str()).find("amx") != std::string::npos;
    // The Winograd kernel's activations must be nChw16c, which xgrad's own copies read and write.
    const Descs d(g);
    return std::string(pd.impl_info_str()).find("wino") != std::string::npos &&
           pd.src_desc() == memory::desc(d.x, dt::f32, tag::nChw16c) &&
           pd.dst_desc() == memory::desc(d.y, dt::f32, tag::nChw16c);
  } catch (const dnnl::error&) {
    return false;
  }
}

ConvGeometry chunk_of(ConvGeometry g, int64_t n) {
  g.N = n;
  return g;
}

// Calls f(b, n0, n) for chunks of n <= kChunk images from image n0, each worker taking a contiguous
// share of the batch (block b of `blocks`), under one OpenMP thread.
template <class F>
void for_image_chunks(int64_t N, int64_t blocks, F f) {
  parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) {
    OneOpenmpThread one;
    for (int64_t b = lo; b < hi; ++b) {
      const int64_t n0 = N * b / blocks, n1 = N * (b + 1) / blocks;
      for (int64_t n = n0; n < n1; n += kChunk) f(b, n, std::min(kChunk, n1 - n));
    }
  });
}

// The weight gradient of n images as one bf16 GEMM on AMX: acc [F][KH KW C] (= when `first`, else +=)
// dY^T [F x P] cols [P x KH KW C], P the images' output pixels, both operands in NHWC order.
// oneDNN's own backward-weights kernel ran at a quarter of its forward's speed (ONEDNN_VERBOSE=1:
// 4.6 ms for 32 images of 256->256 at 7x7, against 1.1 ms forward), a quarter of an airbench step.
// dys: dout already in bf16 NHWC (the input gradient's copy), or null.
void weight_grad(const float* x, const float* dout, const uint16_t* dys, const ConvGeometry& g, int64_t n, float* acc,
                 bool first) {
  const int64_t HWo = g.HO * g.WO, P = n * HWo, KC = g.KH * g.KW * g.C;
  uint16_t* xs = scratch<uint16_t>(0, n * g.C * g.H * g.W);
  uint16_t* cols = scratch<uint16_t>(2, P * KC);
  nchw_to_nhwc_bf16(x, n, g.C, g.H * g.W, xs);
  if (!dys) {
    uint16_t* own = scratch<uint16_t>(1, P * g.F);
    nchw_to_nhwc_bf16(dout, n, g.F, HWo, own);
    dys = own;
  }
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oy = 0; oy < g.HO; ++oy)
      for (int64_t ox = 0; ox < g.WO; ++ox) {
        uint16_t* row = cols + ((b * g.HO + oy) * g.WO + ox) * KC;
        for (int64_t kh = 0; kh < g.KH; ++kh) {
          const int64_t iy = oy * g.SH - g.PH + kh * g.DH;
          for (int64_t kw = 0; kw < g.KW; ++kw, row += g.C) {
            const int64_t ix = ox * g.SW - g.PW + kw * g.DW;
            if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W)
              std::memset(row, 0, g.C * sizeof(uint16_t));
            else
              std::memcpy(row, xs + ((b * g.H + iy) * g.W + ix) * g.C, g.C * sizeof(uint16_t));
          }
        }
      }
  gemm_bfloat16(true, false, g.F, KC, P, 1.f, dys, cols, first ? 0.f : 1.f, acc);
}

int64_t blocks_for(int64_t N) { return std::max<int64_t>(1, std::min<int64_t>(N, get_num_threads())); }

// Numbers the calls, so that each thread stages a call's weights once, not once per chunk.
uint64_t next_call() {
  static std::atomic<uint64_t> calls{0};
  return ++calls;
}

}  // namespace

bool use_onednn_conv(const ConvGeometry& g) {
  if (g.G != 1 || g.N == 0 || g.HO <= 0 || g.WO <= 0) return false;
  if (pad_end(g.H, g.HO, g.KH, g.SH, g.PH, g.DH) < 0 || pad_end(g.W, g.WO, g.KW, g.SW, g.PW, g.DW) < 0) return false;
  const Kind kind = current_kind();
  if (kind == Kind::f32_winograd) {
    // Where xgrad would run its own Winograd (a forced algorithm keeps xgrad's kernels), or when forced.
    const ConvAlgorithm a = conv_algorithm();
    if (a == ConvAlgorithm::im2col || a == ConvAlgorithm::winograd || !sgemm_uses_onednn()) return false;
    if (g.KH != 3 || g.KW != 3 || g.SH != 1 || g.SW != 1 || g.DH != 1 || g.DW != 1) return false;
    // A plane of one 4x4 output tile stays on xgrad's Winograd: forward + backward at batch 256, 256->256
    // at 3x3 and 4x4, oneDNN's ran at 0.68x and 0.63x the speed of xgrad's (alternated), 1.18x at 6x6.
    const bool one_tile = (g.HO + 3) / 4 * ((g.WO + 3) / 4) == 1;
    if (a == ConvAlgorithm::automatic && (g.C < 16 || g.F < 16 || one_tile)) return false;
  }
  thread_local std::vector<std::tuple<ConvGeometry, Kind, bool>> known;
  if (known.size() >= 256) known.clear();
  const ConvGeometry c = chunk_of(g, kChunk);
  for (auto& [k, kk, fast] : known)
    if (same(k, c) && kk == kind) return fast;
  OneOpenmpThread one;
  const bool fast = implementation_is_fast(c, kind);
  known.emplace_back(c, kind, fast);
  return fast;
}

bool onednn_winograd_available() {
  static const bool yes = [] {
    OneOpenmpThread one;
    return implementation_is_fast({kChunk, 16, 8, 8, 16, 3, 3, 8, 8, 1, 1, 1, 1}, Kind::f32_winograd);
  }();
  return yes;
}

namespace {

// The forward in chunks of images: sink(p, n0, n) takes each chunk's output from p.y.
template <class Sink>
void forward_chunks(const float* x, const float* w, const float* bias, const ConvGeometry& g, bool relu, Sink sink) {
  const int64_t in = g.C * g.H * g.W;
  const uint64_t call = next_call();
  const Kind kind = current_kind();
  for_image_chunks(g.N, blocks_for(g.N), [&](int64_t, int64_t n0, int64_t n) {
    Prims& p = prims(chunk_of(g, n), kind, bias != nullptr, relu);
    if (p.w_call != call) {
      p.w.load(w);
      if (p.bias) p.bias_mem.load(bias);
      p.w_call = call;
    }
    p.x.load(x + n0 * in);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, p.x.mem()}, {DNNL_ARG_WEIGHTS, p.w.own}, {DNNL_ARG_DST, p.y.mem()}};
    if (p.bias) args[DNNL_ARG_BIAS] = p.bias_mem.own;
    p.fwd.execute(onednn_stream(), args);
    sink(p, n0, n);
  });
}

// The backward in chunks of images: load_dy(s, n0, n) stages the chunk's output gradient in s (the
// input gradient's or the weight gradient's). dout: the output gradient in NCHW, or null when
// load_dy builds it (the weight gradient by GEMM, bf16 only, reads dout itself).
template <class LoadDy>
void backward_chunks(const float* x, const float* w, const float* dout, const ConvGeometry& g, float* dx, float* dw,
                     LoadDy load_dy) {
  const int64_t in = g.C * g.H * g.W, on = g.F * g.HO * g.WO, wn = g.F * g.C * g.KH * g.KW;
  const int64_t blocks = blocks_for(g.N);
  std::vector<float> partial(dw ? static_cast<size_t>(blocks * wn) : 0);
  const Kind kind = current_kind();
  const bool by_gemm = weight_grad_by_gemm(g, kind);
  const uint64_t call = next_call();
  for_image_chunks(g.N, blocks, [&](int64_t b, int64_t n0, int64_t n) {
    Prims& p = prims(chunk_of(g, n), kind, false, false);
    make_backward(p);
    if (dx) {
      if (p.w_d_call != call) {
        p.w_d.load(w);
        p.w_d_call = call;
      }
      load_dy(p.dy_d, n0, n);
      p.bwd_data.execute(
          onednn_stream(),
          {{DNNL_ARG_DIFF_DST, p.dy_d.mem()}, {DNNL_ARG_WEIGHTS, p.w_d.own}, {DNNL_ARG_DIFF_SRC, p.dx.mem()}});
      p.dx.store(dx + n0 * in);
    }
    if (dw) {
      float* sum = partial.data() + b * wn;  // [F][KH KW C] by GEMM, else [F][C][KH KW]
      const bool first = n0 == g.N * b / blocks;
      // dout's bf16 copy for the input gradient serves the weight gradient too when the layouts agree.
      if (by_gemm) {
        const bool nhwc = dx && p.dy_d.N;  // the input gradient's copy is bf16 NHWC
        return weight_grad(x + n0 * in, dout ? dout + n0 * on : nullptr,
                           nhwc ? static_cast<const uint16_t*>(p.dy_d.mem().get_data_handle()) : nullptr, g, n, sum,
                           first);
      }
      const bool reuse = dx && p.dy_d.own.get_desc() == p.dy_w.own.get_desc();
      p.x_w.load(x + n0 * in);
      if (!reuse) load_dy(p.dy_w, n0, n);
      p.bwd_weights.execute(onednn_stream(), {{DNNL_ARG_SRC, p.x_w.mem()},
                                              {DNNL_ARG_DIFF_DST, reuse ? p.dy_d.mem() : p.dy_w.mem()},
                                              {DNNL_ARG_DIFF_WEIGHTS, p.dw.own}});
      float* piece = scratch<float>(0, wn);
      p.dw.store(first ? sum : piece);
      if (!first)
        for (int64_t i = 0; i < wn; ++i) sum[i] += piece[i];
    }
  });
  if (!dw) return;
  // The blocks' partial sums added in block order (the result does not depend on the thread timing),
  // the GEMM's [F][KH][KW][C] put in dw's [F][C][KH][KW].
  const int64_t K2 = g.KH * g.KW;
  parallel_for(0, g.F, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t f = lo; f < hi; ++f)
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t k = 0; k < K2; ++k) {
          const int64_t from = by_gemm ? (f * K2 + k) * g.C + c : (f * g.C + c) * K2 + k;
          float s = 0;
          for (int64_t b = 0; b < blocks; ++b) s += partial[b * wn + from];
          dw[(f * g.C + c) * K2 + k] = s;
        }
  });
}

// The 2x2/2 max-pool of n images of the Winograd kernel's nChw16c output y (planes of HO x WO, CB
// blocks of 16 channels), bias16 (CB * 16 values, or null) added first as the plain forward adds it:
// the pooled values into out (NCHW, F planes of PH x PW), each window's winning tap (0-3, row-major)
// into taps ([n][CB][PH PW][16]) unless it is null. The taps are compared by window_max16, as
// max_pool2d's 2x2 kernel compares them, so the result equals max_pool2d(conv2d(...)) to the bit.
void pool_blocked16(const float* y, int64_t n, const ConvGeometry& g, const float* bias16, float* out, uint8_t* taps) {
  const int64_t CB = (g.F + 15) / 16, PH = g.HO / 2, PW = g.WO / 2, PP = PH * PW;
  float* pooled = scratch<float>(4, CB * 16 * PP);  // one image's, still blocked
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t cb = 0; cb < CB; ++cb) {
      const float* plane = y + (i * CB + cb) * g.HO * g.WO * 16;
      const f32x16 b = bias16 ? load16(bias16 + cb * 16) : f32x16{};
      float* dst = pooled + cb * PP * 16;
      uint8_t* tap = taps ? taps + (i * CB + cb) * PP * 16 : nullptr;
      for (int64_t ph = 0; ph < PH; ++ph)
        for (int64_t pw = 0; pw < PW; ++pw) {
          const float* r0 = plane + (2 * ph * g.WO + 2 * pw) * 16;
          const float* r1 = r0 + g.WO * 16;
          const f32x16 e0 = load16(r0) + b, o0 = load16(r0 + 16) + b, e1 = load16(r1) + b, o1 = load16(r1 + 16) + b;
          u8x16 code;
          const f32x16 best = window_max16(e0, o0, e1, o1, code);
          std::memcpy(dst + (ph * PW + pw) * 16, &best, sizeof best);
          if (tap) std::memcpy(tap + (ph * PW + pw) * 16, &code, sizeof code);
        }
    }
    blocked16_to_nchw(pooled, 1, g.F, PP, nullptr, false, out + i * g.F * PP);
  }
}

// pool_blocked16's adjoint: the output gradient of n images in nChw16c (dy, HO x WO planes) from the
// pooled gradient dp (NCHW) and the taps, each window's gradient at its winning tap and zeros at the
// other three (and in an odd last row or column).
void unpool_blocked16(const float* dp, const uint8_t* taps, int64_t n, const ConvGeometry& g, float* dy) {
  const int64_t CB = (g.F + 15) / 16, PH = g.HO / 2, PW = g.WO / 2, PP = PH * PW;
  float* blocked = scratch<float>(4, n * CB * 16 * PP);
  nchw_to_blocked16(dp, n, g.F, PP, blocked);
  for (int64_t plane = 0; plane < n * CB; ++plane) {
    float* d = dy + plane * g.HO * g.WO * 16;
    const float* src = blocked + plane * PP * 16;
    const uint8_t* tap = taps + plane * PP * 16;
    for (int64_t ph = 0; ph < PH; ++ph) {
      float* r0 = d + 2 * ph * g.WO * 16;
      float* r1 = r0 + g.WO * 16;
      for (int64_t pw = 0; pw < PW; ++pw) {
        const f32x16 v = load16(src + (ph * PW + pw) * 16);
        u8x16 code;
        std::memcpy(&code, tap + (ph * PW + pw) * 16, sizeof code);
        f32x16 q[4];
        window_scatter16(v, code, q);
        std::memcpy(r0 + 2 * pw * 16, q, 2 * sizeof(f32x16));
        std::memcpy(r1 + 2 * pw * 16, q + 2, 2 * sizeof(f32x16));
      }
      if (g.WO % 2) std::fill_n(r0 + (g.WO - 1) * 16, 16, 0.f), std::fill_n(r1 + (g.WO - 1) * 16, 16, 0.f);
    }
    if (g.HO % 2) std::fill_n(d + (g.HO - 1) * g.WO * 16, g.WO * 16, 0.f);
  }
}

// The staged buffer's nChw16c storage: the fused pooling reads and writes that layout only.
float* blocked_storage(Staged& s) {
  if (!s.blocked) fail("onednn_conv: the fused max-pool needs the Winograd kernel's nChw16c activations");
  return static_cast<float*>(s.mem().get_data_handle());
}

}  // namespace

void onednn_conv_forward(const float* x, const float* w, const float* bias, const ConvGeometry& g, float* out,
                         bool relu) {
  const int64_t on = g.F * g.HO * g.WO;
  forward_chunks(x, w, bias, g, relu, [&](Prims& p, int64_t n0, int64_t) {
    p.y.store(out + n0 * on, p.bias ? nullptr : bias, relu && !p.relu);  // the epilogue the primitive lacks
  });
}

void onednn_conv_backward(const float* x, const float* w, const float* dout, const ConvGeometry& g, float* dx,
                          float* dw) {
  const int64_t on = g.F * g.HO * g.WO;
  backward_chunks(x, w, dout, g, dx, dw, [&](Staged& s, int64_t n0, int64_t) { s.load(dout + n0 * on); });
}

bool onednn_conv_pool_applies(const ConvGeometry& g) {
  return use_onednn_conv(g) && current_kind() == Kind::f32_winograd;
}

void onednn_conv_pool_forward(const float* x, const float* w, const float* bias, const ConvGeometry& g, float* out,
                              uint8_t* taps) {
  const int64_t CB = (g.F + 15) / 16, pooled = g.F * (g.HO / 2) * (g.WO / 2),
                tapped = CB * 16 * (g.HO / 2) * (g.WO / 2);
  std::vector<float> bias16(bias ? CB * 16 : 0, 0.f);
  if (bias) std::copy(bias, bias + g.F, bias16.begin());
  forward_chunks(x, w, nullptr, g, false, [&](Prims& p, int64_t n0, int64_t n) {
    pool_blocked16(blocked_storage(p.y), n, g, bias ? bias16.data() : nullptr, out + n0 * pooled,
                   taps ? taps + n0 * tapped : nullptr);
  });
}

void onednn_conv_pool_backward(const float* x, const float* w, const float* dpooled, const uint8_t* taps,
                               const ConvGeometry& g, float* dx, float* dw) {
  const int64_t CB = (g.F + 15) / 16, pooled = g.F * (g.HO / 2) * (g.WO / 2),
                tapped = CB * 16 * (g.HO / 2) * (g.WO / 2);
  backward_chunks(x, w, nullptr, g, dx, dw, [&](Staged& s, int64_t n0, int64_t n) {
    unpool_blocked16(dpooled + n0 * pooled, taps + n0 * tapped, n, g, blocked_storage(s));
  });
}

}  // namespace xg::detail

#else

namespace xg::detail {
bool use_onednn_conv(const ConvGeometry&) { return false; }
bool onednn_winograd_available() { return false; }
void onednn_conv_forward(const float*, const float*, const float*, const ConvGeometry&, float*, bool) {
  fail("onednn_conv_forward: this build has no oneDNN");
}
void onednn_conv_backward(const float*, const float*, const float*, const ConvGeometry&, float*, float*) {
  fail("onednn_conv_backward: this build has no oneDNN");
}
bool onednn_conv_pool_applies(const ConvGeometry&) { return false; }
void onednn_conv_pool_forward(const float*, const float*, const float*, const ConvGeometry&, float*, uint8_t*) {
  fail("onednn_conv_pool_forward: this build has no oneDNN");
}
void onednn_conv_pool_backward(const float*, const float*, const float*, const uint8_t*, const ConvGeometry&, float*,
                               float*) {
  fail("onednn_conv_pool_backward: this build has no oneDNN");
}
}  // namespace xg::detail

#endif

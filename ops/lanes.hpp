// Sums over raw buffers kept in independent lanes, so that the loops vectorise: one running sum must
// add in source order, which the compiler may not reorder (no -ffast-math here). And an 8 x 8
// transpose of f32 vectors in registers, and the 16-float vector type the f32 kernels share.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

namespace xg::detail {

// The lanes' total: double for floating lanes, the lane type itself for integers.
template <class Acc>
using LaneTotal = std::conditional_t<std::is_integral_v<Acc>, Acc, double>;

inline constexpr int sum_lanes = 16;

// Sum of f(i) over i in [0, n), in sum_lanes lanes of type Acc.
template <class Acc, class F>
LaneTotal<Acc> lane_sum(int64_t n, F f) {
  Acc a[sum_lanes] = {};
  int64_t i = 0;
  for (; i + sum_lanes <= n; i += sum_lanes)
    for (int l = 0; l < sum_lanes; ++l) a[l] += f(i + l);
  LaneTotal<Acc> s = 0;
  for (; i < n; ++i) s += f(i);
  for (int l = 0; l < sum_lanes; ++l) s += a[l];
  return s;
}

// Sums of f(i) and of g(i) over several runs: add() accumulates them over a run of n values (its tail
// into the first lanes), totals() reduces once. Short runs (a batch norm channel's 8x8 plane per image) then
// pay the reduction once per channel, not once per run.
template <class Acc>
struct LanePairs {
  // The lanes as 32-byte vectors, so that they stay in registers across a run (as arrays the
  // compiler kept them in memory and, inlined into batch norm, built each step from shuffles). Each
  // vector's values are computed into an array first, one loop per sum (one vector store each), then
  // added whole.
  static constexpr int W = 32 / sizeof(Acc), NV = sum_lanes / W;
  typedef Acc V __attribute__((vector_size(32)));
  V a[NV] = {}, b[NV] = {};
  template <class F, class G>
  void add(int64_t n, F f, G g) {
    V la[NV], lb[NV];  // local copies: the loop keeps them in registers even where *this is a reference
#pragma GCC unroll 4
    for (int k = 0; k < NV; ++k) la[k] = a[k], lb[k] = b[k];
    int64_t i = 0;
    for (; i + sum_lanes <= n; i += sum_lanes)
#pragma GCC unroll 4
      for (int k = 0; k < NV; ++k) {
        Acc fa[W], gb[W];
        for (int j = 0; j < W; ++j) fa[j] = f(i + k * W + j);
        for (int j = 0; j < W; ++j) gb[j] = g(i + k * W + j);
        la[k] += load(fa), lb[k] += load(gb);
      }
    // The tail's values into the first lanes (lane + (0 + v) adds exactly what lane + v would).
    Acc ta[sum_lanes] = {}, tb[sum_lanes] = {};
    for (int l = 0; i + l < n; ++l) ta[l] = f(i + l), tb[l] = g(i + l);
#pragma GCC unroll 4
    for (int k = 0; k < NV; ++k) a[k] = la[k] + load(ta + k * W), b[k] = lb[k] + load(tb + k * W);
  }
  static V load(const Acc* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  std::pair<LaneTotal<Acc>, LaneTotal<Acc>> totals() const {
    LaneTotal<Acc> sa = 0, sb = 0;
    for (int l = 0; l < sum_lanes; ++l) sa += a[l / W][l % W], sb += b[l / W][l % W];
    return {sa, sb};
  }
};

using f32x8 = float __attribute__((vector_size(32)));
using f32x16 = float __attribute__((vector_size(64)));

// 16 floats from p, which need not be aligned.
inline f32x16 load16(const float* p) {
  f32x16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

using i32x16 = int32_t __attribute__((vector_size(64)));
using u8x16 = uint8_t __attribute__((vector_size(16)));
// m ? a : b per lane (m: all ones or all zeros).
inline f32x16 select16(i32x16 m, f32x16 a, f32x16 b) { return (f32x16)(((i32x16)a & m) | ((i32x16)b & ~m)); }
inline i32x16 select16(i32x16 m, i32x16 a, i32x16 b) { return (a & m) | (b & ~m); }

// The maxima of 16 2x2 max-pool windows, one per lane, from their taps (e0 o0 the top row, e1 o1 the
// bottom), as max_pool2d compares them: a later tap wins only if it is larger, or NaN where the best so
// far is not (ties keep the first). The top pair, the bottom pair, then bottom over top give the same
// winner as the taps one by one. tap: each window's winning tap, 0-3 in row-major order.
inline f32x16 window_max16(f32x16 e0, f32x16 o0, f32x16 e1, f32x16 o1, u8x16& tap) {
  auto later_wins = [](f32x16 v, f32x16 best) -> i32x16 { return (v > best) | ((v != v) & (best == best)); };
  const i32x16 t = later_wins(o0, e0), b = later_wins(o1, e1);  // -1 where the odd tap wins
  const f32x16 top = select16(t, o0, e0), bottom = select16(b, o1, e1);
  const i32x16 u = later_wins(bottom, top);
  tap = __builtin_convertvector(select16(u, 2 + (b & 1), t & 1), u8x16);
  return select16(u, bottom, top);
}
// Its adjoint: v at each window's winning tap and zeros at the other three, q = {e0, o0, e1, o1}.
inline void window_scatter16(f32x16 v, u8x16 tap, f32x16 (&q)[4]) {
  const i32x16 t = __builtin_convertvector(tap, i32x16);
  const f32x16 zero = {};
  for (int k = 0; k < 4; ++k) q[k] = select16(t == k, v, zero);
}

// t[q][k] = m[k][q]: three rounds of shuffles (__builtin_shufflevector, which GCC and Clang share:
// the fuzz targets build with Clang).
inline void transpose8x8(const f32x8 (&m)[8], f32x8 (&t)[8]) {
  f32x8 a[8], b[8];
  for (int k = 0; k < 8; k += 2) {
    a[k] = __builtin_shufflevector(m[k], m[k + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    a[k + 1] = __builtin_shufflevector(m[k], m[k + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int k = 0; k < 8; k += 4) {
    b[k] = __builtin_shufflevector(a[k], a[k + 2], 0, 1, 8, 9, 4, 5, 12, 13);
    b[k + 1] = __builtin_shufflevector(a[k], a[k + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    b[k + 2] = __builtin_shufflevector(a[k + 1], a[k + 3], 0, 1, 8, 9, 4, 5, 12, 13);
    b[k + 3] = __builtin_shufflevector(a[k + 1], a[k + 3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
  for (int q = 0; q < 4; ++q) {
    t[q] = __builtin_shufflevector(b[q], b[q + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    t[q + 4] = __builtin_shufflevector(b[q], b[q + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// f32 -> bfloat16, rounded to nearest even (an overflow rounds to inf; NaN stays NaN): how "medium"
// matmul precision rounds the inputs of its products (ops/blas.cpp, ops/fused/onednn_conv.cpp).
inline uint16_t to_bfloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float from_bfloat16(uint16_t h) {
  const uint32_t u = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
// to_bfloat16 of 8 lanes, stored to dst[0..8).
inline void store_bfloat16(f32x8 v, uint16_t* dst) {
  using u32x8 = uint32_t __attribute__((vector_size(32)));
  u32x8 u;
  std::memcpy(&u, &v, sizeof u);
  const u32x8 rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet = (u >> 16) | 0x40u;
  const u32x8 r = (u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded;
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<uint16_t>(r[i]);
}

}  // namespace xg::detail

// Winograd F(4x4, 3x3). With B, G, A the transform matrices of Lavin & Gray:
//   forward   Y = A^T [ sum_c (G w G^T) . (B^T d B) ] A         per 6x6 input tile d, 4x4 output Y
//   dinput    dd = B [ sum_f (G w G^T) . (A dY A^T) ] B^T      overlap-added into dx
//   dweight   dw = G^T [ sum_tiles (A dY A^T) . (B^T d B) ] G
// The sums over channels, filters or tiles are, for each of the 36 tile positions p, one GEMM:
//   M[p] (F x T) = U[p] (F x C) V[p] (C x T),  dV[p] = U[p]^T M'[p],  dU[p] = M'[p] V[p]^T.
// Tiles are processed in chunks of images so that V and M stay in cache. With at least one chunk per
// thread, each thread takes whole chunks and runs them through every step alone; otherwise the
// chunks run one after another, each step shared out over the threads. The chunks do not depend on
// the thread count, so neither do the output and the input gradient, to the bit.
#include "ops/fused/winograd.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <vector>

#include "autograd/parallel.hpp"
#include "ops/blas.hpp"
#include "ops/lanes.hpp"
#include "ops/rows.hpp"

namespace xg::detail {

namespace {

std::atomic<ConvAlgorithm> algorithm{ConvAlgorithm::automatic};

constexpr int64_t P36 = 36;               // positions in a transformed 6x6 tile
constexpr int64_t chunk_bytes = 2 << 20;  // V and M of one chunk of images: about one core's L2

// L tiles side by side, so that every transform below runs as vector arithmetic across tiles.
constexpr int L = 16;
template <class T>
struct Lanes {
  T v[L];
  template <class F>
  static Lanes map(F f) {
    Lanes r;
    for (int l = 0; l < L; ++l) r.v[l] = f(l);
    return r;
  }
  friend Lanes operator+(const Lanes& a, const Lanes& b) {
    return map([&](int l) { return a.v[l] + b.v[l]; });
  }
  friend Lanes operator-(const Lanes& a, const Lanes& b) {
    return map([&](int l) { return a.v[l] - b.v[l]; });
  }
  friend Lanes operator-(const Lanes& a) {
    return map([&](int l) { return -a.v[l]; });
  }
  friend Lanes operator*(int k, const Lanes& a) {
    return map([&](int l) { return T(k) * a.v[l]; });
  }
  friend Lanes operator/(const Lanes& a, int k) {
    return map([&, inv = T(1) / T(k)](int l) { return a.v[l] * inv; });
  }
};

// Copies between lanes and memory: n <= L tiles, the lanes past n read as zeros.
template <class T>
inline void load(const T* src, int64_t n, Lanes<T>& a) {
  if (n == L) {
    for (int l = 0; l < L; ++l) a.v[l] = src[l];
  } else {
    for (int l = 0; l < L; ++l) a.v[l] = l < n ? src[l] : T(0);
  }
}
template <class T>
inline void store(const Lanes<T>& a, int64_t n, T* dst) {
  if (n == L) {
    for (int l = 0; l < L; ++l) dst[l] = a.v[l];
  } else {
    for (int l = 0; l < n; ++l) dst[l] = a.v[l];
  }
}

// The six 1-D transforms, each reading n values with stride s and writing m values with stride r.
struct BT {  // B^T: 6 -> 6 (input tile)
  template <class T>
  static void apply(const T* d, int64_t s, T* o, int64_t r) {
    const T d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    o[0] = 4 * d0 - 5 * d2 + d4;
    o[r] = -4 * (d1 + d2) + d3 + d4;
    o[2 * r] = 4 * (d1 - d2) - d3 + d4;
    o[3 * r] = 2 * (d3 - d1) - d2 + d4;
    o[4 * r] = 2 * (d1 - d3) - d2 + d4;
    o[5 * r] = 4 * d1 - 5 * d3 + d5;
  }
};
struct Bm {  // B: 6 -> 6 (adjoint of BT)
  template <class T>
  static void apply(const T* v, int64_t s, T* o, int64_t r) {
    const T v0 = v[0], v1 = v[s], v2 = v[2 * s], v3 = v[3 * s], v4 = v[4 * s], v5 = v[5 * s];
    o[0] = 4 * v0;
    o[r] = 4 * (v2 - v1 + v5) + 2 * (v4 - v3);
    o[2 * r] = -5 * v0 - 4 * (v1 + v2) - v3 - v4;
    o[3 * r] = v1 - v2 + 2 * (v3 - v4) - 5 * v5;
    o[4 * r] = v0 + v1 + v2 + v3 + v4;
    o[5 * r] = v5;
  }
};
struct AT {  // A^T: 6 -> 4 (output tile)
  template <class T>
  static void apply(const T* m, int64_t s, T* o, int64_t r) {
    const T m0 = m[0], m1 = m[s], m2 = m[2 * s], m3 = m[3 * s], m4 = m[4 * s], m5 = m[5 * s];
    const T a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    o[0] = m0 + a + c;
    o[r] = b + 2 * d;
    o[2 * r] = a + 4 * c;
    o[3 * r] = b + 8 * d + m5;
  }
};
struct Am {  // A: 4 -> 6 (adjoint of AT)
  template <class T>
  static void apply(const T* y, int64_t s, T* o, int64_t r) {
    const T y0 = y[0], y1 = y[s], y2 = y[2 * s], y3 = y[3 * s];
    const T e = y0 + y2, f = y1 + y3, g = y0 + 4 * y2, h = 2 * y1 + 8 * y3;
    o[0] = y0;
    o[r] = e + f;
    o[2 * r] = e - f;
    o[3 * r] = g + h;
    o[4 * r] = g - h;
    o[5 * r] = y3;
  }
};
struct Gm {  // G: 3 -> 6 (filter)
  template <class T>
  static void apply(const T* w, int64_t s, T* o, int64_t r) {
    const T w0 = w[0], w1 = w[s], w2 = w[2 * s];
    o[0] = w0 / 4;
    o[r] = -(w0 + w1 + w2) / 6;
    o[2 * r] = -(w0 - w1 + w2) / 6;
    o[3 * r] = w0 / 24 + w1 / 12 + w2 / 6;
    o[4 * r] = w0 / 24 - w1 / 12 + w2 / 6;
    o[5 * r] = w2;
  }
};
struct GT {  // G^T: 6 -> 3 (adjoint of G)
  template <class T>
  static void apply(const T* u, int64_t s, T* o, int64_t r) {
    const T u0 = u[0], u1 = u[s], u2 = u[2 * s], u3 = u[3 * s], u4 = u[4 * s], u5 = u[5 * s];
    o[0] = u0 / 4 - (u1 + u2) / 6 + (u3 + u4) / 24;
    o[r] = (u2 - u1) / 6 + (u3 - u4) / 12;
    o[2 * r] = (u3 + u4 - u1 - u2) / 6 + u5;
  }
};

// out (m x m) = L in L^T for a row-major n x n `in`, where L (m x n) is the 1-D transform Tf.
template <int n, int m, class Tf, class T>
inline void both_axes(const T* in, T* out) {
  T tmp[m * n];
  for (int j = 0; j < n; ++j) Tf::apply(in + j, n, tmp + j, n);           // columns: tmp = L in
  for (int i = 0; i < m; ++i) Tf::apply(tmp + i * n, 1, out + i * m, 1);  // rows: out = tmp L^T
}

struct Tiling {
  int64_t TH, TW, per_image;  // tile rows and columns per image, tiles per image
  int64_t chunks, chunk;      // chunks of images, and the most images in one
  bool whole;                 // the 4x4 output tiles cover the output exactly
};

// The stride between the 36 planes p of V and M (each channels x tiles of one chunk): whole 4 KiB
// pages plus one cache line, so that the 36 lines a transform stores or loads for one group of tiles
// fall in 36 different cache sets. The bare product (a power-of-two channel count times the tiles) is
// often a multiple of 4 KiB, and then all 36 lines compete for the ways of one L1 set.
template <class T>
int64_t plane_stride(int64_t n) {
  constexpr int64_t page = 4096 / sizeof(T), line = 64 / sizeof(T);
  return (n + page - 1) / page * page + line;
}

Tiling tiling(const ConvGeometry& g, int64_t elem) {
  Tiling t;
  t.TH = (g.HO + 3) / 4;
  t.TW = (g.WO + 3) / 4;
  t.per_image = t.TH * t.TW;
  t.whole = g.HO % 4 == 0 && g.WO % 4 == 0;
  const int64_t per_image_bytes = P36 * (g.C + g.F) * t.per_image * elem;
  const int64_t most =
      std::clamp<int64_t>(chunk_bytes / std::max<int64_t>(per_image_bytes, 1), 1, std::max<int64_t>(g.N, 1));
  // An even number of chunks (threads share them out evenly), the images spread evenly over them.
  t.chunks = (g.N + most - 1) / most;
  if (t.chunks % 2 == 1 && t.chunks < g.N) ++t.chunks;
  t.chunk = t.chunks > 0 ? (g.N + t.chunks - 1) / t.chunks : 1;
  return t;
}

// How many blocks for_chunks runs (callers keep partial sums per block).
int64_t chunk_blocks(const Tiling& tl) {
  const int64_t threads = get_num_threads();
  return threads > 1 && tl.chunks >= threads ? threads : std::min<int64_t>(tl.chunks, 1);
}

// Calls f(block, n0, B, first) for every chunk of B images from image n0 (chunk k holds images
// N*k/chunks up to N*(k+1)/chunks), `first` telling the first chunk of its block. With at least one
// chunk per thread, each thread runs one block of consecutive chunks (their steps then run inline, as
// parallel_for does inside a parallel region, with that thread's scratch buffers); otherwise one
// block runs them all, each step shared out over the threads.
template <class F>
void for_chunks(const ConvGeometry& g, const Tiling& tl, F f) {
  const int64_t blocks = chunk_blocks(tl);
  auto run = [&](int64_t b) {
    const int64_t k0 = tl.chunks * b / blocks, k1 = tl.chunks * (b + 1) / blocks;
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t n0 = g.N * k / tl.chunks, n1 = g.N * (k + 1) / tl.chunks;
      f(b, n0, n1 - n0, k == k0);
    }
  };
  if (blocks > 1) {
    parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) run(b);
    });
  } else if (blocks == 1) {
    run(0);
  }
}

// The transforms read and write a chunk's tiles through a per-thread staged copy of one plane (channel
// or filter) of the chunk's B images: B planes of `rows` x `cols` holding the whole tile grid, tile
// (i, j) at row 4i, column 4j, and zeros (or values to be discarded) beyond the image. No tile then
// needs an edge check, and lanes of tiles are gathered with one offset per lane.
struct Staging {
  int64_t rows, cols;
  int64_t image = 0;  // from one image's plane to the next's; 0: planes back to back
  int64_t plane() const { return rows * cols; }
  int64_t image_stride() const { return image ? image : plane(); }
};

// The grid of output tiles (output and dY planes). With whole tiles it is the output planes
// themselves, images F planes apart, and needs no staged copy.
Staging output_grid(const ConvGeometry& g, const Tiling& tl) {
  return {4 * tl.TH, 4 * tl.TW, tl.whole ? g.F * g.HO * g.WO : 0};
}

// Copies B planes of h x w (image b at src + b * src_stride) into S at row py, column px of each
// staged plane, zeros elsewhere.
template <class T>
void stage_in(const T* src, int64_t src_stride, int64_t h, int64_t w, int64_t B, int64_t py, int64_t px,
              const Staging& st, T* S) {
  for (int64_t b = 0; b < B; ++b) {
    const T* image = src + b * src_stride;
    T* s = S + b * st.plane();
    for (int64_t r = 0; r < st.rows; ++r, s += st.cols) {
      const int64_t y = r - py;
      if (y < 0 || y >= h) {
        zero_row(s, st.cols);
        continue;
      }
      zero_row(s, px);
      copy_row(s + px, image + y * w, w);
      zero_row(s + px + w, st.cols - px - w);
    }
  }
}

// The inverse: dst (B planes of h x w, stride dst_stride) = S from row py, column px, plus `add`.
template <class T>
void stage_out(const T* S, const Staging& st, int64_t B, int64_t py, int64_t px, int64_t h, int64_t w, T add,
               T* dst, int64_t dst_stride, bool relu = false) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t y = 0; y < h; ++y) {
      const T* s = S + b * st.plane() + (y + py) * st.cols + px;
      T* d = dst + b * dst_stride + y * w;
      if (relu)
        for (int64_t q = 0; q < w; ++q) d[q] = s[q] + add < T(0) ? T(0) : s[q] + add;
      else
        for (int64_t q = 0; q < w; ++q) d[q] = s[q] + add;
    }
}

// Calls f(k, S) for every plane k in [0, planes), with S a per-thread buffer of `staged` elements;
// whole planes go to one thread, so writes to a plane never race.
template <class T, class F>
void for_planes(int64_t planes, int64_t staged, F f) {
  parallel_for(0, planes, 1, [&](int64_t lo, int64_t hi) {
    // slots 0-3 hold the caller's V, M, U and dU; the slack lets gather_input read 8 values per tile row
    T* S = scratch<T>(4, staged + 8);
    for (int64_t k = lo; k < hi; ++k) f(k, S);
  });
}

// Calls f(t0, n, off) for every group of n <= L consecutive tiles t0 .. t0+n-1 of a chunk of Tn tiles,
// off[l] being where tile t0+l starts in the staged planes. Lanes past n repeat tile t0: their
// results must not be stored.
template <class F>
void for_groups(const Tiling& tl, int64_t Tn, const Staging& st, F f) {
  int32_t off[L];
  for (int64_t t0 = 0; t0 < Tn; t0 += L) {
    const int64_t n = std::min<int64_t>(L, Tn - t0);
    for (int l = 0; l < L; ++l) {
      const int64_t t = t0 + (l < n ? l : 0), b = t / tl.per_image, i = t % tl.per_image / tl.TW, j = t % tl.TW;
      off[l] = static_cast<int32_t>(b * st.image_stride() + 4 * i * st.cols + 4 * j);
    }
    f(t0, n, off);
  }
}

// d[r * Q + q] = the R x Q tiles of S at the lanes' offsets.
template <int R, int Q, class T>
inline void gather(const T* S, int64_t cols, const int32_t* off, Lanes<T>* d) {
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q) {
      const T* s = S + r * cols + q;
      for (int l = 0; l < L; ++l) d[r * Q + q].v[l] = s[off[l]];
    }
}

// gather<6, 6> for the input tiles of a staged plane. In f32 each lane's tile row is read as one
// vector of 8 values (2 past the tile: the staging buffer has the slack) and 8 lanes at a time are
// transposed in registers, instead of 36 scalar loads and inserts per lane.
template <class T>
inline void gather_input(const T* S, int64_t cols, const int32_t* off, Lanes<T>* d) {
  if constexpr (!std::is_same_v<T, float> || L % 8 != 0) {
    gather<6, 6>(S, cols, off, d);
  } else {
    for (int r = 0; r < 6; ++r)
      for (int l0 = 0; l0 < L; l0 += 8) {
        f32x8 m[8], t[8];
        for (int k = 0; k < 8; ++k) std::memcpy(&m[k], S + off[l0 + k] + r * cols, sizeof(f32x8));
        transpose8x8(m, t);  // t[q][k] = m[k][q], kept for q < 6
        for (int q = 0; q < 6; ++q) std::memcpy(d[r * 6 + q].v + l0, &t[q], sizeof(f32x8));
      }
  }
}

// The adjoint of gather for the first n lanes: S at the lanes' offsets = (or += when accumulating)
// their R x Q tiles. Lanes are written in order, so overlapping tiles accumulate correctly.
template <int R, int Q, bool accumulate, class T>
inline void scatter(const Lanes<T>* d, int64_t n, const int32_t* off, int64_t cols, T* S) {
  for (int64_t l = 0; l < n; ++l)
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < Q; ++q) {
        T& s = S[off[l] + r * cols + q];
        if constexpr (accumulate) s += d[r * Q + q].v[l];
        else s = d[r * Q + q].v[l];
      }
}

// V[p][c][t] = (B^T d B)[p] for the 6x6 input tile d of channel c and tile t = (b*TH + i)*TW + j of
// images n0 .. n0+B-1; tile (i, j) starts at input row 4i - PH, column 4j - PW (zeros outside).
template <class T>
void input_transform(const T* x, const ConvGeometry& g, const Tiling& tl, int64_t n0, int64_t B, T* V) {
  const int64_t Tn = B * tl.per_image, sV = plane_stride<T>(g.C * Tn);
  const Staging st{4 * tl.TH + 2, 4 * tl.TW + 2};
  for_planes<T>(g.C, B * st.plane(), [&](int64_t c, T* S) {
    stage_in(x + (n0 * g.C + c) * g.H * g.W, g.C * g.H * g.W, g.H, g.W, B, g.PH, g.PW, st, S);
    for_groups(tl, Tn, st, [&](int64_t t0, int64_t n, const int32_t* off) {
      Lanes<T> d[36], v[36];
      gather_input(S, st.cols, off, d);
      both_axes<6, 6, BT>(d, v);
      for (int p = 0; p < 36; ++p) store(v[p], n, V + p * sV + c * Tn + t0);
    });
  });
}

// U[p][f][c] = (G w G^T)[p], L filter slices (f, c) at a time.
template <class T>
void filter_transform(const T* w, const ConvGeometry& g, T* U) {
  const int64_t FC = g.F * g.C;
  parallel_for(0, (FC + L - 1) / L, 16, [&](int64_t lo, int64_t hi) {
    Lanes<T> k[9], u[36];
    for (int64_t blk = lo; blk < hi; ++blk) {
      const int64_t fc0 = blk * L, n = std::min<int64_t>(L, FC - fc0);
      for (int e = 0; e < 9; ++e)
        for (int l = 0; l < L; ++l) k[e].v[l] = l < n ? w[(fc0 + l) * 9 + e] : T(0);
      both_axes<3, 6, Gm>(k, u);
      for (int p = 0; p < 36; ++p) store(u[p], n, U + p * FC + fc0);
    }
  });
}

// dw[f][c] = G^T dU[f][c] G, the adjoint of filter_transform.
template <class T>
void filter_transform_adjoint(const T* dU, const ConvGeometry& g, T* dw) {
  const int64_t FC = g.F * g.C;
  parallel_for(0, (FC + L - 1) / L, 16, [&](int64_t lo, int64_t hi) {
    Lanes<T> u[36], k[9];
    for (int64_t blk = lo; blk < hi; ++blk) {
      const int64_t fc0 = blk * L, n = std::min<int64_t>(L, FC - fc0);
      for (int p = 0; p < 36; ++p) load(dU + p * FC + fc0, n, u[p]);
      both_axes<6, 3, GT>(u, k);
      for (int l = 0; l < n; ++l)
        for (int e = 0; e < 9; ++e) dw[(fc0 + l) * 9 + e] = k[e].v[l];
    }
  });
}

// The 36 GEMMs of one chunk: C_p = op(A_p) op(B_p) (+ C_p when accumulate), split over threads.
template <class T>
void batched_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, int64_t sa, const T* B,
                  int64_t ldb, int64_t sb, bool accumulate, T* C, int64_t ldc, int64_t sc) {
  auto run = [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p)
      gemm_serial<T>(ta, tb, M, N, K, T(1), A + p * sa, lda, B + p * sb, ldb, accumulate ? T(1) : T(0), C + p * sc,
                     ldc);
  };
  if (serial_gemms<T>()) parallel_for(0, P36, 1, run);
  else run(0, P36);  // OpenBLAS's own threads split each GEMM
}

}  // namespace

void set_conv_algorithm(ConvAlgorithm a) { algorithm = a; }
ConvAlgorithm conv_algorithm() { return algorithm; }

int64_t winograd_chunk_tiles(const ConvGeometry& g, int64_t elem_bytes) {
  const Tiling tl = tiling(g, elem_bytes);
  return tl.chunk * tl.per_image;
}

bool use_winograd(const ConvGeometry& g) {
  if (g.KH != 3 || g.KW != 3 || g.SH != 1 || g.SW != 1 || g.HO <= 0 || g.WO <= 0) return false;
  if (g.DH != 1 || g.DW != 1 || g.G != 1) return false;  // dilated and grouped convolutions: im2col
  if ((g.HO + 6) * (g.WO + 6) > (int64_t{1} << 30)) return false;  // lane offsets into staged planes are 32-bit
  switch (conv_algorithm()) {
    case ConvAlgorithm::im2col:
      return false;
    case ConvAlgorithm::winograd:
      return true;
    default:
      return g.C >= 16 && g.F >= 16;  // below that, the transforms outweigh the saved GEMM work
  }
}

template <class T>
void winograd_forward(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out, bool relu) {
  const Tiling tl = tiling(g, sizeof(T));
  const int64_t FC = g.F * g.C, maxT = tl.chunk * tl.per_image;
  T* U = scratch<T>(2, P36 * FC);  // shared, read-only once transformed
  filter_transform(w, g, U);
  for_chunks(g, tl, [&](int64_t, int64_t n0, int64_t B, bool) {
    const int64_t Tn = B * tl.per_image, sV = plane_stride<T>(g.C * Tn), sM = plane_stride<T>(g.F * Tn);
    T* V = scratch<T>(0, P36 * plane_stride<T>(g.C * maxT));
    T* M = scratch<T>(1, P36 * plane_stride<T>(g.F * maxT));
    input_transform(x, g, tl, n0, B, V);
    batched_gemm<T>(false, false, g.F, Tn, g.C, U, g.C, FC, V, Tn, sV, false, M, Tn, sM);
    // Y = A^T m A (+ bias) for each filter and tile. When the tiles cover the output exactly, they
    // go straight into it; otherwise into a staged plane, whose part inside the output is copied.
    const Staging st = output_grid(g, tl);
    for_planes<T>(g.F, tl.whole ? 0 : B * st.plane(), [&](int64_t f, T* S) {
      T* plane = out + (n0 * g.F + f) * g.HO * g.WO;
      const T add = tl.whole && bias ? bias[f] : T(0);
      for_groups(tl, Tn, st, [&](int64_t t0, int64_t n, const int32_t* off) {
        Lanes<T> m[36], y[16];
        for (int p = 0; p < 36; ++p) load(M + p * sM + f * Tn + t0, n, m[p]);
        both_axes<6, 4, AT>(m, y);
        if (add != T(0))
          for (Lanes<T>& v : y)
            for (T& e : v.v) e += add;
        if (relu && tl.whole)
          for (Lanes<T>& v : y)
            for (T& e : v.v) e = e < T(0) ? T(0) : e;
        scatter<4, 4, false>(y, n, off, st.cols, tl.whole ? plane : S);
      });
      if (!tl.whole)
        stage_out(S, st, B, 0, 0, g.HO, g.WO, bias ? bias[f] : T(0), plane, g.F * g.HO * g.WO, relu);
    });
  });
}

template <class T>
void winograd_backward(const T* x, const T* w, const T* dout, const ConvGeometry& g, T* dx, T* dw) {
  if (!dx && !dw) return;
  const Tiling tl = tiling(g, sizeof(T));
  const int64_t FC = g.F * g.C, maxT = tl.chunk * tl.per_image;
  T* U = scratch<T>(2, P36 * FC);
  // dU summed per block into its own partial, the partials then added in block order: the result
  // does not depend on which thread ran which block.
  const int64_t blocks = chunk_blocks(tl);
  T* dU = scratch<T>(3, P36 * FC * std::max<int64_t>(blocks, 1));
  if (dx) filter_transform(w, g, U);
  for_chunks(g, tl, [&](int64_t block, int64_t n0, int64_t B, bool first) {
    const int64_t Tn = B * tl.per_image, sV = plane_stride<T>(g.C * Tn), sM = plane_stride<T>(g.F * Tn);
    T* V = scratch<T>(0, P36 * plane_stride<T>(g.C * maxT));
    T* Mg = scratch<T>(1, P36 * plane_stride<T>(g.F * maxT));
    // M'[p][f][t] = (A dY A^T)[p], with dY's tile zero beyond the output's edge. When the tiles cover
    // the output exactly, they are read straight from dY; otherwise from a zero-padded staged copy.
    const Staging sg = output_grid(g, tl);
    for_planes<T>(g.F, tl.whole ? 0 : B * sg.plane(), [&](int64_t f, T* S) {
      const T* plane = dout + (n0 * g.F + f) * g.HO * g.WO;
      if (!tl.whole) stage_in(plane, g.F * g.HO * g.WO, g.HO, g.WO, B, 0, 0, sg, S);
      for_groups(tl, Tn, sg, [&](int64_t t0, int64_t n, const int32_t* off) {
        Lanes<T> y[16], m[36];
        gather<4, 4>(tl.whole ? plane : S, sg.cols, off, y);
        both_axes<4, 6, Am>(y, m);
        for (int p = 0; p < 36; ++p) store(m[p], n, Mg + p * sM + f * Tn + t0);
      });
    });
    if (dw) {
      input_transform(x, g, tl, n0, B, V);
      batched_gemm<T>(false, true, g.F, g.C, Tn, Mg, Tn, sM, V, Tn, sV, !first, dU + block * P36 * FC,
                      g.C, FC);
    }
    if (dx) {
      batched_gemm<T>(true, false, g.C, Tn, g.F, U, g.C, FC, Mg, Tn, sM, false, V, Tn, sV);
      // dd = B dV B^T, overlap-added into a staged plane per input channel, then copied into dx.
      const Staging sx{4 * tl.TH + 2, 4 * tl.TW + 2};
      for_planes<T>(g.C, B * sx.plane(), [&](int64_t c, T* S) {
        std::fill(S, S + B * sx.plane(), T(0));
        for_groups(tl, Tn, sx, [&](int64_t t0, int64_t n, const int32_t* off) {
          Lanes<T> v[36], d[36];
          for (int p = 0; p < 36; ++p) load(V + p * sV + c * Tn + t0, n, v[p]);
          both_axes<6, 6, Bm>(v, d);
          scatter<6, 6, true>(d, n, off, sx.cols, S);
        });
        stage_out(S, sx, B, g.PH, g.PW, g.H, g.W, T(0), dx + (n0 * g.C + c) * g.H * g.W, g.C * g.H * g.W);
      });
    }
  });
  if (dw) {
    const int64_t size = P36 * FC;
    if (blocks == 0) std::fill(dU, dU + size, T(0));
    for (int64_t b = 1; b < blocks; ++b)
      for (int64_t i = 0; i < size; ++i) dU[i] += dU[b * size + i];
    filter_transform_adjoint(dU, g, dw);
  }
}

template void winograd_forward<float>(const float*, const float*, const float*, const ConvGeometry&, float*, bool);
template void winograd_forward<double>(const double*, const double*, const double*, const ConvGeometry&, double*,
                                       bool);
template void winograd_backward<float>(const float*, const float*, const float*, const ConvGeometry&, float*, float*);
template void winograd_backward<double>(const double*, const double*, const double*, const ConvGeometry&, double*,
                                        double*);

}  // namespace xg::detail

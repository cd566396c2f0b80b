// Winograd F(4x4, 3x3). With B, G, A the transform matrices of Lavin & Gray:
//   forward   Y = A^T [ sum_c (G w G^T) . (B^T d B) ] A         per 6x6 input tile d, 4x4 output Y
//   dinput    dd = B [ sum_f (G w G^T) . (A dY A^T) ] B^T      overlap-added into dx
//   dweight   dw = G^T [ sum_tiles (A dY A^T) . (B^T d B) ] G
// The sums over channels, filters or tiles are, for each of the 36 tile positions p, one GEMM:
//   M[p] (F x T) = U[p] (F x C) V[p] (C x T),  dV[p] = U[p]^T M'[p],  dU[p] = M'[p] V[p]^T.
// Tiles are processed in chunks of images so that V and M stay in cache; the 36 GEMMs of a chunk are
// shared out over the threads.
#include "ops/fused/winograd.hpp"

#include <algorithm>
#include <atomic>
#include <vector>

#include "autograd/parallel.hpp"
#include "ops/blas.hpp"

namespace xg::detail {

namespace {

std::atomic<ConvAlgorithm> algorithm{ConvAlgorithm::automatic};

constexpr int64_t P36 = 36;               // positions in a transformed 6x6 tile
constexpr int64_t chunk_bytes = 6 << 20;  // V and M of one chunk of images

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
  int64_t TH, TW, per_image, chunk;  // tile rows and columns per image, tiles per image, images per chunk
};

Tiling tiling(const ConvGeometry& g, int64_t elem) {
  Tiling t;
  t.TH = (g.HO + 3) / 4;
  t.TW = (g.WO + 3) / 4;
  t.per_image = t.TH * t.TW;
  const int64_t per_image_bytes = P36 * (g.C + g.F) * t.per_image * elem;
  t.chunk = std::clamp<int64_t>(chunk_bytes / std::max<int64_t>(per_image_bytes, 1), 1, std::max<int64_t>(g.N, 1));
  return t;
}

// Where tile t of a chunk lies: image b (within the chunk), output origin (oy, ox), input origin
// (y0, x0) = (oy - PH, ox - PW), and whether its 6x6 input window lies wholly inside the image.
struct Tile {
  int64_t b, oy, ox, y0, x0;
  bool inside;
};
std::vector<Tile> tiles(const ConvGeometry& g, const Tiling& tl) {
  std::vector<Tile> v(static_cast<size_t>(tl.chunk * tl.per_image));
  for (size_t t = 0; t < v.size(); ++t) {
    const int64_t b = t / tl.per_image, rest = t % tl.per_image, oy = 4 * (rest / tl.TW), ox = 4 * (rest % tl.TW);
    const int64_t y0 = oy - g.PH, x0 = ox - g.PW;
    v[t] = {b, oy, ox, y0, x0, y0 >= 0 && x0 >= 0 && y0 + 6 <= g.H && x0 + 6 <= g.W};
  }
  return v;
}

// Calls f(k, t0, n) for every plane k in [0, planes) and every group of n <= L consecutive tiles
// t0 .. t0+n-1 of a chunk of Tn tiles; whole planes go to one thread, so writes to a plane never race.
template <class F>
void for_tile_groups(int64_t planes, int64_t Tn, F f) {
  parallel_for(0, planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k)
      for (int64_t t0 = 0; t0 < Tn; t0 += L) f(k, t0, std::min<int64_t>(L, Tn - t0));
  });
}

// V[p][c][t] = (B^T d B)[p] for the 6x6 input tile d of channel c and tile t = (b*TH + i)*TW + j of
// images n0 .. n0+B-1; tile (i, j) starts at input row 4i - PH, column 4j - PW (zeros outside).
// L consecutive tiles are gathered into lanes and transformed together.
template <class T>
void input_transform(const T* x, const ConvGeometry& g, const Tiling& tl, const Tile* tile, int64_t n0, int64_t B,
                     T* V) {
  const int64_t Tn = B * tl.per_image, stride = g.C * Tn;
  for_tile_groups(g.C, Tn, [&](int64_t c, int64_t t0, int64_t nl) {
    Lanes<T> d[36], v[36];
    for (int64_t l = 0; l < L; ++l) {
      if (l >= nl) {
        for (auto& e : d) e.v[l] = T(0);
        continue;
      }
      const Tile& tt = tile[t0 + l];
      const T* plane = x + ((n0 + tt.b) * g.C + c) * g.H * g.W;
      const int64_t y0 = tt.y0, x0 = tt.x0;
      if (tt.inside) {
        for (int r = 0; r < 6; ++r)
          for (int q = 0; q < 6; ++q) d[r * 6 + q].v[l] = plane[(y0 + r) * g.W + x0 + q];
      } else {
        for (auto& e : d) e.v[l] = T(0);
        const int64_t r1 = std::min<int64_t>(6, g.H - y0), q1 = std::min<int64_t>(6, g.W - x0);
        for (int64_t r = std::max<int64_t>(0, -y0); r < r1; ++r)
          for (int64_t q = std::max<int64_t>(0, -x0); q < q1; ++q) d[r * 6 + q].v[l] = plane[(y0 + r) * g.W + x0 + q];
      }
    }
    both_axes<6, 6, BT>(d, v);
    T* o = V + c * Tn + t0;
    for (int p = 0; p < 36; ++p) store(v[p], nl, o + p * stride);
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
  blas_single_threaded();
  parallel_for(0, P36, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p)
      gemm_serial<T>(ta, tb, M, N, K, T(1), A + p * sa, lda, B + p * sb, ldb, accumulate ? T(1) : T(0), C + p * sc,
                     ldc);
  });
}

}  // namespace

void set_conv_algorithm(ConvAlgorithm a) { algorithm = a; }
ConvAlgorithm conv_algorithm() { return algorithm; }

bool use_winograd(const ConvGeometry& g) {
  if (g.KH != 3 || g.KW != 3 || g.SH != 1 || g.SW != 1 || g.HO <= 0 || g.WO <= 0) return false;
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
void winograd_forward(const T* x, const T* w, const T* bias, const ConvGeometry& g, T* out) {
  const Tiling tl = tiling(g, sizeof(T));
  const std::vector<Tile> tile = tiles(g, tl);
  const int64_t FC = g.F * g.C, maxT = tl.chunk * tl.per_image;
  T* U = scratch<T>(2, P36 * FC);
  T* V = scratch<T>(0, P36 * g.C * maxT);
  T* M = scratch<T>(1, P36 * g.F * maxT);
  filter_transform(w, g, U);
  for (int64_t n0 = 0; n0 < g.N; n0 += tl.chunk) {
    const int64_t B = std::min(tl.chunk, g.N - n0), Tn = B * tl.per_image;
    input_transform(x, g, tl, tile.data(), n0, B, V);
    batched_gemm<T>(false, false, g.F, Tn, g.C, U, g.C, FC, V, Tn, g.C * Tn, false, M, Tn, g.F * Tn);
    // Y = A^T m A for each filter and tile, written where it falls inside the output, plus the bias.
    for_tile_groups(g.F, Tn, [&](int64_t f, int64_t t0, int64_t nl) {
      Lanes<T> m[36], y[16];
      const T add = bias ? bias[f] : T(0);
      const T* src = M + f * Tn + t0;
      for (int p = 0; p < 36; ++p) load(src + p * g.F * Tn, nl, m[p]);
      both_axes<6, 4, AT>(m, y);
      for (int64_t l = 0; l < nl; ++l) {
        const Tile& tt = tile[t0 + l];
        T* plane = out + ((n0 + tt.b) * g.F + f) * g.HO * g.WO + tt.oy * g.WO + tt.ox;
        const int64_t rows = std::min<int64_t>(4, g.HO - tt.oy), cols = std::min<int64_t>(4, g.WO - tt.ox);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t q = 0; q < cols; ++q) plane[r * g.WO + q] = y[r * 4 + q].v[l] + add;
      }
    });
  }
}

template <class T>
void winograd_backward(const T* x, const T* w, const T* dout, const ConvGeometry& g, T* dx, T* dw) {
  if (!dx && !dw) return;
  const Tiling tl = tiling(g, sizeof(T));
  const std::vector<Tile> tile = tiles(g, tl);
  const int64_t FC = g.F * g.C, maxT = tl.chunk * tl.per_image;
  T* U = scratch<T>(2, P36 * FC);
  T* V = scratch<T>(0, P36 * g.C * maxT);
  T* Mg = scratch<T>(1, P36 * g.F * maxT);
  T* dU = scratch<T>(3, P36 * FC);
  if (dx) {
    filter_transform(w, g, U);
    std::fill(dx, dx + g.N * g.C * g.H * g.W, T(0));
  }
  for (int64_t n0 = 0; n0 < g.N; n0 += tl.chunk) {
    const int64_t B = std::min(tl.chunk, g.N - n0), Tn = B * tl.per_image;
    // M'[p][f][t] = (A dY A^T)[p], with dY's tile zero beyond the output's edge.
    for_tile_groups(g.F, Tn, [&](int64_t f, int64_t t0, int64_t nl) {
      Lanes<T> y[16], m[36];
      for (int64_t l = 0; l < L; ++l) {
        if (l >= nl) {
          for (auto& e : y) e.v[l] = T(0);
          continue;
        }
        const Tile& tt = tile[t0 + l];
        const T* plane = dout + ((n0 + tt.b) * g.F + f) * g.HO * g.WO + tt.oy * g.WO + tt.ox;
        const int64_t rows = std::min<int64_t>(4, g.HO - tt.oy), cols = std::min<int64_t>(4, g.WO - tt.ox);
        for (int64_t r = 0; r < 4; ++r)
          for (int64_t q = 0; q < 4; ++q) y[r * 4 + q].v[l] = r < rows && q < cols ? plane[r * g.WO + q] : T(0);
      }
      both_axes<4, 6, Am>(y, m);
      T* o = Mg + f * Tn + t0;
      for (int p = 0; p < 36; ++p) store(m[p], nl, o + p * g.F * Tn);
    });
    if (dw) {
      input_transform(x, g, tl, tile.data(), n0, B, V);
      batched_gemm<T>(false, true, g.F, g.C, Tn, Mg, Tn, g.F * Tn, V, Tn, g.C * Tn, n0 > 0, dU, g.C, FC);
    }
    if (dx) {
      batched_gemm<T>(true, false, g.C, Tn, g.F, U, g.C, FC, Mg, Tn, g.F * Tn, false, V, Tn, g.C * Tn);
      // dd = B dV B^T, overlap-added into dx; one thread per input channel, so no two write one value.
      for_tile_groups(g.C, Tn, [&](int64_t c, int64_t t0, int64_t nl) {
        Lanes<T> v[36], d[36];
        const T* src = V + c * Tn + t0;
        for (int p = 0; p < 36; ++p) load(src + p * g.C * Tn, nl, v[p]);
        both_axes<6, 6, Bm>(v, d);
        for (int64_t l = 0; l < nl; ++l) {
          const Tile& tt = tile[t0 + l];
          T* plane = dx + ((n0 + tt.b) * g.C + c) * g.H * g.W;
          const int64_t y0 = tt.y0, x0 = tt.x0;
          for (int64_t r = 0; r < 6; ++r) {
            const int64_t yy = y0 + r;
            if (yy < 0 || yy >= g.H) continue;
            for (int64_t q = 0; q < 6; ++q) {
              const int64_t xx = x0 + q;
              if (xx >= 0 && xx < g.W) plane[yy * g.W + xx] += d[r * 6 + q].v[l];
            }
          }
        }
      });
    }
  }
  if (dw) {
    if (g.N == 0) std::fill(dU, dU + P36 * FC, T(0));
    filter_transform_adjoint(dU, g, dw);
  }
}

template void winograd_forward<float>(const float*, const float*, const float*, const ConvGeometry&, float*);
template void winograd_forward<double>(const double*, const double*, const double*, const ConvGeometry&, double*);
template void winograd_backward<float>(const float*, const float*, const float*, const ConvGeometry&, float*, float*);
template void winograd_backward<double>(const double*, const double*, const double*, const ConvGeometry&, double*,
                                        double*);

}  // namespace xg::detail

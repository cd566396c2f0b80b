// f32 GEMMs through oneDNN (dnnl_sgemm, the same row-major arguments as a cblas call), which picks
// this CPU's widest vector units at run time; OpenBLAS below the size where oneDNN's per-call cost
// pays, and for everything in builds without oneDNN. bench/bench_gemm measures both. Under
// set_float32_matmul_precision("medium") on a CPU with AMX, oneDNN's bf16 matmul on rounded copies.
#include "ops/blas.hpp"

#ifdef XGRAD_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>

#include "ops/onednn.hpp"
#endif

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>
#include <vector>

#include "autograd/error.hpp"
#include "ops/lanes.hpp"
#include "ops/ops.hpp"

namespace xg::detail {

namespace {
// 0 "highest", 1 "high", 2 "medium" (set_float32_matmul_precision).
std::atomic<int> matmul_precision{0};
constexpr const char* kPrecisionNames[] = {"highest", "high", "medium"};
}  // namespace

#ifdef XGRAD_HAVE_ONEDNN

namespace {

std::atomic<bool> onednn_enabled{true};

}  // namespace

bool sgemm_uses_onednn() { return onednn_enabled.load(std::memory_order_relaxed); }
void set_sgemm_onednn(bool on) { onednn_enabled.store(on, std::memory_order_relaxed); }

void sgemm_onednn(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  OneOpenmpThread one;
  const dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  check(st == dnnl_success, "matmul: oneDNN sgemm failed (status {}) for {}x{}x{}", static_cast<int>(st), M, N, K);
}

namespace {

// The CPU has Intel AMX's bf16 tiles, which oneDNN's matmul uses (brg:avx512_core_amx_bf16): on this
// machine 1.6 TFLOP/s per core at 2048^3 against 0.22 for its f32 kernel. Without them oneDNN's bf16
// kernels gain little or nothing over f32, so "medium" keeps f32.
bool cpu_has_amx() {
  static const bool yes = (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx;
  return yes;
}

// rows x cols of src (row stride ld) rounded to bfloat16, packed row after row.
void pack_bfloat16(const float* src, int64_t rows, int64_t cols, int64_t ld, uint16_t* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * ld;
    uint16_t* d = dst + r * cols;
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      f32x8 v;
      std::memcpy(&v, s + c, sizeof v);
      store_bfloat16(v, d + c);
    }
    for (; c < cols; ++c) d[c] = to_bfloat16(s[c]);
  }
}

// One oneDNN matmul per shape, transposes, alpha and beta, kept per thread (its primitive cache would
// serve them too, at about 2 us per call to look up).
struct Bf16Matmul {
  int64_t M, N, K;
  bool ta, tb;
  float alpha, beta;
  dnnl::matmul prim;
  dnnl::memory a, b, c;
};

Bf16Matmul& bf16_matmul(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta) {
  thread_local std::vector<Bf16Matmul> cache;
  for (auto& m : cache)
    if (m.M == M && m.N == N && m.K == K && m.ta == ta && m.tb == tb && m.alpha == alpha && m.beta == beta) return m;
  std::lock_guard<std::mutex> lock(onednn_create_mutex());
  const dnnl::engine& engine = onednn_engine();
  using dt = dnnl::memory::data_type;
  // A and B packed as stored (op(A) = A^T reads the packed K x M block by strides), C dense M x N.
  const dnnl::memory::desc a({M, K}, dt::bf16, ta ? dnnl::memory::dims{1, M} : dnnl::memory::dims{K, 1});
  const dnnl::memory::desc b({K, N}, dt::bf16, tb ? dnnl::memory::dims{1, K} : dnnl::memory::dims{N, 1});
  const dnnl::memory::desc c({M, N}, dt::f32, dnnl::memory::dims{N, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.f) attr.set_output_scales(0, {alpha});
  if (beta != 0.f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, engine);
  if (cache.size() >= 64) cache.erase(cache.begin());  // shapes beyond a model's few dozen: oldest out
  cache.push_back({M, N, K, ta, tb, alpha, beta, dnnl::matmul(pd), dnnl::memory(a, engine, DNNL_MEMORY_NONE),
                   dnnl::memory(b, engine, DNNL_MEMORY_NONE), dnnl::memory(c, engine, DNNL_MEMORY_NONE)});
  return cache.back();
}

}  // namespace

bool bf16_gemm_active() {
  return matmul_precision.load(std::memory_order_relaxed) == 2 && cpu_has_amx() && sgemm_uses_onednn();
}

void gemm_bfloat16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                   const uint16_t* B, float beta, float* C) {
  OneOpenmpThread one;
  Bf16Matmul& m = bf16_matmul(ta, tb, M, N, K, alpha, beta);
  m.a.set_data_handle(const_cast<uint16_t*>(A));
  m.b.set_data_handle(const_cast<uint16_t*>(B));
  m.c.set_data_handle(C);
  m.prim.execute(onednn_stream(), {{DNNL_ARG_SRC, m.a}, {DNNL_ARG_WEIGHTS, m.b}, {DNNL_ARG_DST, m.c}});
}

void sgemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  thread_local std::vector<uint16_t> a16, b16;
  thread_local std::vector<float> c32;
  a16.resize(static_cast<size_t>(M * K));
  b16.resize(static_cast<size_t>(K * N));
  ta ? pack_bfloat16(A, K, M, lda, a16.data()) : pack_bfloat16(A, M, K, lda, a16.data());
  tb ? pack_bfloat16(B, N, K, ldb, b16.data()) : pack_bfloat16(B, K, N, ldb, b16.data());
  // oneDNN's AMX kernel wants C dense; a strided C goes through a dense product and is added here.
  if (ldc == N) return gemm_bfloat16(ta, tb, M, N, K, alpha, a16.data(), b16.data(), beta, C);
  c32.resize(static_cast<size_t>(M * N));
  gemm_bfloat16(ta, tb, M, N, K, 1.f, a16.data(), b16.data(), 0.f, c32.data());
  for (int64_t i = 0; i < M; ++i) {
    const float* p = c32.data() + i * N;
    float* c = C + i * ldc;
    if (beta == 0.f)
      for (int64_t j = 0; j < N; ++j) c[j] = alpha * p[j];
    else
      for (int64_t j = 0; j < N; ++j) c[j] = alpha * p[j] + beta * c[j];
  }
}

#else

bool bf16_gemm_active() { return false; }
void gemm_bfloat16(bool, bool, int64_t, int64_t, int64_t, float, const uint16_t*, const uint16_t*, float, float*) {
  fail("gemm_bfloat16: this build has no oneDNN (XGRAD_ONEDNN=OFF)");
}
void sgemm_bf16(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                float*, int64_t) {
  fail("sgemm_bf16: this build has no oneDNN (XGRAD_ONEDNN=OFF)");
}

bool sgemm_uses_onednn() { return false; }
void set_sgemm_onednn(bool on) { check(!on, "set_sgemm_onednn: this build has no oneDNN (XGRAD_ONEDNN=OFF)"); }
void sgemm_onednn(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                  float*, int64_t) {
  fail("sgemm_onednn: this build has no oneDNN (XGRAD_ONEDNN=OFF)");
}

#endif

namespace {

// Below this many multiply-adds OpenBLAS is faster: oneDNN's fixed cost per call is about 0.2 us
// (bench/bench_gemm, 2026-11-30, one thread: 16^3 at 0.89x, 24^3 at 1.07x, 32^3 at 1.58x of OpenBLAS).
constexpr int64_t kOnednnMinMacs = 16 * 1024;
// "medium" precision's bf16 products from this size up (below it, rounding the inputs and the call
// cost more than the faster kernel saves), and for inner dimensions the tile units' 32 can use (airbench's
// whitening conv, K = 12, ran at a third of its f32 speed).
constexpr int64_t kBf16MinMacs = 32 * 1024, kBf16MinK = 32;

// From this inner dimension up, a transposed B is transposed before the call (bench/bench_gemm,
// 2026-11-30, one thread: [64x100x3072] 68 -> 152 GFLOP/s, the first conv's weight gradient
// [32x27x1024] 51 -> 113; at K <= 192 both ways run alike).
constexpr int64_t kTransposeMinK = 512;

// oneDNN's f32 kernel covers C's columns in blocks of 16 (its m, as it sees the row-major product
// transposed), so a ragged last block costs a whole one: on one thread 64x100x3072 takes 221 us
// and 64x96x3072 181 us. Up to 8 columns past the last multiple of 16 are cheaper as dot products
// of A's rows with those columns (13 us for 4 columns at K = 3072: 64x100x3072 in 199 us). Below
// K = 256 the dot products' reductions weigh more than the block they save.
constexpr int64_t kTailMaxColumns = 8, kTailMinK = 256;

// C[i, j] = alpha * A[i, :] . Bt[j, :] + beta * C[i, j] for MR rows and R columns: each load of a
// row of Bt serves MR rows of A. Every row sums alike (16 lanes, then the lanes in order, then the
// last K % 16 terms), whatever MR, so the result does not depend on how rows are grouped.
template <int R, int MR>
void dot_rows(int64_t K, float alpha, const float* A, int64_t lda, const float* Bt, int64_t ldbt, float beta, float* C,
              int64_t ldc) {
  f32x16 acc[MR][R] = {};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    f32x16 x[MR];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) x[i] = load16(A + i * lda + k);
#pragma GCC unroll 8
    for (int j = 0; j < R; ++j) {
      const f32x16 b = load16(Bt + j * ldbt + k);
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) acc[i][j] += x[i] * b;
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < R; ++j) {
      float s = 0;
      for (int l = 0; l < 16; ++l) s += acc[i][j][l];
      for (int64_t t = k; t < K; ++t) s += A[i * lda + t] * Bt[j * ldbt + t];
      float& c = C[i * ldc + j];
      c = beta == 0 ? alpha * s : alpha * s + beta * c;  // beta = 0 never reads C
    }
}

template <int R>
void dot_block(int64_t M, int64_t K, float alpha, const float* A, int64_t lda, const float* Bt, int64_t ldbt,
               float beta, float* C, int64_t ldc) {
  int64_t i = 0;
  for (; i + 4 <= M; i += 4) dot_rows<R, 4>(K, alpha, A + i * lda, lda, Bt, ldbt, beta, C + i * ldc, ldc);
  for (; i < M; ++i) dot_rows<R, 1>(K, alpha, A + i * lda, lda, Bt, ldbt, beta, C + i * ldc, ldc);
}

template <int... Rs>
void dot_columns(std::integer_sequence<int, Rs...>, int64_t R, int64_t M, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* Bt, int64_t ldbt, float beta, float* C, int64_t ldc) {
  ((R == Rs + 1 ? dot_block<Rs + 1>(M, K, alpha, A, lda, Bt, ldbt, beta, C, ldc) : void()), ...);
}

}  // namespace

int64_t sgemm_tail_columns(bool ta, int64_t M, int64_t N, int64_t K) {
  const int64_t r = N % 16;
  const bool worth = !ta && r <= kTailMaxColumns && N > 16 && K >= kTailMinK && M * (N - r) * K >= kOnednnMinMacs;
  return worth && sgemm_uses_onednn() ? r : 0;
}

void sgemm_tail(bool parallel, int64_t M, int64_t n0, int64_t R, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, bool tb, float beta, float* C, int64_t ldc) {
  check(R >= 1 && R <= kTailMaxColumns, "sgemm_tail: {} columns, at most {}", R, kTailMaxColumns);
  auto rows = [&](int64_t lo, int64_t hi) {
    // The columns as rows of K values: B's own rows when B is transposed, else gathered by each
    // worker for itself (in parallel, rather than by one thread while the others wait).
    const float* bt = B + n0 * ldb;
    int64_t ldbt = ldb;
    thread_local std::vector<float> gathered;
    if (!tb) {
      gathered.resize(static_cast<size_t>(R * K));
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < R; ++j) gathered[j * K + k] = B[k * ldb + n0 + j];
      bt = gathered.data();
      ldbt = K;
    }
    dot_columns(std::make_integer_sequence<int, kTailMaxColumns>{}, R, hi - lo, K, alpha, A + lo * lda, lda, bt, ldbt,
                beta, C + lo * ldc + n0, ldc);
  };
  if (parallel) parallel_for(0, M, 8, rows);
  else rows(0, M);
}

bool sgemm_transposes_b(int64_t M, int64_t N, int64_t K) {
  return K >= kTransposeMinK && M * N * K >= kOnednnMinMacs && sgemm_uses_onednn();
}

void transpose_rows(const float* B, int64_t ldb, int64_t N, int64_t K, float* out) {
  // Blocks of 32 of B's columns: their pieces of every row of B and the 32 rows of out they make
  // stay in L1 (12.5 KB each at N = 100), each 8 x 8 square transposed in registers. Row by row,
  // B's rows 12 KB apart fell in the same L1 sets and out was swept once per 16 rows of B
  // (100 x 3072, one thread: 113 -> 88 us; 50 x 3072: 48 -> 24 us).
  for (int64_t k0 = 0; k0 < K; k0 += 32) {
    const int64_t k1 = std::min(K, k0 + 32);
    int64_t n = 0;
    for (; n + 8 <= N; n += 8) {
      int64_t k = k0;
      for (; k + 8 <= k1; k += 8) {
        f32x8 m[8], t[8];
        for (int i = 0; i < 8; ++i) std::memcpy(&m[i], B + (n + i) * ldb + k, sizeof(f32x8));
        transpose8x8(m, t);
        for (int q = 0; q < 8; ++q) std::memcpy(out + (k + q) * N + n, &t[q], sizeof(f32x8));
      }
      for (; k < k1; ++k)
        for (int i = 0; i < 8; ++i) out[k * N + n + i] = B[(n + i) * ldb + k];
    }
    for (; n < N; ++n)
      for (int64_t k = k0; k < k1; ++k) out[k * N + n] = B[n * ldb + k];
  }
}

// One definition for both builds: without oneDNN, sgemm_uses_onednn() is false.
void sgemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (K >= kBf16MinK && M * N * K >= kBf16MinMacs && bf16_gemm_active())
    return sgemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (const int64_t r = sgemm_tail_columns(ta, M, N, K)) {
    sgemm_serial(ta, tb, M, N - r, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return sgemm_tail(false, M, N - r, r, K, alpha, A, lda, B, ldb, tb, beta, C, ldc);
  }
  if (tb && sgemm_transposes_b(M, N, K)) {
    thread_local std::vector<float> bt;
    if (bt.size() < static_cast<size_t>(K * N)) bt.resize(static_cast<size_t>(K * N));
    transpose_rows(B, ldb, N, K, bt.data());
    return sgemm_onednn(ta, false, M, N, K, alpha, A, lda, bt.data(), N, beta, C, ldc);
  }
  if (M * N * K >= kOnednnMinMacs && sgemm_uses_onednn())
    return sgemm_onednn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
              B, ldb, beta, C, ldc);
}

}  // namespace xg::detail

namespace xg {

void set_float32_matmul_precision(const std::string& precision) {
  for (int i = 0; i < 3; ++i)
    if (precision == detail::kPrecisionNames[i]) return detail::matmul_precision.store(i);
  fail("set_float32_matmul_precision: unknown precision '{}' (highest, high or medium)", precision);
}

std::string get_float32_matmul_precision() { return detail::kPrecisionNames[detail::matmul_precision.load()]; }

bool bf16_matmul_available() {
#ifdef XGRAD_HAVE_ONEDNN
  return detail::cpu_has_amx();
#else
  return false;
#endif
}

}  // namespace xg

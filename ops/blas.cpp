// f32 GEMMs through oneDNN (dnnl_sgemm, the same row-major arguments as a cblas call), which picks
// this CPU's widest vector units at run time; OpenBLAS below the size where oneDNN's per-call cost
// pays, and for everything in builds without oneDNN. bench/bench_gemm measures both.
#include "ops/blas.hpp"

#ifdef XGRAD_HAVE_ONEDNN
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif

#include <algorithm>
#include <atomic>
#include <vector>

#include "autograd/error.hpp"

namespace xg::detail {

#ifdef XGRAD_HAVE_ONEDNN

namespace {

std::atomic<bool> onednn_enabled{true};

// Debian's oneDNN runs on OpenMP. Each call is made single-threaded by setting the calling thread's
// OpenMP thread count to 1 around it (and back, so a host program's own OpenMP setting is left as
// it was): the parallelism is xgrad's (ops/blas.hpp splits products over its workers), and no
// OpenMP team is ever started, so no OpenMP thread spins on a core xgrad needs.
struct OneOpenmpThread {
  int before = omp_get_max_threads();
  OneOpenmpThread() {
    if (before != 1) omp_set_num_threads(1);
  }
  ~OneOpenmpThread() {
    if (before != 1) omp_set_num_threads(before);
  }
};

}  // namespace

bool sgemm_uses_onednn() { return onednn_enabled.load(std::memory_order_relaxed); }
void set_sgemm_onednn(bool on) { onednn_enabled.store(on, std::memory_order_relaxed); }

void sgemm_onednn(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  OneOpenmpThread one;
  const dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  check(st == dnnl_success, "matmul: oneDNN sgemm failed (status {}) for {}x{}x{}", static_cast<int>(st), M, N, K);
}

#else

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

// From this inner dimension up, a transposed B is transposed before the call (bench/bench_gemm,
// 2026-11-30, one thread: [64x100x3072] 68 -> 152 GFLOP/s, the first conv's weight gradient
// [32x27x1024] 51 -> 113; at K <= 192 both ways run alike).
constexpr int64_t kTransposeMinK = 512;

}  // namespace

bool sgemm_transposes_b(int64_t M, int64_t N, int64_t K) {
  return K >= kTransposeMinK && M * N * K >= kOnednnMinMacs && sgemm_uses_onednn();
}

void transpose_rows(const float* B, int64_t ldb, int64_t N, int64_t K, float* out) {
  // Tiles of 16 rows of B by 64 of its columns (4 KiB): every line read and written stays in L1.
  for (int64_t k0 = 0; k0 < K; k0 += 64)
    for (int64_t n0 = 0; n0 < N; n0 += 16) {
      const int64_t k1 = std::min(K, k0 + 64), n1 = std::min(N, n0 + 16);
      for (int64_t k = k0; k < k1; ++k)
        for (int64_t n = n0; n < n1; ++n) out[k * N + n] = B[n * ldb + k];
    }
}

// One definition for both builds: without oneDNN, sgemm_uses_onednn() is false.
void sgemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
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

// Internal BLAS layer: a typed row-major GEMM that splits large products over xgrad's worker pool
// (when configure_process has made OpenBLAS single-threaded, so that its own thread pool never
// fights ours for the cores), and per-thread scratch buffers for hot paths.
#pragma once

#include <cblas.h>

#include <cstdint>
#include <vector>

#include "autograd/parallel.hpp"

namespace xg::detail {

// Whether OpenBLAS runs single-threaded (configure_process), so that xgrad may run several GEMMs at
// once on its own workers; otherwise OpenBLAS's threads do the splitting.
inline bool blas_single_threaded() { return openblas_get_num_threads() == 1; }

template <class T>
inline void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                        const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// C = alpha * op(A) op(B) + beta * C, row-major. Large products are cut into one block of C's
// columns (or rows, when C is tall) per thread; each block is an independent GEMM.
template <class T>
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc) {
  // Small products, and every product when the process left OpenBLAS its own threads (see
  // configure_process), go to OpenBLAS whole.
  if (M * N * K < (int64_t{1} << 24) || !blas_single_threaded()) {
    gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (N >= M) {
    parallel_for(0, N, 64, [&](int64_t lo, int64_t hi) {
      gemm_serial(ta, tb, M, hi - lo, K, alpha, A, lda, tb ? B + lo * ldb : B + lo, ldb, beta, C + lo, ldc);
    });
  } else {
    parallel_for(0, M, 64, [&](int64_t lo, int64_t hi) {
      gemm_serial(ta, tb, hi - lo, N, K, alpha, ta ? A + lo : A + lo * lda, lda, B, ldb, beta, C + lo * ldc, ldc);
    });
  }
}

// A per-thread buffer of at least n elements, reused across calls so that hot paths do not
// allocate (and page-fault) every step. `slot` tells apart buffers live at the same time.
template <class T>
T* scratch(int slot, int64_t n) {
  thread_local std::vector<std::vector<T>> buffers(6);
  auto& b = buffers.at(static_cast<size_t>(slot));
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  return b.data();
}

}  // namespace xg::detail

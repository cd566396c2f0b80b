// Internal helpers of the fused kernels: a typed row-major GEMM and per-thread scratch buffers.
#pragma once

#include <cblas.h>

#include <cstdint>
#include <vector>

namespace xg::detail {

// C = alpha * op(A) op(B) + beta * C, row-major, for float and double.
template <class T>
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc) {
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// A per-thread buffer of at least n elements, reused across calls so that hot paths do not
// allocate (and page-fault) every step. `slot` tells apart buffers live at the same time.
template <class T>
T* scratch(int slot, int64_t n) {
  thread_local std::vector<std::vector<T>> buffers(4);
  auto& b = buffers.at(static_cast<size_t>(slot));
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  return b.data();
}

}  // namespace xg::detail

// Internal BLAS layer: a typed row-major GEMM that splits large products over xgrad's worker pool,
// and per-thread scratch buffers for hot paths. f32 products go to oneDNN when the build has it
// (ops/blas.cpp: always single-threaded per call, so they may always be split over our workers);
// f64 products and builds without oneDNN go to OpenBLAS, split over our workers only when
// configure_process has made OpenBLAS single-threaded, so that its own thread pool never fights ours.
#pragma once

#include <cblas.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "autograd/parallel.hpp"

namespace xg::detail {

// Whether the f32 GEMMs run on oneDNN: a build option (XGRAD_ONEDNN), and a switch for benchmarks that
// compare it with OpenBLAS in one run (flip it only while no kernel runs).
bool sgemm_uses_onednn();
void set_sgemm_onednn(bool on);

// One single-threaded f32 GEMM: oneDNN above a size where its per-call cost pays (bench/bench_gemm),
// OpenBLAS below it and in builds without oneDNN.
void sgemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Whether sgemm_serial writes a transposed B out before the call (oneDNN's kernel for a transposed B
// with a long inner dimension runs at half its usual rate); gemm then transposes B once for all workers.
bool sgemm_transposes_b(int64_t M, int64_t N, int64_t K);

// out[k * N + n] = B[n * ldb + k]: B^T of an N x K row-major B, written out in cache-sized blocks.
void transpose_rows(const float* B, int64_t ldb, int64_t N, int64_t K, float* out);

// How many of C's last columns sgemm_serial and gemm compute as dot products of A's rows with B's
// columns rather than in oneDNN's kernel (ops/blas.cpp says why); 0 when none.
int64_t sgemm_tail_columns(bool ta, int64_t M, int64_t N, int64_t K);

// C[:, n0 .. n0 + R) = alpha * op(A) op(B)[:, n0 .. n0 + R) + beta * C for those R columns (A not
// transposed), C's rows split over the workers when `parallel`.
void sgemm_tail(bool parallel, int64_t M, int64_t n0, int64_t R, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, bool tb, float beta, float* C, int64_t ldc);


// Whether f32 GEMMs from a modest size up run in bfloat16 (set_float32_matmul_precision("medium") on a
// CPU with AMX): sgemm_bf16 rounds A and B to bfloat16 and sums their products in f32 (oneDNN's AMX matmul).
bool bf16_gemm_active();
void sgemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// The same product on operands already in bfloat16, packed (A: M x K, or K x M when ta; B: K x N, or
// N x K when tb) into a dense f32 C, on the calling thread.
void gemm_bfloat16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                   const uint16_t* B, float beta, float* C);

// One f32 GEMM on oneDNN, single-threaded, whatever its size (benchmarks; an error without oneDNN).
void sgemm_onednn(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Whether GEMMs of type T run on one thread per call, so that xgrad may run several at once on its
// own workers; otherwise OpenBLAS's threads do the splitting.
template <class T>
inline bool serial_gemms() {
  return (std::is_same_v<T, float> && sgemm_uses_onednn()) || openblas_get_num_threads() == 1;
}

template <class T>
inline void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                        const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    sgemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
  }
}

// Whether gemm shares an M x N x K product out over xgrad's workers. Small products, and every product
// when the process left OpenBLAS its own threads (see configure_process), go to the library whole.
template <class T>
inline bool gemm_shares_out(int64_t M, int64_t N, int64_t K) {
  return M * N * K >= (int64_t{1} << 24) && serial_gemms<T>();
}

// C = alpha * op(A) op(B) + beta * C, row-major. Large products are cut into one block of C's
// columns (or rows, when C is tall) per thread; each block is an independent GEMM.
template <class T>
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc) {
  if (!gemm_shares_out<T>(M, N, K)) {
    gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    // C's ragged last columns apart (ops/blas.cpp), unless C's rows are shared out below, where each
    // worker's sgemm_serial takes them apart for its own rows.
    const int64_t r = sgemm_tail_columns(ta, M, N, K);
    if (r && (tb || N >= M)) {
      gemm(ta, tb, M, N - r, K, alpha, A, lda, B, ldb, beta, C, ldc);
      sgemm_tail(true, M, N - r, r, K, alpha, A, lda, B, ldb, tb, beta, C, ldc);
      return;
    }
    if (tb && sgemm_transposes_b(M, N, K)) {
      if (N >= 32) {
        // Each worker transposes its own rows of B and multiplies by them: B^T written by one core
        // and read by the other cost more than A read by both (TwoLayerNet's x.W^T, 128x100x3072:
        // training 189k -> 223k img/s against one shared B^T, 2026-12-04).
        parallel_for(0, N, 16, [&](int64_t lo, int64_t hi) {
          gemm_serial(ta, tb, M, hi - lo, K, alpha, A, lda, B + lo * ldb, ldb, beta, C + lo, ldc);
        });
        return;
      }
      // Too few columns to share out: B^T written once, split over the workers, for C's rows.
      thread_local std::vector<float> bt;
      if (bt.size() < static_cast<size_t>(K * N)) bt.resize(static_cast<size_t>(K * N));
      float* out = bt.data();
      parallel_for(0, K, 256, [&](int64_t lo, int64_t hi) {
        transpose_rows(B + lo, ldb, N, hi - lo, out + lo * N);  // rows lo..hi of B^T, each N long
      });
      gemm(ta, false, M, N, K, alpha, A, lda, out, N, beta, C, ldc);
      return;
    }
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

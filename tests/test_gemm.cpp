// The internal f32 GEMM (ops/blas.hpp) on each backend: oneDNN (when built with it) and OpenBLAS,
// against an f64 reference, over every transpose, leading dimensions wider than the matrices,
// alpha/beta, sizes either side of the oneDNN threshold, inner dimensions long enough for a
// transposed B to be transposed first, and products large enough to be split over the worker pool.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "helpers.hpp"
#include "ops/blas.hpp"

using namespace xg;

namespace {

struct Case {
  int64_t M, N, K;
  bool ta, tb;
  float alpha, beta;
};

// Max |C - reference| / max(1, |reference|) of detail::gemm<float> on submatrices padded by 3
// columns, C starting from random values (so beta matters).
double gemm_error(const Case& c) {
  const int64_t pad = 3, ar = c.ta ? c.K : c.M, ac = c.ta ? c.M : c.K, br = c.tb ? c.N : c.K,
                bc = c.tb ? c.K : c.N, lda = ac + pad, ldb = bc + pad, ldc = c.N + pad;
  std::mt19937 gen(7);
  std::normal_distribution<float> nd;
  std::vector<float> A(ar * lda), B(br * ldb), C(c.M * ldc);
  for (std::vector<float>* v : {&A, &B, &C})
    for (float& e : *v) e = nd(gen);
  const std::vector<float> C0 = C;
  detail::gemm<float>(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
  double worst = 0;
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      double ref = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = c.ta ? A[k * lda + i] : A[i * lda + k], b = c.tb ? B[j * ldb + k] : B[k * ldb + j];
        ref += a * b;
      }
      ref = c.alpha * ref + c.beta * C0[i * ldc + j];
      worst = std::max(worst, std::abs(C[i * ldc + j] - ref) / std::max(1.0, std::abs(ref)));
    }
  // The padding columns of C are never written.
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = c.N; j < ldc; ++j)
      if (C[i * ldc + j] != C0[i * ldc + j]) return 1e9;
  return worst;
}

void check_backend(bool onednn) {
  detail::set_sgemm_onednn(onednn);
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (Case c : {Case{3, 5, 4, ta, tb, 1, 0}, Case{33, 17, 40, ta, tb, 0.5f, 1}, Case{64, 96, 128, ta, tb, 1, 0},
                     Case{300, 260, 220, ta, tb, -1.5f, 0.25f}, Case{40, 30, 600, ta, tb, 1, 0.5f},
                     Case{200, 100, 900, ta, tb, 2, 0}, Case{130, 37, 3500, ta, tb, 1, 0},
                     // C's last N % 16 columns as dot products (A not transposed, oneDNN): 1 and 8
                     // columns, K % 16 left over, rows in fours and one by one
                     Case{5, 100, 300, ta, tb, 1, 0}, Case{9, 17, 256, ta, tb, -0.5f, 2},
                     Case{70, 24, 513, ta, tb, 1.5f, 0.5f},
                     // a transposed B shared out by columns (N >= 32) or transposed once (N < 32)
                     Case{2048, 20, 600, ta, tb, 1, 0.5f}}) {
        INFO(fmt::format("onednn {} M {} N {} K {} ta {} tb {} alpha {} beta {}", onednn, c.M, c.N, c.K, ta, tb,
                         c.alpha, c.beta));
        CHECK(gemm_error(c) < 1e-4);  // f32 rounding over K <= 3500 terms of size ~1
      }
}

}  // namespace

TEST_CASE("gemm f32: every transpose, stride and size on each backend matches an f64 reference") {
  const bool built = detail::sgemm_uses_onednn();
  check_backend(false);
  if (built) check_backend(true);
  detail::set_sgemm_onednn(built);
}

TEST_CASE("gemm f32: oneDNN and OpenBLAS agree through matmul, conv2d and their gradients") {
  if (!detail::sgemm_uses_onednn()) {
    CHECK_ERROR(detail::set_sgemm_onednn(true), "this build has no oneDNN");
    return;
  }
  manual_seed(3);
  Tensor x = randn({4, 16, 12, 12}), w = randn({32, 16, 3, 3}) * 0.1, a = randn({300, 200}), b = randn({200, 260});
  for (Tensor* t : {&x, &w, &a}) t->requires_grad_();
  auto run = [&](bool onednn) {
    detail::set_sgemm_onednn(onednn);
    for (Tensor* t : {&x, &w, &a}) t->zero_grad();
    Tensor y = conv2d(x, w, Tensor(), {.padding = 1});  // Winograd
    Tensor z = conv2d(x, w, Tensor(), {.stride = 2});   // im2col
    Tensor loss = sum(y * y) + sum(z * z) + sum(matmul(a, b) * matmul(a, b));
    loss.backward();
    detail::set_sgemm_onednn(true);
    return std::vector<Tensor>{loss.detach(), x.grad().clone(), w.grad().clone(), a.grad().clone()};
  };
  const auto one = run(true), ob = run(false);
  for (size_t i = 0; i < one.size(); ++i) {
    INFO("result " << i);
    CHECK(allclose(one[i], ob[i], 1e-4, 1e-3));
  }
}

TEST_CASE("gemm f32: the dot-product columns take the ragged tail, ignore C when beta is 0, and do not depend "
          "on the thread count") {
  if (!detail::sgemm_uses_onednn()) return;  // the tail is oneDNN's: OpenBLAS takes every column
  CHECK(detail::sgemm_tail_columns(false, 128, 100, 3072) == 4);
  CHECK(detail::sgemm_tail_columns(false, 7, 24, 513) == 8);
  CHECK(detail::sgemm_tail_columns(true, 128, 100, 3072) == 0);   // a transposed A stays whole
  CHECK(detail::sgemm_tail_columns(false, 128, 109, 3072) == 0);  // 13 columns: cheaper in oneDNN
  CHECK(detail::sgemm_tail_columns(false, 128, 100, 255) == 0);   // too short to pay the reductions
  CHECK(detail::sgemm_tail_columns(false, 128, 12, 3072) == 0);   // no whole block of 16
  CHECK_ERROR(detail::sgemm_tail(false, 1, 0, 9, 300, 1.f, nullptr, 300, nullptr, 300, true, 0.f, nullptr, 9),
              "sgemm_tail: 9 columns, at most 8");
  std::mt19937 gen(11);
  std::normal_distribution<float> nd;
  const int64_t M = 130, N = 100, K = 1300;  // above the size gemm splits over the threads
  for (bool tb : {false, true}) {
    CAPTURE(tb);
    std::vector<float> A(M * K), B(N * K);
    for (std::vector<float>* v : {&A, &B})
      for (float& e : *v) e = nd(gen);
    auto run = [&](int threads) {
      set_num_threads(threads);
      std::vector<float> C(M * N, std::numeric_limits<float>::quiet_NaN());
      detail::gemm<float>(false, tb, M, N, K, 1.f, A.data(), K, B.data(), tb ? K : N, 0.f, C.data(), N);
      return C;
    };
    const int before = get_num_threads();
    const std::vector<float> one = run(1), two = run(2);
    set_num_threads(before);
    int64_t nan = 0, differ = 0;
    for (size_t i = 0; i < one.size(); ++i) nan += std::isnan(one[i]) || std::isnan(two[i]), differ += one[i] != two[i];
    CHECK(nan == 0);
    CHECK(differ == 0);
  }
}

TEST_CASE("transpose_rows: B^T exactly, 8x8 register blocks and ragged edges, any row stride") {
  for (int64_t N : {1, 7, 8, 9, 16, 17, 63, 130})
    for (int64_t K : {1, 5, 8, 15, 64, 65, 200}) {
      CAPTURE(N);
      CAPTURE(K);
      const int64_t ldb = K + 3;
      std::vector<float> B(N * ldb), out(K * N, -1.0f);
      for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>(i);
      detail::transpose_rows(B.data(), ldb, N, K, out.data());
      int64_t wrong = 0;
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) wrong += out[k * N + n] != B[n * ldb + k];
      CHECK(wrong == 0);
    }
}

// f32 GEMMs: oneDNN (xgrad's backend when built with it) against OpenBLAS under this environment's
// OPENBLAS_CORETYPE, side by side in one run, alternating, medians of rounds:
//   1. matmul n^3 through xg::matmul with each backend, and OpenBLAS's own threaded sgemm (the anchor);
//      on a CPU with AMX also at set_float32_matmul_precision("medium") (bf16 inputs);
//   2. every GEMM shape the conv paths run, issued as the fused conv issues them (the images or
//      Winograd chunks shared over xgrad's threads, each GEMM single-threaded);
//   3. tiny single GEMMs, where oneDNN's fixed cost per call decides the size below which
//      ops/blas.cpp keeps OpenBLAS.
#include <cblas.h>

#include <string>
#include <vector>

#include <xgrad.hpp>

#include "ops/blas.hpp"
#include "ops/geometry.hpp"
#include "ops/fused/winograd.hpp"
#include "timing.hpp"

using namespace xg;

namespace {

constexpr int kRounds = 5;
constexpr double kSeconds = 0.15;

struct Backend {
  bool onednn;
  explicit Backend(bool on) : onednn(detail::sgemm_uses_onednn()) { detail::set_sgemm_onednn(on); }
  ~Backend() { detail::set_sgemm_onednn(onednn); }
};

// Seconds of f with the f32 GEMMs on oneDNN and on OpenBLAS, alternating.
template <class F>
std::pair<double, double> both(F&& f) {
  return bench::alternating_medians([&] { Backend b(true); f(); }, [&] { Backend b(false); f(); }, kRounds, kSeconds);
}

void row(const std::string& what, double flop, std::pair<double, double> t) {
  fmt::print("{:<52} {:>9.1f} {:>9.1f} {:>7.2f}x\n", what, flop / t.first / 1e9, flop / t.second / 1e9,
             t.second / t.first);
}

struct GemmShape {
  std::string what;
  int64_t M, N, K;
  bool ta, tb;
  int64_t calls;  // GEMMs of this shape per layer call, shared over the threads
};

// `calls` GEMMs of one shape, shared out over the threads, each on its own output (as the conv does).
void run_shared(const GemmShape& s, const std::vector<float>& a, const std::vector<float>& b) {
  const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
  parallel_for(0, s.calls, 1, [&](int64_t lo, int64_t hi) {
    float* out = detail::scratch<float>(0, s.M * s.N);
    for (int64_t i = lo; i < hi; ++i)
      detail::gemm_serial<float>(s.ta, s.tb, s.M, s.N, s.K, 1.f, a.data(), lda, b.data(), ldb, 0.f, out, s.N);
  });
}

// The im2col GEMMs of a conv C->F (k x k, "same" output HW x HW) over a batch: forward, weight
// gradient, input gradient, one each per image.
std::vector<GemmShape> im2col_shapes(int64_t C, int64_t F, int64_t k, int64_t HW, int64_t batch) {
  const int64_t CKK = C * k * k, P = HW * HW;
  const std::string name = fmt::format("{}->{} {}x{} at {}x{}", C, F, k, k, HW, HW);
  return {{name + " fwd", F, P, CKK, false, false, batch},
          {name + " dW", F, CKK, P, false, true, batch},
          {name + " dX", CKK, P, F, true, false, batch}};
}

// The Winograd GEMMs of a 3x3 conv C->F at HW x HW: 36 per chunk of tiles, as ops/fused/winograd.cpp
// issues them.
std::vector<GemmShape> winograd_shapes(int64_t C, int64_t F, int64_t HW, int64_t batch) {
  const detail::ConvGeometry g = detail::conv_geometry(zeros({batch, C, HW, HW}), zeros({F, C, 3, 3}), Tensor(),
                                                       {.padding = 1}, "conv2d");
  const int64_t T = detail::winograd_chunk_tiles(g, sizeof(float)), tiles = batch * ((HW + 3) / 4) * ((HW + 3) / 4);
  const int64_t calls = 36 * ((tiles + T - 1) / T);
  const std::string name = fmt::format("winograd {}->{} at {}x{}", C, F, HW, HW);
  return {{name + " fwd", F, T, C, false, false, calls},
          {name + " dW", F, C, T, false, true, calls},
          {name + " dX", C, T, F, true, false, calls}};
}

}  // namespace

int main() {
  configure_process();
  manual_seed(0);
  if (!detail::sgemm_uses_onednn()) {
    fmt::print("this build has no oneDNN (XGRAD_ONEDNN=OFF): nothing to compare\n");
    return 0;
  }
  fmt::print("OpenBLAS {} kernels, {} threads\n\n", openblas_get_corename(), get_num_threads());
  fmt::print("{:<52} {:>9} {:>9} {:>8}\n", "GFLOP/s, medians of alternating rounds", "oneDNN", "OpenBLAS", "ratio");

  // 1. Whole products. The reference column here is OpenBLAS with its own threads, as a user calls it.
  for (int64_t n : {512, 1024, 2048}) {
    Tensor a = randn({n, n}), b = randn({n, n});
    std::vector<float> c(static_cast<size_t>(n * n));
    auto t = bench::alternating_medians([&] { (void)matmul(a, b); },
                                        [&] {
                                          bench::OpenblasThreads all(get_num_threads());
                                          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f,
                                                      a.data<float>(), n, b.data<float>(), n, 0.f, c.data(), n);
                                        },
                                        kRounds, 0.5);
    row(fmt::format("matmul {}^3 vs OpenBLAS's threaded sgemm", n), 2.0 * n * n * n, t);
    auto u = both([&] { (void)matmul(a, b); });
    row(fmt::format("matmul {}^3, xgrad's split, per backend", n), 2.0 * n * n * n, u);
    if (bf16_matmul_available()) {  // "medium" precision (bf16 inputs on AMX) against OpenBLAS's f32
      auto m = bench::alternating_medians(
          [&] {
            set_float32_matmul_precision("medium");
            (void)matmul(a, b);
            set_float32_matmul_precision("highest");
          },
          [&] {
            bench::OpenblasThreads all(get_num_threads());
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data<float>(), n,
                        b.data<float>(), n, 0.f, c.data(), n);
          },
          kRounds, 0.5);
      row(fmt::format("matmul {}^3 in bf16 (AMX) vs OpenBLAS's f32", n), 2.0 * n * n * n, m);
    }
  }

  // 2. The conv paths' shapes, batch 128 (the main command's VGG, the CS231n nets) and 1024 (airbench).
  std::vector<GemmShape> shapes;
  auto add = [&](std::vector<GemmShape> v) { shapes.insert(shapes.end(), v.begin(), v.end()); };
  add(im2col_shapes(3, 32, 3, 32, 128));    // VGG's first layer: K = 27
  add(im2col_shapes(3, 32, 7, 32, 128));    // ThreeLayerConvNet's 7x7
  add(winograd_shapes(32, 32, 32, 128));    // VGG
  add(winograd_shapes(64, 64, 16, 128));
  add(winograd_shapes(128, 128, 8, 128));
  add(im2col_shapes(128, 128, 3, 8, 128));  // the same layer by im2col
  add(im2col_shapes(3, 24, 2, 31, 1024));   // airbench: the whitening conv (2x2, no padding)
  add(winograd_shapes(24, 64, 31, 1024));
  add(winograd_shapes(64, 256, 15, 1024));
  add(winograd_shapes(256, 256, 7, 1024));
  add(im2col_shapes(256, 256, 3, 3, 1024));
  shapes.push_back({"TwoLayerNet fc1 fwd, x W^T, a thread's half", 64, 100, 3072, false, true, 2});
  shapes.push_back({"TwoLayerNet fc1 dW", 3072, 100, 128, true, false, 1});
  for (const GemmShape& s : shapes) {
    const std::vector<float> a(s.M * s.K, 0.5f), b(s.K * s.N, 0.25f);
    row(fmt::format("{} [{}x{}x{}]x{}", s.what, s.M, s.N, s.K, s.calls), 2.0 * s.M * s.N * s.K * s.calls,
        both([&] { run_shared(s, a, b); }));
  }

  // 3. One small GEMM on one thread: where oneDNN's fixed cost per call stops paying.
  fmt::print("\n{:<52} {:>9} {:>9} {:>8}\n", "one GEMM n^3 on one thread", "oneDNN", "OpenBLAS", "ratio");
  for (int64_t n : {8, 16, 24, 32, 48, 64}) {
    const std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f);
    std::vector<float> c(n * n);
    auto t = bench::alternating_medians(
        [&] { detail::sgemm_onednn(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n); },
        [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f,
                      c.data(), n);
        },
        kRounds, 0.05);
    row(fmt::format("{}^3 ({} multiply-adds)", n, n * n * n), 2.0 * n * n * n, t);
  }
  return 0;
}

// Micro-benchmark of primitives against their hardware ceilings, in one run:
// xg::matmul vs a direct OpenBLAS sgemm call, xg::add vs memcpy bandwidth, and arithmetic on denormals
// with and without set_flush_denormal.
#include <cblas.h>

#include <cstring>
#include <vector>

#include <xgrad.hpp>

#include "timing.hpp"

int main() {
  using namespace xg;
  configure_process();
  manual_seed(0);
  {  // wake the worker pool and the allocator cache before anything is timed
    Tensor w = randn({512, 512});
    for (int i = 0; i < 50; ++i) (void)matmul(w, w);
  }
  fmt::print("{:<34} {:>12} {:>12} {:>8}\n", "benchmark", "xgrad", "reference", "ratio");

  for (int64_t n : {512, 1024, 2048}) {
    Tensor a = randn({n, n}), b = randn({n, n});
    std::vector<float> c(static_cast<size_t>(n * n));
    const int reps = n >= 2048 ? 5 : 11;
    auto [tx, tb] = bench::median_pair([&] { (void)matmul(a, b); },
                                       [&] {
                                         bench::OpenblasThreads all(get_num_threads());
                                         cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f,
                                                     a.data<float>(), n, b.data<float>(), n, 0.f, c.data(), n);
                                       },
                                       reps);
    const double flop = 2.0 * n * n * n;
    fmt::print("{:<34} {:>7.1f} GF/s {:>7.1f} GF/s {:>7.2f}x\n", fmt::format("matmul {}^3 f32 vs sgemm", n),
               flop / tx / 1e9, flop / tb / 1e9, tb / tx);
  }

  const int64_t m = 1 << 24;  // 64 MB per f32 operand: well outside the caches
  Tensor x = randn({m}), y = randn({m});
  std::vector<float> dst(static_cast<size_t>(m));
  auto [ta, tm] = bench::median_pair([&] { (void)add(x, y); },
                                     [&] { std::memcpy(dst.data(), x.data<float>(), m * sizeof(float)); }, 11);
  // add moves 12 bytes per element (two reads, one write), memcpy 8 (one read, one write).
  fmt::print("{:<34} {:>7.1f} GB/s {:>7.1f} GB/s {:>7.2f}x\n", "add 16M f32 vs memcpy", 12.0 * m / ta / 1e9,
             8.0 * m / tm / 1e9, (12.0 * m / ta) / (8.0 * m / tm));
  Tensor r = randn({m});
  auto [tr, tm2] = bench::median_pair([&] { (void)relu(r); },
                                      [&] { std::memcpy(dst.data(), r.data<float>(), m * sizeof(float)); }, 11);
  fmt::print("{:<34} {:>7.1f} GB/s {:>7.1f} GB/s {:>7.2f}x\n", "relu 16M f32 vs memcpy", 8.0 * m / tr / 1e9,
             8.0 * m / tm2 / 1e9, tm2 / tr);

  // Denormal operands (|x| < 1.2e-38 in f32): IEEE arithmetic against set_flush_denormal(true), the
  // two alternated over 3 rounds; the ratio is how much flushing buys on such data.
  auto flushed = [](auto&& f) {
    return [&f] {
      set_flush_denormal(true);
      f();
      set_flush_denormal(false);
    };
  };
  const Tensor tiny = randn({1 << 22}) * 1e-39, ones = ones_like(tiny);
  auto mul = [&] { (void)(tiny * ones); };
  const auto [mi, mf] = bench::alternating_medians(mul, flushed(mul), 3, 0.5);
  fmt::print("{:<34} {:>7.2f} ms   {:>7.2f} ms   {:>7.2f}x\n", "mul 4M denormals, IEEE vs flushed", mi * 1e3, mf * 1e3,
             mi / mf);
  const Tensor small = randn({512, 512}) * 1e-30, w = randn({512, 512}) * 1e-9;  // products below 1e-38
  auto mm = [&] { (void)matmul(small, w); };
  const auto [gi, gf] = bench::alternating_medians(mm, flushed(mm), 3, 0.5);
  fmt::print("{:<34} {:>7.2f} ms   {:>7.2f} ms   {:>7.2f}x\n", "matmul 512^3 denormal products", gi * 1e3, gf * 1e3,
             gi / gf);
  return 0;
}

// Fused conv/pool/batch-norm kernels vs their xg::ref compositions (forward + backward), and the
// conv GEMMs' speed against OpenBLAS sgemm's peak on this machine, in one run.
#include <cblas.h>

#include <vector>

#include <xgrad.hpp>

#include "ops/blas.hpp"
#include "ops/fused/winograd.hpp"
#include "timing.hpp"

using namespace xg;

namespace {

// Forward + backward of f on fresh leaves; returns the median seconds.
double fwd_bwd(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& in, int reps) {
  return bench::median_seconds([&] {
    Tensor y = f(in);
    y.backward(ones_like(y));
  }, reps);
}

// GFLOP/s of `images` GEMMs of one shape: through xgrad as the fused conv runs them (the images
// shared out over the threads, each GEMM single-threaded), or one after another through OpenBLAS's
// own multi-threaded sgemm.
double gemm_gflops(int64_t M, int64_t N, int64_t K, bool ta, bool tb, int64_t images, bool openblas, int reps) {
  const std::vector<float> a(M * K, 0.5f), b(K * N, 0.25f);
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  std::vector<float> c(M * N);
  double t = bench::median_seconds([&] {
    if (openblas) {
      bench::OpenblasThreads all(get_num_threads());
      for (int64_t i = 0; i < images; ++i)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.f,
                    a.data(), lda, b.data(), ldb, 0.f, c.data(), N);
    } else {
      parallel_for(0, images, 1, [&](int64_t lo, int64_t hi) {
        float* out = detail::scratch<float>(0, M * N);  // per thread and reused, as in the conv
        for (int64_t i = lo; i < hi; ++i)
          detail::gemm_serial<float>(ta, tb, M, N, K, 1.f, a.data(), lda, b.data(), ldb, 0.f, out, N);
      });
    }
  }, reps);
  return 2.0 * M * N * K * images / t / 1e9;
}

void leafify(std::vector<Tensor>& v) {
  for (Tensor& t : v)
    if (t.defined()) t.requires_grad_();
}

}  // namespace

int main() {
  configure_process();
  manual_seed(0);
  const int64_t N = 128;
  const double peak = gemm_gflops(2048, 2048, 2048, false, false, 1, true, 3);
  bench::settle();
  fmt::print("OpenBLAS sgemm 2048^3 ({} kernels): {:.1f} GFLOP/s\n\n", openblas_get_corename(), peak);
  fmt::print("{:<40} {:>10} {:>10} {:>9}\n", "op (batch 128, forward + backward)", "fused ms", "ref ms", "speed-up");

  struct Conv {
    int64_t C, F, HW;
  };
  for (Conv c : {Conv{3, 32, 32}, Conv{64, 64, 16}, Conv{32, 32, 32}}) {
    std::vector<Tensor> in{randn({N, c.C, c.HW, c.HW}), randn({c.F, c.C, 3, 3}) * 0.1, zeros({c.F})};
    leafify(in);
    Conv2dOptions o{1, 1};
    double tf = fwd_bwd([&](auto& v) { return conv2d(v[0], v[1], v[2], o); }, in, 5);
    double tr = fwd_bwd([&](auto& v) { return ref::conv2d(v[0], v[1], v[2], o); }, in, 2);
    const double flop = 3 * 2.0 * N * c.F * c.C * 9 * c.HW * c.HW;  // forward, dW, dX
    fmt::print("{:<40} {:>10.1f} {:>10.1f} {:>8.1f}x   ({:.1f} GFLOP/s overall)\n",
               fmt::format("conv2d {}->{} 3x3 pad 1, {}x{}", c.C, c.F, c.HW, c.HW), tf * 1e3, tr * 1e3, tr / tf,
               flop / tf / 1e9);
  }
  for (int64_t HW : {32, 16}) {
    const int64_t C = HW == 32 ? 32 : 64;
    std::vector<Tensor> in{randn({N, C, HW, HW})};
    leafify(in);
    double tf = fwd_bwd([](auto& v) { return max_pool2d(v[0], {.kernel = 2}); }, in, 5);
    double tr = fwd_bwd([](auto& v) { return ref::max_pool2d(v[0], {.kernel = 2}); }, in, 3);
    fmt::print("{:<40} {:>10.1f} {:>10.1f} {:>8.1f}x\n", fmt::format("max_pool2d 2x2, {}x{}x{}", C, HW, HW), tf * 1e3,
               tr * 1e3, tr / tf);
    std::vector<Tensor> bn{randn({N, C, HW, HW}), ones({C}), zeros({C})};
    leafify(bn);
    Tensor rm = zeros({C}), rv = ones({C});
    double bf = fwd_bwd([&](auto& v) { return batch_norm(v[0], v[1], v[2], rm, rv, true); }, bn, 5);
    double br = fwd_bwd([&](auto& v) { return ref::batch_norm(v[0], v[1], v[2], rm, rv, true); }, bn, 3);
    fmt::print("{:<40} {:>10.1f} {:>10.1f} {:>8.1f}x\n", fmt::format("batch_norm train, {}x{}x{}", C, HW, HW),
               bf * 1e3, br * 1e3, br / bf);
    // batch norm + ReLU in one op against the two fused ops, alternated (the last column: two / one).
    const auto [one, two] = bench::alternating_medians(
        [&] {
          Tensor y = batch_norm_activation(bn[0], bn[1], bn[2], rm, rv, true, 0.1, 1e-5, PostActivation::relu);
          y.backward(ones_like(y));
        },
        [&] {
          Tensor y = relu(batch_norm(bn[0], bn[1], bn[2], rm, rv, true));
          y.backward(ones_like(y));
        },
        3, 0.5);
    fmt::print("{:<40} {:>10.1f} {:>10.1f} {:>8.2f}x   (batch_norm then relu)\n",
               fmt::format("batch_norm+relu train, {}x{}x{}", C, HW, HW), one * 1e3, two * 1e3, two / one);
  }

  {  // GELU at airbench's size after its second group (batch 1024, 256 channels, 7x7)
    std::vector<Tensor> in{randn({1024, 256, 7, 7})};
    leafify(in);
    double tf = fwd_bwd([](auto& v) { return gelu(v[0]); }, in, 5);
    double tr = fwd_bwd([](auto& v) { return ref::gelu(v[0]); }, in, 3);
    fmt::print("{:<40} {:>10.1f} {:>10.1f} {:>8.1f}x\n", "gelu, 1024x256x7x7", tf * 1e3, tr * 1e3, tr / tf);
  }

  // The two algorithms of the fused conv on the main command's VGG layers.
  fmt::print("\n{:<40} {:>10} {:>10} {:>9}\n", "VGG conv 3x3 pad 1, forward + backward", "im2col ms", "Winograd", "speed-up");
  for (Conv c : {Conv{32, 32, 32}, Conv{32, 64, 16}, Conv{64, 64, 16}, Conv{64, 128, 8}, Conv{128, 128, 8}}) {
    std::vector<Tensor> in{randn({N, c.C, c.HW, c.HW}), randn({c.F, c.C, 3, 3}) * 0.1};
    leafify(in);
    auto timed = [&](detail::ConvAlgorithm a) {
      detail::set_conv_algorithm(a);
      double t = fwd_bwd([](auto& v) { return conv2d(v[0], v[1], Tensor(), {.padding = 1}); }, in, 7);
      detail::set_conv_algorithm(detail::ConvAlgorithm::automatic);
      return t;
    };
    const double ti = timed(detail::ConvAlgorithm::im2col), tw = timed(detail::ConvAlgorithm::winograd);
    fmt::print("{:<40} {:>10.1f} {:>10.1f} {:>8.2f}x\n", fmt::format("{}->{}, {}x{}", c.C, c.F, c.HW, c.HW), ti * 1e3,
               tw * 1e3, ti / tw);
  }

  // The GEMMs the fused conv's Winograd path issues (ops/fused/winograd.cpp): 36 per chunk of images,
  // [F x C] x [C x tiles] and the two transposed products, the chunks shared over the threads.
  fmt::print("\n{:<48} {:>10} {:>10} {:>14}\n", "Winograd GEMMs, 36 per chunk, batch 128", "xgrad GF/s", "of peak",
             "OpenBLAS GF/s");
  for (Conv c : {Conv{64, 64, 16}, Conv{32, 32, 32}}) {
    const detail::ConvGeometry g = detail::conv_geometry(zeros({N, c.C, c.HW, c.HW}), zeros({c.F, c.C, 3, 3}),
                                                         Tensor(), {.padding = 1}, "conv2d");
    const int64_t T = detail::winograd_chunk_tiles(g, sizeof(float)), calls = 36 * ((N * (c.HW / 4) * (c.HW / 4) + T - 1) / T);
    struct G {
      const char* what;
      int64_t M, Nn, K;
      bool ta, tb;
    };
    for (G w : {G{"forward", c.F, T, c.C, false, false}, G{"dweight", c.F, c.C, T, false, true},
                G{"dinput", c.C, T, c.F, true, false}}) {
      double gf = gemm_gflops(w.M, w.Nn, w.K, w.ta, w.tb, calls, false, 7);
      double ob = gemm_gflops(w.M, w.Nn, w.K, w.ta, w.tb, calls, true, 7);
      bench::settle();
      fmt::print("{:<48} {:>10.1f} {:>9.0f}% {:>14.1f}\n",
                 fmt::format("{}->{} {}: [{}x{}]x[{}x{}]", c.C, c.F, w.what, w.M, w.K, w.K, w.Nn), gf, 100 * gf / peak,
                 ob);
    }
  }

  // The GEMMs the fused conv's im2col path issues per image (ops/fused/conv2d.cpp), over a batch.
  fmt::print("\n{:<48} {:>10} {:>10} {:>14}\n", "conv GEMMs, per image, batch 128", "xgrad GF/s", "of peak",
             "OpenBLAS GF/s");
  for (Conv c : {Conv{3, 32, 32}, Conv{64, 64, 16}, Conv{32, 32, 32}}) {
    const int64_t CKK = c.C * 9, P = c.HW * c.HW;
    struct G {
      const char* what;
      int64_t M, Nn, K;
      bool ta, tb;
    };
    for (G g : {G{"forward", c.F, P, CKK, false, false}, G{"dweight", c.F, CKK, P, false, true},
                G{"dinput", CKK, P, c.F, true, false}}) {
      double gf = gemm_gflops(g.M, g.Nn, g.K, g.ta, g.tb, N, false, 7);
      double ob = gemm_gflops(g.M, g.Nn, g.K, g.ta, g.tb, N, true, 7);
      bench::settle();
      fmt::print("{:<48} {:>10.1f} {:>9.0f}% {:>14.1f}\n",
                 fmt::format("{}->{} {}: [{}x{}]x[{}x{}]", c.C, c.F, g.what, g.M, g.K, g.K, g.Nn), gf,
                 100 * gf / peak, ob);
    }
  }

  // The options of issue 16: grouped, depthwise and dilated convolutions, the transposed convolution
  // (2x upsampling) and pooling with ceil_mode / count_include_pad, fused against the reference.
  struct Opt {
    const char* what;
    std::function<Tensor(const std::vector<Tensor>&)> fused, reference;
    std::vector<Tensor> in;
  };
  const Conv2dOptions dw{.padding = 1, .groups = 32}, gr{.padding = 1, .groups = 4}, di{.padding = 2, .dilation = 2};
  const ConvTranspose2dOptions up{.stride = 2, .padding = 1};
  const Pool2dOptions ce{.kernel = 3, .stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false};
  fmt::print("\n{:<40} {:>10} {:>10} {:>9}\n", "options (batch 128, forward + backward)", "fused ms", "ref ms",
             "speed-up");
  for (Opt c : {Opt{"conv2d depthwise 32ch 3x3, 32x32", [&](auto& v) { return conv2d(v[0], v[1], Tensor(), dw); },
                    [&](auto& v) { return ref::conv2d(v[0], v[1], Tensor(), dw); },
                    {randn({N, 32, 32, 32}), randn({32, 1, 3, 3})}},
                Opt{"conv2d 64->64 groups 4 3x3, 16x16", [&](auto& v) { return conv2d(v[0], v[1], Tensor(), gr); },
                    [&](auto& v) { return ref::conv2d(v[0], v[1], Tensor(), gr); },
                    {randn({N, 64, 16, 16}), randn({64, 16, 3, 3}) * 0.1}},
                Opt{"conv2d 32->32 3x3 dilation 2, 32x32", [&](auto& v) { return conv2d(v[0], v[1], Tensor(), di); },
                    [&](auto& v) { return ref::conv2d(v[0], v[1], Tensor(), di); },
                    {randn({N, 32, 32, 32}), randn({32, 32, 3, 3}) * 0.1}},
                // (8x8 input: the reference gathers 16 taps of a zero-spread input, about 0.5 GB at 16x16)
                Opt{"conv_transpose2d 64->32 4x4/2, 8->16",
                    [&](auto& v) { return conv_transpose2d(v[0], v[1], Tensor(), up); },
                    [&](auto& v) { return ref::conv_transpose2d(v[0], v[1], Tensor(), up); },
                    {randn({N, 64, 8, 8}), randn({64, 32, 4, 4}) * 0.1}},
                Opt{"avg_pool2d 3x3/2 ceil, no pad count, 32x32", [&](auto& v) { return avg_pool2d(v[0], ce); },
                    [&](auto& v) { return ref::avg_pool2d(v[0], ce); }, {randn({N, 32, 32, 32})}}}) {
    leafify(c.in);
    const double tf = fwd_bwd(c.fused, c.in, 5), tr = fwd_bwd(c.reference, c.in, 2);
    fmt::print("{:<40} {:>10.1f} {:>10.1f} {:>8.1f}x\n", c.what, tf * 1e3, tr * 1e3, tr / tf);
  }
  return 0;
}

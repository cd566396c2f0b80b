// airbench94's layers one by one at its batch size (forward + backward, as training runs them), the
// whole network, its optimizer steps (airbench94's SGD, airbench94_muon's Muon), and OpenBLAS sgemm's
// peak in the same run: where a training step's time goes.
// Usage: bench_airbench [batch = 1024] [reps = 3] [width1 width2 width3 = 64 256 256] [precision = highest]
// (the precision is the per-layer table's, set_float32_matmul_precision's names)
#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <vector>
#include <xgrad.hpp>

#include "args.hpp"
#include "ops/fused/onednn_conv.hpp"
#include "ops/fused/winograd.hpp"
#include "timing.hpp"
#include "train/airbench.hpp"
#include "train/models.hpp"

using namespace xg;

namespace {

struct Layer {
  std::string what;
  std::function<Tensor()> run;  // builds its inputs' graph and returns the output to backpropagate
  double flop = 0;              // forward + backward multiply-adds x 2 (convs only)
};

double fwd_bwd(const std::function<Tensor()>& f, int reps) {
  return bench::median_seconds([&] {
    Tensor y = f();
    y.backward(ones_like(y));
  }, reps);
}

void fwd_bwd_once(const Tensor& y) { y.backward(ones_like(y)); }

double sgemm_peak() {
  const int64_t n = 2048;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  bench::OpenblasThreads all(get_num_threads());
  const double t = bench::median_seconds([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
  }, 3);
  return 2.0 * n * n * n / t / 1e9;
}

}  // namespace

int main(int argc, char** argv) try {
  configure_process();
  manual_seed(0);
  check(argc <= 7 && argc != 4 && argc != 5,
        "usage: bench_airbench [batch = 1024] [reps = 3] [width1 width2 width3 = 64 256 256] [precision = highest]");
  auto arg = [&](int i, const char* what) { return bench::int_arg("bench_airbench", what, argv[i], 1); };
  const int64_t N = argc > 1 ? arg(1, "the batch") : 1024;
  const int reps = argc > 2 ? int(arg(2, "reps")) : 3;
  const std::vector<int64_t> widths = argc > 5
                                          ? std::vector<int64_t>{arg(3, "width1"), arg(4, "width2"), arg(5, "width3")}
                                          : std::vector<int64_t>{64, 256, 256};
  const std::string layer_precision = argc > 6 ? argv[6] : "highest";
  set_float32_matmul_precision(layer_precision);  // a bad name fails here, before the minutes of measuring
  set_float32_matmul_precision("highest");
  const double peak = sgemm_peak();
  bench::settle();
  fmt::print("OpenBLAS sgemm 2048^3 on {} threads: {:.1f} GFLOP/s; batch {}, widths {}-{}-{}, median of {}\n\n",
             get_num_threads(), peak, N, widths[0], widths[1], widths[2], reps);

  auto leaf = [](const Shape& s, double scale = 1.0) {
    Tensor t = randn(s) * scale;
    t.requires_grad_();
    return t;
  };
  // Inputs that need a gradient (every layer but the first gets one from the layer before it).
  std::vector<Layer> layers;
  {
    Tensor x = randn({N, 3, 32, 32}), w = randn({24, 3, 2, 2}), b = leaf({24});  // frozen weight, no dinput
    layers.push_back({"whiten conv 3->24 2x2, 32x32 (dbias only)", [=] { return conv2d(x, w, b); }, 0});
  }
  auto conv = [&](int64_t C, int64_t F, int64_t HW) {
    Tensor x = leaf({N, C, HW, HW}), w = leaf({F, C, 3, 3}, 0.1);
    layers.push_back({fmt::format("conv {}->{} 3x3 pad 1, {}x{}", C, F, HW, HW),
                      [=] { return conv2d(x, w, Tensor(), {.padding = 1}); }, 3 * 2.0 * N * F * C * 9 * HW * HW});
  };
  auto pool = [&](int64_t C, int64_t HW, int64_t k) {
    Tensor x = leaf({N, C, HW, HW});
    layers.push_back({fmt::format("max_pool {}x{} on {}x{}x{}", k, k, C, HW, HW),
                      [=] { return max_pool2d(x, {.kernel = k}); }, 0});
  };
  auto norm = [&](int64_t C, int64_t HW) {
    Tensor x = leaf({N, C, HW, HW}), g = ones({C}), b = leaf({C}), rm = zeros({C}), rv = ones({C});
    layers.push_back({fmt::format("batch_norm + gelu {}x{}x{} (frozen scale)", C, HW, HW),
                      [=] { return batch_norm_activation(x, g, b, rm, rv, true, 0.4, 1e-12, PostActivation::gelu); },
                      0});
  };
  auto act = [&](int64_t C, int64_t HW) {
    Tensor x = leaf({N, C, HW, HW});
    layers.push_back({fmt::format("gelu {}x{}x{}", C, HW, HW), [=] { return gelu(x); }, 0});
  };
  act(24, 31);
  int64_t in = 24, hw = 31;
  for (int64_t w : widths) {  // one group: conv, pool, norm + gelu, conv, norm + gelu
    conv(in, w, hw), pool(w, hw, 2), hw /= 2, norm(w, hw), conv(w, w, hw), norm(w, hw);
    in = w;
  }
  pool(in, 3, 3);

  fmt::print("per layer at precision {}\n", layer_precision);
  fmt::print("{:<44} {:>9} {:>7} {:>9} {:>8}\n", "layer (forward + backward)", "ms", "share", "GFLOP/s", "of peak");
  std::vector<double> times;
  double total = 0;
  set_float32_matmul_precision(layer_precision);
  for (const Layer& l : layers) {
    times.push_back(fwd_bwd(l.run, reps));
    total += times.back();
  }
  set_float32_matmul_precision("highest");
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    const std::string gf = l.flop > 0 ? fmt::format("{:.1f}", l.flop / times[i] / 1e9) : "";
    const std::string pk = l.flop > 0 ? fmt::format("{:.0f}%", 100 * l.flop / times[i] / 1e9 / peak) : "";
    fmt::print("{:<44} {:>9.1f} {:>6.1f}% {:>9} {:>8}\n", l.what, times[i] * 1e3, 100 * times[i] / total, gf, pk);
  }
  fmt::print("{:<44} {:>9.1f}\n", "sum of the layers", total * 1e3);

  // The fused batch norm + GELU against the two ops it replaces, alternated, at the group shapes.
  fmt::print("\nbatch norm + GELU, forward + backward, {} rounds alternated: fused vs batch_norm then gelu\n", 3);
  for (auto [C, HW] : {std::pair<int64_t, int64_t>{widths[0], 15}, {widths[1], 7}}) {
    Tensor x = leaf({N, C, HW, HW}), g = ones({C}), b = leaf({C}), rm = zeros({C}), rv = ones({C});
    const auto [fused, two] = bench::alternating_medians(
        [&] { fwd_bwd_once(batch_norm_activation(x, g, b, rm, rv, true, 0.4, 1e-12, PostActivation::gelu)); },
        [&] { fwd_bwd_once(gelu(batch_norm(x, g, b, rm, rv, true, 0.4, 1e-12))); }, 3, 1.0);
    fmt::print("  {}x{}x{}: fused {:.1f} ms, two ops {:.1f} ms, {:.2f}x\n", C, HW, HW, fused * 1e3, two * 1e3,
               two / fused);
  }
  fmt::print("\n");

  auto net = std::make_shared<models::Airbench>(models::AirbenchOptions{.widths = widths});
  Tensor x = randn({N, 3, 32, 32});
  Tensor labels = zeros({N}, Dtype::i64);
  auto step = [&] {
    net->zero_grad();
    cross_entropy(net->forward(x), labels, {.reduction = "sum", .label_smoothing = 0.2}).backward();
  };
  const double whole = bench::median_seconds(step, reps);
  fmt::print("{:<44} {:>9.1f}   ({:.0f} img/s for forward + backward)\n", "whole network, summed cross-entropy",
             whole * 1e3, N / whole);
  if (detail::onednn_winograd_available()) {
    // The 3x3 convolutions on xgrad's own Winograd against oneDNN's f32 kernel (the automatic choice).
    auto own = [&] {
      detail::set_conv_algorithm(detail::ConvAlgorithm::winograd);
      step();
      detail::set_conv_algorithm(detail::ConvAlgorithm::automatic);
    };
    const auto [onednn, xgrad] = bench::alternating_medians(step, own, 3, 0.0);
    fmt::print("{:<44} {:>9.1f}   ({:.0f} img/s)\n{:<44} {:>9.1f}   ({:.0f} img/s, {:.2f}x)\n",
               "  alternated: xgrad's Winograd", xgrad * 1e3, N / xgrad, "  alternated: oneDNN's Winograd (automatic)",
               onednn * 1e3, N / onednn, xgrad / onednn);
  }
  if (bf16_matmul_available()) {
    // The same step with set_float32_matmul_precision("medium") (bf16 convolutions on AMX), alternated.
    auto medium = [&] {
      set_float32_matmul_precision("medium");
      step();
      set_float32_matmul_precision("highest");
    };
    medium();  // oneDNN builds its kernels on first use
    const auto [f32, bf16] = bench::alternating_medians(step, medium, 3, 0.0);
    fmt::print("{:<44} {:>9.1f}   ({:.0f} img/s)\n{:<44} {:>9.1f}   ({:.0f} img/s, {:.2f}x)\n",
               "  alternated: precision highest (f32)", f32 * 1e3, N / f32, "  alternated: precision medium (bf16, AMX)",
               bf16 * 1e3, N / bf16, f32 / bf16);
  }

  // The optimizer steps on the gradients the whole network left, alternated (parameters drift; the
  // cost does not depend on their values).
  auto sgd = train::airbench_optimizer(*net, {});
  auto muon = train::airbench_muon_optimizer(*net, {});
  std::vector<double> t_sgd, t_muon;
  for (int r = 0; r < 2 * reps + 1; ++r) {
    t_sgd.push_back(bench::median_seconds([&] { sgd->step(); }, 1));
    t_muon.push_back(bench::median_seconds([&] { muon->step(); }, 1));
  }
  std::sort(t_sgd.begin(), t_sgd.end());
  std::sort(t_muon.begin(), t_muon.end());
  fmt::print("{:<44} {:>9.1f}\n{:<44} {:>9.1f}   ({:.1f}% of the forward + backward)\n", "optimizer step: airbench94's SGD",
             t_sgd[reps] * 1e3, "optimizer step: Muon (airbench94_muon)", t_muon[reps] * 1e3, 100 * t_muon[reps] / whole);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 1;
}

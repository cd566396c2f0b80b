// xgrad's half of the side-by-side benchmark against PyTorch (bench/vs_torch.py is the other half,
// bench/compare_torch.py runs both, interleaved, and prints the ratios). Each invocation measures
// one thing and prints one JSON object, so that peak RSS belongs to one model:
//   vs_torch model NAME [--threads T] [--seconds S]   training and inference images/s, peak RSS
//   vs_torch ops [--threads T] [--seconds S]          forward + backward ms of single ops
// --matmul-precision medium runs f32 products and convolutions in bf16 on AMX (set_float32_matmul_precision).
// --sgemm openblas runs the f32 GEMMs on OpenBLAS instead of oneDNN (the same build, for a
// side-by-side measure of what oneDNN brings).
// --conv-algorithm winograd keeps 3x3 convolutions on xgrad's own Winograd instead of oneDNN's f32
// kernel (automatic, the default; im2col forces xgrad's im2col path).
#include <sys/resource.h>

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>
#include <xgrad.hpp>

#include "args.hpp"
#include "ops/blas.hpp"
#include "ops/fused/winograd.hpp"
#include "timing.hpp"
#include "train/models.hpp"

using namespace xg;

namespace {

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

// The four models, defined exactly as in vs_torch.py.
std::shared_ptr<nn::Module> make(const std::string& name) {
  using namespace models;
  if (name == "twolayer") return std::make_shared<TwoLayerNet>(3072, 100, 10);
  if (name == "fc") return std::make_shared<FullyConnectedNet>(std::vector<int64_t>{100, 100, 100, 100}, 3072, 10,
                                                               Norm::batch, 0.5);
  if (name == "convnet") return std::make_shared<ThreeLayerConvNet>();
  if (name == "vgg") return std::make_shared<VGG>();
  fail("vs_torch: unknown model '{}'; choose twolayer, fc, convnet or vgg", name);
}

void bench_model(const std::string& name, double seconds) {
  const int64_t batch = 128;
  const double base_rss = peak_rss_mb();
  auto model = make(name);
  optim::SGD opt(model->parameters(), {.lr = 0.01, .momentum = 0.9});
  const Tensor x = randn({batch, 3, 32, 32}), y = randint(0, 10, {batch});
  const double train = bench::median_seconds_for([&] {
    opt.zero_grad();
    Tensor loss = cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
  }, seconds);
  const double rss = peak_rss_mb();
  model->eval();
  const double infer = bench::median_seconds_for([&] {
    NoGradGuard no_grad;
    model->forward(x);
  }, seconds);
  fmt::print("{{\"train_ips\": {:.2f}, \"infer_ips\": {:.2f}, \"peak_rss_mb\": {:.1f}, \"base_rss_mb\": {:.1f}}}\n",
             batch / train, batch / infer, rss, base_rss);
}

// Forward + backward of f on leaves `in` with an all-ones upstream gradient, in milliseconds.
double fwd_bwd_ms(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> in,
                  double seconds) {
  for (Tensor& t : in) t.requires_grad_();
  return 1e3 * bench::median_seconds_for([&] {
    for (Tensor& t : in) t.zero_grad();
    Tensor out = f(in);
    out.backward(ones_like(out));
  }, seconds);
}

void bench_ops(double seconds) {
  const int64_t N = 128;
  std::map<std::string, double> ms;
  auto conv = [&](const std::string& key, int64_t C, int64_t F, int64_t K, int64_t HW) {
    const int64_t pad = K / 2;
    ms[key] = fwd_bwd_ms([&](auto& v) { return conv2d(v[0], v[1], v[2], {.stride = 1, .padding = pad}); },
                         {randn({N, C, HW, HW}), randn({F, C, K, K}) * 0.05, zeros({F})}, seconds);
  };
  conv("conv2d 3->32 7x7 pad 3, 32x32", 3, 32, 7, 32);
  conv("conv2d 64->64 3x3 pad 1, 16x16", 64, 64, 3, 16);
  conv("conv2d 128->128 3x3 pad 1, 8x8", 128, 128, 3, 8);
  ms["max_pool2d 2x2, 32x32x32"] =
      fwd_bwd_ms([](auto& v) { return max_pool2d(v[0], {.kernel = 2}); }, {randn({N, 32, 32, 32})}, seconds);
  const Tensor rm = zeros({64}), rv = ones({64});
  ms["batch_norm 2-D train, 64x16x16"] = fwd_bwd_ms(
      [&](auto& v) { return batch_norm(v[0], v[1], v[2], rm, rv, true); },
      {randn({N, 64, 16, 16}), ones({64}), zeros({64})}, seconds);
  ms["matmul 1024x1024x1024"] =
      fwd_bwd_ms([](auto& v) { return matmul(v[0], v[1]); }, {randn({1024, 1024}), randn({1024, 1024})}, seconds);
  std::string json = "{";
  for (auto& [k, v] : ms) json += fmt::format("{}\"{}\": {:.3f}", json.size() > 1 ? ", " : "", k, v);
  fmt::print("{}}}\n", json);
}

}  // namespace

int main(int argc, char** argv) try {
  configure_process();
  if (argc < 2) fail("usage: vs_torch model NAME | ops  [--threads T] [--seconds S]");
  std::string what = argv[1], name;
  int threads = 2;
  double seconds = 3;
  int i = 2;
  if (what == "model") {
    if (argc < 3) fail("vs_torch model: missing the model name");
    name = argv[i++];
  } else if (what != "ops") {
    fail("vs_torch: unknown command '{}'; use model NAME or ops", what);
  }
  for (; i < argc; i += 2) {
    check(i + 1 < argc, "vs_torch: flag '{}' needs a value", argv[i]);
    if (!std::strcmp(argv[i], "--threads"))
      threads = int(bench::int_arg("vs_torch", "--threads", argv[i + 1], 1));
    else if (!std::strcmp(argv[i], "--seconds"))
      seconds = bench::positive_arg("vs_torch", "--seconds", argv[i + 1]);
    else if (!std::strcmp(argv[i], "--sgemm")) {
      check(!std::strcmp(argv[i + 1], "openblas") || !std::strcmp(argv[i + 1], "onednn"),
            "vs_torch: --sgemm takes openblas or onednn, got '{}'", argv[i + 1]);
      detail::set_sgemm_onednn(!std::strcmp(argv[i + 1], "onednn"));
    }
    else if (!std::strcmp(argv[i], "--matmul-precision")) set_float32_matmul_precision(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--conv-algorithm")) {
      const std::string a = argv[i + 1];
      check(a == "automatic" || a == "winograd" || a == "im2col",
            "vs_torch: --conv-algorithm takes automatic, winograd or im2col, got '{}'", a);
      detail::set_conv_algorithm(a == "winograd" ? detail::ConvAlgorithm::winograd
                                 : a == "im2col" ? detail::ConvAlgorithm::im2col
                                                 : detail::ConvAlgorithm::automatic);
    } else {
      fail("vs_torch: unknown flag '{}'", argv[i]);
    }
  }
  set_num_threads(threads);
  manual_seed(0);
  if (what == "model") bench_model(name, seconds);
  else bench_ops(seconds);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 1;
}

// Training-step speed with and without configure_process (autograd/process.hpp), one setting per
// process since the settings are process-wide:
//   for i in 1 2 3; do for s in untouched configured; do build/bench/process_settings $s vgg; done; done
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <string>

#include <xgrad.hpp>

#include "train/models.hpp"

int main(int argc, char** argv) try {
  using namespace xg;
  const std::string mode = argc > 1 ? argv[1] : "", model_name = argc > 2 ? argv[2] : "vgg";
  check(mode == "untouched" || mode == "configured", "usage: process_settings untouched|configured [MODEL]");
  if (mode == "configured") configure_process();
  auto model = models::make_model(model_name);
  optim::SGD opt(model->parameters(), {.lr = 0.01, .momentum = 0.9});
  manual_seed(0);
  Tensor x = randn({128, 3, 32, 32}), y = randint(0, 10, {128});
  const int steps = model_name == "vgg" || model_name.rfind("convnet", 0) == 0 ? 14 : 200, warmup = 4;
  std::vector<double> seconds;
  for (int i = 0; i < steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    Tensor loss = cross_entropy(model->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(seconds.begin() + warmup, seconds.end());
  const double median = seconds[warmup + (seconds.size() - warmup) / 2];
  fmt::print("{} {}: median step {:.2f} ms, {:.0f} img/s (OpenBLAS threads {})\n", model_name, mode, 1e3 * median,
             128 / median, openblas_get_num_threads());
  return 0;
} catch (const xg::Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 1;
}

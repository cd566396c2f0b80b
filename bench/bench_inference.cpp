// xgrad's half of the inference benchmark against ONNX Runtime (scripts/bench_ort.sh runs both halves,
// alternating, through bench/compare_ort.py; tools/ort/bench.js is ONNX Runtime's half):
//   bench_inference export DIR
//     for each model: DIR/NAME.safetensors (its weights, random, with random batch-norm statistics),
//     DIR/NAME.onnx (xgrad's ONNX export of that model, dynamic batch) and DIR/NAME.io.safetensors
//     (one input batch of 128 and xgrad's eval-mode output for it)
//   bench_inference time DIR NAME [--threads T] [--seconds S] [--fused-only]
//     loads NAME's weights and input, and times the eval-mode forward under no_grad of the model as
//     built and of a second copy after nn::fuse_for_inference, alternating one call of each; prints
//     one JSON object with both images/s and the fused output's largest difference from the unfused.
//     --fused-only runs the fused copy alone (for a profiler).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>
#include <xgrad.hpp>

#include "args.hpp"
#include "timing.hpp"
#include "train/models.hpp"

using namespace xg;

namespace {

const std::vector<std::string> models_benched{"twolayer", "convnet", "vgg"};
constexpr int64_t batch = 128;

// The models as bench/vs_torch.cpp defines them.
std::shared_ptr<nn::Module> make(const std::string& name) {
  using namespace models;
  if (name == "twolayer") return std::make_shared<TwoLayerNet>(3072, 100, 10);
  if (name == "convnet") return std::make_shared<ThreeLayerConvNet>();
  if (name == "vgg") return std::make_shared<VGG>();
  fail("bench_inference: unknown model '{}'; choose twolayer, convnet or vgg", name);
}

// Batch norm as after training: running statistics and affine parameters away from the identity.
void randomize_batch_norms(nn::Module& model) {
  NoGradGuard no_grad;
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNormBase*>(m.get())) {
      bn->running_mean().copy_(randn(bn->running_mean().shape()) * 0.2);
      bn->running_var().copy_(rand(bn->running_var().shape()) + 0.5);
      bn->weight().copy_(rand(bn->weight().shape()) + 0.5);
      bn->bias().copy_(randn(bn->bias().shape()) * 0.1);
    }
}

std::string file(const std::string& dir, const std::string& name, const char* ext) {
  return (std::filesystem::path(dir) / (name + ext)).string();
}

void export_all(const std::string& dir) {
  std::filesystem::create_directories(dir);
  manual_seed(0);
  for (const std::string& name : models_benched) {
    auto model = make(name);
    randomize_batch_norms(*model);
    model->eval();
    model->save(file(dir, name, ".safetensors"));
    onnx::export_model(*model, rand({2, 3, 32, 32}), file(dir, name, ".onnx"));
    const Tensor input = randn({batch, 3, 32, 32});
    NoGradGuard no_grad;
    nn::save_safetensors(file(dir, name, ".io.safetensors"), {{"input", input}, {"output", (*model)(input)}});
    fmt::print("{}: {}, {}\n", name, file(dir, name, ".onnx"), file(dir, name, ".io.safetensors"));
  }
}

double max_abs(const Tensor& t) { return max(abs(t)).item<double>(); }

void time_model(const std::string& dir, const std::string& name, double seconds, bool fused_only) {
  auto plain = make(name), fused = make(name);
  plain->load(file(dir, name, ".safetensors"));
  fused->load(file(dir, name, ".safetensors"));
  plain->eval();
  fused->eval();
  nn::fuse_for_inference(*fused);
  const nn::NamedTensors io = nn::load_safetensors(file(dir, name, ".io.safetensors")).tensors;
  auto entry = [&](const char* key) {
    for (const auto& [n, t] : io)
      if (n == key) return t;
    fail("bench_inference: {} has no '{}'", file(dir, name, ".io.safetensors"), key);
  };
  const Tensor x = entry("input");
  NoGradGuard no_grad;
  // The model from the weights file reproduces the output the ONNX side is checked against.
  const Tensor want = (*plain)(x);
  check(allclose(want, entry("output"), 1e-6, 1e-7), "bench_inference: {}'s output differs from the exported one",
        name);
  const double diff = max_abs(sub((*fused)(x), want)) / max_abs(want);
  // One call of each in turn, so that drift of the machine hits both alike.
  std::vector<double> tp, tf;
  using clock = std::chrono::steady_clock;
  auto timed = [](nn::Module& m, const Tensor& in) {
    const auto s = clock::now();
    m(in);
    return std::chrono::duration<double>(clock::now() - s).count();
  };
  for (int i = 0; i < 2; ++i) timed(*plain, x), timed(*fused, x);  // warm-up
  const auto start = clock::now();
  while (tf.size() < 5 || std::chrono::duration<double>(clock::now() - start).count() < seconds) {
    tp.push_back(fused_only ? 0.0 : timed(*plain, x));
    tf.push_back(timed(*fused, x));
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  const std::string unfused = fused_only ? "" : fmt::format("\"unfused_ips\": {:.1f}, ", batch / median(tp));
  fmt::print("{{{}\"fused_ips\": {:.1f}, \"fused_rel_diff\": {:.3g}, \"runs\": {}}}\n", unfused, batch / median(tf),
             diff, tf.size());
}

}  // namespace

int main(int argc, char** argv) try {
  configure_process();
  const std::string usage = "usage: bench_inference export DIR | time DIR NAME [--threads T] [--seconds S]";
  check(argc >= 3, "{}", usage);
  const std::string what = argv[1], dir = argv[2];
  if (what == "export") {
    check(argc == 3, "{}", usage);
    export_all(dir);
    return 0;
  }
  check(what == "time" && argc >= 4, "{}", usage);
  const std::string name = argv[3];
  int threads = 2;
  double seconds = 3;
  bool fused_only = false;
  for (int i = 4; i < argc; i += 2) {
    if (!std::strcmp(argv[i], "--fused-only")) {
      fused_only = true;
      --i;
      continue;
    }
    check(i + 1 < argc, "bench_inference: flag '{}' needs a value", argv[i]);
    if (!std::strcmp(argv[i], "--threads"))
      threads = int(bench::int_arg("bench_inference", "--threads", argv[i + 1], 1));
    else if (!std::strcmp(argv[i], "--seconds"))
      seconds = bench::positive_arg("bench_inference", "--seconds", argv[i + 1]);
    else fail("bench_inference: unknown flag '{}'", argv[i]);
  }
  set_num_threads(threads);
  time_model(dir, name, seconds, fused_only);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 1;
}

// Inference fusion (nn/fuse.hpp, ops/fused/inference.hpp): fused models compute what the unfused
// ones did in f32 and f64, over the zoo and layers with every option that folding touches; the
// epilogues against relu(conv2d) and relu(linear); refusals that change nothing; a fused model that
// cannot train; and its ONNX export.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "helpers.hpp"
#include "onnx_models.hpp"
#include "ops/fused/inference.hpp"
#include "ops/fused/winograd.hpp"

using namespace xg;

namespace {

// max |a - b| / max |b|.
double rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  return max(abs(sub(a, b))).item<double>() / std::max(max(abs(b)).item<double>(), 1e-30);
}

double tolerance(Dtype d) { return d == Dtype::f32 ? 2e-5 : 1e-12; }

using Factory = std::function<std::shared_ptr<nn::Module>()>;

// Two copies of one model (random batch norms), the second fused by `fuse`; both in eval mode.
template <class Fuse>
std::pair<std::shared_ptr<nn::Module>, std::shared_ptr<nn::Module>> pair_of(const Factory& make, Dtype d, Fuse&& fuse) {
  manual_seed(3);
  auto plain = make(), fused = make();
  onnx_test::randomize_batch_norms(*plain);
  plain->to(d);
  fused->to(d);
  fused->load_state_dict(plain->state_dict());
  plain->eval();
  fused->eval();
  fuse(*fused);
  return {plain, fused};
}

// The fused model's output equals the unfused one's, without and with a gradient to record; with
// one, the input gradients agree too.
void check_same_function(nn::Module& plain, nn::Module& fused, const Shape& shape, Dtype d) {
  manual_seed(5);
  const Tensor x = randn(shape, d);
  {
    NoGradGuard no_grad;
    CHECK(rel_diff(fused(x), plain(x)) < tolerance(d));
  }
  Tensor xa = x.detach(), xb = x.detach();
  xa.requires_grad_();
  xb.requires_grad_();
  Tensor ya = plain(xa), yb = fused(xb);
  CHECK(rel_diff(yb, ya) < tolerance(d));
  const Tensor g = randn(ya.shape(), d);
  ya.backward(g);
  yb.backward(g);
  CHECK(rel_diff(xb.grad(), xa.grad()) < tolerance(d));
}

// A conv stack with what folding must get right: a bias and none, batch norm without affine
// parameters, a depthwise and a strided conv, a Linear without bias before a BatchNorm1d.
std::shared_ptr<nn::Module> options_stack() {
  auto s = std::make_shared<nn::Sequential>();
  s->push_back(nn::Conv2d(nn::Conv2dOptions{.in_channels = 3, .out_channels = 8, .kernel_size = 3, .padding = 1}));
  s->push_back(nn::BatchNorm2d(nn::BatchNormOptions{.num_features = 8, .affine = false}));
  s->push_back(nn::ReLU());
  s->push_back(nn::Conv2d(nn::Conv2dOptions{
      .in_channels = 8, .out_channels = 8, .kernel_size = 3, .padding = 1, .groups = 8, .bias = false}));
  s->push_back(nn::BatchNorm2d(8));
  s->push_back(nn::ReLU());
  s->push_back(nn::Conv2d(nn::Conv2dOptions{.in_channels = 8, .out_channels = 16, .kernel_size = 3, .stride = 2}));
  s->push_back(nn::BatchNorm2d(16));
  s->push_back(nn::Flatten());
  s->push_back(nn::Linear(16 * 7 * 7, 12, false));
  s->push_back(nn::BatchNorm1d(12));
  s->push_back(nn::ReLU());
  s->push_back(nn::Linear(12, 5));
  return s;
}

// A model whose forward calls its members by name, fused with fuse_modules.
struct Named : nn::Module {
  std::shared_ptr<nn::Conv2d> conv1 = register_module(
      "conv1", nn::Conv2d(nn::Conv2dOptions{.in_channels = 3, .out_channels = 6, .kernel_size = 3, .bias = false}));
  std::shared_ptr<nn::BatchNorm2d> bn1 = register_module("bn1", nn::BatchNorm2d(6));
  std::shared_ptr<nn::ReLU> relu1 = register_module("relu1", nn::ReLU());
  std::shared_ptr<nn::Linear> fc = register_module("fc", nn::Linear(6, 4));
  Tensor forward(const Tensor& x) override {
    return (*fc)(flatten(adaptive_avg_pool2d((*relu1)((*bn1)((*conv1)(x))), 1), 1));
  }
};

struct Case {
  const char* name;
  Factory make;
  Shape input;
  nn::FusionGroups groups;  // what fuse_for_inference finds
};

std::vector<Case> cases() {
  using namespace models;
  return {
      {"VGG (bias-free convs)", [] { return std::make_shared<VGG>(std::vector<int64_t>{8, 8, 16, 16}); },
       {2, 3, 32, 32},
       {{"features.0", "features.1", "features.2"}, {"features.3", "features.4", "features.5"},
        {"features.7", "features.8", "features.9"}, {"features.10", "features.11", "features.12"}}},
      {"ThreeLayerConvNet with batch norm", [] { return std::make_shared<ThreeLayerConvNet>(6, 5, 20, 10, true); },
       {2, 3, 32, 32}, {{"features.0", "features.1", "features.2"}, {"classifier.1", "classifier.2"}}},
      {"ThreeLayerConvNet", [] { return std::make_shared<ThreeLayerConvNet>(6, 7, 20, 10, false); }, {2, 3, 32, 32},
       {{"features.0", "features.1"}, {"classifier.1", "classifier.2"}}},
      {"FullyConnectedNet with batch norm and dropout",
       [] { return std::make_shared<FullyConnectedNet>(std::vector<int64_t>{20, 16}, 48, 10, Norm::batch, 0.3); },
       {3, 3, 4, 4}, {{"layers.1", "layers.2", "layers.3"}, {"layers.5", "layers.6", "layers.7"}}},
      {"options stack", options_stack, {2, 3, 16, 16},
       {{"0", "1", "2"}, {"3", "4", "5"}, {"6", "7"}, {"9", "10", "11"}}},
  };
}

}  // namespace

TEST_CASE("fuse_for_inference: fused models compute the unfused ones' outputs and input gradients, f32 and f64") {
  for (const Case& c : cases())
    for (Dtype d : {Dtype::f32, Dtype::f64}) {
      INFO(c.name << ", " << dtype_name(d));
      nn::FusionGroups groups;
      auto [plain, fused] = pair_of(c.make, d, [&](nn::Module& m) { groups = nn::fuse_for_inference(m); });
      CHECK(groups == c.groups);
      check_same_function(*plain, *fused, c.input, d);
    }
}

TEST_CASE("fuse_modules: named groups in a model's own forward, a ResNet block and a ModuleList's entries") {
  for (Dtype d : {Dtype::f32, Dtype::f64}) {
    INFO(dtype_name(d));
    auto [plain, fused] = pair_of([] { return std::make_shared<Named>(); }, d, [](nn::Module& m) {
      CHECK(nn::fuse_for_inference(m).empty());  // no Sequential: nothing found by itself
      nn::fuse_modules(m, {{"conv1", "bn1", "relu1"}});
    });
    check_same_function(*plain, *fused, {2, 3, 8, 8}, d);

    // BasicBlock: conv1-bn1 and conv2-bn2 by name (its ReLUs are functional), the shortcut's by the Sequential pass.
    auto [bp, bf] = pair_of([] { return std::make_shared<models::BasicBlock>(4, 8, 2); }, d, [](nn::Module& m) {
      CHECK(nn::fuse_for_inference(m) == nn::FusionGroups{{"shortcut.0", "shortcut.1"}});
      nn::fuse_modules(m, {{"conv1", "bn1"}, {"conv2", "bn2"}});
    });
    check_same_function(*bp, *bf, {2, 4, 8, 8}, d);
  }

  nn::ModuleList list(nn::Linear(6, 5), nn::BatchNorm1d(5), nn::ReLU());
  onnx_test::randomize_batch_norms(list);
  list.eval();
  const Tensor x = randn({4, 6});
  NoGradGuard no_grad;
  const Tensor want = list[2]->forward(list[1]->forward(list[0]->forward(x)));
  CHECK(nn::fuse_modules(list, {{"0", "1", "2"}}) == nn::FusionGroups{{"0", "1", "2"}});
  CHECK(rel_diff(list[2]->forward(list[1]->forward(list[0]->forward(x))), want) < 1e-5);
  CHECK(list.at<nn::Linear>(0).fused().batch_norm);
  CHECK(list.at<nn::Linear>(0).fused().relu);
}

TEST_CASE("fuse_for_inference: the modules stay in place, printed as fused; the fused state dict is what it computes") {
  auto [plain, fused] = pair_of([] { return std::make_shared<models::ThreeLayerConvNet>(6, 5, 20, 10, true); },
                                Dtype::f32, [](nn::Module& m) { nn::fuse_for_inference(m); });
  auto& net = static_cast<models::ThreeLayerConvNet&>(*fused);
  CHECK(net.features->size() == 4);
  CHECK(net.features->at<nn::Conv2d>(0).fused().batch_norm);
  CHECK(net.features->at<nn::BatchNorm2d>(1).folded());
  CHECK(net.features->at<nn::ReLU>(2).fused());
  const std::string printed = nn::to_string(*fused);
  CHECK(printed.find("padding=[2, 2], fused=batch_norm+relu)") != std::string::npos);
  CHECK(printed.find("folded into the layer before") != std::string::npos);
  CHECK(printed.find("ReLU(fused into the layer before)") != std::string::npos);
  CHECK(printed.find("in_features=1536, out_features=20, bias=true, fused=relu)") != std::string::npos);
  // The folded batch norm holds an identity's statistics, so the fused weights in an unfused model
  // (its conv has a bias, so the keys match) compute the same function.
  auto fresh = std::make_shared<models::ThreeLayerConvNet>(6, 5, 20, 10, true);
  fresh->load_state_dict(fused->state_dict());
  fresh->eval();
  const Tensor x = randn({2, 3, 32, 32});
  NoGradGuard no_grad;
  CHECK(rel_diff((*fresh)(x), (*plain)(x)) < 2e-5);
}

TEST_CASE("fuse_for_inference: refuses a model in training mode, changing nothing") {
  auto model = std::make_shared<models::VGG>(std::vector<int64_t>{4, 4});
  const nn::NamedTensors before = model->state_dict();
  std::vector<Tensor> copies;
  for (auto& [n, t] : before) copies.push_back(t.clone());
  CHECK_ERROR(nn::fuse_for_inference(*model),
              "fuse_for_inference: VGG is in training mode ('VGG' is training); call eval() first");
  model->eval();
  model->features->train();
  CHECK_ERROR(nn::fuse_modules(*model, {{"features.0", "features.1"}}),
              "fuse_modules: VGG is in training mode ('features' is training)");
  const nn::NamedTensors after = model->state_dict();
  REQUIRE(after.size() == copies.size());
  for (size_t i = 0; i < copies.size(); ++i) CHECK(allclose(after[i].second, copies[i], 0, 0));
  CHECK_FALSE(model->features->at<nn::Conv2d>(0).fused().any());
}

TEST_CASE("fuse_for_inference: a fused model cannot train: training-mode forward is refused, parameters frozen") {
  auto model = std::make_shared<models::VGG>(std::vector<int64_t>{4, 4});
  model->eval();
  nn::fuse_for_inference(*model);
  for (auto& [n, p] : model->named_parameters())
    CHECK_MESSAGE(p.requires_grad() == (n.rfind("classifier.", 0) == 0), n);  // only the unfused classifier trains
  model->train();
  CHECK_ERROR((*model)(randn({2, 3, 32, 32})),
              "Conv2d: fused for inference by nn::fuse_for_inference, it runs in eval mode only; to train, build the "
              "model again and load its unfused weights");
  model->features->at<nn::Conv2d>(0).eval();  // the folded batch norm and the fused ReLU refuse too
  CHECK_ERROR(model->features->at<nn::BatchNorm2d>(1).forward(randn({2, 4, 8, 8})), "BatchNorm2d: fused for inference");
  CHECK_ERROR(model->features->at<nn::ReLU>(2).forward(randn({2, 4, 8, 8})), "ReLU: fused for inference");
  // Between the second conv and its max-pool (run as one op in eval mode), a fused ReLU put back in
  // training mode still refuses.
  model->eval();
  model->features->at<nn::ReLU>(5).train();
  {
    NoGradGuard no_grad;
    CHECK_ERROR((*model)(randn({2, 3, 32, 32})), "ReLU: fused for inference");
  }
  model->eval();
  CHECK((*model)(randn({2, 3, 32, 32})).shape() == Shape{2, 10});
}

TEST_CASE("fuse_for_inference: a fused model refuses to load weights, changing nothing") {
  auto model = std::make_shared<models::VGG>(std::vector<int64_t>{4, 4});
  auto other = std::make_shared<models::VGG>(std::vector<int64_t>{4, 4});
  model->eval();
  nn::fuse_for_inference(*model);
  std::vector<Tensor> before;  // copies: the state dict aliases the live tensors
  for (auto& [n, t] : model->state_dict()) before.push_back(t.clone());
  CHECK_ERROR(model->load_state_dict(other->state_dict()),
              "load_state_dict: 'features.0' was fused for inference (nn::fuse_for_inference), so weights of the "
              "unfused layers would be misread");
  const std::string path = "fuse_refuses_load.safetensors";
  other->save(path);
  CHECK_ERROR(model->load(path), "was fused for inference");
  std::remove(path.c_str());
  const auto after = model->state_dict();
  for (size_t i = 0; i < before.size(); ++i) CHECK(allclose(before[i], after[i].second, 0, 0));
}

TEST_CASE("fuse_modules: bad groups are refused naming the module, and nothing is fused") {
  auto model = std::make_shared<models::ThreeLayerConvNet>(6, 5, 20, 10, true);  // features: conv bn relu pool
  model->eval();
  auto& conv = model->features->at<nn::Conv2d>(0);
  CHECK_ERROR(nn::fuse_modules(*model, {{"features.0", "features.9"}}), "fuse_modules: no module named 'features.9'");
  CHECK_ERROR(nn::fuse_modules(*model, {{"features.1", "features.0"}}),
              "fuse_modules: cannot fuse [\"features.1\", \"features.0\"] (BatchNorm2d, Conv2d): a group is a "
              "Conv2d or Linear followed by a batch norm");
  CHECK_ERROR(nn::fuse_modules(*model, {{"features.0"}}), "cannot fuse [\"features.0\"] (Conv2d)");
  CHECK_ERROR(nn::fuse_modules(*model, {{"features.0", "features.3"}}), "(Conv2d, MaxPool2d)");
  CHECK_ERROR(nn::fuse_modules(*model, {{"classifier.1", "features.1"}}), "(Linear, BatchNorm2d)");
  // A valid group next to a bad one: neither is fused.
  CHECK_ERROR(nn::fuse_modules(*model, {{"features.0", "features.1", "features.2"}, {"classifier.3", "classifier.0"}}),
              "(Linear, Flatten)");
  CHECK_ERROR(nn::fuse_modules(*model, {{"features.0", "features.1"}, {"features.0", "features.2"}}),
              "fuse_modules: 'features.0' is in two groups; nothing was fused");
  CHECK_FALSE(conv.fused().any());
  CHECK_FALSE(model->features->at<nn::BatchNorm2d>(1).folded());
  nn::fuse_modules(*model, {{"features.0", "features.1"}});
  CHECK_ERROR(nn::fuse_modules(*model, {{"features.0", "features.2"}}),
              "fuse_modules: 'features.0' (Conv2d) is already fused; nothing was fused");

  struct Odd : nn::Module {  // mismatched widths, no running statistics, a ReLU registered twice
    std::shared_ptr<nn::Conv2d> conv = register_module("conv", nn::Conv2d(3, 4, 1));
    std::shared_ptr<nn::BatchNorm2d> wide = register_module("wide", nn::BatchNorm2d(5));
    std::shared_ptr<nn::BatchNorm2d> batch_stats = register_module(
        "batch_stats", nn::BatchNorm2d(nn::BatchNormOptions{.num_features = 4, .track_running_stats = false}));
    std::shared_ptr<nn::ReLU> relu = register_module("relu", nn::ReLU());
    std::shared_ptr<nn::Sequential> seq = register_module("seq", nn::Sequential(nn::Conv2d(4, 4, 1), relu));
  } odd;
  odd.eval();
  CHECK_ERROR(nn::fuse_modules(odd, {{"conv", "wide"}}), "'wide' has 5 features but 'conv' has 4 outputs");
  CHECK_ERROR(nn::fuse_modules(odd, {{"conv", "batch_stats"}}),
              "'batch_stats' has no running statistics (track_running_stats=false)");
  CHECK_ERROR(nn::fuse_modules(odd, {{"conv", "relu"}}),
              "'relu' (ReLU) is registered at 2 places in the model: fusing it would change each of them");
  CHECK(nn::fuse_for_inference(odd).empty());  // the Sequential's conv-relu shares that ReLU: left alone
  struct Mixed : nn::Module {
    std::shared_ptr<nn::Conv2d> conv = register_module("conv", nn::Conv2d(3, 4, 1));
    std::shared_ptr<nn::BatchNorm2d> bn = register_module("bn", nn::BatchNorm2d(4));
  } mixed;
  mixed.conv->to(Dtype::f64);
  mixed.eval();
  CHECK_ERROR(nn::fuse_modules(mixed, {{"conv", "bn"}}), "'bn' is f32 but 'conv' is f64");
}

TEST_CASE("fuse_for_inference: skips a batch norm without running statistics; fuses a shared Sequential once") {
  auto s = std::make_shared<nn::Sequential>(
      nn::Conv2d(3, 4, 3), nn::BatchNorm2d(nn::BatchNormOptions{.num_features = 4, .track_running_stats = false}),
      nn::ReLU());
  s->eval();
  CHECK(nn::fuse_for_inference(*s).empty());

  struct Twice : nn::Module {  // one block called twice: fusing it changes both calls alike, correctly
    std::shared_ptr<nn::Sequential> block =
        register_module("block", nn::Sequential(nn::Conv2d(4, 4, 3), nn::BatchNorm2d(4), nn::ReLU()));
    std::shared_ptr<nn::Sequential> again = register_module("again", block);
    Tensor forward(const Tensor& x) override { return (*again)((*block)(x)); }
  };
  auto [plain, fused] = pair_of([] { return std::make_shared<Twice>(); }, Dtype::f64, [](nn::Module& m) {
    CHECK(nn::fuse_for_inference(m) == nn::FusionGroups{{"block.0", "block.1", "block.2"}});
  });
  check_same_function(*plain, *fused, {2, 4, 9, 9}, Dtype::f64);
}

TEST_CASE("conv2d and linear ReLU epilogues equal relu of the op: im2col, Winograd, depthwise, bias or none, NaN") {
  struct Conv {
    int64_t C, F, K, HW, stride, groups;
  };
  const std::vector<Conv> convs{{3, 8, 3, 10, 1, 1}, {16, 16, 3, 12, 1, 1}, {8, 8, 3, 9, 1, 8}, {4, 6, 5, 11, 2, 2},
                                {32, 32, 3, 8, 1, 1}, {16, 16, 3, 11, 1, 1}};  // 11: Winograd's staged (partial) tiles
  for (auto algorithm : {detail::ConvAlgorithm::automatic, detail::ConvAlgorithm::im2col})
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (const Conv& c : convs)
      for (bool with_bias : {true, false}) {
        INFO(dtype_name(d) << " C " << c.C << " F " << c.F << " K " << c.K << " groups " << c.groups);
        detail::set_conv_algorithm(algorithm);
        const Tensor x = randn({3, c.C, c.HW, c.HW}, d), w = randn({c.F, c.C / c.groups, c.K, c.K}, d);
        const Tensor b = with_bias ? randn({c.F}, d) : Tensor();
        const Conv2dOptions o{.stride = c.stride, .padding = c.K / 2, .groups = c.groups};
        const Tensor got = detail::conv2d_relu_inference(x, w, b, o), want = relu(conv2d(x, w, b, o));
        detail::set_conv_algorithm(detail::ConvAlgorithm::automatic);
        CHECK(rel_diff(got, want) < tolerance(d) / 10);
      }
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (const Shape& s : {Shape{5, 7}, Shape{2, 3, 7}, Shape{0, 7}}) {
      const Tensor x = randn(s, d), w = randn({4, 7}, d), b = randn({4}, d);
      CHECK(allclose(detail::linear_inference(x, w, b), relu(linear(x, w, b)), tolerance(d), 0));
      CHECK(allclose(detail::linear_inference(x, w, Tensor()), relu(linear(x, w)), tolerance(d), 0));
      const Tensor wt = transpose(w, 0, 1);  // packed
      CHECK(allclose(detail::linear_inference(x, w, b, wt), relu(linear(x, w, b)), tolerance(d), 0));
      CHECK(allclose(detail::linear_inference(x, w, b, wt, false), linear(x, w, b), tolerance(d), 0));
      CHECK(allclose(detail::linear_inference(x, w, Tensor(), wt, false), linear(x, w), tolerance(d), 0));
    }
  // Large enough for the packed path to share out its rows (each thread's GEMM, tail columns and
  // epilogue in one pass): 100 = 6 x 16 + 4 outputs.
  for (Dtype d : {Dtype::f32, Dtype::f64}) {
    INFO(dtype_name(d));
    const Tensor x = randn({300, 1024}, d), w = randn({100, 1024}, d) * 0.05, b = randn({100}, d);
    const Tensor wt = transpose(w, 0, 1);
    CHECK(allclose(detail::linear_inference(x, w, b, wt), relu(linear(x, w, b)), tolerance(d), tolerance(d)));
    CHECK(allclose(detail::linear_inference(x, w, Tensor(), wt, false), linear(x, w), tolerance(d), tolerance(d)));
    CHECK_ERROR(detail::linear_inference(x, w, randn({99}, d), wt), "linear: bias shape [99]");
  }
  Tensor x = randn({1, 7});
  x.fill_(std::numeric_limits<double>::quiet_NaN());
  CHECK(std::isnan(detail::linear_inference(x, randn({2, 7}), randn({2})).to_vector<float>()[0]));
  for (const Conv& c : convs) {  // NaN passes the clamp in every kernel's epilogue
    Tensor xn = randn({1, c.C, c.HW, c.HW});
    xn.fill_(std::numeric_limits<double>::quiet_NaN());
    const Tensor y = detail::conv2d_relu_inference(xn, randn({c.F, c.C / c.groups, c.K, c.K}), randn({c.F}),
                                                   {.stride = c.stride, .padding = c.K / 2, .groups = c.groups});
    const std::vector<float> v = y.to_vector<float>();
    CHECK(std::all_of(v.begin(), v.end(), [](float e) { return std::isnan(e); }));
  }
  CHECK_ERROR(detail::conv2d_relu_inference(randn({1, 3, 4, 4}), randn({2, 4, 3, 3}), Tensor(), {}),
              "conv2d: input has 3 channels");
  CHECK_ERROR(detail::linear_inference(randn({2, 7}), randn({4, 7}), randn({5})),
              "linear: bias shape [5] (f32) does not match out_features 4 (f32)");
}

TEST_CASE("conv2d_pool_inference equals max_pool2d of the conv (and ReLU): im2col per image, other kernels, NaN") {
  struct Conv {
    int64_t N, C, F, K, HW, groups;
    Pool2dOptions pool;
  };
  const std::vector<Conv> convs{
      {3, 3, 8, 7, 16, 1, {.kernel = 2}},                             // ThreeLayerConvNet's first layer
      {2, 4, 6, 3, 11, 2, {.kernel = 3, .stride = 2, .padding = 1}},  // grouped, overlapping windows
      {2, 3, 5, 5, 9, 1, {.kernel = 2, .ceil_mode = true}},           // odd size, ceil mode
      {1, 3, 4, 3, 12, 1, {.kernel = 2, .dilation = 2}},              // one image: threaded GEMMs
      {2, 16, 16, 3, 8, 1, {.kernel = 2}},   // f32: oneDNN Winograd, pooled in its layout; f64: the two ops
      {40, 16, 24, 3, 9, 1, {.kernel = 2}},  // the same with chunks of 32 and 8, partial blocks, odd planes
      {2, 8, 8, 3, 8, 8, {.kernel = 2}}};    // depthwise: the two ops
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (const Conv& c : convs)
      for (bool relu_on : {true, false})
        for (bool with_bias : {true, false}) {
          INFO(dtype_name(d) << " C " << c.C << " F " << c.F << " K " << c.K << " relu " << relu_on);
          const Tensor x = randn({c.N, c.C, c.HW, c.HW}, d), w = randn({c.F, c.C / c.groups, c.K, c.K}, d);
          const Tensor b = with_bias ? randn({c.F}, d) : Tensor();
          const Conv2dOptions o{.padding = c.K / 2, .groups = c.groups};
          const Tensor y = conv2d(x, w, b, o);
          const Tensor want = max_pool2d(relu_on ? relu(y) : y, c.pool);
          const Tensor got = detail::conv2d_pool_inference(x, w, b, o, relu_on, c.pool);
          REQUIRE(got.shape() == want.shape());
          CHECK(rel_diff(got, want) == 0);  // the same values: only where they are computed moves
        }
  {  // An infinite bias meets an infinite conv output inside a window (-inf + inf = NaN): the
     // bias then goes on before the pool, as in the two ops.
    const float inf = std::numeric_limits<float>::infinity();
    Tensor xi = randn({1, 3, 8, 8});
    xi.data<float>()[3 * 8 + 3] = inf;  // one infinite pixel: +inf or -inf outputs around it
    const Tensor w = randn({4, 3, 3, 3}), b = from_vector(std::vector<float>{inf, -inf, 0.5f, -0.5f}, {4});
    for (bool relu_on : {true, false}) {
      const Tensor y = conv2d(xi, w, b, {.padding = 1});
      const std::vector<float> want = max_pool2d(relu_on ? relu(y) : y, {.kernel = 2}).to_vector<float>();
      const std::vector<float> got =
          detail::conv2d_pool_inference(xi, w, b, {.padding = 1}, relu_on, {.kernel = 2}).to_vector<float>();
      REQUIRE(got.size() == want.size());
      int64_t differ = 0, nan = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        nan += std::isnan(want[i]);
        differ += std::isnan(got[i]) != std::isnan(want[i]) || (!std::isnan(want[i]) && got[i] != want[i]);
      }
      CHECK(nan > 0);  // the case this guards
      CHECK(differ == 0);
    }
  }
  Tensor xn = randn({2, 3, 8, 8});
  xn.fill_(std::numeric_limits<double>::quiet_NaN());
  const std::vector<float> v = detail::conv2d_pool_inference(xn, randn({4, 3, 3, 3}), randn({4}), {.padding = 1}, true,
                                                             {.kernel = 2}).to_vector<float>();
  CHECK(std::all_of(v.begin(), v.end(), [](float e) { return std::isnan(e); }));
  CHECK_ERROR(detail::conv2d_pool_inference(randn({1, 3, 4, 4}), randn({2, 4, 3, 3}), Tensor(), {}, true, {.kernel = 2}),
              "conv2d: input has 3 channels");
  CHECK_ERROR(detail::conv2d_pool_inference(randn({1, 3, 4, 4}), randn({2, 3, 3, 3}), Tensor(), {}, true, {.kernel = 0}),
              "max_pool2d: kernel must be positive, got (0, 0) for input shape [1,2,2,2]");
}

TEST_CASE("fuse_for_inference: a fused model exports to ONNX as Conv and Relu without BatchNormalization") {
  auto [plain, fused] = pair_of([] { return std::make_shared<models::VGG>(std::vector<int64_t>{4, 4}); }, Dtype::f32,
                                [](nn::Module& m) { nn::fuse_for_inference(m); });
  onnx::Model m = onnx::trace_model(*fused, rand({2, 3, 32, 32}));
  std::vector<std::string> types;
  for (const onnx::Node& n : m.graph.nodes) types.push_back(n.op_type);
  CHECK(types == std::vector<std::string>{"Conv", "Relu", "Conv", "Relu", "MaxPool", "Flatten", "Gemm"});
  CHECK(m.graph.nodes[0].inputs.size() == 3);  // the folded bias
}

TEST_CASE("fuse_for_inference: a fused Linear + ReLU runs on its packed weight, and follows a later write to it") {
  for (Dtype d : {Dtype::f32, Dtype::f64}) {
    CAPTURE(dtype_name(d));
    manual_seed(8);
    nn::Sequential net(nn::Linear(300, 50), nn::ReLU(), nn::Linear(50, 7));
    net.to(d);
    net.eval();
    const Tensor x = randn({9, 300}, d), x3 = randn({2, 3, 300}, d);
    NoGradGuard no_grad;
    const Tensor want = net.forward(x), want3 = net.forward(x3);
    CHECK(nn::fuse_for_inference(net) == nn::FusionGroups{{"0", "1"}});
    const double tol = d == Dtype::f32 ? 1e-5 : 1e-12;
    CHECK(rel_diff(net.forward(x), want) < tol);
    CHECK(rel_diff(net.forward(x3), want3) < tol);
    // A write to the weight after fusion: the output follows it, not the weight packed at fusion.
    auto& fc = net.at<nn::Linear>(0);
    Tensor w = fc.weight();
    w.copy_(mul(w, -0.5));
    const Tensor expect = linear(relu(linear(x, fc.weight(), fc.bias())), net.at<nn::Linear>(2).weight(),
                                 net.at<nn::Linear>(2).bias());
    CHECK(rel_diff(net.forward(x), expect) < tol);
    CHECK(rel_diff(net.forward(x), want) > 0.1);
  }
  // The last Linear is packed too, though not fused: an optimizer step on it (training it again) is
  // followed by the next forward without gradient.
  manual_seed(9);
  nn::Sequential net(nn::Linear(20, 6));
  net.eval();
  nn::fuse_for_inference(net);
  optim::SGD opt(net.parameters(), {.lr = 0.5});
  const Tensor x = randn({4, 20});
  sum(net.forward(x)).backward();
  opt.step();
  NoGradGuard no_grad;
  auto& fc = net.at<nn::Linear>(0);
  CHECK(rel_diff(net.forward(x), linear(x, fc.weight(), fc.bias())) < 1e-5);
}

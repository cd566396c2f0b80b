// nn modules: registration and dotted names, train/eval, layers' init and forward, fused vs ref.
#include <cmath>

#include "helpers.hpp"

using namespace xg;

namespace {
// A model as users write it: conv -> batchnorm -> relu -> pool -> linear, plus a nested Sequential.
struct Net : nn::Module {
  std::shared_ptr<nn::Sequential> features = register_module(
      "features", nn::Sequential(nn::Conv2d({.in_channels = 2, .out_channels = 4, .kernel_size = 3, .padding = 1}),
                                 nn::BatchNorm2d(4), nn::ReLU(), nn::MaxPool2d(2),
                                 nn::AvgPool2d({.kernel_size = 3, .stride = 1, .padding = 1})));
  std::shared_ptr<nn::Flatten> flatten = register_module("flatten", nn::Flatten());
  std::shared_ptr<nn::Dropout> drop = register_module("drop", nn::Dropout(0.5));
  std::shared_ptr<nn::Linear> fc = register_module("fc", std::make_shared<nn::Linear>(4 * 3 * 3, 5));

  Tensor forward(const Tensor& x) override { return fc->forward(drop->forward(flatten->forward(features->forward(x)))); }
};

// Ownership by construction: a named module cannot be registered (it would be copied), a
// temporary or a shared_ptr can.
template <class M>
concept registrable = requires(nn::Module& parent, M&& m) { parent.register_module("m", std::forward<M>(m)); };
static_assert(registrable<nn::Linear>);
static_assert(registrable<std::shared_ptr<nn::Linear>&>);
static_assert(!registrable<nn::Linear&>);
static_assert(!registrable<const nn::Linear&>);
static_assert(!std::is_copy_constructible_v<nn::Linear>);
template <class M>
concept appendable = requires(nn::Sequential& seq, M&& m) { seq.push_back(std::forward<M>(m)); };
static_assert(appendable<nn::ReLU> && !appendable<nn::ReLU&>);

std::vector<std::string> names(const nn::NamedTensors& list) {
  std::vector<std::string> out;
  for (const auto& [n, t] : list) out.push_back(n);
  return out;
}
}  // namespace

TEST_CASE("Module: dotted names, buffers, children, registration ownership") {
  Net net;
  CHECK(names(net.named_parameters()) ==
        std::vector<std::string>{"features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                                 "fc.weight", "fc.bias"});
  CHECK(names(net.named_buffers()) == std::vector<std::string>{"features.1.running_mean", "features.1.running_var",
                                                               "features.1.num_batches_tracked"});
  CHECK(names(net.state_dict()) ==
        std::vector<std::string>{"features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                                 "features.1.running_mean", "features.1.running_var",
                                 "features.1.num_batches_tracked", "fc.weight", "fc.bias"});
  CHECK(net.parameters().size() == 6);
  CHECK(net.parameters(false).empty());
  CHECK(net.children().size() == 4);
  CHECK(net.named_children()[0].first == "features");
  // The registered child is the member: one object, not a copy.
  CHECK(net.children()[3].get() == net.fc.get());
  CHECK(net.named_parameters()[4].second.same(net.fc->weight()));
  CHECK(net.features->at<nn::Conv2d>(0).weight().same(net.parameters()[0]));
  for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
  CHECK(net.name() == "Net");
  CHECK(net.fc->name() == "Linear");

  // A tensor registered under two names is one parameter (an optimizer must not step it twice).
  nn::Module shared;
  Tensor w = ones({2});
  shared.register_parameter("a", w);
  shared.register_parameter("b", w);
  CHECK(shared.parameters().size() == 1);
  CHECK(shared.state_dict().size() == 2);
}

TEST_CASE("Module: printing as libtorch does") {
  Net net;
  CHECK(fmt::format("{}", net) ==
        "Net(\n"
        "  (features): Sequential(\n"
        "    (0): Conv2d(2, 4, kernel_size=[3, 3], stride=[1, 1], padding=[1, 1])\n"
        "    (1): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)\n"
        "    (2): ReLU()\n"
        "    (3): MaxPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0])\n"
        "    (4): AvgPool2d(kernel_size=[3, 3], stride=[1, 1], padding=[1, 1])\n"
        "  )\n"
        "  (flatten): Flatten(start_dim=1, end_dim=-1)\n"
        "  (drop): Dropout(p=0.5)\n"
        "  (fc): Linear(in_features=36, out_features=5, bias=true)\n"
        ")");
  CHECK(nn::to_string(nn::LayerNorm(Shape{3})) == "LayerNorm([3], eps=1e-05, elementwise_affine=true)");
  CHECK(nn::to_string(nn::GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=true)");
  CHECK(nn::to_string(nn::LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)");
}

TEST_CASE("Module: registration errors name the module") {
  nn::Linear fc(2, 3);
  CHECK_ERROR(fc.register_parameter("weight", ones({1})), "Linear: register_parameter: name 'weight' is already registered");
  CHECK_ERROR(fc.register_buffer("a.b", ones({1})), "Linear: register_buffer: name 'a.b' contains a '.'");
  CHECK_ERROR(fc.register_parameter("", ones({1})), "Linear: register_parameter: empty name");
  CHECK_ERROR(fc.register_parameter("idx", zeros({1}, Dtype::i64)), "Linear: register_parameter: 'idx' must be f32 or f64");
  Tensor leaf = ones({2});
  leaf.requires_grad_();
  CHECK_ERROR(fc.register_parameter("y", leaf * 2.0), "Linear: register_parameter: 'y' must be a leaf tensor");
  CHECK_ERROR(fc.register_module("sub", std::shared_ptr<nn::ReLU>()), "Linear: register_module: 'sub' is a null pointer");
  nn::Module plain;
  CHECK_ERROR(plain.forward(ones({1})), "Module: forward(const Tensor&) is not defined");
}

TEST_CASE("Module: train/eval recurse; zero_grad; Dropout only in training") {
  Net net;
  CHECK(net.is_training());
  net.eval();
  CHECK_FALSE(net.is_training());
  CHECK_FALSE(net.features->is_training());
  CHECK_FALSE((*net.features)[1]->is_training());
  CHECK_FALSE(net.drop->is_training());
  net.train();
  CHECK(net.features->at<nn::BatchNorm2d>(1).is_training());

  nn::Dropout drop(0.5);
  Tensor x = ones({1000}, Dtype::f64);
  drop.eval();
  CHECK(drop.forward(x).to_vector<double>() == x.to_vector<double>());
  drop.train();
  auto v = drop.forward(x).to_vector<double>();
  int64_t dropped = std::count(v.begin(), v.end(), 0.0);
  CHECK(dropped > 400);
  CHECK(dropped < 600);
  CHECK(std::all_of(v.begin(), v.end(), [](double e) { return e == 0.0 || e == 2.0; }));
  CHECK_ERROR(nn::Dropout(1.5), "Dropout: probability must be in [0, 1], got 1.5");

  manual_seed(1);
  Tensor in = randn({2, 2, 6, 6});
  sum(net.forward(in)).backward();
  for (const Tensor& p : net.parameters()) CHECK(p.grad().defined());
  net.zero_grad();
  for (const Tensor& p : net.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("Linear and Conv2d: shapes, PyTorch's init bounds, forward") {
  manual_seed(7);
  nn::Linear fc(16, 4);
  CHECK(fc.weight().shape() == Shape{4, 16});
  CHECK(fc.bias().shape() == Shape{4});
  const double bound = 1.0 / std::sqrt(16.0);  // kaiming_uniform(a = sqrt(5)) and the bias rule
  for (const Tensor& t : {fc.weight(), fc.bias()})
    for (float e : t.to_vector<float>()) CHECK(std::abs(e) <= bound);
  auto w = fc.weight().to_vector<float>();
  CHECK(*std::max_element(w.begin(), w.end()) > 0.8 * bound);  // fills the range, not a narrow one
  Tensor x = randn({3, 16});
  CHECK(allclose(fc.forward(x), linear(x, fc.weight(), fc.bias())));
  CHECK_FALSE(nn::Linear(3, 2, false).bias().defined());
  CHECK(nn::Linear(3, 2, false).parameters().size() == 1);
  CHECK_ERROR(fc.forward(randn({2, 3})), "Linear: input shape [2,3] does not match in_features 16");
  CHECK_ERROR(nn::Linear(0, 3), "Linear: in_features and out_features must be positive");

  nn::Conv2d conv({.in_channels = 3, .out_channels = 8, .kernel_size = {3, 5}, .stride = 2, .padding = 1});
  CHECK(conv.weight().shape() == Shape{8, 3, 3, 5});
  const double cbound = 1.0 / std::sqrt(3.0 * 3 * 5);
  for (float e : conv.weight().to_vector<float>()) CHECK(std::abs(e) <= cbound);
  for (float e : conv.bias().to_vector<float>()) CHECK(std::abs(e) <= cbound);
  Tensor img = randn({2, 3, 9, 9});
  CHECK(conv.forward(img).shape() == Shape{2, 8, 5, 4});
  CHECK(allclose(conv.forward(img), conv2d(img, conv.weight(), conv.bias(), {.stride = 2, .padding = 1})));
  CHECK_ERROR(conv.forward(randn({3, 9, 9})), "Conv2d: input must be 4-D (N,C,H,W), got shape [3,9,9]");
  CHECK_ERROR(conv.forward(randn({1, 4, 9, 9})), "Conv2d: input shape [1,4,9,9] has 4 channels, but in_channels is 3");
  CHECK_ERROR(conv.forward(randn({1, 3, 9, 9}, Dtype::f64)), "Conv2d: input dtype f64 does not match weight dtype f32");
  CHECK_ERROR(nn::Conv2d({.in_channels = 3, .out_channels = 8}), "Conv2d: kernel_size must be positive, got (0, 0)");
}

TEST_CASE("BatchNorm: running statistics in training, used in eval") {
  nn::BatchNorm1d bn(2);
  CHECK(bn.weight().to_vector<float>() == std::vector<float>{1, 1});
  CHECK(bn.bias().to_vector<float>() == std::vector<float>{0, 0});
  bn.to(Dtype::f64);
  CHECK(bn.running_var().dtype() == Dtype::f64);  // members follow Module::to
  Tensor x = test::f64({1, 10, 2, 20, 3, 30, 6, 40}, {4, 2});
  bn.forward(x);
  // column 0: mean 3, unbiased var 14/3; column 1: mean 25, unbiased var 500/3. momentum 0.1.
  auto rm = bn.running_mean().to_vector<double>(), rv = bn.running_var().to_vector<double>();
  CHECK(rm[0] == doctest::Approx(0.3));
  CHECK(rm[1] == doctest::Approx(2.5));
  CHECK(rv[0] == doctest::Approx(0.9 + 0.1 * 14.0 / 3));
  CHECK(rv[1] == doctest::Approx(0.9 + 0.1 * 500.0 / 3));
  CHECK(bn.num_batches_tracked().item<int64_t>() == 1);

  bn.eval();
  Tensor y = bn.forward(test::f64({1, 1}, {1, 2}));  // one sample works in eval
  CHECK(y.to_vector<double>()[0] == doctest::Approx((1 - 0.3) / std::sqrt(rv[0] + 1e-5)));
  CHECK(y.to_vector<double>()[1] == doctest::Approx((1 - 2.5) / std::sqrt(rv[1] + 1e-5)));
  CHECK(bn.num_batches_tracked().item<int64_t>() == 1);

  // momentum = nullopt: the cumulative average over batches.
  nn::BatchNorm1d avg({.num_features = 1, .momentum = std::nullopt});
  avg.to(Dtype::f64);
  avg.forward(test::f64({0, 2}, {2, 1}));
  avg.forward(test::f64({4, 6}, {2, 1}));
  CHECK(avg.running_mean().item<double>() == doctest::Approx(3.0));

  // [N, C, L] input and the 2-d layer on images.
  nn::BatchNorm1d seq(3);
  manual_seed(2);
  CHECK(seq.forward(randn({4, 3, 5})).shape() == Shape{4, 3, 5});
  nn::BatchNorm2d bn2(3);
  Tensor img = randn({2, 3, 4, 4});
  CHECK(allclose(bn2.forward(img), ref::batch_norm(img, ones({3}), zeros({3}), Tensor(), Tensor(), true), 1e-4, 1e-5));
  nn::BatchNorm2d plain({.num_features = 3, .affine = false, .track_running_stats = false});
  CHECK(plain.state_dict().empty());
  plain.eval();  // no running stats: batch statistics even in eval
  CHECK(allclose(plain.forward(img), bn2.forward(img), 1e-4, 1e-5));

  CHECK_ERROR(bn2.forward(randn({2, 3})), "BatchNorm2d: input must be 4-D (N,C,H,W), got shape [2,3]");
  CHECK_ERROR(bn2.forward(randn({2, 4, 2, 2})), "BatchNorm2d: input shape [2,4,2,2] has 4 channels, but num_features is 3");
  CHECK_ERROR(seq.forward(randn({1, 3})), "BatchNorm1d: expected more than 1 value per channel when training, got input shape [1,3]");
  CHECK_ERROR(nn::BatchNorm2d(0), "BatchNorm2d: num_features must be positive, got 0");
}

TEST_CASE("LayerNorm, GroupNorm, pooling, Flatten, activations") {
  manual_seed(3);
  Tensor x = randn({2, 4, 3, 3});
  nn::LayerNorm ln(Shape{3, 3});
  CHECK(ln.weight().shape() == Shape{3, 3});
  CHECK(allclose(ln.forward(x), layer_norm(x, {3, 3})));
  CHECK_ERROR(ln.forward(randn({2, 4})), "LayerNorm: input shape [2,4] does not end with normalized_shape [3,3]");
  nn::GroupNorm gn(2, 4);
  CHECK(allclose(gn.forward(x), group_norm(x, 2)));
  CHECK_ERROR(nn::GroupNorm(3, 4), "GroupNorm: num_channels 4 must be a positive multiple of num_groups 3");
  CHECK_ERROR(gn.forward(randn({2, 3, 2})), "GroupNorm: input shape [2,3,2] must be [N,C,*] with C = num_channels 4");

  CHECK(allclose(nn::MaxPool2d(2).forward(x), max_pool2d(x, {.kernel = 2})));
  CHECK(nn::AvgPool2d({.kernel_size = 2, .stride = 1}).forward(x).shape() == Shape{2, 4, 2, 2});
  CHECK_ERROR(nn::MaxPool2d(2).forward(randn({4, 3, 3})), "MaxPool2d: input must be 4-D (N,C,H,W), got shape [4,3,3]");
  CHECK_ERROR(nn::AvgPool2d({.kernel_size = 2, .padding = 2}), "AvgPool2d: padding (2, 2) must be non-negative and at most half");
  CHECK(nn::Flatten().forward(x).shape() == Shape{2, 36});
  CHECK(nn::Flatten(0, 1).forward(x).shape() == Shape{8, 3, 3});
  CHECK_ERROR(nn::Flatten(2, 7).forward(x), "Flatten: dims 2..7 are not a valid range for input shape [2,4,3,3]");

  CHECK(allclose(nn::ReLU().forward(x), relu(x)));
  CHECK(allclose(nn::LeakyReLU(0.2).forward(x), leaky_relu(x, 0.2)));
  CHECK(allclose(nn::Sigmoid().forward(x), sigmoid(x)));
  CHECK(allclose(nn::Tanh().forward(x), tanh(x)));
}

TEST_CASE("Sequential: push_back, index access, forward") {
  nn::Sequential seq;
  auto fc = seq.push_back(nn::Linear(3, 4));
  seq.push_back(nn::Tanh());
  seq.push_back(std::make_shared<nn::Linear>(4, 2));
  CHECK(seq.size() == 3);
  CHECK(seq[0].get() == fc.get());
  CHECK(&seq.at<nn::Linear>(2) == seq.ptr(2).get());
  CHECK(names(seq.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  manual_seed(4);
  Tensor x = randn({5, 3});
  Tensor expect = seq.at<nn::Linear>(2).forward(tanh(fc->forward(x)));
  CHECK(allclose(seq.forward(x), expect));
  CHECK_ERROR(seq[3], "Sequential: index 3 is out of range for 3 modules");
  nn::Sequential outer(nn::Sequential(nn::Linear(3, 2), nn::ReLU()), std::make_shared<nn::Linear>(2, 1));
  CHECK(names(outer.named_parameters()) ==
        std::vector<std::string>{"0.0.weight", "0.0.bias", "1.weight", "1.bias"});
  CHECK(outer.forward(x).shape() == Shape{5, 1});
  CHECK_ERROR(seq.at<nn::Conv2d>(1), "Sequential: module 1 is a Tanh, not the requested type");
}

TEST_CASE("Module: fused ops and the ref route give the same loss, gradients and running stats") {
  auto run = [](bool reference, nn::NamedTensors& grads, nn::NamedTensors& stats) {
    manual_seed(11);
    Net net;
    net.to(Dtype::f64);
    net.drop->eval();  // dropout draws would differ only by generator state; keep the runs comparable
    Tensor x = randn({3, 2, 6, 6}, Dtype::f64);
    Tensor y = from_vector<int64_t>({0, 3, 4});
    nn::ReferenceOpsGuard route(reference);
    Tensor loss = cross_entropy(net.forward(x), y);
    loss.backward();
    for (const auto& [n, p] : net.named_parameters()) grads.emplace_back(n, p.grad());
    stats = net.named_buffers();
    net.eval();  // eval: running statistics through both routes
    return std::pair{loss.item<double>(), sum(net.forward(x)).item<double>()};
  };
  nn::NamedTensors g_fused, g_ref, s_fused, s_ref;
  auto fused = run(false, g_fused, s_fused);
  CHECK_FALSE(nn::use_reference_ops());  // the guard restored the switch
  auto reference = run(true, g_ref, s_ref);
  CHECK(fused.first == doctest::Approx(reference.first).epsilon(1e-12));
  CHECK(fused.second == doctest::Approx(reference.second).epsilon(1e-12));
  REQUIRE(g_fused.size() == 6);
  for (size_t i = 0; i < g_fused.size(); ++i) {
    INFO(g_fused[i].first);
    CHECK(g_fused[i].first == g_ref[i].first);
    CHECK(allclose(g_fused[i].second, g_ref[i].second, 1e-9, 1e-12));
  }
  for (size_t i = 0; i < s_fused.size(); ++i) {
    INFO(s_fused[i].first);
    CHECK(allclose(s_fused[i].second, s_ref[i].second, 1e-12, 1e-14));
  }
}

TEST_CASE("nn: initialisers and the remaining bad-input paths") {
  manual_seed(8);
  Tensor w = Tensor::empty({64, 100});
  nn::init::kaiming_uniform_(w);  // a = 0: bound = sqrt(6 / fan_in)
  auto v = w.to_vector<float>();
  const double bound = std::sqrt(6.0 / 100);
  CHECK(*std::max_element(v.begin(), v.end()) <= bound);
  CHECK(*std::max_element(v.begin(), v.end()) > 0.95 * bound);
  CHECK(nn::init::calculate_fan_in_and_fan_out(zeros({8, 3, 5, 5})) == std::pair<int64_t, int64_t>{75, 200});
  CHECK_ERROR(nn::init::kaiming_uniform_(zeros({4})),
              "calculate_fan_in_and_fan_out: needs a tensor with at least 2 dims, got shape [4]");
  CHECK_ERROR(nn::init::uniform_(zeros({2}, Dtype::i64), 0, 1), "uniform_: needs a floating tensor, got i64");
  Tensor n = Tensor::empty({200, 100}, Dtype::f64);
  nn::init::normal_(n, 3.0, 0.01);  // CS231n's weight_scale * randn, shifted
  CHECK(mean(n).item<double>() == doctest::Approx(3.0).epsilon(1e-4));
  CHECK(std::sqrt(var(flatten(n), {0}).item<double>()) == doctest::Approx(0.01).epsilon(0.02));
  CHECK_ERROR(nn::init::normal_(zeros({2}), 0, -1), "normal_: needs a finite mean and std >= 0, got mean 0 and std -1");
  CHECK_ERROR(nn::init::normal_(zeros({2}, Dtype::i64)), "normal_: needs a floating tensor, got i64");

  nn::Linear fc(3, 2);
  CHECK_ERROR(fc.to(Dtype::i64), "Linear: to: dtype must be f32 or f64, got i64");
  CHECK_ERROR(fc.forward(ones({2, 3}, Dtype::f64)), "Linear: input dtype f64 does not match weight dtype f32");
  CHECK_ERROR(fc.forward(Tensor()), "Linear: undefined input");
  CHECK_ERROR(nn::MaxPool2d(0), "MaxPool2d: kernel_size must be positive, got (0, 0)");
  CHECK_ERROR(nn::MaxPool2d({.kernel_size = 2, .stride = Pair2{0, 1}}), "MaxPool2d: stride must be positive, got (0, 1)");
  CHECK_ERROR(nn::Conv2d({.in_channels = 1, .out_channels = 1, .kernel_size = 3, .stride = 0}),
              "Conv2d: stride must be positive, got (0, 0)");
  CHECK_ERROR(nn::LayerNorm(Shape{}), "LayerNorm: normalized_shape must not be empty");
  CHECK_ERROR(nn::BatchNorm1d({.num_features = 2, .momentum = 1.5}), "BatchNorm1d: momentum must be in [0, 1], got 1.5");
  CHECK_ERROR(nn::BatchNorm1d(2).forward(ones({2, 2, 2, 2})), "BatchNorm1d: input must be [N,C] or [N,C,L], got shape [2,2,2,2]");
  nn::Sequential empty;
  CHECK(empty.is_empty());
  CHECK(allclose(empty.forward(ones({2})), ones({2})));  // an empty Sequential is the identity, as PyTorch's
}

// Fused conv/pool/batch-norm kernels against their primitive references (values and gradients),
// gradcheck on both, CS231n's worked values, the norms built from primitives, and bad input.
#include <limits>

#include "helpers.hpp"
#include "ops/fused/conv_kernels.hpp"
#include "ops/fused/onednn_conv.hpp"
#include "ops/fused/pooled.hpp"
#include "ops/fused/winograd.hpp"

using namespace xg;
using test::f64;
using test::input;

namespace {
struct ConvCase {
  Shape x;
  int64_t F, KH, KW;
  Pair2 stride, padding;
  bool bias;
};

// The fused conv2d against the reference, values and gradients, for each case in f32 and f64; input,
// weight and bias of case i are drawn with seeds seed + i, seed + 10 + i and seed + 20 + i.
void check_conv_cases(const std::vector<ConvCase>& cases, uint64_t seed) {
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (size_t i = 0; i < cases.size(); ++i) {
      const ConvCase& c = cases[i];
      CAPTURE(i);
      CAPTURE(dtype_name(d));
      Conv2dOptions o{c.stride, c.padding};
      Tensor x = input(c.x, d, seed + i), w = input({c.F, c.x[1], c.KH, c.KW}, d, seed + 10 + i);
      Tensor b = c.bias ? input({c.F}, d, seed + 20 + i) : Tensor();
      CHECK_MATCHES_REFERENCE([o](auto& v) { return conv2d(v[0], v[1], v[2], o); },
                              [o](auto& v) { return ref::conv2d(v[0], v[1], v[2], o); }, {x, w, b});
    }
}
}  // namespace

TEST_CASE("conv2d: fused equals reference, values and gradients") {
  const std::vector<ConvCase> cases = {
      {{2, 3, 8, 8}, 4, 3, 3, 1, 1, true},           // the common 3x3 same conv
      {{1, 2, 7, 5}, 3, 3, 2, {2, 1}, {1, 0}, true}, // non-square kernel, input, stride, padding
      {{3, 4, 9, 9}, 2, 5, 5, 2, 2, true},           // kernel > stride: overlapping windows
      {{2, 1, 6, 6}, 2, 1, 1, 1, 0, true},           // 1x1
      {{1, 2, 5, 5}, 3, 2, 2, 3, 0, true},           // stride > kernel: skipped pixels
      {{2, 3, 4, 4}, 2, 4, 4, 1, 0, true},           // kernel covers the whole input
      {{1, 3, 10, 7}, 5, 3, 3, 2, 1, false},         // odd sizes, no bias
      {{2, 2, 3, 3}, 2, 3, 3, 1, 2, true},           // padding wider than half the kernel
      {{3, 3, 6, 9}, 4, 2, 3, {1, 2}, {1, 1}, true}, // even kernel height, stride per axis
      {{0, 3, 5, 5}, 2, 3, 3, 1, 1, true},           // an empty batch
  };
  check_conv_cases(cases, 10);
}

// Forces the fused conv2d onto one algorithm for a test's duration.
struct ConvAlgorithmGuard {
  explicit ConvAlgorithmGuard(detail::ConvAlgorithm a) { detail::set_conv_algorithm(a); }
  ~ConvAlgorithmGuard() { detail::set_conv_algorithm(detail::ConvAlgorithm::automatic); }
};

TEST_CASE("conv2d: Winograd F(4x4,3x3) equals the reference, values and gradients") {
  ConvAlgorithmGuard winograd(detail::ConvAlgorithm::winograd);
  const std::vector<ConvCase> cases = {
      {{2, 3, 8, 8}, 4, 3, 3, 1, 1, true},     // whole tiles
      {{1, 5, 7, 9}, 3, 3, 3, 1, 0, true},     // no padding, partial tiles (5x7 output)
      {{2, 4, 6, 5}, 2, 3, 3, 1, 2, false},    // padding 2
      {{1, 2, 3, 3}, 3, 3, 3, 1, 1, true},     // one partial tile
      {{2, 3, 10, 6}, 5, 3, 3, 1, {0, 1}, true},  // different padding per axis
      {{3, 24, 9, 9}, 20, 3, 3, 1, 1, true},   // more channels: the automatic choice's range
      {{40, 16, 12, 12}, 16, 3, 3, 1, 1, true},  // several chunks of images
      {{2, 3, 4, 13}, 2, 3, 3, 1, 1, false},   // a wide row of tiles, partial at the end
      {{20, 64, 16, 16}, 32, 3, 3, 1, 1, true},  // chunks of images run per thread, several per thread
      {{20, 64, 15, 13}, 32, 3, 3, 1, 1, false}, // the same with partial tiles
      {{0, 3, 5, 5}, 2, 3, 3, 1, 1, true},     // an empty batch
  };
  check_conv_cases(cases, 40);
  Tensor x = input({2, 2, 6, 5}, Dtype::f64, 1), w = input({3, 2, 3, 3}, Dtype::f64, 2), b = input({3}, Dtype::f64, 3);
  CHECK_GRADCHECK([](auto& v) { return conv2d(v[0], v[1], v[2], {.padding = 1}); }, {x, w, b});
}

TEST_CASE("conv2d: oneDNN's f32 Winograd kernel equals the reference, values and gradients") {
  if (!detail::onednn_winograd_available()) {
    MESSAGE("oneDNN's Winograd kernel does not run on this CPU (no AVX-512): test skipped");
    return;
  }
  auto geometry = [](int64_t N, int64_t C, int64_t F, int64_t H, int64_t W) {
    return detail::conv_geometry(zeros({N, C, H, W}), zeros({F, C, 3, 3}), Tensor(), {.padding = 1}, "conv2d");
  };
  // The automatic choice takes it from 16 channels each way and two output tiles; xgrad's own kernels
  // when forced.
  CHECK(detail::use_onednn_conv(geometry(2, 16, 16, 8, 8)));
  CHECK(detail::use_onednn_conv(geometry(2, 24, 64, 31, 31)));
  CHECK_FALSE(detail::use_onednn_conv(geometry(2, 3, 32, 8, 8)));
  CHECK_FALSE(detail::use_onednn_conv(geometry(2, 256, 256, 3, 3)));  // one output tile: xgrad's
  CHECK(detail::use_onednn_conv(geometry(2, 256, 256, 5, 3)));
  {
    ConvAlgorithmGuard own(detail::ConvAlgorithm::winograd);
    CHECK_FALSE(detail::use_onednn_conv(geometry(2, 16, 16, 8, 8)));
  }
  ConvAlgorithmGuard onednn(detail::ConvAlgorithm::onednn_winograd);
  CHECK(detail::use_onednn_conv(geometry(2, 3, 4, 8, 8)));
  CHECK(detail::use_onednn_conv(geometry(2, 16, 16, 3, 3)));
  // f32 through oneDNN (f64 through xgrad's own kernels, as every f64 convolution).
  const std::vector<ConvCase> cases = {
      {{2, 3, 8, 8}, 4, 3, 3, 1, 1, true},       // whole tiles, channels in one partial block of 16
      {{3, 24, 9, 9}, 20, 3, 3, 1, 1, true},     // one whole and one partial block each way
      {{2, 16, 31, 31}, 32, 3, 3, 1, 1, false},  // airbench's odd plane: partial tiles, a ragged row of 8
      {{70, 16, 7, 5}, 16, 3, 3, 1, 1, true},    // two workers' 35 images: chunks of 32 and 3
      {{1, 5, 7, 9}, 3, 3, 3, 1, 0, true},       // no padding (oneDNN's or xgrad's, whichever takes it)
      {{0, 16, 5, 5}, 16, 3, 3, 1, 1, true},     // an empty batch
  };
  check_conv_cases(cases, 60);
  // Not xgrad's Winograd under another name: the two round differently.
  Tensor x = input({4, 32, 8, 8}, Dtype::f32, 70), w = input({32, 32, 3, 3}, Dtype::f32, 71);
  const Tensor ours_onednn = conv2d(x, w, Tensor(), {.padding = 1});
  Tensor own;
  {
    ConvAlgorithmGuard winograd(detail::ConvAlgorithm::winograd);
    own = conv2d(x, w, Tensor(), {.padding = 1});
  }
  CHECK(max(abs(ours_onednn - own)).item<float>() > 0);
  // The inference epilogue (bias, then ReLU) in the copy out of oneDNN's layout equals the ops', to the bit.
  Tensor b = input({32}, Dtype::f32, 72);
  const detail::ConvGeometry g{4, 32, 8, 8, 32, 3, 3, 8, 8, 1, 1, 1, 1};
  Tensor fused = Tensor::empty({4, 32, 8, 8});
  detail::conv_forward<float>(x.data<float>(), w.data<float>(), b.data<float>(), g, fused.data<float>(), true);
  CHECK(max(abs(fused - relu(conv2d(x, w, b, {.padding = 1})))).item<float>() == 0);
}

namespace {
// Equal as floats, NaN equal to NaN.
bool same_values(const Tensor& a, const Tensor& b) {
  const std::vector<float> u = a.to_vector<float>(), v = b.to_vector<float>();
  if (u.size() != v.size()) return false;
  for (size_t i = 0; i < u.size(); ++i)
    if (!(u[i] == v[i] || (std::isnan(u[i]) && std::isnan(v[i])))) return false;
  return true;
}
}  // namespace

TEST_CASE("conv2d_max_pool2d equals max_pool2d(conv2d(...)) to the bit, values and gradients: ties, NaN, odd planes") {
  const bool fused = detail::onednn_winograd_available();
  if (!fused) MESSAGE("oneDNN's Winograd kernel does not run on this CPU (no AVX-512): only the two ops run");
  struct Case {
    Shape x;
    int64_t F;
    bool bias, nan;
  };
  const std::vector<Case> cases = {
      {{2, 16, 8, 8}, 16, false, false},   // one block of 16 channels each way
      {{70, 24, 9, 9}, 20, true, false},   // two workers' 35 images (chunks of 32 and 3), partial blocks, odd planes
      {{3, 32, 16, 14}, 48, true, false},  // several blocks, a non-square plane
      {{2, 16, 8, 8}, 16, true, true},     // NaN inputs
  };
  for (const Case& c : cases) {
    CAPTURE(c.x);
    CAPTURE(c.F);
    // Small integers: the convolution is exact, so windows hold many ties.
    std::vector<float> xv = input(c.x, Dtype::f32, 80).to_vector<float>(),
                       wv = input({c.F, c.x[1], 3, 3}, Dtype::f32, 81).to_vector<float>();
    for (float& e : xv) e = std::round(e * 2);
    for (float& e : wv) e = std::round(e);
    if (c.nan) xv[5] = xv[100] = std::numeric_limits<float>::quiet_NaN();
    const Tensor x0 = from_vector(xv, c.x), w0 = from_vector(wv, {c.F, c.x[1], 3, 3});
    const Tensor b0 = c.bias ? input({c.F}, Dtype::f32, 82) : Tensor();
    auto leaves = [&] {
      std::vector<Tensor> v{x0.detach(), w0.detach(), c.bias ? b0.detach() : Tensor()};
      for (Tensor& t : v)
        if (t.defined()) t.requires_grad_();
      return v;
    };
    std::vector<Tensor> a = leaves(), b = leaves();
    const Tensor ya = detail::conv2d_max_pool2d(a[0], a[1], a[2], {.padding = 1}, {.kernel = 2});
    const Tensor yb = max_pool2d(conv2d(b[0], b[1], b[2], {.padding = 1}), {.kernel = 2});
    CHECK(std::string(ya.grad_fn()->name) == (fused ? "conv2d_max_pool2d" : "max_pool2d"));
    REQUIRE(ya.shape() == yb.shape());
    CHECK(same_values(ya, yb));
    const Tensor up = input(ya.shape(), Dtype::f32, 83);
    ya.backward(up);
    yb.backward(up);
    CHECK(same_values(a[0].grad(), b[0].grad()));
    CHECK(same_values(a[1].grad(), b[1].grad()));
    if (c.bias && !c.nan) CHECK(allclose(a[2].grad(), b[2].grad(), 1e-5, 1e-5));  // summed in another order
  }
  // create_graph: the gradients through the reference composition, which differentiate again.
  Tensor x = input({2, 16, 8, 8}, Dtype::f32, 84), w = input({16, 16, 3, 3}, Dtype::f32, 85),
         b = input({16}, Dtype::f32, 86);
  for (Tensor* t : {&x, &w, &b}) t->requires_grad_();
  const Tensor u = input({2, 16, 4, 4}, Dtype::f32, 87);
  for (bool with_bias : {true, false}) {
    CAPTURE(with_bias);
    const Tensor bias = with_bias ? b : Tensor();
    auto second = [&](bool fused_op) {
      const Tensor y = fused_op ? detail::conv2d_max_pool2d(x, w, bias, {.padding = 1}, {.kernel = 2})
                                : ref::max_pool2d(ref::conv2d(x, w, bias, {.padding = 1}), {.kernel = 2});
      std::vector<Tensor> g =
          grad({y}, with_bias ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x, w}, {u}, {.create_graph = true});
      const std::vector<Tensor> gg = grad({sum(g[0] * g[0]) + sum(g[1] * g[1])}, {x, w});
      g.insert(g.end(), gg.begin(), gg.end());
      return g;
    };
    const std::vector<Tensor> f = second(true), r = second(false);
    for (size_t k = 0; k < f.size(); ++k) {
      CAPTURE(k);
      CHECK(allclose(f[k], r[k], 1e-4, 1e-4));
    }
  }
  // Bad input is refused by the ops' own checks.
  CHECK_ERROR(
      detail::conv2d_max_pool2d(randn({1, 16, 8, 8}), randn({16, 8, 3, 3}), Tensor(), {.padding = 1}, {.kernel = 2}),
      "conv2d: input has 16 channels");
  CHECK_ERROR(
      detail::conv2d_max_pool2d(randn({1, 16, 8, 8}), randn({16, 16, 3, 3}), Tensor(), {.padding = 1}, {.kernel = 0}),
      "max_pool2d: kernel must be positive");
}

TEST_CASE(
    "nn::Sequential's Conv2d + MaxPool2d records the fused conv + pool while training, as the modules one by one") {
  manual_seed(3);
  nn::Sequential net{
      nn::Conv2d(nn::Conv2dOptions{.in_channels = 16, .out_channels = 32, .kernel_size = 3, .padding = 1}),
      nn::MaxPool2d(2)};
  const Tensor x = randn({4, 16, 12, 12});
  const Tensor y = net.forward(x);
  if (detail::onednn_winograd_available()) CHECK(std::string(y.grad_fn()->name) == "conv2d_max_pool2d");
  auto& conv = net.at<nn::Conv2d>(0);
  sum(y * y).backward();
  const Tensor gw = conv.weight().grad().detach().clone(), gb = conv.bias().grad().detach().clone();
  net.zero_grad();
  const Tensor z = net[1]->forward(net[0]->forward(x));  // the modules one by one
  CHECK(std::string(z.grad_fn()->name) == "max_pool2d");
  CHECK(same_values(y, z));
  sum(z * z).backward();
  CHECK(same_values(conv.weight().grad(), gw));
  CHECK(allclose(conv.bias().grad(), gb, 1e-5, 1e-5));  // summed in another order
}

TEST_CASE("conv2d: the automatic choice uses Winograd only for 3x3 stride-1 convolutions with 16+ channels") {
  auto geometry = [](int64_t C, int64_t F, int64_t K, int64_t S) {
    return detail::conv_geometry(zeros({1, C, 8, 8}), zeros({F, C, K, K}), Tensor(), {.stride = S, .padding = 1},
                                 "conv2d");
  };
  CHECK(detail::use_winograd(geometry(16, 16, 3, 1)));
  CHECK(detail::use_winograd(geometry(64, 128, 3, 1)));
  CHECK_FALSE(detail::use_winograd(geometry(3, 32, 3, 1)));
  CHECK_FALSE(detail::use_winograd(geometry(32, 32, 3, 2)));
  CHECK_FALSE(detail::use_winograd(geometry(32, 32, 5, 1)));
  ConvAlgorithmGuard im2col(detail::ConvAlgorithm::im2col);
  CHECK_FALSE(detail::use_winograd(geometry(64, 64, 3, 1)));
}

TEST_CASE("conv2d: gradcheck, fused and reference") {
  Tensor x = input({2, 2, 5, 4}, Dtype::f64, 1), w = input({3, 2, 3, 2}, Dtype::f64, 2), b = input({3}, Dtype::f64, 3);
  Conv2dOptions o{{2, 1}, {1, 1}};
  CHECK_GRADCHECK([o](auto& v) { return conv2d(v[0], v[1], v[2], o); }, {x, w, b});
  CHECK_GRADCHECK([o](auto& v) { return ref::conv2d(v[0], v[1], v[2], o); }, {x, w, b});
}

TEST_CASE("conv2d: CS231n's worked example") {
  Tensor x = f64({0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 0, 1, 1, 1, 2,    // c0
                  0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 2, 2, 1, 1,    // c1
                  0, 0, 0, 0, 0, 0, 2, 2, 0, 1, 0, 0, 0, 2, 1},   // c2
                 {1, 3, 3, 5});
  Tensor w = f64({1, 1, 1, -1, -1, 0, -1, 1, 0,      // c0
                  -1, -1, 1, -1, 1, 0, -1, 1, 0,     // c1
                  1, 0, -1, 0, 0, 0, 1, -1, -1},     // c2
                 {1, 3, 3, 3});
  Tensor b = f64({1}, {1});
  CHECK(conv2d(x, w, b, {.stride = 2}).to_vector<double>() == std::vector<double>{3, -5});
  CHECK(ref::conv2d(x, w, b, {.stride = 2}).to_vector<double>() == std::vector<double>{3, -5});
}

TEST_CASE("pooling: fused equals reference, values and gradients") {
  struct PoolCase {
    Shape x;
    Pool2dOptions o;
  };
  const std::vector<PoolCase> cases = {
      {{2, 3, 8, 8}, {.kernel = 2}},                                    // the common 2x2/2
      {{2, 3, 7, 9}, {.kernel = 2}},    // 2x2/2 on odd sizes: the last row and column get no gradient
      {{1, 2, 31, 31}, {.kernel = 2}},  // airbench's first pool, rows longer than a vector
      {{1, 2, 7, 7}, {.kernel = 3, .stride = 2}},                       // overlapping windows
      {{2, 2, 9, 9}, {.kernel = 2, .stride = 3}},                       // stride > kernel
      {{1, 3, 6, 6}, {.kernel = 3, .stride = 1, .padding = 1}},         // padding
      {{2, 1, 7, 5}, {.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 0}}},  // non-square
      {{1, 2, 5, 5}, {.kernel = 5}},                                    // global
      {{3, 2, 4, 6}, {.kernel = {2, 4}, .stride = {2, 2}, .padding = {1, 2}}},
      {{1, 1, 11, 3}, {.kernel = {4, 1}, .stride = {3, 1}}},
      {{2, 3, 5, 8}, {.kernel = 3, .stride = 3, .padding = 1}},       // padding, windows side by side
      {{1, 2, 6, 4}, {.kernel = {1, 3}, .stride = {1, 2}, .padding = {0, 1}}},  // a 1-row kernel
  };
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (size_t i = 0; i < cases.size(); ++i) {
      CAPTURE(i);
      CAPTURE(dtype_name(d));
      Pool2dOptions o = cases[i].o;
      Tensor x = input(cases[i].x, d, 40 + i);
      CHECK_MATCHES_REFERENCE([o](auto& v) { return max_pool2d(v[0], o); },
                              [o](auto& v) { return ref::max_pool2d(v[0], o); }, {x});
      CHECK_MATCHES_REFERENCE([o](auto& v) { return avg_pool2d(v[0], o); },
                              [o](auto& v) { return ref::avg_pool2d(v[0], o); }, {x});
    }
}

TEST_CASE("pooling: gradcheck, values, ties") {
  Tensor x = input({2, 2, 5, 5}, Dtype::f64, 5);
  Pool2dOptions o{.kernel = 3, .stride = 2, .padding = 1};
  CHECK_GRADCHECK([o](auto& v) { return max_pool2d(v[0], o); }, {x});
  CHECK_GRADCHECK([o](auto& v) { return ref::max_pool2d(v[0], o); }, {x});
  CHECK_GRADCHECK([o](auto& v) { return avg_pool2d(v[0], o); }, {x});
  CHECK_GRADCHECK([o](auto& v) { return ref::avg_pool2d(v[0], o); }, {x});
  CHECK(avg_pool2d(f64({1, 1, 2, 3}, {1, 1, 2, 2})).item<double>() == 1.75);
  CHECK(ref::avg_pool2d(f64({1, 1, 2, 3}, {1, 1, 2, 2})).item<double>() == 1.75);
  CHECK(max_pool2d(f64({1, 5, 2, 3}, {1, 1, 2, 2})).item<double>() == 5);
  // A tie sends the whole gradient to the first maximum in row-major window order.
  Tensor t = f64({4, 4, 4, 1}, {1, 1, 2, 2});
  t.requires_grad_();
  max_pool2d(t).backward(ones({1, 1, 1, 1}, Dtype::f64));
  CHECK(t.grad().to_vector<double>() == std::vector<double>{1, 0, 0, 0});
  // Ties and NaN in the 2x2/2 kernel, for both dtypes and both backward paths (rows of 2 windows and
  // of 16, with an odd last column): the first maximum, or the first NaN, takes the gradient.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> pattern{2, 2, 1, 7, 0, nan, 7, 7, 2, 2, 5, nan, 1, 2, 3, 3};  // 4x4
  const std::vector<double> expected{0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0};
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (int64_t W : {4, 33}) {
      CAPTURE(W);
      std::vector<double> v(4 * W, -1.0);  // beyond the pattern: windows of -1s, the first tap wins
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t w = 0; w < 4; ++w) v[h * W + w] = pattern[h * 4 + w];
      Tensor u = from_vector(v, {1, 1, 4, W}).to(d);
      u.requires_grad_();
      Tensor y = max_pool2d(u);
      y.backward(ones_like(y));
      const std::vector<double> got = u.grad().to(Dtype::f64).to_vector<double>();
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t w = 0; w < W; ++w) {
          CAPTURE(h);
          CAPTURE(w);
          const double want = w < 4 ? expected[h * 4 + w] : w == W - 1 ? 0.0 : (h % 2 == 0 && w % 2 == 0 ? 1.0 : 0.0);
          CHECK(got[h * W + w] == want);
        }
    }
}

TEST_CASE("max_pool2d 2x2: f32's 16-window vectors equal f64's scalar loop at every row length, ties and NaN") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int64_t W : {2, 3, 5, 14, 15, 16, 17, 30, 31, 32, 33, 34, 35, 63, 64, 66, 71})
    for (int64_t H : {2, 5}) {
      CAPTURE(W);
      CAPTURE(H);
      std::vector<double> v = input({2, 3, H, W}, Dtype::f64, 30 + W).to_vector<double>();
      for (double& e : v) e = std::round(e * 1.5);  // many ties, exact in f32
      for (size_t i = 7; i < v.size(); i += 23) v[i] = nan;
      const Tensor x64 = from_vector(v, {2, 3, H, W});
      Tensor a = x64.detach(), b = x64.to(Dtype::f32).detach();
      a.requires_grad_();
      b.requires_grad_();
      const Tensor ya = max_pool2d(a, {.kernel = 2}), yb = max_pool2d(b, {.kernel = 2});
      Tensor plain;
      {
        NoGradGuard no_grad;
        plain = max_pool2d(b, {.kernel = 2});  // the kernel without argmax
      }
      const Tensor up = input(ya.shape(), Dtype::f64, 99);
      ya.backward(up);
      yb.backward(up.to(Dtype::f32));
      const std::vector<double> va = ya.detach().to_vector<double>(),
                                vb = yb.detach().to(Dtype::f64).to_vector<double>(),
                                vp = plain.to(Dtype::f64).to_vector<double>();
      for (size_t i = 0; i < va.size(); ++i) {
        CAPTURE(i);
        CHECK((va[i] == vb[i] || (std::isnan(va[i]) && std::isnan(vb[i]))));
        CHECK((vp[i] == vb[i] || (std::isnan(vp[i]) && std::isnan(vb[i]))));
      }
      const std::vector<double> ga = a.grad().to_vector<double>(), gb = b.grad().to(Dtype::f64).to_vector<double>();
      for (size_t i = 0; i < ga.size(); ++i) {
        CAPTURE(i);
        CHECK(static_cast<float>(ga[i]) == static_cast<float>(gb[i]));
      }
    }
}

TEST_CASE("max_pool2d keeps one byte of argmax per output for 2x2/2 windows, an int32 offset for others") {
  constexpr std::size_t MiB = std::size_t{1} << 20;
  Tensor x = zeros({1, 4, 1024, 1024});
  x.requires_grad_();
  // Both give 4 x 512 x 512 outputs (4 MiB in f32); the 3x3 windows overlap and keep offsets.
  for (const Pool2dOptions& o : {Pool2dOptions{.kernel = 2}, Pool2dOptions{.kernel = 3, .stride = 2, .padding = 1}}) {
    const bool pairs = o.kernel.h == 2;
    CAPTURE(pairs);
    empty_cache();
    {
      const Tensor y = max_pool2d(x, o);  // dropping y frees its output and, with its node, the argmax
      REQUIRE(y.numel() == 1 << 20);
    }
    CHECK(cache_stats().cached_bytes == 4 * MiB + (pairs ? 1 : 4) * MiB);
  }
  empty_cache();
}

TEST_CASE("max_pool2d without recording (no argmax kept) gives the recorded op's values, ties and NaN included") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (const Pool2dOptions& o : {Pool2dOptions{.kernel = 2}, Pool2dOptions{.kernel = 3, .stride = 2, .padding = 1},
                                   Pool2dOptions{.kernel = 2, .dilation = 2, .ceil_mode = true}}) {
      std::vector<double> v = input({2, 3, 7, 18}, Dtype::f64, 21).to_vector<double>();
      for (double& e : v) e = std::round(e * 2.0);  // many ties
      v[5] = v[40] = v[41] = nan;
      const Tensor x = from_vector(v, {2, 3, 7, 18}).to(d);
      Tensor xr = x.detach();
      xr.requires_grad_();
      const Tensor recorded = max_pool2d(xr, o);
      Tensor plain;
      {
        NoGradGuard no_grad;
        plain = max_pool2d(xr, o);
      }
      CHECK(recorded.requires_grad());
      CHECK_FALSE(plain.requires_grad());
      const std::vector<double> a = recorded.detach().to(Dtype::f64).to_vector<double>(),
                                b = plain.to(Dtype::f64).to_vector<double>(), c = max_pool2d(x, o).to(Dtype::f64).to_vector<double>();
      REQUIRE(a.size() == b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        CAPTURE(i);
        CHECK((a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))));
        CHECK((a[i] == c[i] || (std::isnan(a[i]) && std::isnan(c[i]))));
      }
    }
}

TEST_CASE("batch_norm: fused equals reference in training and eval, with running statistics") {
  struct BnCase {
    Shape x;
    bool training, affine;
  };
  const std::vector<BnCase> cases = {
      {{8, 3}, true, true},   {{8, 3}, false, true},   {{4, 3, 5, 5}, true, true}, {{4, 3, 5, 5}, false, true},
      {{2, 4, 3, 7}, true, false}, {{16, 1}, true, false}, {{3, 2, 1, 1}, true, true}, {{3, 5, 2, 2}, false, false},
      {{4, 9000}, true, true},  // [N, C] wide enough to be split over threads
  };
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (size_t i = 0; i < cases.size(); ++i) {
      const BnCase& c = cases[i];
      CAPTURE(i);
      CAPTURE(dtype_name(d));
      const int64_t C = c.x[1];
      Tensor x = input(c.x, d, 60 + i) * 3.0 + 1.0;
      x = x.detach();
      x.requires_grad_();
      Tensor gamma = c.affine ? input({C}, d, 70 + i) : Tensor(), beta = c.affine ? input({C}, d, 80 + i) : Tensor();
      manual_seed(90 + i);
      Tensor rm = randn({C}, d), rv = add(abs(randn({C}, d)), 0.5);
      Tensor rm2 = rm.clone(), rv2 = rv.clone();
      const bool tr = c.training;
      CHECK_MATCHES_REFERENCE([&](auto& v) { return batch_norm(v[0], v[1], v[2], rm, rv, tr, 0.1, 1e-5); },
                              [&](auto& v) { return ref::batch_norm(v[0], v[1], v[2], rm2, rv2, tr, 0.1, 1e-5); },
                              {x, gamma, beta});
      const double tol = d == Dtype::f32 ? 1e-5 : 1e-12;
      CHECK(allclose(rm, rm2, tol, tol));
      CHECK(allclose(rv, rv2, tol, tol));
    }
}

TEST_CASE("batch_norm: running statistics after several steps match the reference and PyTorch's rule") {
  Tensor rm = zeros({2}, Dtype::f64), rv = ones({2}, Dtype::f64), rm2 = rm.clone(), rv2 = rv.clone();
  for (int step = 0; step < 5; ++step) {
    manual_seed(step);
    Tensor x = randn({6, 2, 3, 3}, Dtype::f64) * 2.0 + 1.0;
    batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.1);
    ref::batch_norm(x, Tensor(), Tensor(), rm2, rv2, true, 0.1);
  }
  CHECK(allclose(rm, rm2, 1e-12, 1e-12));
  CHECK(allclose(rv, rv2, 1e-12, 1e-12));
  // One step by hand: batch [1, 3] in one channel: mean 2, unbiased var 2.
  Tensor m = zeros({1}, Dtype::f64), v = ones({1}, Dtype::f64);
  batch_norm(f64({1, 3}, {2, 1}), Tensor(), Tensor(), m, v, true, 0.1);
  CHECK(m.item<double>() == doctest::Approx(0.2));
  CHECK(v.item<double>() == doctest::Approx(0.9 + 0.2));
}

TEST_CASE("batch_norm, layer_norm, group_norm: gradcheck") {
  Tensor x = input({3, 4, 2, 2}, Dtype::f64, 100), g = input({4}, Dtype::f64, 101), b = input({4}, Dtype::f64, 102);
  Tensor rm = zeros({4}, Dtype::f64), rv = ones({4}, Dtype::f64);
  CHECK_GRADCHECK([&](auto& v) { return batch_norm(v[0], v[1], v[2], rm, rv, true); }, {x, g, b});
  CHECK_GRADCHECK([&](auto& v) { return ref::batch_norm(v[0], v[1], v[2], rm, rv, true); }, {x, g, b});
  CHECK_GRADCHECK([&](auto& v) { return batch_norm(v[0], v[1], v[2], rm, rv, false); }, {x, g, b});
  CHECK_GRADCHECK([&](auto& v) { return ref::batch_norm(v[0], v[1], v[2], rm, rv, false); }, {x, g, b});
  Tensor x2 = input({5, 3}, Dtype::f64, 103), g2 = input({3}, Dtype::f64, 104);
  CHECK_GRADCHECK([&](auto& v) { return batch_norm(v[0], v[1], Tensor(), Tensor(), Tensor(), true); }, {x2, g2});
  CHECK_GRADCHECK([&](auto& v) { return ref::batch_norm(v[0], v[1], Tensor(), Tensor(), Tensor(), true); }, {x2, g2});
  Tensor lg = input({2, 2}, Dtype::f64, 105), lb = input({2, 2}, Dtype::f64, 106);
  CHECK_GRADCHECK([](auto& v) { return layer_norm(v[0], {2, 2}, v[1], v[2]); }, {x, lg, lb});
  CHECK_GRADCHECK([](auto& v) { return group_norm(v[0], 2, v[1], v[2]); }, {x, g, b});
}

TEST_CASE("layer_norm and group_norm: values") {
  Tensor x = f64({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
  auto y = layer_norm(x, {4}).to_vector<double>();
  const double s = std::sqrt(1.25 + 1e-5);
  CHECK(y[0] == doctest::Approx(-1.5 / s));
  CHECK(y[7] == doctest::Approx(1.5 / s));
  // group_norm with one group per channel equals per-sample, per-channel normalisation.
  Tensor z = reshape(arange(8, Dtype::f64), {1, 2, 2, 2});
  auto gz = group_norm(z, 2).to_vector<double>();
  CHECK(gz[0] == doctest::Approx(-1.5 / s));
  CHECK(gz[4] == doctest::Approx(-1.5 / s));
}

TEST_CASE("layers: bad input") {
  Tensor x = zeros({2, 3, 8, 8}), w = zeros({4, 3, 3, 3});
  CHECK_ERROR(conv2d(zeros({3, 8, 8}), w), "conv2d: input must be 4-D (N,C,H,W), got shape [3,8,8]");
  CHECK_ERROR(conv2d(x, zeros({4, 2, 3, 3})), "conv2d: input has 3 channels (shape [2,3,8,8]) but weight expects 2");
  CHECK_ERROR(conv2d(x, zeros({4, 3, 11, 3})), "conv2d: kernel height 11 is larger than the padded input 8");
  CHECK_ERROR(conv2d(x, zeros({4, 3, 3})), "conv2d: weight must be 4-D (F,C/groups,KH,KW), got shape [4,3,3]");
  CHECK_ERROR(conv2d(x, w, Tensor(), {.stride = 0}),
              "conv2d: stride must be positive, got (0, 0) for input shape [2,3,8,8]");
  CHECK_ERROR(conv2d(x, w, Tensor(), {.stride = {1, -1}}), "conv2d: stride must be positive, got (1, -1)");
  CHECK_ERROR(conv2d(x, w, Tensor(), {.padding = {0, -1}}),
              "conv2d: padding must be non-negative, got (0, -1) for input shape [2,3,8,8]");
  CHECK_ERROR(conv2d(x, w, zeros({5})), "conv2d: bias shape [5] does not match 4 filters");
  CHECK_ERROR(conv2d(x, zeros({4, 3, 3, 3}, Dtype::f64)), "conv2d: weight dtype f64 does not match input dtype f32");
  CHECK_ERROR(ref::conv2d(x, zeros({4, 2, 3, 3})), "conv2d: input has 3 channels");
  CHECK_ERROR(max_pool2d(zeros({8, 8})), "max_pool2d: input must be 4-D (N,C,H,W), got shape [8,8]");
  CHECK_ERROR(max_pool2d(x, {.kernel = 9}), "max_pool2d: kernel height 9 is larger than the padded input 8");
  CHECK_ERROR(avg_pool2d(x, {.kernel = 2, .stride = -1}), "avg_pool2d: stride must be positive");
  CHECK_ERROR(max_pool2d(x, {.kernel = 2, .stride = {1, 0}}),
              "max_pool2d: stride must be positive, got (1, 0) for input shape [2,3,8,8]");
  CHECK_ERROR(ref::max_pool2d(x, {.kernel = 2, .stride = {-2, 1}}), "max_pool2d: stride must be positive, got (-2, 1)");
  CHECK_ERROR(max_pool2d(x, {.kernel = 2, .padding = 2}), "max_pool2d: padding (2, 2) must be non-negative and at most half the kernel");
  CHECK_ERROR(avg_pool2d(zeros({1, 1, 4, 4}, Dtype::i64)), "avg_pool2d: input must be f32 or f64, got i64");
  CHECK_ERROR(batch_norm(x, zeros({4}), Tensor(), Tensor(), Tensor(), true), "batch_norm: weight has shape [4], expected [3]");
  CHECK_ERROR(batch_norm(x, Tensor(), Tensor(), zeros({2}), ones({2}), true), "batch_norm: running_mean has shape [2], expected [3]");
  CHECK_ERROR(batch_norm(x, Tensor(), Tensor(), zeros({3}), ones({4}), false),
              "batch_norm: running_var has shape [4], expected [3] for input shape [2,3,8,8]");
  CHECK_ERROR(ref::batch_norm(x, Tensor(), Tensor(), zeros({3}), ones({4}), true), "batch_norm: running_var has shape [4]");
  CHECK_ERROR(batch_norm(zeros({2, 3, 4}), Tensor(), Tensor(), Tensor(), Tensor(), true), "batch_norm: input must be [N,C] or [N,C,H,W]");
  CHECK_ERROR(batch_norm(zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true), "batch_norm: expected more than 1 value per channel when training");
  CHECK_ERROR(group_norm(x, 2), "group_norm: 2 groups do not divide 3 channels");
  CHECK_ERROR(layer_norm(x, {7}), "layer_norm: normalized_shape [7] does not match the trailing dims of input shape [2,3,8,8]");
  // A rejected batch_norm leaves the running statistics untouched.
  Tensor rm = zeros({3}), rv = ones({3});
  CHECK_ERROR(batch_norm(x, zeros({2}), Tensor(), rm, rv, true), "batch_norm: weight has shape [2]");
  CHECK(rm.to_vector<float>() == std::vector<float>(3, 0.f));
}

// conv2d's dilation and groups (depthwise, grouped) and conv_transpose2d: fused kernels against the
// xg::ref compositions over tables of shapes, gradcheck, hand-worked values, the adjoint identity
// that defines a transposed convolution, the modules, and bad input.
#include "helpers.hpp"
#include "ops/fused/winograd.hpp"
#include "ops/geometry.hpp"
#include "ops/rows.hpp"

using namespace xg;
using test::f64;
using test::input;

namespace {
struct ConvCase {
  Shape x;
  int64_t F, KH, KW;
  Pair2 stride, padding, dilation;
  int64_t groups;
  bool bias;
};

// Fused against reference for each case, f32 and f64. Weight [F, C/groups, KH, KW].
void check_conv_cases(const std::vector<ConvCase>& cases, uint64_t seed) {
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (size_t i = 0; i < cases.size(); ++i) {
      const ConvCase& c = cases[i];
      CAPTURE(i);
      CAPTURE(dtype_name(d));
      const Conv2dOptions o{c.stride, c.padding, c.dilation, c.groups};
      Tensor x = input(c.x, d, seed + i), w = input({c.F, c.x[1] / c.groups, c.KH, c.KW}, d, seed + 100 + i);
      Tensor b = c.bias ? input({c.F}, d, seed + 200 + i) : Tensor();
      CHECK_MATCHES_REFERENCE([o](auto& v) { return conv2d(v[0], v[1], v[2], o); },
                              [o](auto& v) { return ref::conv2d(v[0], v[1], v[2], o); }, {x, w, b});
    }
}

struct TransposeCase {
  Shape x;  // [N, C_in, H, W]
  int64_t C_out, KH, KW;
  ConvTranspose2dOptions o;
  bool bias;
};

void check_transpose_cases(const std::vector<TransposeCase>& cases, uint64_t seed) {
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (size_t i = 0; i < cases.size(); ++i) {
      const TransposeCase& c = cases[i];
      CAPTURE(i);
      CAPTURE(dtype_name(d));
      const ConvTranspose2dOptions o = c.o;
      Tensor x = input(c.x, d, seed + i), w = input({c.x[1], c.C_out / o.groups, c.KH, c.KW}, d, seed + 100 + i);
      Tensor b = c.bias ? input({c.C_out}, d, seed + 200 + i) : Tensor();
      CHECK_MATCHES_REFERENCE([o](auto& v) { return conv_transpose2d(v[0], v[1], v[2], o); },
                              [o](auto& v) { return ref::conv_transpose2d(v[0], v[1], v[2], o); }, {x, w, b});
    }
}
}  // namespace

TEST_CASE("conv2d: dilation and groups, fused equals reference, values and gradients") {
  const std::vector<ConvCase> cases = {
      {{2, 3, 9, 9}, 4, 3, 3, 1, 2, 2, 1, true},                 // dilated 3x3, "same" padding
      {{1, 2, 11, 8}, 3, 3, 2, {2, 1}, {1, 0}, {2, 3}, 1, true},  // dilation and stride per axis
      {{2, 4, 7, 7}, 6, 3, 3, 1, 1, 1, 2, true},                 // 2 groups
      {{2, 6, 8, 8}, 6, 3, 3, 2, 1, 1, 6, false},                // depthwise, stride 2
      {{1, 4, 8, 8}, 8, 3, 3, 1, 1, 1, 4, true},                 // depthwise with multiplier 2
      {{9, 5, 11, 10}, 15, 3, 2, {1, 2}, {2, 1}, {2, 3}, 5, true}, // depthwise: dilation, multiplier 3, 45 planes
      {{3, 4, 6, 7}, 4, 5, 5, 2, 4, 1, 4, false},               // depthwise, taps wholly in the padding
      {{2, 6, 10, 9}, 9, 2, 3, {1, 2}, {0, 1}, {3, 2}, 3, true}, // groups and dilation together
      {{2, 16, 8, 8}, 16, 3, 3, 1, 1, 1, 2, true},               // a Winograd shape, grouped: im2col
      {{2, 16, 8, 8}, 16, 3, 3, 1, 2, 2, 1, true},               // a Winograd shape, dilated: im2col
      {{1, 8, 6, 6}, 4, 1, 1, 1, 0, 1, 4, true},                 // 1x1 grouped
      {{0, 4, 5, 5}, 4, 3, 3, 1, 1, 2, 2, true},                 // an empty batch
  };
  check_conv_cases(cases, 300);
}

TEST_CASE("conv2d: im2col's unit-stride rows at every width its row copy treats apart") {
  // Rows of WO values copied in 64-byte chunks with an overlapping last one, or in two overlapping
  // pieces of 32, 16, 8 or one of 4 bytes (ops/rows.hpp), from a zero-bordered copy of each plane.
  std::vector<ConvCase> cases;
  for (int64_t w : {1, 2, 3, 6, 8, 14, 17, 33})  // WO = w + 2 with a 3-wide kernel and padding 2
    cases.push_back({{2, 2, 5, w}, 3, 2, 3, 1, {1, 2}, 1, 1, true});
  cases.push_back({{1, 3, 9, 20}, 4, 3, 3, {2, 1}, 0, 1, 1, false});  // no padding, row stride 2
  cases.push_back({{1, 2, 6, 19}, 2, 3, 3, 1, {0, 3}, {1, 2}, 1, true});  // dilated columns
  check_conv_cases(cases, 900);
}

TEST_CASE("copy_row and zero_row: every length up to 70 values in f32 and f64, nothing written past the row") {
  auto check_type = [&]<class T>() {
    for (int64_t n = 0; n <= 70; ++n) {
      CAPTURE(n);
      std::vector<T> src(n + 2), dst(n + 2, T(-1)), zeroed(n + 2, T(-1));
      for (int64_t i = 0; i < n + 2; ++i) src[i] = static_cast<T>(i + 1);
      detail::copy_row(dst.data() + 1, src.data() + 1, n);
      detail::zero_row(zeroed.data() + 1, n);
      int64_t wrong = dst[0] != T(-1) || dst[n + 1] != T(-1) || zeroed[0] != T(-1) || zeroed[n + 1] != T(-1);
      for (int64_t i = 1; i <= n; ++i) wrong += dst[i] != src[i] || zeroed[i] != T(0);
      CHECK(wrong == 0);
    }
  };
  check_type.template operator()<float>();
  check_type.template operator()<double>();
}

TEST_CASE("conv2d: the weight gradient computed transposed (fewer filters than C KH KW, >= 512 positions)") {
  // dw^T = cols dy^T, on oneDNN in f32; the same cases run the untransposed form in f64.
  const std::vector<ConvCase> cases = {
      {{3, 3, 32, 32}, 8, 5, 5, 1, 2, 1, 1, true},   // a first layer: 8 filters, 75 rows, 1024 positions
      {{2, 4, 24, 24}, 4, 5, 5, 1, 2, 1, 2, false},  // 2 groups: 2 filters and 50 rows each, 576 positions
      {{2, 3, 33, 31}, 6, 7, 7, 1, 3, 1, 1, true},   // ThreeLayerConvNet's 7x7 at odd sizes
  };
  check_conv_cases(cases, 700);
}

TEST_CASE("conv2d: Winograd only for dilation 1 and one group") {
  auto g = [](Pair2 dilation, int64_t groups) {
    return detail::conv_geometry(zeros({1, 32, 8, 8}), zeros({32, 32 / groups, 3, 3}), Tensor(),
                                 {.padding = 1, .dilation = dilation, .groups = groups}, "conv2d");
  };
  CHECK(detail::use_winograd(g(1, 1)));
  CHECK_FALSE(detail::use_winograd(g(2, 1)));
  CHECK_FALSE(detail::use_winograd(g({1, 2}, 1)));
  CHECK_FALSE(detail::use_winograd(g(1, 2)));
  CHECK_FALSE(detail::use_winograd(g(1, 32)));
}

TEST_CASE("conv2d: gradcheck with dilation and groups, fused and reference") {
  Tensor x = input({2, 4, 7, 6}, Dtype::f64, 1), w = input({6, 2, 3, 2}, Dtype::f64, 2), b = input({6}, Dtype::f64, 3);
  const Conv2dOptions o{.stride = {2, 1}, .padding = {2, 1}, .dilation = {2, 2}, .groups = 2};
  CHECK_GRADCHECK([o](auto& v) { return conv2d(v[0], v[1], v[2], o); }, {x, w, b});
  CHECK_GRADCHECK([o](auto& v) { return ref::conv2d(v[0], v[1], v[2], o); }, {x, w, b});
  Tensor wd = input({8, 1, 3, 3}, Dtype::f64, 4);  // depthwise, multiplier 2
  CHECK_GRADCHECK([](auto& v) { return conv2d(v[0], v[1], Tensor(), {.padding = 1, .groups = 4}); }, {x, wd});
}

TEST_CASE("conv2d: dilation and groups, values worked by hand") {
  // x[i][j] = 5 i + j on a 5x5 plane; a 2x2 kernel of ones dilated by 2 sums x[i][j], x[i][j+2],
  // x[i+2][j], x[i+2][j+2] = 4 (5 i + j) + 24: a 3x3 output 24 + 20 i + 4 j.
  Tensor x = reshape(arange(25, Dtype::f64), {1, 1, 5, 5}), w = ones({1, 1, 2, 2}, Dtype::f64);
  std::vector<double> want;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) want.push_back(24 + 20 * i + 4 * j);
  CHECK(conv2d(x, w, Tensor(), {.dilation = 2}).to_vector<double>() == want);
  CHECK(ref::conv2d(x, w, Tensor(), {.dilation = 2}).to_vector<double>() == want);
  // Depthwise 1x1: each channel scaled by its own weight; two groups of two channels each.
  Tensor y = f64({1, 2, 3, 4}, {1, 4, 1, 1});
  CHECK(conv2d(y, f64({2, 3, 5, 7}, {4, 1, 1, 1}), Tensor(), {.groups = 4}).to_vector<double>() ==
        std::vector<double>{2, 6, 15, 28});
  // Group 0 sees channels 0-1, group 1 channels 2-3: filter 0 = 1*1 + 10*2, filter 1 = 100*3 + 1000*4.
  CHECK(conv2d(y, f64({1, 10, 100, 1000}, {2, 2, 1, 1}), Tensor(), {.groups = 2}).to_vector<double>() ==
        std::vector<double>{21, 4300});
  // A grouped convolution is the convolutions of its channel slices, concatenated.
  Tensor xg = input({2, 6, 5, 5}, Dtype::f64, 7).detach(), wg = input({9, 2, 3, 3}, Dtype::f64, 8).detach();
  std::vector<Tensor> parts;
  for (int64_t gi = 0; gi < 3; ++gi)
    parts.push_back(conv2d(slice(xg, 1, 2 * gi, 2 * gi + 2), slice(wg, 0, 3 * gi, 3 * gi + 3), Tensor(), {.padding = 1}));
  CHECK(allclose(conv2d(xg, wg, Tensor(), {.padding = 1, .groups = 3}), cat(parts, 1), 1e-12, 1e-12));
}

TEST_CASE("conv_transpose2d: fused equals reference, values and gradients") {
  const std::vector<TransposeCase> cases = {
      {{2, 3, 4, 4}, 2, 3, 3, {}, true},                                              // stride 1: full correlation
      {{2, 3, 4, 5}, 4, 3, 3, {.stride = 2, .padding = 1, .output_padding = 1}, true},  // the usual 2x upsampling
      {{1, 2, 3, 3}, 3, 4, 4, {.stride = 2, .padding = 1}, false},                    // 4x4 kernel, stride 2
      {{2, 4, 3, 5}, 6, 3, 2, {.stride = {3, 2}, .padding = {0, 1}, .output_padding = {2, 0}}, true},
      {{1, 2, 4, 4}, 2, 3, 3, {.stride = 1, .padding = 3, .dilation = 2}, true},        // padding > D(K-1): crops
      {{2, 4, 3, 3}, 6, 3, 3, {.stride = 2, .groups = 2, .dilation = {1, 2}}, true},    // groups and dilation
      {{1, 3, 4, 4}, 3, 3, 3, {.stride = 2, .padding = 1, .groups = 3}, true},          // depthwise
      {{2, 2, 3, 4}, 2, 2, 2, {.stride = 1, .output_padding = 1, .dilation = 2}, true}, // output_padding < dilation
      {{2, 16, 5, 5}, 16, 3, 3, {.padding = 1}, true},  // Winograd shape: its input-gradient kernel runs forward
      {{3, 2, 1, 1}, 3, 3, 3, {.stride = 2}, true},     // 1x1 input
      {{0, 2, 3, 3}, 2, 3, 3, {.stride = 2}, true},     // an empty batch
  };
  check_transpose_cases(cases, 500);
}

TEST_CASE("conv_transpose2d: gradcheck and the adjoint of conv2d") {
  Tensor x = input({2, 4, 3, 4}, Dtype::f64, 11), w = input({4, 3, 3, 2}, Dtype::f64, 12), b = input({6}, Dtype::f64, 13);
  const ConvTranspose2dOptions o{.stride = 2, .padding = {1, 0}, .output_padding = 1, .groups = 2, .dilation = {1, 2}};
  CHECK_GRADCHECK([o](auto& v) { return conv_transpose2d(v[0], v[1], v[2], o); }, {x, w, b});
  CHECK_GRADCHECK([o](auto& v) { return ref::conv_transpose2d(v[0], v[1], v[2], o); }, {x, w, b});
  // <conv_transpose2d(y, w), z> = <y, conv2d(z, w)> for z of conv_transpose2d's output shape, the
  // definition of the transpose; it checks the fused ops against each other without the reference.
  Tensor y = x.detach(), wt = w.detach();
  Tensor out = conv_transpose2d(y, wt, Tensor(), o);
  // (H - 1) S - 2 P + D (K - 1) + OP + 1: H (3-1)*2 - 2 + 2 + 1 + 1 = 6, W (4-1)*2 - 0 + 2 + 1 + 1 = 10.
  CHECK(out.shape() == Shape{2, 6, 6, 10});
  Tensor z = input(out.shape(), Dtype::f64, 14).detach();
  const double lhs = sum(out * z).item<double>();
  const double rhs = sum(y * conv2d(z, wt, Tensor(), {.stride = 2, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2})).item<double>();
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
}

TEST_CASE("conv_transpose2d: values worked by hand") {
  // One row [1, 2] through the 2x2 kernel [[1, 10], [100, 1000]]: stride 2 places a scaled copy of the
  // kernel per input value side by side; stride 1 overlaps them by one column.
  Tensor x = f64({1, 2}, {1, 1, 1, 2}), w = f64({1, 10, 100, 1000}, {1, 1, 2, 2});
  for (auto op : {conv_transpose2d, ref::conv_transpose2d}) {
    Tensor s2 = op(x, w, Tensor(), {.stride = 2});
    CHECK(s2.shape() == Shape{1, 1, 2, 4});
    CHECK(s2.to_vector<double>() == std::vector<double>{1, 10, 2, 20, 100, 1000, 200, 2000});
    CHECK(op(x, w, Tensor(), {}).to_vector<double>() == std::vector<double>{1, 12, 20, 100, 1200, 2000});
    // output_padding 1 with stride 2 adds a last row and column that no input reaches: bias only.
    Tensor op1 = op(x, w, f64({0.5}, {1}), {.stride = 2, .output_padding = 1});
    CHECK(op1.shape() == Shape{1, 1, 3, 5});
    CHECK(op1.to_vector<double>() ==
          std::vector<double>{1.5, 10.5, 2.5, 20.5, 0.5, 100.5, 1000.5, 200.5, 2000.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
  }
}

TEST_CASE("conv2d and conv_transpose2d: bad input names the op and the shapes") {
  Tensor x = zeros({2, 4, 8, 8});
  CHECK_ERROR(conv2d(x, zeros({6, 2, 3, 3}), Tensor(), {.groups = 3}),
              "conv2d: 3 groups do not divide the input's 4 channels (shape [2,4,8,8])");
  CHECK_ERROR(conv2d(x, zeros({5, 2, 3, 3}), Tensor(), {.groups = 2}),
              "conv2d: 2 groups do not divide the weight's 5 filters (shape [5,2,3,3])");
  CHECK_ERROR(conv2d(x, zeros({4, 4, 3, 3}), Tensor(), {.groups = 2}),
              "conv2d: input has 4 channels (shape [2,4,8,8]) but weight expects 8 (4 per group, 2 groups; shape [4,4,3,3])");
  CHECK_ERROR(conv2d(x, zeros({4, 4, 3, 3}), Tensor(), {.groups = 0}), "conv2d: groups must be positive, got 0");
  CHECK_ERROR(conv2d(x, zeros({4, 4, 3, 3}), Tensor(), {.dilation = {1, 0}}),
              "conv2d: dilation must be positive, got (1, 0) for input shape [2,4,8,8]");
  CHECK_ERROR(conv2d(x, zeros({4, 4, 3, 3}), Tensor(), {.dilation = 4}),
              "conv2d: kernel height 3 with dilation 4 spans 9, more than the padded input 8 (8 + 2*0) of shape [2,4,8,8]");
  CHECK_ERROR(ref::conv2d(x, zeros({4, 4, 3, 3}), Tensor(), {.dilation = 4}), "conv2d: kernel height 3 with dilation 4");
  Tensor w = zeros({4, 3, 3, 3});
  CHECK_ERROR(conv_transpose2d(zeros({2, 4, 8}), w), "conv_transpose2d: input must be 4-D (N,C,H,W), got shape [2,4,8]");
  CHECK_ERROR(conv_transpose2d(x, zeros({3, 3, 3, 3})),
              "conv_transpose2d: input has 4 channels (shape [2,4,8,8]) but weight expects 3 (shape [3,3,3,3])");
  CHECK_ERROR(conv_transpose2d(x, zeros({4, 3, 3})),
              "conv_transpose2d: weight must be 4-D (C_in,C_out/groups,KH,KW), got shape [4,3,3]");
  CHECK_ERROR(conv_transpose2d(x, w, Tensor(), {.stride = 2, .output_padding = 2}),
              "conv_transpose2d: output_padding (2, 2) must be non-negative and smaller than stride (2, 2) or dilation (1, 1)");
  CHECK_ERROR(ref::conv_transpose2d(x, w, Tensor(), {.output_padding = {0, 1}}),
              "conv_transpose2d: output_padding (0, 1) must be non-negative and smaller than stride (1, 1)");
  CHECK_ERROR(conv_transpose2d(x, w, Tensor(), {.groups = 3}),
              "conv_transpose2d: 3 groups do not divide the input's 4 channels (shape [2,4,8,8])");
  CHECK_ERROR(conv_transpose2d(x, w, zeros({4})), "conv_transpose2d: bias shape [4] does not match 3 output channels");
  CHECK_ERROR(conv_transpose2d(x, zeros({4, 3, 1, 1}), Tensor(), {.padding = 4}),
              "conv_transpose2d: output height would be 0 for input height 8 (shape [2,4,8,8]) with stride 1, padding 4");
  CHECK_ERROR(conv_transpose2d(x, w, Tensor(), {.stride = {0, 1}}),
              "conv_transpose2d: stride must be positive, got (0, 1) for input shape [2,4,8,8]");
  CHECK_ERROR(conv_transpose2d(x, zeros({4, 3, 3, 3}, Dtype::f64)),
              "conv_transpose2d: weight dtype f64 does not match input dtype f32");
}

TEST_CASE("nn::Conv2d and nn::ConvTranspose2d: dilation, groups, weight shapes and PyTorch's init bound") {
  // PyTorch's reset_parameters: kaiming_uniform(a = sqrt 5) gives U(+-1/sqrt(fan_in)) with
  // fan_in = weight.size(1) * KH * KW: in_channels / groups * 9 = 18 here (not 72, the ungrouped fan).
  manual_seed(3);
  nn::Conv2d conv({.in_channels = 8, .out_channels = 16, .kernel_size = 3, .padding = 2, .dilation = 2, .groups = 4});
  CHECK(conv.weight().shape() == Shape{16, 2, 3, 3});
  auto in_bound = [](const Tensor& t, double bound) {
    double m = 0;
    for (float v : t.to_vector<float>()) m = std::max(m, std::abs(double(v)));
    return m <= bound && m > 0.9 * bound;  // 288 draws: the largest lies in the top tenth but for 0.9^288
  };
  CHECK(in_bound(conv.weight(), 1 / std::sqrt(18.0)));
  CHECK(conv.forward(zeros({2, 8, 6, 6})).shape() == Shape{2, 16, 6, 6});
  CHECK(conv.extra_repr() == "8, 16, kernel_size=[3, 3], stride=[1, 1], padding=[2, 2], dilation=[2, 2], groups=4");
  CHECK_ERROR(nn::Conv2d({.in_channels = 6, .out_channels = 4, .kernel_size = 3, .groups = 4}),
              "Conv2d: groups 4 must be positive and divide in_channels 6 and out_channels 4");
  // ConvTranspose2d: weight [in, out / groups, KH, KW], fan_in = out / groups * KH * KW = 4 * 9.
  nn::ConvTranspose2d up({.in_channels = 16, .out_channels = 8, .kernel_size = 3, .stride = 2, .padding = 1,
                          .output_padding = 1, .groups = 2});
  CHECK(up.weight().shape() == Shape{16, 4, 3, 3});
  CHECK(in_bound(up.weight(), 1 / std::sqrt(36.0)));
  for (float v : up.bias().to_vector<float>()) CHECK(std::abs(v) <= 1 / 6.0);  // 8 draws: the bound only
  Tensor x = randn({2, 16, 5, 7});
  CHECK(up.forward(x).shape() == Shape{2, 8, 10, 14});
  Tensor fused = up.forward(x);
  nn::ReferenceOpsGuard ref_ops;
  CHECK(allclose(up.forward(x), fused, 1e-5, 1e-5));
  CHECK(up.extra_repr() == "16, 8, kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], output_padding=[1, 1], groups=2");
  CHECK_ERROR(nn::ConvTranspose2d({.in_channels = 2, .out_channels = 2, .kernel_size = 3, .stride = 2, .output_padding = 2}),
              "ConvTranspose2d: output_padding (2, 2) must be non-negative and smaller than stride (2, 2) or dilation");
  CHECK_ERROR(up.forward(zeros({1, 8, 4, 4})), "ConvTranspose2d: input shape [1,8,4,4] has 8 channels, but in_channels is 16");
}

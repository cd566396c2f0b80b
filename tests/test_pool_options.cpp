// Pooling options: max_pool2d's dilation, ceil_mode for both pools, avg_pool2d's count_include_pad.
// Fused kernels against the xg::ref compositions over a table of shapes, gradcheck, output sizes and
// values worked by hand from PyTorch's rules (below), the modules, and bad input.
#include "helpers.hpp"

using namespace xg;
using test::f64;
using test::input;

TEST_CASE("pooling options: fused equals reference, values and gradients") {
  struct PoolCase {
    Shape x;
    Pool2dOptions o;
  };
  const std::vector<PoolCase> cases = {
      {{2, 3, 7, 7}, {.kernel = 2, .ceil_mode = true}},                         // a last, cut window per axis
      {{1, 2, 8, 6}, {.kernel = 3, .stride = 2, .padding = 1, .ceil_mode = true}},
      {{2, 2, 6, 6}, {.kernel = 3, .stride = 3, .padding = 1, .ceil_mode = true}},  // the rule drops a window
      {{1, 3, 9, 8}, {.kernel = {3, 2}, .stride = {2, 3}, .padding = {1, 0}, .ceil_mode = true}},
      {{2, 2, 7, 7}, {.kernel = 3, .stride = 1, .padding = 1, .count_include_pad = false}},
      {{1, 2, 8, 7}, {.kernel = 4, .stride = 3, .padding = 2, .ceil_mode = true, .count_include_pad = false}},
      {{2, 2, 5, 5}, {.kernel = 2, .stride = 2, .count_include_pad = false}},   // no padding: same as true
  };
  // Dilated windows: max_pool2d only (PyTorch's avg_pool2d has no dilation).
  const std::vector<PoolCase> dilated = {
      {{2, 2, 9, 9}, {.kernel = 3, .stride = 1, .dilation = 2}},
      {{1, 3, 10, 8}, {.kernel = 2, .stride = 2, .padding = 1, .dilation = {3, 2}, .ceil_mode = true}},
      {{2, 1, 7, 9}, {.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 1}, .dilation = {2, 4}}},
      {{1, 2, 2, 5}, {.kernel = 2, .stride = 1, .padding = 1, .dilation = 3}},  // windows with no tap inside: -inf
  };
  for (Dtype d : {Dtype::f32, Dtype::f64}) {
    CAPTURE(dtype_name(d));
    for (size_t i = 0; i < cases.size(); ++i) {
      CAPTURE(i);
      const Pool2dOptions o = cases[i].o;
      Tensor x = input(cases[i].x, d, 700 + i);
      CHECK_MATCHES_REFERENCE([o](auto& v) { return max_pool2d(v[0], o); },
                              [o](auto& v) { return ref::max_pool2d(v[0], o); }, {x});
      CHECK_MATCHES_REFERENCE([o](auto& v) { return avg_pool2d(v[0], o); },
                              [o](auto& v) { return ref::avg_pool2d(v[0], o); }, {x});
    }
    for (size_t i = 0; i < dilated.size(); ++i) {
      CAPTURE(i);
      const Pool2dOptions o = dilated[i].o;
      Tensor x = input(dilated[i].x, d, 720 + i);
      CHECK_MATCHES_REFERENCE([o](auto& v) { return max_pool2d(v[0], o); },
                              [o](auto& v) { return ref::max_pool2d(v[0], o); }, {x});
    }
  }
}

TEST_CASE("pooling options: gradcheck, fused and reference") {
  Tensor x = input({2, 2, 7, 6}, Dtype::f64, 9);
  const Pool2dOptions m{.kernel = 2, .stride = 2, .padding = 1, .dilation = {2, 3}, .ceil_mode = true};
  CHECK_GRADCHECK([m](auto& v) { return max_pool2d(v[0], m); }, {x});
  CHECK_GRADCHECK([m](auto& v) { return ref::max_pool2d(v[0], m); }, {x});
  for (bool include : {true, false}) {
    CAPTURE(include);
    const Pool2dOptions a{.kernel = 3, .stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = include};
    CHECK_GRADCHECK([a](auto& v) { return avg_pool2d(v[0], a); }, {x});
    CHECK_GRADCHECK([a](auto& v) { return ref::avg_pool2d(v[0], a); }, {x});
  }
}

// PyTorch's rules (aten pooling_output_shape and the avg_pool2d kernels), applied by hand:
//   out = (in + 2 p - d (k - 1) - 1 + (ceil ? s - 1 : 0)) / s + 1, minus one when ceil and
//   (out - 1) s >= in + p; the average's divisor is the window cut at in + p (count_include_pad) or
//   the window's positions inside the input.
TEST_CASE("pooling options: output sizes and values worked by hand from PyTorch's rules") {
  auto width = [](int64_t in, Pool2dOptions o) { return max_pool2d(zeros({1, 1, 1, in}), o).shape()[3]; };
  const Pool2dOptions k3s3p1{.kernel = {1, 3}, .stride = {1, 3}, .padding = {0, 1}};
  CHECK(width(5, k3s3p1) == 2);  // (5 + 2 - 3) / 3 + 1
  CHECK(width(5, {.kernel = {1, 3}, .stride = {1, 3}, .padding = {0, 1}, .ceil_mode = true}) == 2);  // 3, but 6 >= 5 + 1
  CHECK(width(6, {.kernel = {1, 3}, .stride = {1, 3}, .padding = {0, 1}, .ceil_mode = true}) == 3);  // 6 < 7: kept
  CHECK(width(5, {.kernel = {1, 2}, .ceil_mode = true}) == 3);
  CHECK(width(9, {.kernel = {1, 3}, .stride = 1, .dilation = {1, 2}}) == 5);  // 9 - 2 (3 - 1) - 1 + 1

  // x = 1..6 in one row; kernel 3, stride 2, padding 1, ceil_mode: windows start at -1, 1, 3, 5
  // ((4 - 1) 2 = 6 < 6 + 1 keeps the fourth). Sums 0+1+2, 2+3+4, 4+5+6, 6+0 (+ one position past
  // the padding). Divisors with count_include_pad 3, 3, 3, 2 (cut at 6 + 1); without, 2, 3, 3, 1.
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {1, 1, 1, 6});
  const Pool2dOptions o{.kernel = {1, 3}, .stride = {1, 2}, .padding = {0, 1}, .ceil_mode = true};
  Pool2dOptions ex = o;
  ex.count_include_pad = false;
  for (auto avg : {avg_pool2d, ref::avg_pool2d}) {
    CHECK(avg(x, o).to_vector<double>() == std::vector<double>{1, 3, 5, 3});
    CHECK(avg(x, ex).to_vector<double>() == std::vector<double>{1.5, 3, 5, 6});
    // No padding, ceil_mode: the last window [4] alone, divided by 1.
    CHECK(avg(f64({1, 2, 3, 4, 5}, {1, 1, 1, 5}), {.kernel = {1, 2}, .ceil_mode = true}).to_vector<double>() ==
          std::vector<double>{1.5, 3.5, 5});
  }
  for (auto mx : {max_pool2d, ref::max_pool2d}) {
    CHECK(mx(x, o).to_vector<double>() == std::vector<double>{2, 4, 6, 6});
    // Kernel 2 dilated by 3: max(x[i], x[i + 3]) over 3 1 4 1 5 9 2 6.
    CHECK(mx(f64({3, 1, 4, 1, 5, 9, 2, 6}, {1, 1, 1, 8}), {.kernel = {1, 2}, .stride = 1, .dilation = {1, 3}})
              .to_vector<double>() == std::vector<double>{3, 5, 9, 2, 6});
  }
  // The gradient of the cut last window: avg without count_include_pad sends all of it to x[5].
  Tensor t = f64({1, 2, 3, 4, 5, 6}, {1, 1, 1, 6});
  t.requires_grad_();
  avg_pool2d(t, ex).backward(f64({0, 0, 0, 1}, {1, 1, 1, 4}));
  CHECK(t.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 0, 0, 1});
}

TEST_CASE("nn::MaxPool2d and nn::AvgPool2d: the new options, printing and bad input") {
  nn::MaxPool2d mp({.kernel_size = 3, .stride = 2, .padding = 1, .dilation = 2, .ceil_mode = true});
  Tensor x = randn({2, 3, 9, 9});
  CHECK(allclose(mp.forward(x), max_pool2d(x, {.kernel = 3, .stride = 2, .padding = 1, .dilation = 2, .ceil_mode = true}),
                 0, 0));
  CHECK(mp.forward(x).shape() == Shape{2, 3, 4, 4});  // (9 + 2 - 4 - 1 + 1) / 2 + 1 = 4; 6 < 10
  CHECK(mp.extra_repr() == "kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], dilation=[2, 2], ceil_mode=true");
  nn::AvgPool2d ap({.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false});
  CHECK(allclose(ap.forward(x), avg_pool2d(x, {.kernel = 3, .stride = 2, .padding = 1, .ceil_mode = true,
                                               .count_include_pad = false}),
                 0, 0));
  CHECK(ap.extra_repr() == "kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], ceil_mode=true, count_include_pad=false");
  CHECK(nn::AvgPool2d(2).extra_repr() == "kernel_size=[2, 2], stride=[2, 2], padding=[0, 0]");
  CHECK_ERROR(nn::MaxPool2d({.kernel_size = 2, .dilation = {0, 1}}), "MaxPool2d: dilation must be positive, got (0, 1)");
  CHECK_ERROR(avg_pool2d(x, {.kernel = 2, .dilation = 2}),
              "avg_pool2d: dilation (2, 2) is not supported (PyTorch's avg_pool2d has none)");
  CHECK_ERROR(max_pool2d(x, {.kernel = 2, .dilation = {1, -1}}),
              "max_pool2d: dilation must be positive, got (1, -1) for input shape [2,3,9,9]");
  CHECK_ERROR(max_pool2d(x, {.kernel = 3, .dilation = 5}),
              "max_pool2d: kernel height 3 with dilation 5 spans 11, more than the padded input 9 (9 + 2*0)");
  CHECK_ERROR(ref::max_pool2d(x, {.kernel = 3, .dilation = 5}), "max_pool2d: kernel height 3 with dilation 5 spans 11");
}

// nn::init: gains, fan rules, the distributions' bounds and spreads, orthogonality, Dirac kernels, errors.
#include <cmath>

#include "helpers.hpp"

using namespace xg;
namespace init = xg::nn::init;

namespace {
double max_abs(const Tensor& t) { return max(abs(flatten(t))).item<double>(); }
double stddev(const Tensor& t) { return std::sqrt(var(flatten(t), {0}).item<double>()); }
}  // namespace

TEST_CASE("init: calculate_gain and fans as PyTorch") {
  CHECK(init::calculate_gain("linear") == 1.0);
  CHECK(init::calculate_gain("conv_transpose2d") == 1.0);
  CHECK(init::calculate_gain("sigmoid") == 1.0);
  CHECK(init::calculate_gain("tanh") == 5.0 / 3.0);
  CHECK(init::calculate_gain("relu") == std::sqrt(2.0));
  CHECK(init::calculate_gain("selu") == 0.75);
  CHECK(init::calculate_gain("leaky_relu") == std::sqrt(2.0 / (1 + 0.01 * 0.01)));
  CHECK(init::calculate_gain("leaky_relu", std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3.0)));
  CHECK(init::calculate_fan_in_and_fan_out(zeros({8, 3, 5, 5})) == std::pair<int64_t, int64_t>{75, 200});
  CHECK(init::calculate_fan_in_and_fan_out(zeros({8, 3})) == std::pair<int64_t, int64_t>{3, 8});
  CHECK(init::calculate_fan_in_and_fan_out(zeros({4, 2, 7})) == std::pair<int64_t, int64_t>{14, 28});
}

TEST_CASE("init: Kaiming and Xavier bounds and spreads") {
  manual_seed(11);
  Tensor w = Tensor::empty({64, 32, 3, 3}, Dtype::f64);  // fan_in 288, fan_out 576
  const double relu_std_in = std::sqrt(2.0) / std::sqrt(288.0), relu_std_out = std::sqrt(2.0) / std::sqrt(576.0);
  init::kaiming_uniform_(w, 0, "fan_in", "relu");
  CHECK(max_abs(w) <= std::sqrt(3.0) * relu_std_in);
  CHECK(max_abs(w) > 0.99 * std::sqrt(3.0) * relu_std_in);
  CHECK(stddev(w) == doctest::Approx(relu_std_in).epsilon(0.02));
  init::kaiming_normal_(w, 0, "fan_out", "relu");
  CHECK(stddev(w) == doctest::Approx(relu_std_out).epsilon(0.02));
  CHECK(mean(w).item<double>() == doctest::Approx(0).scale(1).epsilon(relu_std_out * 0.02));
  init::kaiming_normal_(w);  // leaky_relu, a = 0: the same gain as relu
  CHECK(stddev(w) == doctest::Approx(relu_std_in).epsilon(0.02));
  init::kaiming_uniform_(w, std::sqrt(5.0));  // PyTorch's Linear/Conv2d default: bound 1 / sqrt(fan_in)
  CHECK(max_abs(w) <= 1 / std::sqrt(288.0));
  CHECK(max_abs(w) > 0.99 / std::sqrt(288.0));
  const double xavier_std = 1.5 * std::sqrt(2.0 / (288 + 576));
  init::xavier_uniform_(w, 1.5);
  CHECK(max_abs(w) <= std::sqrt(3.0) * xavier_std);
  CHECK(max_abs(w) > 0.99 * std::sqrt(3.0) * xavier_std);
  init::xavier_normal_(w, 1.5);
  CHECK(stddev(w) == doctest::Approx(xavier_std).epsilon(0.02));
  // f32 works too, and uniform_/normal_/constant_ keep their meaning.
  Tensor f = Tensor::empty({100, 100});
  init::uniform_(f, -0.5, 2.0);
  CHECK(min(flatten(f), 0).item<float>() >= -0.5f);
  CHECK(max(f).item<float>() < 2.0f);
  CHECK(init::constant_(f, 0.25).to_vector<float>()[9999] == 0.25f);
  CHECK(sum(init::ones_(f)).item<float>() == 10000.0f);
  CHECK(sum(init::zeros_(f)).item<float>() == 0.0f);
}

TEST_CASE("init: writes in place, off the tape, on parameters that require grad") {
  nn::Linear fc(4, 3);
  Tensor w = fc.weight();
  init::xavier_normal_(w);
  init::orthogonal_(w);
  init::kaiming_normal_(w, 0.1, "fan_out");
  CHECK(w.same(fc.weight()));
  CHECK(w.is_leaf());
  CHECK(w.requires_grad());
  Tensor y = init::normal_(fc.bias(), 1.0, 0.0);  // the same handle back
  CHECK(y.same(fc.bias()));
  CHECK(fc.bias().to_vector<float>() == std::vector<float>{1, 1, 1});
  // Zero elements: nothing to do, as PyTorch.
  Tensor empty = zeros({0, 5});
  init::kaiming_uniform_(empty);
  init::xavier_normal_(empty);
  init::orthogonal_(empty);
}

TEST_CASE("init: orthogonal_ gives orthonormal rows or columns, times gain") {
  manual_seed(12);
  for (Shape s : {Shape{5, 9}, Shape{9, 5}, Shape{6, 6}, Shape{4, 2, 3, 3}}) {
    Tensor t = Tensor::empty(s, Dtype::f64);
    init::orthogonal_(t, 2.0);
    Tensor m = reshape(t, {s[0], -1});
    const bool wide = m.shape()[0] <= m.shape()[1];
    Tensor gram = wide ? matmul(m, transpose(m, 0, 1)) : matmul(transpose(m, 0, 1), m);
    const int64_t k = gram.shape()[0];
    INFO("shape " << fmt::format("{}", s));
    CHECK(allclose(gram, mul(one_hot(arange(k, Dtype::i64), k, Dtype::f64), 4.0), 0, 1e-12));
  }
}

TEST_CASE("init: dirac_ keeps the input through a convolution") {
  Tensor w = Tensor::empty({3, 3, 3, 3}, Dtype::f64);
  init::dirac_(w);
  Tensor x = test::leaf({2, 3, 5, 5}, 13);
  CHECK(allclose(conv2d(x, w, Tensor(), {.padding = 1}), x, 0, 0));
  // Groups: 4 filters in 2 groups over 3 input channels: filter g*2 + d reads channel d (d < 2).
  Tensor g = Tensor::empty({4, 3, 1, 3}, Dtype::f64);
  init::dirac_(g, 2);
  auto v = g.to_vector<double>();
  std::vector<double> want(36, 0.0);
  for (int64_t f : {0, 1, 2, 3}) want[(f * 3 + f % 2) * 3 + 1] = 1.0;
  CHECK(v == want);
  // More filters than input channels: the extra ones stay 0 (3-D, a conv1d kernel).
  Tensor c = Tensor::empty({3, 2, 3});
  init::dirac_(c);
  CHECK(sum(c).item<float>() == 2.0f);
}

TEST_CASE("init errors") {
  CHECK_ERROR(init::calculate_gain("gelu"), "calculate_gain: unsupported nonlinearity \"gelu\"");
  CHECK_ERROR(init::kaiming_uniform_(zeros({3, 4}), 0, "fan_avg"),
              "kaiming_uniform_: mode must be \"fan_in\" or \"fan_out\", got \"fan_avg\"");
  CHECK_ERROR(init::kaiming_normal_(zeros({3, 4}), 0, "fan_in", "swish"), "calculate_gain: unsupported nonlinearity \"swish\"");
  CHECK_ERROR(init::kaiming_normal_(zeros({3})), "calculate_fan_in_and_fan_out: needs a tensor with at least 2 dims, got shape [3]");
  CHECK_ERROR(init::xavier_uniform_(zeros({3}, Dtype::i64)), "xavier_uniform_: needs a floating tensor, got i64");
  CHECK_ERROR(init::xavier_normal_(zeros({3})), "calculate_fan_in_and_fan_out: needs a tensor with at least 2 dims");
  CHECK_ERROR(init::orthogonal_(zeros({3})), "orthogonal_: needs a tensor with at least 2 dims, got shape [3]");
  CHECK_ERROR(init::dirac_(zeros({3, 3})), "dirac_: needs a 3-, 4- or 5-D tensor, got shape [3,3]");
  CHECK_ERROR(init::dirac_(zeros({3, 3, 3}), 2), "dirac_: dim 0 of shape [3,3,3] must be divisible by groups 2");
  CHECK_ERROR(init::dirac_(zeros({3, 3, 3}), 0), "dirac_: dim 0 of shape [3,3,3] must be divisible by groups 0");
  CHECK_ERROR(init::uniform_(zeros({3}), 1, 0), "uniform_: needs finite lo <= hi, got [1, 0]");
  CHECK_ERROR(init::constant_(zeros({3}, Dtype::i64), 1), "constant_: needs a floating tensor, got i64");
  CHECK_ERROR(init::ones_(Tensor()), "constant_: undefined tensor");
}

// The checkers themselves: allclose, check_against_reference and gradcheck must not be fooled by
// infinities or NaNs, and gradgradcheck must catch a wrong double backward.
#include <cmath>
#include <limits>

#include "helpers.hpp"

using namespace xg;
using test::f64;

namespace {
const double inf = std::numeric_limits<double>::infinity();
const double qnan = std::numeric_limits<double>::quiet_NaN();
}  // namespace

TEST_CASE("allclose: torch.allclose's rules for infinities and NaN") {
  CHECK_FALSE(allclose(f64({1.0}, {1}), f64({inf}, {1})));
  CHECK_FALSE(allclose(f64({inf}, {1}), f64({1.0}, {1})));
  CHECK_FALSE(allclose(f64({inf}, {1}), f64({-inf}, {1})));
  CHECK(allclose(f64({inf, -inf}, {2}), f64({inf, -inf}, {2})));
  CHECK_FALSE(allclose(f64({qnan}, {1}), f64({qnan}, {1})));
  CHECK(allclose(f64({qnan}, {1}), f64({qnan}, {1}), 1e-5, 1e-8, /*equal_nan=*/true));
  CHECK_FALSE(allclose(f64({qnan}, {1}), f64({1.0}, {1}), 1e-5, 1e-8, true));
  CHECK_FALSE(allclose(f64({1.0}, {1}), f64({qnan}, {1}), 1e-5, 1e-8, true));
  CHECK(allclose(f64({1.0, 2.0}, {2}), f64({1.0 + 1e-9, 2.0}, {2})));
  CHECK_FALSE(allclose(f64({1.0, 2.0}, {2}), f64({1.0, 2.1}, {2})));
  CHECK_FALSE(allclose(f64({1.0, 2.0}, {2}), f64({1.0, 2.0}, {1, 2})));  // shapes differ
}

TEST_CASE("check_against_reference: an infinity in the reference does not hide other differences") {
  Tensor x = f64({1.0, 2.0, 3.0}, {3});
  // The "fused" op flips a sign where the reference is finite; both give +inf at element 0.
  auto fused = [](const std::vector<Tensor>& v) { return v[0] * f64({inf, -1.0, 1.0}, {3}); };
  auto reference = [](const std::vector<Tensor>& v) { return v[0] * f64({inf, 1.0, 1.0}, {3}); };
  auto r = check_against_reference(fused, reference, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("output differs") != std::string::npos);
  CHECK(r.message.find("first at element 1 (-2 vs reference 2)") != std::string::npos);
  // Infinity against the other infinity, and NaN against a number, are mismatches too.
  auto pos = [](const std::vector<Tensor>& v) { return v[0] * f64({inf, 1.0, 1.0}, {3}); };
  auto neg = [](const std::vector<Tensor>& v) { return v[0] * f64({-inf, 1.0, 1.0}, {3}); };
  auto r2 = check_against_reference(pos, neg, {x});
  CHECK_FALSE(r2.ok);
  CHECK(r2.message.find("first at element 0 (inf vs reference -inf)") != std::string::npos);
  auto with_nan = [](const std::vector<Tensor>& v) { return v[0] * f64({qnan, 1.0, 1.0}, {3}); };
  CHECK_FALSE(check_against_reference(with_nan, reference, {x}).ok);
  // The same non-finite values on both sides agree.
  CHECK(check_against_reference(with_nan, with_nan, {x}).ok);
  CHECK(check_against_reference(reference, reference, {x}).ok);
}

TEST_CASE("check_against_reference: gradients are compared elementwise too") {
  Tensor x = test::leaf({3}, 7);
  auto a = [](const std::vector<Tensor>& v) { return v[0] * f64({inf, 2.0, 3.0}, {3}); };
  auto b = [](const std::vector<Tensor>& v) {  // same output, a wrong gradient at element 2
    Tensor scale = f64({inf, 2.0, 3.0}, {3});
    return v[0] * scale + (v[0] - v[0].detach()) * f64({0.0, 0.0, -6.0}, {3});
  };
  auto r = check_against_reference(a, b, {x});
  CHECK(r.output_err < 1e-12);
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("gradient of input 0 differs") != std::string::npos);
}

namespace {
// sqrt(x) has a finite tape gradient at x = 1e-7, but the central differences step over zero
// there and come out NaN: the check must fail, not pass on a NaN comparison.
struct FiniteGradAtEdge : Function<FiniteGradAtEdge> {
  static constexpr const char* name = "edge";
  static Tensor forward(Context& ctx, const Tensor& x) {
    ctx.save_for_backward({x});
    return sqrt(x);
  }
  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& g) {
    return {g[0] * 0.5 / sqrt(ctx.saved()[0] + 1e-3)};  // finite everywhere
  }
};
}  // namespace

TEST_CASE("gradcheck: NaN central differences against a finite gradient fail, saying where") {
  Tensor x = f64({4.0, 1e-7}, {2});
  x.requires_grad_();
  auto r = gradcheck([](const std::vector<Tensor>& v) { return FiniteGradAtEdge::apply(v[0]); }, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.element == 1);
  CHECK(std::isnan(r.numeric));
  CHECK(r.message.find("(not finite)") != std::string::npos);
  // an infinite gradient on the tape fails as well
  Tensor z = f64({0.0}, {1});
  z.requires_grad_();
  CHECK_FALSE(gradcheck([](const std::vector<Tensor>& v) { return sqrt(v[0]); }, {z}).ok);
}

namespace {
// First derivative right, second wrong: backward's result is differentiable but scaled by x wrongly.
struct WrongSecond : Function<WrongSecond> {
  static constexpr const char* name = "wrong_second";
  static Tensor forward(Context& ctx, const Tensor& x) {
    ctx.save_for_backward({x});
    return x * x * x;
  }
  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& g) {
    const Tensor& x = ctx.saved()[0];
    // 3 x^2 in value, but written through x.detach() for one factor: d/dx sees 3x, not 6x.
    return {g[0] * 3.0 * x * x.detach()};
  }
};
}  // namespace

TEST_CASE("gradgradcheck: passes on primitives, fails on a wrong double backward") {
  Tensor x = test::leaf({3}, 11), w = test::leaf({3, 2}, 12);
  auto ok = gradgradcheck([](const std::vector<Tensor>& v) { return tanh(matmul(reshape(v[0], {1, 3}), v[1])); },
                          {x, w});
  INFO(ok.message);
  CHECK(ok.ok);
  CHECK(gradcheck([](const std::vector<Tensor>& v) { return WrongSecond::apply(v[0]); }, {x}).ok);
  auto bad = gradgradcheck([](const std::vector<Tensor>& v) { return WrongSecond::apply(v[0]); }, {x});
  CHECK_FALSE(bad.ok);
  CHECK(bad.message.find("gradgradcheck: gradcheck failed") != std::string::npos);
  CHECK_ERROR(gradgradcheck([](const std::vector<Tensor>& v) { return v[0]; }, {zeros({2})}),
              "gradgradcheck: no input requires grad");
}

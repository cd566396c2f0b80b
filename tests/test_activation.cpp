// Activations (gelu, silu, elu, softplus, hardswish, mish) and their modules: values against
// closed forms, gradients at the edges, gradcheck, errors.
#include <cmath>

#include "helpers.hpp"

using namespace xg;
using test::f64;
using test::leaf;

namespace {

// Every value within `rel` of the expected one, relatively (exact where 0 is expected).
void check_values(const Tensor& t, const std::vector<double>& want, double rel = 1e-13) {
  auto got = t.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= rel * std::abs(want[i]));
  }
}

// The gradient of sum(f(x)) at each point of xs.
std::vector<double> grad_at(const std::function<Tensor(const Tensor&)>& f, const std::vector<double>& xs) {
  Tensor x = f64(xs, {static_cast<int64_t>(xs.size())});
  x.requires_grad_();
  sum(f(x)).backward();
  return x.grad().to_vector<double>();
}

// Points spanning underflow, the kinks and overflow of the stable forms.
const std::vector<double> kXs = {-800, -40, -3.5, -1, -1e-10, 0, 0.5, 2, 25};

}  // namespace

// Expected values from Python's math module (math.erf, math.expm1, math.log1p, math.tanh) on the
// closed forms in ops.hpp: python3 -c 'import math; ...' (PyTorch was not available here).
TEST_CASE("activations: values against closed forms") {
  Tensor x = f64(kXs, {9});
  check_values(gelu(x), {-0.0, -0.0, -0.0008142017766243903, -0.15865525393145707, -4.9999999996010574e-11, 0.0,
                         0.34573123063700656, 1.9544997361036416, 25.0});
  check_values(gelu(x, "tanh"), {-0.0, -0.0, -0.0006161976553737403, -0.15880800939172324, -4.9999999996010574e-11,
                                 0.0, 0.34571400982514394, 1.954597694087775, 25.0});
  check_values(silu(x), {-0.0, -1.6993417021166355e-16, -0.10259280762974711, -0.2689414213699951,
                         -4.9999999997500004e-11, 0.0, 0.3112296656009273, 1.7615941559557646, 24.9999999996528});
  check_values(elu(x), {-1.0, -1.0, -0.9698026165776815, -0.6321205588285577, -9.999999999500001e-11, 0.0, 0.5, 2.0,
                        25.0});
  check_values(elu(x, 0.5), {-0.5, -0.5, -0.48490130828884076, -0.31606027941427883, -4.9999999997500004e-11, 0.0,
                             0.5, 2.0, 25.0});
  // softplus(-40) = 4.2e-18: log(1 + exp(-40)) computed naively would be 0.
  check_values(softplus(x), {0.0, 4.248354255291589e-18, 0.029750418272620566, 0.31326168751822286,
                             0.6931471805099453, 0.6931471805599453, 0.9740769841801067, 2.1269280110429727, 25.0});
  check_values(softplus(x, 2.0, 5.0), {0.0, 9.024256939227076e-36, 0.00045573322688712237, 0.06346400552148625,
                                       0.34657359022997264, 0.34657359027997264, 0.6566308437591114,
                                       2.0090749639589047, 25.0});
  check_values(hardswish(x), {-0.0, -0.0, -0.0, -0.3333333333333333, -4.9999999998333336e-11, 0.0,
                              0.2916666666666667, 1.6666666666666667, 25.0});
  check_values(mish(x), {-0.0, -1.6993417021166355e-16, -0.10409575448637122, -0.30340146137410895,
                         -5.99999999968e-11, 0.0, 0.3752452113048951, 1.9439589595339946, 25.0});
  CHECK(erf(f64({0.5}, {1})).item<double>() == std::erf(0.5));
  CHECK(gelu(ones({2, 3})).dtype() == Dtype::f32);
  CHECK(gelu(ones({2, 3})).to_vector<float>()[0] == doctest::Approx(0.8413447460685429));
  // Past the threshold softplus is x itself; beta < 0 is allowed, as PyTorch.
  CHECK(softplus(f64({30}, {1})).item<double>() == 30.0);
  check_values(softplus(f64({1}, {1}), -1.0), {-0.31326168751822286}, 1e-15);
}

TEST_CASE("activations: gradients at the kinks and extremes, as PyTorch's backward") {
  // softplus' = sigmoid(beta x), 0.5 at 0 (not the subgradient of max(x, 0)); exactly 1 past the threshold.
  auto sp = grad_at([](const Tensor& x) { return softplus(x); }, {0, -800, 800, 21, 19});
  CHECK(sp[0] == 0.5);
  CHECK(sp[1] == 0.0);
  CHECK(sp[2] == 1.0);
  CHECK(sp[3] == 1.0);
  CHECK(sp[4] == doctest::Approx(1 / (1 + std::exp(-19.0))).epsilon(1e-14));
  // elu' is alpha at 0 (PyTorch's x <= 0 branch), alpha exp(x) below, 1 above.
  auto el = grad_at([](const Tensor& x) { return elu(x, 0.5); }, {0, -1e-10, -2, 3, -800, 800});
  CHECK(el[0] == 0.5);
  CHECK(el[1] == doctest::Approx(0.5 * std::exp(-1e-10)).epsilon(1e-14));
  CHECK(el[2] == doctest::Approx(0.5 * std::exp(-2.0)).epsilon(1e-14));
  CHECK(el[3] == 1.0);
  CHECK(el[4] == 0.0);
  CHECK(el[5] == 1.0);
  // hardswish': 0 below -3, x/3 + 1/2 on [-3, 3] (both ends included, as PyTorch), 1 above.
  CHECK(grad_at([](const Tensor& x) { return hardswish(x); }, {-4, -3, 0, 3, 4}) ==
        std::vector<double>{0, -0.5, 0.5, 1.5, 1});
  // gelu' = Phi(x) + x phi(x).
  auto ge = grad_at([](const Tensor& x) { return gelu(x); }, {0.7, -800, 800});
  const double phi = std::exp(-0.49 / 2) / std::sqrt(2 * M_PI), Phi = 0.5 * (1 + std::erf(0.7 / std::sqrt(2.0)));
  CHECK(ge[0] == doctest::Approx(Phi + 0.7 * phi).epsilon(1e-14));
  CHECK(ge[1] == 0.0);
  CHECK(ge[2] == 1.0);
  // silu' = s (1 + x (1 - s)); mish' = tanh(sp) + x sech^2(sp) sigmoid(x), sp = softplus(x).
  const double s = 1 / (1 + std::exp(-1.3)), spv = std::log1p(std::exp(1.3)), th = std::tanh(spv);
  CHECK(grad_at([](const Tensor& x) { return silu(x); }, {1.3})[0] == doctest::Approx(s * (1 + 1.3 * (1 - s))).epsilon(1e-14));
  CHECK(grad_at([](const Tensor& x) { return mish(x); }, {1.3})[0] ==
        doctest::Approx(th + 1.3 * (1 - th * th) * s).epsilon(1e-14));
  // No NaN or infinity from a discarded branch, at any of the extreme points.
  for (auto f : std::vector<std::function<Tensor(const Tensor&)>>{
           [](const Tensor& x) { return gelu(x); }, [](const Tensor& x) { return gelu(x, "tanh"); },
           [](const Tensor& x) { return silu(x); }, [](const Tensor& x) { return elu(x); },
           [](const Tensor& x) { return softplus(x); }, [](const Tensor& x) { return softplus(x, 0.5, 1000); },
           [](const Tensor& x) { return hardswish(x); }, [](const Tensor& x) { return mish(x); }}) {
    for (double g : grad_at(f, {-1e4, -800, -40, -1e-300, 0, 1e-300, 40, 800, 1e4})) CHECK(std::isfinite(g));
  }
}

TEST_CASE("gradcheck: activations, and gelu's second derivative") {
  Tensor x = leaf({4, 5}, 61);
  Tensor wide = mul(leaf({4, 5}, 62), 4.0).detach().requires_grad_();  // reaches past hardswish's +-3
  for (const Tensor& in : {x, wide}) {
    CHECK_GRADCHECK([](auto& v) { return gelu(v[0]); }, {in});
    CHECK_GRADCHECK([](auto& v) { return gelu(v[0], "tanh"); }, {in});
    CHECK_GRADCHECK([](auto& v) { return silu(v[0]); }, {in});
    CHECK_GRADCHECK([](auto& v) { return elu(v[0], 1.7); }, {in});
    CHECK_GRADCHECK([](auto& v) { return softplus(v[0]); }, {in});
    CHECK_GRADCHECK([](auto& v) { return softplus(v[0], 3.0, 4.0); }, {in});
    CHECK_GRADCHECK([](auto& v) { return hardswish(v[0]); }, {in});
    CHECK_GRADCHECK([](auto& v) { return mish(v[0]); }, {in});
  }
  CHECK_GRADCHECK([](auto& v) { return erf(v[0]); }, {x});
  // Small inputs, where log1p and expm1 matter.
  Tensor tiny = mul(leaf({6}, 63), 1e-6).detach().requires_grad_();
  CHECK_GRADCHECK([](auto& v) { return div(elu(v[0]), 1e-6); }, {tiny});
  CHECK_GRADCHECK([](auto& v) { return softplus(v[0]); }, {tiny});
  // erf's backward is made of ops: gelu'' = phi(x) (2 - x^2).
  Tensor p = f64({0.3, -1.2}, {2});
  p.requires_grad_();
  Tensor g = grad({sum(gelu(p))}, {p}, {}, {.create_graph = true})[0];
  auto h = grad({sum(g)}, {p})[0].to_vector<double>();
  for (int i = 0; i < 2; ++i) {
    const double v = p.to_vector<double>()[i];
    CHECK(h[i] == doctest::Approx(std::exp(-v * v / 2) / std::sqrt(2 * M_PI) * (2 - v * v)).epsilon(1e-12));
  }
}

TEST_CASE("activation modules and Identity") {
  Tensor x = f64({-1, 0.5, 2}, {3});
  CHECK(nn::GELU()(x).to_vector<double>() == gelu(x).to_vector<double>());
  CHECK(nn::GELU("tanh")(x).to_vector<double>() == gelu(x, "tanh").to_vector<double>());
  CHECK(nn::SiLU()(x).to_vector<double>() == silu(x).to_vector<double>());
  CHECK(nn::ELU(0.3)(x).to_vector<double>() == elu(x, 0.3).to_vector<double>());
  CHECK(nn::Softplus(2, 1)(x).to_vector<double>() == softplus(x, 2, 1).to_vector<double>());
  CHECK(nn::Hardswish()(x).to_vector<double>() == hardswish(x).to_vector<double>());
  CHECK(nn::Mish()(x).to_vector<double>() == mish(x).to_vector<double>());
  CHECK(nn::Identity()(x).same(x));
  nn::Sequential seq(nn::Linear(3, 4), nn::GELU("tanh"), nn::Identity(), nn::Softplus(2, 10));
  CHECK(fmt::format("{}", seq) ==
        "Sequential(\n  (0): Linear(in_features=3, out_features=4, bias=true)\n  (1): GELU(approximate=tanh)\n"
        "  (2): Identity()\n  (3): Softplus(beta=2, threshold=10)\n)");
  CHECK(fmt::format("{}", nn::ELU()) == "ELU(alpha=1)");
}

TEST_CASE("activation errors") {
  Tensor i = from_vector<int64_t>({1, 2});
  CHECK_ERROR(gelu(zeros({2}), "exact"), "gelu: approximate must be \"none\" or \"tanh\", got \"exact\"");
  CHECK_ERROR(gelu(i), "gelu: needs a floating tensor, got i64");
  CHECK_ERROR(silu(i), "silu: needs a floating tensor, got i64");
  CHECK_ERROR(elu(i), "elu: needs a floating tensor, got i64");
  CHECK_ERROR(elu(zeros({2}), NAN), "elu: alpha must be finite, got nan");
  CHECK_ERROR(softplus(zeros({2}), 0.0), "softplus: beta must be finite and non-zero, got 0");
  CHECK_ERROR(softplus(i), "softplus: needs a floating tensor, got i64");
  CHECK_ERROR(hardswish(Tensor()), "hardswish: undefined tensor");
  CHECK_ERROR(mish(i), "mish: needs a floating tensor, got i64");
  CHECK_ERROR(erf(i), "erf: needs a floating tensor, got i64");
  CHECK_ERROR(nn::GELU("fast"), "GELU: approximate must be \"none\" or \"tanh\", got \"fast\"");
  CHECK_ERROR(nn::ELU(INFINITY), "ELU: alpha must be finite, got inf");
  CHECK_ERROR(nn::Softplus(0.0), "Softplus: beta must be finite and non-zero, got 0");
  CHECK_ERROR(nn::Identity()(Tensor()), "Identity: undefined input");
}

TEST_CASE("gelu: the fused kernel against its composition ref::gelu, and f32 against f64") {
  // f64: the fused forward and backward against the tape's gradient of the composition.
  Tensor in = (leaf({4, 5, 6}, 3) * 3.0).detach();
  in.requires_grad_();
  auto r = check_against_reference([](auto& v) { return gelu(v[0]); }, [](auto& v) { return ref::gelu(v[0]); }, {in});
  INFO(r.message);
  CHECK(r.ok);
  // f32 (vectorised erf and exp): values and gradients within a few float roundings of the f64 ones,
  // densely over the range where erf's polynomials switch (|x| / sqrt 2 = 1 and 4) and beyond.
  std::vector<double> xs;
  for (double v = -12; v <= 12; v += 1.0 / 1024) xs.push_back(v);
  for (double v : {0.0, -0.0, 1e-30, -1e-30, 1e-3, 87.0, -87.0, 200.0, -200.0, 1e30, -1e30}) xs.push_back(v);
  const int64_t n = static_cast<int64_t>(xs.size());
  Tensor x32 = f64(xs, {n}).to(Dtype::f32);
  x32.requires_grad_();
  Tensor y32 = gelu(x32);
  sum(y32).backward();
  const auto b = y32.to_vector<double>(), gb = x32.grad().to_vector<double>();
  const auto xf = x32.to_vector<double>();  // the f32 inputs, as f64
  double worst = 0, worst_grad = 0;
  for (int64_t i = 0; i < n; ++i) {
    // Compare at the float-rounded input, so that only the kernel's own error counts.
    const double x = xf[i], phi = 0.5 * std::erfc(-x / std::sqrt(2.0));
    const double want = x * phi, want_grad = phi + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
    worst = std::max(worst, std::abs(b[i] - want) / std::max(1.0, std::abs(x)));
    worst_grad = std::max(worst_grad, std::abs(gb[i] - want_grad) / std::max(1.0, std::abs(x)));
  }
  CHECK(worst < 3e-7);
  CHECK(worst_grad < 3e-7);
  // Non-finite inputs as the composition gives them.
  Tensor special = from_vector<float>({INFINITY, -INFINITY, NAN}, {3});
  const auto s = gelu(special).to_vector<float>(), sr = ref::gelu(special).to_vector<float>();
  CHECK(s[0] == INFINITY);
  for (int i = 1; i < 3; ++i) CHECK(std::isnan(s[i]) == std::isnan(sr[i]));
}

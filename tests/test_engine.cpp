// The tape: accumulation, pruning, NoGradGuard, freed graphs, deep chains, higher order, memory.
#include <fstream>

#include "helpers.hpp"

using namespace xg;
using test::f64;

TEST_CASE("micrograd example: values and gradients by hand") {
  Tensor a = f64({2.0}, {}), b = f64({-3.0}, {}), c = f64({10.0}, {});
  a.requires_grad_(), b.requires_grad_(), c.requires_grad_();
  Tensor e = a * b;          // -6
  Tensor d = e + c;          // 4
  Tensor f = d * d + d / a;  // 16 + 2 = 18
  CHECK(f.item<double>() == doctest::Approx(18.0));
  f.backward();
  // df/dd = 2d + 1/a = 8.5; df/da = df/dd * b - d/a^2 = -25.5 - 1 = -26.5
  CHECK(a.grad().item<double>() == doctest::Approx(-26.5));
  CHECK(b.grad().item<double>() == doctest::Approx(8.5 * 2.0));
  CHECK(c.grad().item<double>() == doctest::Approx(8.5));
}

TEST_CASE("gradients accumulate across uses and across backward calls") {
  Tensor x = f64({3.0}, {1});
  x.requires_grad_();
  Tensor y = x * x + x;  // used three times
  y.backward(ones({1}, Dtype::f64));
  CHECK(x.grad().item<double>() == doctest::Approx(7.0));
  Tensor z = x * 2.0;
  z.backward(ones({1}, Dtype::f64));
  CHECK(x.grad().item<double>() == doctest::Approx(9.0));
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("only needed gradients are computed") {
  Tensor w = test::leaf({3, 2});
  Tensor x = randn({4, 3}, Dtype::f64);  // no grad
  Tensor y = sum(matmul(x, w));
  y.backward();
  CHECK(w.grad().defined());
  CHECK_FALSE(x.requires_grad());
}

namespace {
int spy_calls = 0;
struct Spy : Function<Spy> {
  static constexpr const char* name = "spy";
  static Tensor forward(Context&, const Tensor& t) { return t.clone(); }
  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& g) {
    ++spy_calls;
    return {ctx.needs_input_grad(0) ? g[0] : Tensor()};
  }
};
}  // namespace

TEST_CASE("xg::grad skips branches that lead to no requested input") {
  Tensor a = test::leaf({2}), b = test::leaf({2}, 2);
  spy_calls = 0;
  Tensor y = sum(a * 3.0) + sum(Spy::apply(b));
  Tensor ga = grad({y}, {a})[0];
  CHECK(ga.to_vector<double>() == std::vector<double>{3.0, 3.0});
  CHECK(spy_calls == 0);
  CHECK_FALSE(b.grad().defined());
  Tensor y2 = sum(Spy::apply(b));
  y2.backward();
  CHECK(spy_calls == 1);
}

TEST_CASE("NoGradGuard stops recording, per thread") {
  Tensor x = test::leaf({2});
  {
    NoGradGuard g;
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  CHECK((x * 2.0).requires_grad());
}

TEST_CASE("a freed graph gives a clear error on the second backward; retain_graph allows it") {
  Tensor x = test::leaf({2});
  Tensor y = sum(exp(x));
  y.backward();
  CHECK_ERROR(y.backward(), "backward: the graph through 'sum' was freed by an earlier backward");
  Tensor z = sum(exp(x));
  z.backward({.retain_graph = true});
  Tensor g1 = x.grad().clone();
  z.backward();
  CHECK(allclose(x.grad(), g1 + exp(x).detach() , 1e-12));
}

TEST_CASE("backward errors") {
  Tensor x = test::leaf({2});
  CHECK_ERROR((x * 2.0).backward(), "backward: grad can be created implicitly only for scalar outputs, got shape [2]");
  CHECK_ERROR(ones({2}).backward(), "backward: the tensor (shape [2]) does not require grad");
  CHECK_ERROR((x * 2.0).backward(ones({3}, Dtype::f64)), "backward: grad_output has shape [3], but the output has shape [2]");
  CHECK_ERROR(grad({sum(x)}, {ones({2})}), "grad: input 0 (shape [2]) does not require grad");
}

TEST_CASE("a 100,000-op chain backpropagates and is freed without deep recursion") {
  Tensor x = f64({1.0}, {1});
  x.requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y * 1.0000001;
  sum(y).backward();
  CHECK(x.grad().item<double>() == doctest::Approx(std::pow(1.0000001, 100000)).epsilon(1e-9));
  y = Tensor();  // destroying the chain must not overflow the stack either
  Tensor z = x;
  for (int i = 0; i < 100000; ++i) z = z + 1.0;
  z = Tensor();  // never backpropagated: freed on destruction
  CHECK(x.grad().defined());
}

TEST_CASE("second order: gradients of gradients with create_graph") {
  Tensor x = f64({0.5, -1.5, 2.0}, {3});
  x.requires_grad_();
  Tensor y = sum(pow(x, 3.0));
  Tensor g = grad({y}, {x}, {}, {.create_graph = true})[0];  // 3x^2
  CHECK(allclose(g, 3.0 * x.detach() * x.detach(), 1e-12));
  Tensor h = grad({sum(g)}, {x})[0];  // 6x
  CHECK(allclose(h, 6.0 * x.detach(), 1e-12));
  // Hessian-vector product of tanh(x)·w, through backward(create_graph).
  Tensor w = test::leaf({3}, 7);
  Tensor l = sum(tanh(x * w));
  l.backward({.create_graph = true});
  Tensor gx = x.grad();
  CHECK(gx.requires_grad());
  Tensor hv = grad({sum(gx)}, {w})[0];
  // d/dw sum_i w_i (1 - tanh^2(x_i w_i)) = (1 - t^2) - 2 t (1 - t^2) x w
  Tensor t = tanh(x.detach() * w.detach());
  Tensor expect = (1.0 - t * t) - 2.0 * t * (1.0 - t * t) * x.detach() * w.detach();
  CHECK(allclose(hv, expect, 1e-10));
}

TEST_CASE("the functional grad leaves .grad alone and reaches non-leaf inputs") {
  Tensor x = test::leaf({3});
  Tensor m = x * 2.0;
  Tensor y = sum(m * m);
  auto gs = grad({y}, {m, x});
  CHECK(allclose(gs[0], 2.0 * m.detach(), 1e-12));
  CHECK(allclose(gs[1], 8.0 * x.detach(), 1e-12));
  CHECK_FALSE(x.grad().defined());
  Tensor unused = test::leaf({1});
  CHECK_FALSE(grad({sum(x)}, {unused})[0].defined());
  CHECK_ERROR(grad({sum(x * 1.0)}, {unused}, {}, {.allow_unused = false}), "grad: input 0 is not used");
}

namespace {
long rss_kb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * 4;
}
}  // namespace

#if defined(__SANITIZE_ADDRESS__)
constexpr bool under_asan = true;  // ASan's quarantine holds freed memory, so RSS grows by design
#else
constexpr bool under_asan = false;
#endif

TEST_CASE("a 1,000-step training loop keeps a flat RSS" * doctest::skip(under_asan)) {
  manual_seed(0);
  Tensor w1 = randn({64, 32}) * 0.1, w2 = randn({32, 10}) * 0.1;
  w1.requires_grad_(), w2.requires_grad_();
  Tensor x = randn({128, 64});
  Tensor labels = randint(0, 10, {128});
  auto step = [&] {
    Tensor loss = cross_entropy(matmul(relu(matmul(x, w1)), w2), labels);
    w1.zero_grad(), w2.zero_grad();
    loss.backward();
    NoGradGuard ng;
    w1.add_(w1.grad(), -0.1), w2.add_(w2.grad(), -0.1);
    return loss.item<float>();
  };
  float first = step();
  for (int i = 0; i < 100; ++i) step();
  long before = rss_kb();
  float last = 0;
  for (int i = 0; i < 900; ++i) last = step();
  long after = rss_kb();
  CHECK(last < first);
  INFO("RSS before " << before << " kB, after " << after << " kB");
  CHECK(after - before < 2048);  // a leak of one graph per step would be ~100 kB/step
}

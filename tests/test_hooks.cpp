// Gradient hooks, retain_grad, and the engine's checks on the gradients a backward returns.
#include "helpers.hpp"

using namespace xg;
using test::f64;

TEST_CASE("a leaf's hook sees its whole gradient and may replace it; handles remove hooks") {
  Tensor x = f64({1.0, 2.0}, {2});
  x.requires_grad_();
  std::vector<std::vector<double>> seen;
  HookHandle h1 = x.register_hook([&](const Tensor& g) { seen.push_back(g.to_vector<double>()); });
  HookHandle h2 = x.register_hook([](const Tensor& g) { return g * 10.0; });
  Tensor y = sum(x * 3.0 + x);  // two uses: the hook sees their sum, once
  y.backward();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == std::vector<double>{4.0, 4.0});
  CHECK(x.grad().to_vector<double>() == std::vector<double>{40.0, 40.0});
  h2.remove();
  x.zero_grad();
  sum(x * 3.0).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3.0, 3.0});
  CHECK(seen.size() == 2);
  h1.remove();
  h1.remove();  // twice is harmless
  sum(x).backward();
  CHECK(seen.size() == 2);
}

TEST_CASE("hooks run in registration order, each on the previous one's result") {
  Tensor x = test::leaf({3});
  std::vector<int> order;
  x.register_hook([&](const Tensor& g) { order.push_back(1); return g + 1.0; });
  x.register_hook([&](const Tensor& g) { order.push_back(2); return g * 2.0; });
  sum(x).backward();
  CHECK(order == std::vector<int>{1, 2});
  CHECK(allclose(x.grad(), full({3}, 4.0, Dtype::f64)));
}

TEST_CASE("a non-leaf's hook changes what flows on to its inputs; retain_grad keeps its gradient") {
  Tensor x = test::leaf({3});
  Tensor h = x * 2.0;
  h.retain_grad();
  CHECK(h.retains_grad());
  CHECK_FALSE((x * 3.0).retains_grad());
  h.register_hook([](const Tensor& g) { return -g; });
  Tensor y = sum(h * h);
  y.backward();
  // dy/dh = 2h, negated by the hook; .grad of h holds the hooked gradient, as in PyTorch.
  CHECK(allclose(h.grad(), -4.0 * x.detach(), 1e-12));
  CHECK(allclose(x.grad(), -8.0 * x.detach(), 1e-12));
  // retained gradients accumulate across backward calls, like a leaf's
  Tensor h2 = x * 1.0;
  h2.retain_grad();
  sum(h2).backward({.retain_graph = true});
  sum(h2).backward();
  CHECK(allclose(h2.grad(), full({3}, 2.0, Dtype::f64)));
}

TEST_CASE("hooks through a model: freeze a layer's gradient, record gradient norms") {
  manual_seed(3);
  nn::Sequential net(nn::Linear(4, 8), nn::ReLU(), nn::Linear(8, 3));
  std::vector<Tensor> params = net.parameters();
  std::vector<double> norms;
  for (const Tensor& p : params)
    p.register_hook([&norms](const Tensor& g) { norms.push_back(std::sqrt(sum(g * g).item<float>())); });
  params[0].register_hook([](const Tensor& g) { return zeros_like(g); });  // after the norm hook
  Tensor x = randn({5, 4});
  Tensor labels = from_vector<int64_t>({0, 1, 2, 0, 1}, {5});
  cross_entropy(net.forward(x), labels).backward();
  CHECK(norms.size() == params.size());
  for (double n : norms) CHECK(n > 0);
  CHECK(sum(abs(params[0].grad())).item<float>() == 0.0f);
  CHECK(sum(abs(params[2].grad())).item<float>() > 0.0f);
}

TEST_CASE("functional grad applies hooks too, and leaves .grad alone") {
  Tensor x = test::leaf({2});
  x.register_hook([](const Tensor& g) { return g * 5.0; });
  Tensor g = grad({sum(x)}, {x})[0];
  CHECK(allclose(g, full({2}, 5.0, Dtype::f64)));
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("hook errors") {
  Tensor plain = zeros({2});
  CHECK_ERROR(plain.register_hook([](const Tensor& g) { return g; }), "register_hook: the tensor (shape [2]) does "
                                                                     "not require grad");
  CHECK_ERROR(plain.retain_grad(), "retain_grad: the tensor (shape [2]) does not require grad");
  Tensor x = test::leaf({3});
  x.register_hook([](const Tensor&) { return zeros({4}, Dtype::f64); });
  CHECK_ERROR(sum(x).backward(), "hook on 'leaf': returned a gradient of shape [4], expected [3]");
  Tensor y = test::leaf({3});
  Tensor h = exp(y);
  h.register_hook([](const Tensor&) { return zeros({1}, Dtype::f64); });
  CHECK_ERROR(sum(h).backward(), "hook on 'exp': returned a gradient of shape [1], expected [3]");
}

namespace {
// A custom op whose backward returns its gradient in another dtype than its input's.
struct WrongDtype : Function<WrongDtype> {
  static constexpr const char* name = "wrong_dtype";
  static Tensor forward(Context&, const Tensor& x) { return x.clone(); }
  static std::vector<Tensor> backward(Context&, const std::vector<Tensor>& g) { return {g[0].to(Dtype::f64)}; }
};
struct IntegerGrad : Function<IntegerGrad> {
  static constexpr const char* name = "integer_grad";
  static Tensor forward(Context&, const Tensor& x) { return x.clone(); }
  static std::vector<Tensor> backward(Context&, const std::vector<Tensor>& g) { return {zeros(g[0].shape(), Dtype::i64)}; }
};
}  // namespace

TEST_CASE("a gradient of another floating dtype is cast to its input's, for leaves and non-leaves") {
  Tensor x = randn({3});
  x.requires_grad_();
  WrongDtype::apply(x).backward(ones({3}));  // leaf path
  CHECK(x.grad().dtype() == Dtype::f32);
  Tensor x2 = randn({3});
  x2.requires_grad_();
  Tensor mid = x2 * 2.0;
  Tensor y = WrongDtype::apply(mid) * 3.0;  // non-leaf path: mul's backward gets an f32 gradient
  y.backward(ones({3}));
  CHECK(x2.grad().dtype() == Dtype::f32);
  CHECK(allclose(x2.grad(), full({3}, 6.0)));
  Tensor x3 = randn({3});
  x3.requires_grad_();
  CHECK_ERROR(IntegerGrad::apply(x3).backward(ones({3})), "backward of 'integer_grad': gradient 0 has dtype i64, "
                                                          "expected f32");
}

TEST_CASE("a leaf's hook runs as soon as its gradient is complete, before earlier layers' backward") {
  Tensor x = test::leaf({3}, 1), w1 = test::leaf({3}, 2), w2 = test::leaf({3}, 3);
  std::vector<std::string> order;
  w1.register_hook([&](const Tensor&) { order.push_back("w1"); });
  w2.register_hook([&](const Tensor&) { order.push_back("w2"); });
  Tensor h = x * w1;
  h.register_hook([&](const Tensor&) { order.push_back("h"); });
  // w2 is used twice, both after h: its hook sees the sum of both uses, and runs before h's gradient
  // flows on into w1.
  std::vector<double> seen;
  w2.register_hook([&](const Tensor& g) { seen = g.to_vector<double>(); });
  sum(h * w2 + w2 * 2.0).backward();
  CHECK(order == std::vector<std::string>{"w2", "h", "w1"});
  CHECK(allclose(from_vector(seen, {3}), h.detach() + 2.0));
  CHECK(allclose(w2.grad(), h.detach() + 2.0));
}

TEST_CASE("queue_callback runs after every gradient is stored, once per backward; refused outside one") {
  Tensor a = test::leaf({2}, 1), b = test::leaf({2}, 2);
  int calls = 0;
  bool stored = false;
  a.register_hook([&](const Tensor&) {
    queue_callback([&] {
      ++calls;
      stored = a.grad().defined() && b.grad().defined();
    });
  });
  sum(a * b).backward();
  CHECK(calls == 1);
  CHECK(stored);
  CHECK_ERROR(queue_callback([] {}), "queue_callback: no backward pass is running");
  // A backward that fails runs no callback and stores no gradient.
  a.zero_grad();
  b.zero_grad();
  Tensor y = sum(a * b);
  y.backward({.retain_graph = true});
  CHECK(calls == 2);
  a.zero_grad();
  b.register_hook([](const Tensor& g) { return g.to(Dtype::i64); });  // refused: not floating
  CHECK_ERROR(y.backward(), "hook of 'leaf'");
  CHECK(calls == 2);
  CHECK_FALSE(a.grad().defined());
}

// The README's API examples, compiled and run so that the README stays true.
#include "helpers.hpp"

using namespace xg;

TEST_CASE("README: the API in a few examples") {
  Tensor w = randn({3, 2}, Dtype::f64);
  w.requires_grad_();
  Tensor x = randn({4, 3}, Dtype::f64);
  Tensor loss = mean(relu(matmul(x, w)) * 2.0);
  loss.backward();
  CHECK(w.grad().shape() == Shape{3, 2});
  CHECK(fmt::format("{}", w.grad()).find("shape=[3,2]") != std::string::npos);

  Tensor g = grad({sum(pow(w, 3.0))}, {w}, {}, {.create_graph = true})[0];
  Tensor h = grad({sum(g)}, {w})[0];
  CHECK(allclose(h, 6.0 * w.detach(), 1e-12));

  Tensor img = randn({8, 3, 32, 32}), k = randn({16, 3, 3, 3});
  Tensor y = max_pool2d(relu(conv2d(img, k, Tensor(), {.stride = 1, .padding = 1})), {.kernel = 2});
  Tensor y_ref = ref::max_pool2d(relu(ref::conv2d(img, k, Tensor(), {.padding = 1})), {.kernel = 2});
  CHECK(y.shape() == Shape{8, 16, 16, 16});
  CHECK(allclose(y, y_ref, 1e-4, 1e-4));

  GradcheckResult r = gradcheck([](auto& v) { return tanh(matmul(v[0], v[1])); }, {x, w});
  CHECK(r.ok);
  CHECK(fmt::format("{}", r).rfind("gradcheck ok", 0) == 0);
  GradcheckResult r2 = gradgradcheck([](auto& v) { return tanh(matmul(v[0], v[1])); }, {x, w});
  CHECK(r2.ok);

  w.zero_grad();
  HookHandle hook = w.register_hook([](const Tensor& g) { return clamp(g, -1.0, 1.0); });
  Tensor hidden = relu(matmul(x, w));
  hidden.retain_grad();
  sum(hidden * 100.0).backward();
  CHECK(hidden.grad().defined());
  CHECK(max(abs(w.grad())).item<double>() <= 1.0);
  hook.remove();
  CHECK_ERROR(matmul(zeros({2, 3}), zeros({4, 5})), "matmul: shapes [2,3] and [4,5] cannot be multiplied (3 vs 4)");
}

// Elementwise ops: values by hand, broadcasting, gradcheck (including reuse in one graph), errors.
#include <cmath>

#include "helpers.hpp"

using namespace xg;
using test::f64;
using test::leaf;

TEST_CASE("binary ops: values with broadcasting") {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = f64({10, 20, 30}, {3});
  CHECK((a + b).to_vector<double>() == std::vector<double>{11, 22, 33, 14, 25, 36});
  CHECK((a - b).to_vector<double>() == std::vector<double>{-9, -18, -27, -6, -15, -24});
  Tensor c = f64({2, 4}, {2, 1});
  CHECK((a * c).to_vector<double>() == std::vector<double>{2, 4, 6, 16, 20, 24});
  CHECK((a / c).to_vector<double>() == std::vector<double>{0.5, 1, 1.5, 1, 1.25, 1.5});
  CHECK((c + b).shape() == Shape{2, 3});
  CHECK((2.0 - a).to_vector<double>()[0] == 1.0);
  CHECK(maximum(a, f64({3}, {})).to_vector<double>() == std::vector<double>{3, 3, 3, 4, 5, 6});
  CHECK(minimum(a, f64({3}, {})).to_vector<double>() == std::vector<double>{1, 2, 3, 3, 3, 3});
  CHECK(gt(a, 3.0).to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0, 1, 1, 1});
  CHECK(eq(a, b).dtype() == Dtype::i64);
  CHECK(where(gt(a, 3.0), a, 0.0).to_vector<double>() == std::vector<double>{0, 0, 0, 4, 5, 6});
  // A 5-D broadcast that exercises the odometer over several outer dims.
  Tensor p = arange(24, Dtype::f64);
  Tensor q = reshape(p, {2, 1, 3, 1, 4}) + reshape(arange(2, Dtype::f64), {1, 2, 1, 1, 1});
  CHECK(q.shape() == Shape{2, 2, 3, 1, 4});
  CHECK(q.to_vector<double>()[12] == 1.0);  // [0,1,0,0,0] = p[0] + 1
  CHECK(q.to_vector<double>()[47] == 24.0);  // [1,1,2,0,3] = p[23] + 1
}

TEST_CASE("unary ops: values") {
  Tensor x = f64({-2, -0.5, 0.5, 2}, {4});
  CHECK(relu(x).to_vector<double>() == std::vector<double>{0, 0, 0.5, 2});
  CHECK(leaky_relu(x, 0.1).to_vector<double>()[0] == doctest::Approx(-0.2));
  CHECK(abs(x).to_vector<double>() == std::vector<double>{2, 0.5, 0.5, 2});
  CHECK(clamp(x, -1, 1).to_vector<double>() == std::vector<double>{-1, -0.5, 0.5, 1});
  CHECK(sigmoid(f64({0}, {1})).item<double>() == 0.5);
  CHECK(tanh(x).to_vector<double>()[3] == doctest::Approx(std::tanh(2.0)));
  CHECK(exp(log(f64({3}, {1}))).item<double>() == doctest::Approx(3.0));
  CHECK(sqrt(f64({9}, {1})).item<double>() == 3.0);
  CHECK(pow(f64({2}, {1}), 3.0).item<double>() == doctest::Approx(8.0));
  CHECK(sign(x).to_vector<double>() == std::vector<double>{-1, -1, 1, 1});
  CHECK(exp(from_vector<int64_t>({0})).dtype() == Dtype::f32);
}

TEST_CASE("NaN and infinity propagate as IEEE does") {
  Tensor x = f64({NAN, INFINITY, -INFINITY}, {3});
  auto r = relu(x).to_vector<double>();
  CHECK(std::isnan(r[0]));
  CHECK(r[1] == INFINITY);
  CHECK(r[2] == 0.0);
  CHECK(std::isnan((x * 0.0).to_vector<double>()[1]));
  CHECK(std::isnan(maximum(x, f64({0}, {})).to_vector<double>()[0]));
  CHECK(exp(x).to_vector<double>()[2] == 0.0);
}

TEST_CASE("gradcheck: binary ops with broadcasting") {
  Tensor a = leaf({2, 3}, 1), b = leaf({3}, 2), c = leaf({2, 1}, 3);
  auto pos = [](const Tensor& t) { return add(abs(t), 0.5); };
  CHECK_GRADCHECK([](auto& v) { return add(v[0], v[1]); }, {a, b});
  CHECK_GRADCHECK([](auto& v) { return sub(v[0], v[1]); }, {a, c});
  CHECK_GRADCHECK([](auto& v) { return mul(v[0], v[1]); }, {b, c});
  CHECK_GRADCHECK([&](auto& v) { return div(v[0], pos(v[1])); }, {a, c});
  CHECK_GRADCHECK([](auto& v) { return maximum(v[0], v[1]); }, {a, b});
  CHECK_GRADCHECK([](auto& v) { return minimum(v[0], v[1]); }, {a, c});
  CHECK_GRADCHECK([](auto& v) { return where(gt(v[0], 0.0), v[0], v[1]); }, {a, b});
  CHECK_GRADCHECK([](auto& v) { return v[0] * 3.0 - 2.0 / (v[0] * v[0] + 1.0); }, {a});
}

TEST_CASE("gradcheck: an op used twice in one graph") {
  Tensor a = leaf({3}, 4), b = leaf({3}, 5);
  CHECK_GRADCHECK([](auto& v) { return mul(v[0], v[0]); }, {a});
  CHECK_GRADCHECK([](auto& v) {
    Tensor s = add(v[0], v[1]);
    return mul(s, tanh(s)) + s;
  }, {a, b});
}

TEST_CASE("gradcheck: unary ops") {
  Tensor x = leaf({2, 3}, 6);
  Tensor p = add(abs(leaf({2, 3}, 7)), 0.2).detach();
  p.requires_grad_();
  CHECK_GRADCHECK([](auto& v) { return neg(v[0]); }, {x});
  CHECK_GRADCHECK([](auto& v) { return exp(v[0]); }, {x});
  CHECK_GRADCHECK([](auto& v) { return log(v[0]); }, {p});
  CHECK_GRADCHECK([](auto& v) { return sqrt(v[0]); }, {p});
  CHECK_GRADCHECK([](auto& v) { return pow(v[0], 2.5); }, {p});
  CHECK_GRADCHECK([](auto& v) { return pow(v[0], 2.0); }, {x});
  CHECK_GRADCHECK([](auto& v) { return abs(v[0]); }, {x});
  CHECK_GRADCHECK([](auto& v) { return relu(v[0]); }, {x});
  CHECK_GRADCHECK([](auto& v) { return leaky_relu(v[0], 0.2); }, {x});
  CHECK_GRADCHECK([](auto& v) { return sigmoid(v[0]); }, {x});
  CHECK_GRADCHECK([](auto& v) { return tanh(v[0]); }, {x});
  CHECK_GRADCHECK([](auto& v) { return clamp(v[0], -0.5, 0.5); }, {x});
  CHECK_GRADCHECK([](auto& v) { return clamp_min(v[0], 0.1); }, {x});
}

TEST_CASE("gradients cross dtype conversions back to the input's dtype") {
  Tensor x = leaf({3}, 8);
  sum(x.to(Dtype::f32) * 2.0).backward();
  CHECK(x.grad().dtype() == Dtype::f64);
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
  Tensor f = ones({2});
  f.requires_grad_();
  sum(f * ones({2}, Dtype::f64)).backward();  // promoted to f64, gradient back in f32
  CHECK(f.grad().dtype() == Dtype::f32);
}

TEST_CASE("elementwise errors") {
  CHECK_ERROR(add(zeros({2, 3}), zeros({4})), "add: shapes [2,3] and [4] cannot be broadcast together");
  CHECK_ERROR(mul(zeros({2}), Tensor()), "mul: undefined tensor operand");
  CHECK_ERROR(where(zeros({2}), zeros({3}), zeros({3})), "where: shapes [2] and [3] cannot be broadcast together");
  CHECK_ERROR(clamp(zeros({2}), 1, 0), "clamp: lo 1 is greater than hi 0");
  Tensor x = ones({2});
  x.requires_grad_();
  CHECK_ERROR(x.to(Dtype::i64), "to: cannot convert a tensor that requires grad to i64");
}

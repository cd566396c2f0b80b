// Reductions: values over any dims, keepdim, arg-forms, gradcheck, errors.
#include "helpers.hpp"

using namespace xg;
using test::f64;
using test::leaf;

TEST_CASE("reductions: values") {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(sum(a).item<double>() == 21);
  CHECK(sum(a, {0}).to_vector<double>() == std::vector<double>{5, 7, 9});
  CHECK(sum(a, {1}, true).shape() == Shape{2, 1});
  CHECK(sum(a, {-1}).to_vector<double>() == std::vector<double>{6, 15});
  CHECK(mean(a, {0, 1}).item<double>() == 3.5);
  CHECK(var(a, {1}).to_vector<double>() == std::vector<double>{1, 1});
  CHECK(var(a, {1}, false).to_vector<double>()[0] == doctest::Approx(2.0 / 3.0));
  CHECK(max(a, 1).to_vector<double>() == std::vector<double>{3, 6});
  CHECK(min(a, 0).to_vector<double>() == std::vector<double>{1, 2, 3});
  CHECK(max(a).item<double>() == 6);
  CHECK(argmax(a, 1).to_vector<int64_t>() == std::vector<int64_t>{2, 2});
  CHECK(argmin(a, 0, true).shape() == Shape{1, 3});
  CHECK(argmax(f64({1, 3, 3}, {3}), 0).item<int64_t>() == 1);  // ties to the first
  CHECK(sum(from_vector<int64_t>({1, 2, 3})).item<int64_t>() == 6);
  CHECK(sum(zeros({0, 3})).item<float>() == 0.f);
  // Batch-norm style reduction over N, H, W of an NCHW tensor.
  Tensor x = reshape(arange(24, Dtype::f64), {2, 3, 2, 2});
  CHECK(sum(x, {0, 2, 3}).to_vector<double>() == std::vector<double>{60, 92, 124});
  // f32 sums accumulate in double: 1e6 ones sum exactly.
  CHECK(sum(ones({1000000})).item<float>() == 1e6f);
  // Rows are summed in lanes (ops/lanes.hpp): lengths below, at and past the lane count, with tails.
  for (int64_t n : {1, 15, 16, 17, 33, 1000003}) {
    const double expect = static_cast<double>(n) * (n - 1) / 2;
    CHECK(sum(arange(n, Dtype::i64)).item<int64_t>() == n * (n - 1) / 2);
    CHECK(sum(arange(n, Dtype::f64)).item<double>() == expect);
    Tensor rows = sum(reshape(arange(2 * n, Dtype::f32), {2, n}), {1});
    CHECK(rows.to_vector<float>()[1] == doctest::Approx(expect + static_cast<double>(n) * n).epsilon(1e-6));
  }
}

TEST_CASE("gradcheck: reductions") {
  Tensor x = leaf({2, 3, 4}, 11);
  CHECK_GRADCHECK([](auto& v) { return sum(v[0]); }, {x});
  CHECK_GRADCHECK([](auto& v) { return sum(v[0], {0, 2}); }, {x});
  CHECK_GRADCHECK([](auto& v) { return sum(v[0], {1}, true); }, {x});
  CHECK_GRADCHECK([](auto& v) { return mean(v[0], {-1}); }, {x});
  CHECK_GRADCHECK([](auto& v) { return var(v[0], {0, 2}, true, true); }, {x});
  CHECK_GRADCHECK([](auto& v) { return var(v[0], {1}, false); }, {x});
  CHECK_GRADCHECK([](auto& v) { return max(v[0], 1); }, {x});
  CHECK_GRADCHECK([](auto& v) { return min(v[0], -1, true); }, {x});
  CHECK_GRADCHECK([](auto& v) { return max(v[0]); }, {x});
  CHECK_GRADCHECK([](auto& v) { return mul(sum(v[0], {1}, true), v[0]); }, {x});
}

TEST_CASE("max sends the gradient of a tie to one position") {
  Tensor x = f64({2, 2, 1}, {3});
  x.requires_grad_();
  max(x, 0).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 0});
}

TEST_CASE("reduction errors") {
  CHECK_ERROR(sum(zeros({2, 3}), {2}), "sum: dim 2 out of range for a tensor of rank 2");
  CHECK_ERROR(sum(zeros({2, 3}), {1, -1}), "sum: dim -1 appears more than once");
  CHECK_ERROR(max(zeros({0, 3}), 0), "max: cannot reduce over dim 0 of size 0");
  CHECK_ERROR(mean(zeros({2}, Dtype::i64)), "mean: needs a floating tensor, got i64");
}

// matmul (1-D, 2-D, batched with broadcasting), linear and cdist: values, gradcheck, errors.
#include "helpers.hpp"

using namespace xg;
using test::f64;
using test::leaf;

TEST_CASE("matmul: values") {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = f64({1, 0, 0, 1, 1, 1}, {3, 2});
  CHECK(matmul(a, b).to_vector<double>() == std::vector<double>{4, 5, 10, 11});
  CHECK(matmul(a, f64({1, 1, 1}, {3})).to_vector<double>() == std::vector<double>{6, 15});
  CHECK(matmul(f64({1, 1}, {2}), a).to_vector<double>() == std::vector<double>{5, 7, 9});
  CHECK(matmul(f64({1, 2}, {2}), f64({3, 4}, {2})).item<double>() == 11);
  Tensor batch = stack({a, a * 2.0}, 0);  // [2, 2, 3]
  CHECK(matmul(batch, b).to_vector<double>() == std::vector<double>{4, 5, 10, 11, 8, 10, 20, 22});
  CHECK(matmul(zeros({5, 1, 2, 3}), zeros({4, 3, 7})).shape() == Shape{5, 4, 2, 7});
  CHECK(matmul(from_vector<int64_t>({1, 2, 3, 4}, {2, 2}), from_vector<int64_t>({1, 1}, {2, 1})).to_vector<int64_t>() ==
        std::vector<int64_t>{3, 7});
  CHECK(matmul(zeros({2, 0}), zeros({0, 3})).to_vector<float>() == std::vector<float>(6, 0.f));
  Tensor f = matmul(ones({2, 3}), ones({3, 2}));
  CHECK(f.to_vector<float>() == std::vector<float>{3, 3, 3, 3});
  Tensor w = f64({1, 2, 3, 4, 5, 6}, {2, 3});  // [out=2, in=3]
  CHECK(linear(f64({1, 1, 1}, {1, 3}), w, f64({10, 20}, {2})).to_vector<double>() == std::vector<double>{16, 35});
}

TEST_CASE("gradcheck: matmul and linear") {
  Tensor a = leaf({3, 4}, 31), b = leaf({4, 2}, 32), v = leaf({4}, 33);
  Tensor ba = leaf({2, 3, 4}, 34), bb = leaf({2, 4, 2}, 35), b1 = leaf({1, 4, 2}, 36);
  CHECK_GRADCHECK([](auto& x) { return matmul(x[0], x[1]); }, {a, b});
  CHECK_GRADCHECK([](auto& x) { return matmul(x[0], x[1]); }, {a, v});
  CHECK_GRADCHECK([](auto& x) { return matmul(x[1], x[0]); }, {b, v});
  CHECK_GRADCHECK([](auto& x) { return matmul(x[0], x[1]); }, {ba, bb});
  CHECK_GRADCHECK([](auto& x) { return matmul(x[0], x[1]); }, {ba, b});
  CHECK_GRADCHECK([](auto& x) { return matmul(x[0], x[1]); }, {ba, b1});
  CHECK_GRADCHECK([](auto& x) { return matmul(x[0], x[0]); }, {leaf({3, 3}, 37)});
  Tensor w = leaf({5, 4}, 38), bias = leaf({5}, 39);
  CHECK_GRADCHECK([](auto& x) { return linear(x[0], x[1], x[2]); }, {a, w, bias});
  CHECK_GRADCHECK([](auto& x) { return linear(x[0], x[1]); }, {ba, w});
}

TEST_CASE("second order through matmul") {
  Tensor a = leaf({3, 3}, 40);
  Tensor x = leaf({3}, 41);
  // f = x^T A x; grad = (A + A^T) x; Hessian-vector with ones = (A + A^T) 1
  Tensor f = sum(x * matmul(a.detach(), x));
  Tensor g = grad({f}, {x}, {}, {.create_graph = true})[0];
  Tensor h = grad({sum(g)}, {x})[0];
  Tensor ad = a.detach();
  CHECK(allclose(h, sum(ad, {0}) + sum(ad, {1}), 1e-12));
}

TEST_CASE("matmul errors") {
  CHECK_ERROR(matmul(zeros({2, 3}), zeros({4, 5})), "matmul: shapes [2,3] and [4,5] cannot be multiplied");
  CHECK_ERROR(matmul(zeros({2, 2, 3}), zeros({3, 3, 2})), "matmul: shapes [2] and [3] cannot be broadcast together");
  CHECK_ERROR(matmul(zeros({}), zeros({3})), "matmul: both arguments need at least 1 dim");
  CHECK_ERROR(linear(zeros({2, 3}), zeros({4, 5})), "linear: input shape [2,3] does not match weight shape [4,5]");
  CHECK_ERROR(linear(zeros({2, 3}), zeros({4, 3}), zeros({5})), "linear: bias shape [5] does not match out_features 4");
}

TEST_CASE("cdist: values against two loops, gradcheck, errors") {
  Tensor a = leaf({4, 5}, 61), b = leaf({3, 5}, 62);
  Tensor d = cdist(a, b);
  REQUIRE(d.shape() == Shape{4, 3});
  auto va = a.to_vector<double>(), vb = b.to_vector<double>(), vd = d.to_vector<double>();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) {
      double s = 0;
      for (int k = 0; k < 5; ++k) s += (va[i * 5 + k] - vb[j * 5 + k]) * (va[i * 5 + k] - vb[j * 5 + k]);
      CHECK(vd[i * 3 + j] == doctest::Approx(std::sqrt(s)).epsilon(1e-12));
    }
  CHECK(cdist(a, a).to_vector<double>()[0] == 0.0);  // rounding never leaves a NaN on the diagonal
  CHECK(cdist(ones({2, 3}), zeros({1, 3})).dtype() == Dtype::f32);
  CHECK_GRADCHECK([](auto& x) { return cdist(x[0], x[1]); }, {a, b});
  CHECK_ERROR(cdist(zeros({2, 3}), zeros({2, 4})), "cdist: feature sizes differ: shapes [2,3] and [2,4] (3 vs 4)");
  CHECK_ERROR(cdist(zeros({3}), zeros({2, 3})), "cdist: inputs must be 2-D [N, D] and [M, D], got shapes [3] and [2,3]");
  CHECK_ERROR(cdist(zeros({2, 3}, Dtype::i64), zeros({2, 3})), "cdist: needs floating tensors, got i64 and f32");
}

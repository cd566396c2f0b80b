// Shape ops: values, storage sharing, gradcheck, errors.
#include "helpers.hpp"

using namespace xg;
using test::f64;
using test::leaf;

TEST_CASE("shape ops: values") {
  Tensor a = reshape(arange(6, Dtype::f64), {2, 3});
  CHECK(reshape(a, {3, -1}).shape() == Shape{3, 2});
  CHECK(flatten(zeros({2, 3, 4}), 1).shape() == Shape{2, 12});
  CHECK(transpose(a, 0, 1).to_vector<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(permute(zeros({2, 3, 4}), {2, 0, 1}).shape() == Shape{4, 2, 3});
  CHECK(slice(a, 1, 1, 3).to_vector<double>() == std::vector<double>{1, 2, 4, 5});
  CHECK(slice(a, 1, 0, 3, 2).to_vector<double>() == std::vector<double>{0, 2, 3, 5});
  CHECK(slice(a, -1, -2, 100).to_vector<double>() == std::vector<double>{1, 2, 4, 5});
  CHECK(pad(a, {1, 0}).to_vector<double>() == std::vector<double>{0, 0, 1, 2, 0, 3, 4, 5});
  CHECK(pad(a, {0, 0, 1, 1}, -1).shape() == Shape{4, 3});
  CHECK(cat({a, a}, 0).shape() == Shape{4, 3});
  CHECK(cat({a, slice(a, 1, 0, 1)}, 1).to_vector<double>() == std::vector<double>{0, 1, 2, 0, 3, 4, 5, 3});
  CHECK(stack({a, a}, 1).shape() == Shape{2, 2, 3});
  CHECK(unsqueeze(a, -1).shape() == Shape{2, 3, 1});
  CHECK(squeeze(zeros({1, 2, 1})).shape() == Shape{2});
  CHECK(squeeze(zeros({1, 2, 1}), 0).shape() == Shape{2, 1});
  CHECK(expand(f64({1, 2}, {2, 1}), {2, 3}).to_vector<double>() == std::vector<double>{1, 1, 1, 2, 2, 2});
  CHECK(expand(f64({1, 2}, {2, 1}), {4, -1, 2}).shape() == Shape{4, 2, 2});
  CHECK(gather(a, 1, from_vector<int64_t>({2, 0}, {2, 1})).to_vector<double>() == std::vector<double>{2, 3});
  CHECK(index_select(a, 1, from_vector<int64_t>({2, 2, 0})).to_vector<double>() ==
        std::vector<double>{2, 2, 0, 5, 5, 3});
  CHECK(scatter_add(zeros({3}, Dtype::f64), 0, from_vector<int64_t>({1, 1}), f64({1, 2}, {2})).to_vector<double>() ==
        std::vector<double>{0, 3, 0});
  CHECK(one_hot(from_vector<int64_t>({2, 0}), 3).to_vector<float>() == std::vector<float>{0, 0, 1, 1, 0, 0});
}

TEST_CASE("flip: values along one, several and negative dims") {
  Tensor x = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(flip(x, {1}).to_vector<double>() == std::vector<double>{3, 2, 1, 6, 5, 4});
  CHECK(flip(x, {0}).to_vector<double>() == std::vector<double>{4, 5, 6, 1, 2, 3});
  CHECK(flip(x, {0, -1}).to_vector<double>() == std::vector<double>{6, 5, 4, 3, 2, 1});
  CHECK(flip(x, {}).to_vector<double>() == x.to_vector<double>());
  Tensor y = from_vector<double>({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2});
  CHECK(flip(y, {1}).to_vector<double>() == std::vector<double>{2, 3, 0, 1, 6, 7, 4, 5});
  CHECK(flip(zeros({0, 3}), {1}).shape() == Shape{0, 3});
  CHECK(flip(scalar_tensor(2.0, Dtype::f64), {0}).item<double>() == 2.0);
}

TEST_CASE("gradcheck: shape ops") {
  Tensor x = leaf({2, 3, 4}, 21);
  Tensor y = leaf({2, 1, 4}, 22);
  CHECK_GRADCHECK([](auto& v) { return reshape(v[0], {4, -1}); }, {x});
  CHECK_GRADCHECK([](auto& v) { return flatten(v[0], 1); }, {x});
  CHECK_GRADCHECK([](auto& v) { return permute(v[0], {2, 0, 1}); }, {x});
  CHECK_GRADCHECK([](auto& v) { return transpose(v[0], -1, 0); }, {x});
  CHECK_GRADCHECK([](auto& v) { return flip(v[0], {0, 2}); }, {x});
  CHECK_GRADCHECK([](auto& v) { return flip(v[0], {1}); }, {x});
  CHECK_GRADCHECK([](auto& v) { return slice(v[0], 2, 1, 4, 2); }, {x});
  CHECK_GRADCHECK([](auto& v) { return pad(v[0], {1, 2, 0, 1}, 3.0); }, {x});
  CHECK_GRADCHECK([](auto& v) { return cat({v[0], v[1], v[0]}, 1); }, {x, y});
  CHECK_GRADCHECK([](auto& v) { return stack({v[0], v[0] * 2.0}, 0); }, {y});
  CHECK_GRADCHECK([](auto& v) { return squeeze(unsqueeze(v[0], 1), 1); }, {x});
  CHECK_GRADCHECK([](auto& v) { return expand(v[0], {3, 2, 3, 4}); }, {y});
  Tensor idx = from_vector<int64_t>({0, 2, 2, 1, 1, 0}, {2, 3, 1});
  CHECK_GRADCHECK([idx](auto& v) { return gather(v[0], 2, idx); }, {x});
  CHECK_GRADCHECK([idx](auto& v) { return index_select(v[0], 1, from_vector<int64_t>({2, 0, 2})); }, {x});
  Tensor src = leaf({2, 3, 1}, 23);
  CHECK_GRADCHECK([idx](auto& v) { return scatter_add(v[0], 2, idx, v[1]); }, {x, src});
}

TEST_CASE("shape op errors") {
  CHECK_ERROR(reshape(zeros({2, 3}), {4, 2}), "reshape: shape [4,2] is invalid for input of size 6");
  CHECK_ERROR(reshape(zeros({2, 3}), {-1, -1}), "reshape: only one dim can be -1");
  CHECK_ERROR(permute(zeros({2, 3}), {0}), "permute: 1 dims given for a tensor of rank 2");
  CHECK_ERROR(permute(zeros({2, 3}), {0, 0}), "permute: dim 0 repeated");
  CHECK_ERROR(flip(zeros({2, 3}), {1, -1}), "flip: dim -1 repeated in [1,-1]");
  CHECK_ERROR(flip(zeros({2, 3}), {2}), "flip: dim 2 out of range for a tensor of rank 2");
  CHECK_ERROR(cat({zeros({2, 3}), zeros({2, 4})}, 0), "cat: sizes must match except in dim 0: tensor 0 has shape [2,3], tensor 1 has shape [2,4]");
  CHECK_ERROR(cat({zeros({2, 3}), zeros({3})}, 0), "cat: tensor 1 has rank 1, tensor 0 has rank 2");
  CHECK_ERROR(stack({zeros({2}), zeros({3})}), "stack: tensor 1 has shape [3], tensor 0 has shape [2]");
  CHECK_ERROR(expand(zeros({2, 3}), {2, 4}), "expand: shape [2,3] cannot be expanded to [2,4]");
  CHECK_ERROR(pad(zeros({2}), {1, 1, 1, 1}), "pad: 4 pad values for a tensor of rank 1");
  CHECK_ERROR(slice(zeros({2}), 0, 0, 1, 0), "slice: step must be positive");
  CHECK_ERROR(gather(zeros({2, 3}), 1, from_vector<int64_t>({3}, {1, 1})), "gather: index 3 is out of range for dim 1 of size 3");
  CHECK_ERROR(gather(zeros({2, 3}), 1, zeros({1, 1})), "gather: index must be i64, got f32");
  CHECK_ERROR(one_hot(from_vector<int64_t>({5}), 3), "one_hot: label 5 at position 0 is out of range [0, 3)");
  CHECK_ERROR(expand(zeros({2}), {int64_t(1) << 40, int64_t(1) << 40, 2}), "more elements than can be addressed");
}

// The hostile-input catalogue: mismatched shapes and dtypes across the public ops, empty tensors and
// zero-size batches, NaN and infinity through forward and backward, shapes that overflow, and
// errors that leave every piece of state as it was.
#include <cmath>
#include <functional>
#include <limits>

#include "helpers.hpp"

using namespace xg;
using test::f64;

namespace {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool under_sanitizer = true;
#else
constexpr bool under_sanitizer = false;
#endif
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN(), kInf = std::numeric_limits<double>::infinity();

bool all_nan(const Tensor& t) {
  for (double v : t.to(Dtype::f64).to_vector<double>())
    if (!std::isnan(v)) return false;
  return true;
}
}  // namespace

TEST_CASE("hostile: every binary op names itself and both shapes when they cannot broadcast") {
  using Binary = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::vector<std::pair<const char*, Binary>> ops = {
      {"add", [](auto& a, auto& b) { return add(a, b); }},         {"sub", [](auto& a, auto& b) { return sub(a, b); }},
      {"mul", [](auto& a, auto& b) { return mul(a, b); }},         {"div", [](auto& a, auto& b) { return div(a, b); }},
      {"maximum", [](auto& a, auto& b) { return maximum(a, b); }}, {"minimum", [](auto& a, auto& b) { return minimum(a, b); }},
      {"eq", [](auto& a, auto& b) { return eq(a, b); }},           {"ne", [](auto& a, auto& b) { return ne(a, b); }},
      {"gt", [](auto& a, auto& b) { return gt(a, b); }},           {"lt", [](auto& a, auto& b) { return lt(a, b); }},
      {"ge", [](auto& a, auto& b) { return ge(a, b); }},           {"le", [](auto& a, auto& b) { return le(a, b); }},
  };
  for (const auto& [name, op] : ops) {
    CAPTURE(name);
    CHECK_ERROR(op(zeros({2, 3}), zeros({4})), fmt::format("{}: shapes [2,3] and [4] cannot be broadcast together", name));
    CHECK_ERROR(op(zeros({2, 3}), zeros({3, 2, 1, 2})), "cannot be broadcast together");
    CHECK(op(zeros({2, 1}), zeros({1, 3}, Dtype::f64)).shape() == Shape{2, 3});
  }
}

TEST_CASE("hostile: reductions, shape ops and losses name the op and the bad dim or shape") {
  Tensor x = zeros({2, 3});
  CHECK_ERROR(mean(x, {2}), "mean: dim 2 out of range for a tensor of rank 2");
  CHECK_ERROR(var(x, {-3}), "var: dim -3 out of range for a tensor of rank 2");
  CHECK_ERROR(max(x, 5), "max: dim 5 out of range");
  CHECK_ERROR(argmax(x, -3), "argmax: dim -3 out of range");
  CHECK_ERROR(softmax(x, 2), "softmax: dim 2 out of range for a tensor of rank 2");
  CHECK_ERROR(log_softmax(x, kMax), "log_softmax: dim 9223372036854775807 out of range");
  CHECK_ERROR(transpose(x, 0, 2), "transpose: dim 2 out of range");
  CHECK_ERROR(unsqueeze(x, std::numeric_limits<int64_t>::min()), "unsqueeze: dim -9223372036854775808 out of range");
  CHECK_ERROR(squeeze(x, 7), "squeeze: dim 7 out of range");
  CHECK_ERROR(flatten(x, 1, 0), "flatten: start_dim 1 comes after end_dim 0");
  CHECK_ERROR(stack({x}, 4), "stack: dim 4 out of range");
  CHECK_ERROR(cat({x, zeros({2, 3}, Dtype::f64), zeros({3, 3})}, 1), "cat: sizes must match except in dim 1");
  CHECK_ERROR(cat({}, 0), "cat: expected a non-empty list of tensors");
  CHECK_ERROR(index_select(x, 0, from_vector<int64_t>({2})), "index_select: index 2 at position 0 is out of range for dim 0 of size 2");
  CHECK_ERROR(index_select(x, 1, from_vector<int64_t>({0, -1})), "index_select: index -1 at position 1");
  CHECK_ERROR(index_select(x, 1, zeros({1})), "index_select: index must be i64, got f32");
  CHECK_ERROR(nll_loss(log_softmax(x, 1), from_vector<int64_t>({0, 3})), "nll_loss: label 3 at position 1 is out of range for 3 classes");
  CHECK_ERROR(multi_margin_loss(x, from_vector<int64_t>({0, -2})), "multi_margin_loss: label -2");
  CHECK_ERROR(cross_entropy(x, from_vector<int64_t>({0, 1, 2})), "cross_entropy: labels shape [3] does not match input shape [2,3]");
  CHECK_ERROR(layer_norm(x, {kMax}), "layer_norm: normalized_shape [9223372036854775807] does not match");
  CHECK_ERROR(group_norm(zeros({2, 4}), 0), "group_norm: 0 groups do not divide 4 channels");
  CHECK_ERROR(dropout(x, kNaN), "dropout: probability must be in [0, 1], got nan");
}

TEST_CASE("hostile: dtype mixes promote as PyTorch does where it promotes, and are refused where it refuses") {
  Tensor f = ones({2}), d = ones({2}, Dtype::f64), i = from_vector<int64_t>({1, 2});
  CHECK((f + d).dtype() == Dtype::f64);
  CHECK((i * f).dtype() == Dtype::f32);
  CHECK(cat({i, f}).dtype() == Dtype::f32);
  CHECK(cat({f, d}).dtype() == Dtype::f64);
  CHECK(where(gt(i, 1.0), f, d).dtype() == Dtype::f64);
  CHECK(exp(i).dtype() == Dtype::f32);  // integer inputs to floating functions give the default dtype
  CHECK(relu(i).dtype() == Dtype::i64);
  CHECK(sum(i).item<int64_t>() == 3);
  CHECK(mse_loss(f, d).dtype() == Dtype::f64);
  // xgrad promotes matmul and linear operands as elementwise ops do (PyTorch refuses the mix).
  CHECK(matmul(zeros({2, 3}), zeros({3, 4}, Dtype::f64)).dtype() == Dtype::f64);
  CHECK_ERROR(conv2d(zeros({1, 3, 4, 4}), zeros({2, 3, 3, 3}), zeros({2}, Dtype::f64)), "conv2d: bias dtype f64 does not match input dtype f32");
  CHECK_ERROR(max_pool2d(zeros({1, 1, 4, 4}, Dtype::i64)), "max_pool2d: input must be f32 or f64, got i64");
  CHECK_ERROR(batch_norm(zeros({2, 3}, Dtype::i64), Tensor(), Tensor(), Tensor(), Tensor(), true), "batch_norm: input must be f32 or f64, got i64");
  CHECK_ERROR(cross_entropy(zeros({2, 3}), from_vector<double>({0, 1})), "cross_entropy: labels must be an i64 tensor");
  CHECK_ERROR(i.requires_grad_(), "requires_grad_: only floating tensors can require grad, got i64");
  CHECK_FALSE(i.requires_grad());
  CHECK_ERROR(from_vector<int64_t>({1}).data<float>(), "data: tensor has dtype i64, accessed as f32");
}

TEST_CASE("hostile: empty tensors and zero-size batches go forward and backward") {
  CHECK(sum(zeros({0, 3})).item<float>() == 0.f);
  CHECK(std::isnan(mean(zeros({0, 3})).item<float>()));  // 0/0, as PyTorch
  CHECK(matmul(zeros({0, 3}), zeros({3, 4})).shape() == Shape{0, 4});
  CHECK(matmul(zeros({2, 0}), zeros({0, 4})).to_vector<float>() == std::vector<float>(8, 0.f));  // an empty sum
  CHECK(cat({zeros({0, 3}), ones({2, 3})}).shape() == Shape{2, 3});
  CHECK(reshape(zeros({0, 3}), {-1}).shape() == Shape{0});
  CHECK_ERROR(reshape(zeros({0, 3}), {0, -1}), "reshape: shape [0,-1] is invalid for input of size 0");  // -1 is ambiguous
  CHECK(max(zeros({0, 3}), 1).shape() == Shape{0});
  CHECK_ERROR(max(zeros({0, 3}), 0), "max: cannot reduce over dim 0 of size 0");
  CHECK_ERROR(batch_norm(zeros({0, 3, 4, 4}), Tensor(), Tensor(), Tensor(), Tensor(), true),
              "batch_norm: expected more than 1 value per channel when training, got input shape [0,3,4,4]");

  // A batch of zero images through a small convnet, forward and backward.
  manual_seed(1);
  Tensor w = randn({4, 3, 3, 3}, Dtype::f64), fc = randn({10, 4 * 2 * 2}, Dtype::f64);
  w.requires_grad_(), fc.requires_grad_();
  Tensor x = zeros({0, 3, 4, 4}, Dtype::f64);
  Tensor h = flatten(max_pool2d(relu(conv2d(x, w, Tensor(), {.padding = 1})), {.kernel = 2}), 1);
  CHECK(h.shape() == Shape{0, 16});
  Tensor logits = linear(h, fc);
  Tensor loss = cross_entropy(logits, zeros({0}, Dtype::i64));
  CHECK(std::isnan(loss.item<double>()));  // the mean over no samples, as PyTorch
  sum(logits).backward();
  CHECK(w.grad().shape() == w.shape());
  CHECK(w.grad().to_vector<double>() == std::vector<double>(w.numel(), 0.0));
  CHECK(fc.grad().to_vector<double>() == std::vector<double>(fc.numel(), 0.0));
  CHECK(avg_pool2d(x).shape() == Shape{0, 3, 2, 2});
  CHECK(dropout(zeros({0, 5}), 0.5).shape() == Shape{0, 5});
}

TEST_CASE("hostile: NaN and infinity flow through the layers and their gradients as IEEE says, no crash") {
  Tensor a = f64({1, kNaN, 3, 4}, {2, 2});
  auto mm = matmul(a, f64({1, 0, 0, 1}, {2, 2})).to_vector<double>();
  CHECK(std::isnan(mm[0]));  // NaN * 0 is NaN: the whole first row
  CHECK(std::isnan(mm[1]));
  CHECK(mm[2] == 3.0);
  auto sm = softmax(f64({kInf, 0.0, 1.0}, {3}), 0).to_vector<double>();
  CHECK(std::isnan(sm[0]));  // inf - inf, as PyTorch
  CHECK(log(f64({0.0}, {1})).item<double>() == -kInf);
  CHECK(std::isnan(sqrt(f64({-1.0}, {1})).item<double>()));
  CHECK(div(f64({1.0}, {1}), f64({0.0}, {1})).item<double>() == kInf);
  CHECK(std::isnan(max_pool2d(f64({1, kNaN, 3, 4}, {1, 1, 2, 2}), {.kernel = 2}).item<double>()));  // NaN wins
  CHECK(std::isnan(ref::max_pool2d(f64({1, kNaN, 3, 4}, {1, 1, 2, 2}), {.kernel = 2}).item<double>()));

  // A NaN pixel reaches the loss and every gradient it touches; backward does not stop or crash.
  manual_seed(2);
  Tensor x = randn({2, 1, 4, 4}, Dtype::f64);
  x.data<double>()[5] = kNaN;
  Tensor w = randn({2, 1, 3, 3}, Dtype::f64);
  w.requires_grad_();
  Tensor loss = cross_entropy(flatten(conv2d(x, w), 1), from_vector<int64_t>({0, 1}));
  CHECK(std::isnan(loss.item<double>()));
  loss.backward();
  CHECK(all_nan(w.grad()));
  Tensor bn = batch_norm(f64({kInf, 1, 2, 3}, {4, 1}), Tensor(), Tensor(), Tensor(), Tensor(), true);
  CHECK(all_nan(bn));  // the mean is inf, every normalised value NaN
}

TEST_CASE("hostile: shapes whose element count overflows are refused before any allocation") {
  const int64_t big = int64_t{1} << 40;
  CHECK_ERROR(zeros({big, big}), "empty: shape [1099511627776,1099511627776] has more elements than can be addressed");
  CHECK_ERROR(randn({big, big}), "has more elements than can be addressed");
  CHECK_ERROR(full({kMax, 2}, 1.0), "has more elements than can be addressed");
  CHECK_ERROR(arange(kMax), "empty: shape [9223372036854775807] has more elements than can be addressed");
  CHECK_ERROR(reshape(zeros({2}), {big, big}), "reshape: shape [1099511627776,1099511627776] has more elements");
  CHECK_ERROR(expand(zeros({1}), {kMax, kMax}), "expand: shape");
  CHECK_ERROR(one_hot(from_vector<int64_t>({1}), kMax), "has more elements than can be addressed");
  CHECK_ERROR(pad(zeros({2}), {kMax, kMax}), "pad: padding (9223372036854775807, 9223372036854775807) of dim 0 (size 2) "
                                             "gives more elements than can be addressed");
  CHECK_ERROR(pad(zeros({2}), {int64_t{1} << 62, int64_t{1} << 62}), "pad: padding");
  Tensor img = zeros({1, 1, 4, 4}), k = zeros({1, 1, 3, 3});
  CHECK_ERROR(conv2d(img, k, Tensor(), {.padding = int64_t{1} << 62}),
              "conv2d: padding 4611686018427387904 is too large for input height 4 (shape [1,1,4,4])");
  CHECK_ERROR(ref::conv2d(img, k, Tensor(), {.padding = kMax}), "conv2d: padding 9223372036854775807 is too large");
  CHECK_ERROR(max_pool2d(img, {.kernel = kMax, .padding = kMax / 2}), "max_pool2d: padding 4611686018427387903 is too large");
  CHECK_ERROR(max_pool2d(img, {.kernel = kMax}), "max_pool2d: kernel height 9223372036854775807 is larger than the padded input 4");
  CHECK(avg_pool2d(img, {.kernel = 2, .stride = kMax}).shape() == Shape{1, 1, 1, 1});
  // Addressable but more than memory holds: an error naming the size, not std::bad_alloc. (The
  // sanitizers' allocators abort on such a request instead of failing it, so not under them.)
  if (!under_sanitizer)
    CHECK_ERROR(zeros({int64_t{1} << 45}), "empty: out of memory allocating 140737488355328 bytes for a tensor of "
                                           "shape [35184372088832] and dtype f32");
}

TEST_CASE("hostile: a rejected call changes no state") {
  Tensor t = f64({1, 2}, {2});
  CHECK_ERROR(t.add_(f64({1, 2, 3}, {3})), "add_");
  CHECK_ERROR(t.copy_(zeros({3})), "copy_: source shape [3] does not match destination shape [2]");
  CHECK(t.to_vector<double>() == std::vector<double>{1, 2});

  // A graph survives a failed op on it: backward still works, gradients as if nothing happened.
  Tensor w = test::leaf({2, 3});
  Tensor y = relu(w) * 2.0;
  CHECK_ERROR(matmul(y, zeros({2, 2}, Dtype::f64)), "matmul: shapes [2,3] and [2,2] cannot be multiplied");
  CHECK_ERROR(y.backward(), "backward: grad can be created implicitly only for scalar outputs");
  CHECK_FALSE(w.grad().defined());
  sum(y).backward();
  CHECK(w.grad().defined());

  // A layer that refuses its input leaves its running statistics and parameters alone.
  nn::BatchNorm2d bn(3);
  const auto before = bn.running_mean().to_vector<float>();
  CHECK_ERROR(bn.forward(zeros({2, 4, 2, 2})), "BatchNorm2d: input shape [2,4,2,2] has 4 channels, but num_features is 3");
  CHECK(bn.running_mean().to_vector<float>() == before);
  CHECK(bn.num_batches_tracked().item<int64_t>() == 0);
}

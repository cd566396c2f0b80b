// softmax, log_softmax, losses and dropout: values by hand, gradcheck, errors.
#include <cmath>

#include "helpers.hpp"

using namespace xg;
using test::f64;
using test::leaf;

TEST_CASE("softmax and log_softmax: values") {
  Tensor x = f64({1, 2, 3, 1000, 1000, 1000}, {2, 3});
  auto s = softmax(x, 1).to_vector<double>();
  double z = std::exp(1) + std::exp(2) + std::exp(3);
  CHECK(s[0] == doctest::Approx(std::exp(1) / z));
  CHECK(s[4] == doctest::Approx(1.0 / 3.0));  // stable for large logits
  CHECK(log_softmax(x, -1).to_vector<double>()[2] == doctest::Approx(3 - std::log(z)));
  CHECK(sum(softmax(x, 0), {0}).to_vector<double>()[1] == doctest::Approx(1.0));
}

TEST_CASE("losses: values by hand") {
  Tensor logits = f64({1, 2, 3, 1, 1, 1}, {2, 3});
  Tensor labels = from_vector<int64_t>({2, 0});
  double z = std::exp(1) + std::exp(2) + std::exp(3);
  double ce = (-(3 - std::log(z)) + std::log(3.0)) / 2;
  CHECK(cross_entropy(logits, labels).item<double>() == doctest::Approx(ce));
  CHECK(nll_loss(log_softmax(logits, 1), labels).item<double>() == doctest::Approx(ce));
  // Label smoothing 0.1: 0.9 ce + 0.1 * mean over samples and classes of -log p.
  double uniform = (3 * std::log(z) - 6 + 3 * std::log(3.0)) / 6;
  CHECK(cross_entropy(logits, labels, 0.1).item<double>() == doctest::Approx(0.9 * ce + 0.1 * uniform));
  // multi_margin: row 0 true 3: max(0,1-3+1)=0, max(0,2-3+1)=0 -> 0; row 1: 1+1 = 2 -> 2/3. mean = 1/3.
  CHECK(multi_margin_loss(logits, labels).item<double>() == doctest::Approx(1.0 / 3.0));
  CHECK(mse_loss(f64({1, 2}, {2}), f64({0, 0}, {2})).item<double>() == doctest::Approx(2.5));
  // CS231n sanity check: with tiny weights the softmax loss is about log(10).
  manual_seed(0);
  Tensor s = randn({500, 10}) * 1e-4;
  CHECK(cross_entropy(s, randint(0, 10, {500})).item<float>() == doctest::Approx(std::log(10.0)).epsilon(1e-3));
}

TEST_CASE("gradcheck: softmax and losses") {
  Tensor x = leaf({3, 4}, 51);
  Tensor labels = from_vector<int64_t>({3, 0, 1});
  CHECK_GRADCHECK([](auto& v) { return softmax(v[0], 1); }, {x});
  CHECK_GRADCHECK([](auto& v) { return softmax(v[0], 0); }, {x});
  CHECK_GRADCHECK([](auto& v) { return log_softmax(v[0], -1); }, {x});
  CHECK_GRADCHECK([labels](auto& v) { return cross_entropy(v[0], labels); }, {x});
  CHECK_GRADCHECK([labels](auto& v) { return cross_entropy(v[0], labels, 0.2); }, {x});
  CHECK_GRADCHECK([labels](auto& v) { return nll_loss(log_softmax(v[0], 1), labels); }, {x});
  CHECK_GRADCHECK([labels](auto& v) { return multi_margin_loss(v[0], labels); }, {x});
  Tensor t = leaf({3, 4}, 52);
  CHECK_GRADCHECK([](auto& v) { return mse_loss(v[0], v[1]); }, {x, t});
  CHECK_GRADCHECK([](auto& v) { return softmax(reshape(v[0], {2, 2, 3}), 1); }, {x});
}

TEST_CASE("dropout: inverted, deterministic under manual_seed, identity in eval") {
  Tensor x = ones({10000}, Dtype::f64);
  manual_seed(3);
  Tensor a = dropout(x, 0.3);
  manual_seed(3);
  Tensor b = dropout(x, 0.3);
  CHECK(a.to_vector<double>() == b.to_vector<double>());
  auto v = a.to_vector<double>();
  int64_t kept = std::count_if(v.begin(), v.end(), [](double e) { return e != 0; });
  CHECK(kept > 6700);
  CHECK(kept < 7300);
  CHECK(*std::max_element(v.begin(), v.end()) == doctest::Approx(1.0 / 0.7));
  CHECK(dropout(x, 0.3, false).same(x));
  CHECK(sum(dropout(x, 1.0)).item<double>() == 0.0);
  Tensor l = leaf({50}, 53);
  CHECK_GRADCHECK([](auto& in) {
    manual_seed(9);  // the same mask on every evaluation
    return dropout(in[0], 0.5);
  }, {l});
}

TEST_CASE("dropout: the mask does not depend on the thread count; units, pairs and calls independent") {
  const Tensor x = ones({200001}, Dtype::f64);  // odd: a last unit without its pair
  const int threads = get_num_threads();
  set_num_threads(1);
  manual_seed(5);
  const std::vector<double> one = dropout(x, 0.25).to_vector<double>();
  set_num_threads(2);
  manual_seed(5);
  const std::vector<double> two = dropout(x, 0.25).to_vector<double>();
  const std::vector<double> next = dropout(x, 0.25).to_vector<double>();
  set_num_threads(threads);
  CHECK(one == two);
  // Kept with probability 0.75: each unit, both units of a pair (0.5625), neighbours across pairs, and
  // the same unit in two calls; 4.5 standard deviations of the count at most.
  const auto n = static_cast<int64_t>(one.size());
  int64_t kept = 0, both_in_pair = 0, both_across = 0, both_calls = 0;
  for (int64_t i = 0; i < n; ++i) {
    kept += one[i] != 0;
    both_calls += one[i] != 0 && next[i] != 0;
    if (i % 2 == 0 && i + 1 < n) both_in_pair += one[i] != 0 && one[i + 1] != 0;
    if (i % 2 == 1 && i + 1 < n) both_across += one[i] != 0 && one[i + 1] != 0;
  }
  auto near = [](int64_t count, int64_t trials, double prob) {
    return std::abs(count - trials * prob) < 4.5 * std::sqrt(trials * prob * (1 - prob));
  };
  CHECK(near(kept, n, 0.75));
  CHECK(near(both_calls, n, 0.5625));
  CHECK(near(both_in_pair, n / 2, 0.5625));
  CHECK(near(both_across, n / 2, 0.5625));
  CHECK(one[n - 1] * 0.75 == doctest::Approx(one[n - 1] == 0 ? 0.0 : 1.0));
}

TEST_CASE("loss errors") {
  Tensor s = zeros({2, 3});
  CHECK_ERROR(cross_entropy(s, from_vector<int64_t>({0, 3})), "cross_entropy: label 3 at position 1 is out of range for 3 classes");
  CHECK_ERROR(cross_entropy(s, from_vector<int64_t>({0, -1})), "cross_entropy: label -1 at position 1");
  CHECK_ERROR(cross_entropy(s, from_vector<int64_t>({0})), "cross_entropy: labels shape [1] does not match input shape [2,3]");
  CHECK_ERROR(cross_entropy(s, zeros({2})), "cross_entropy: labels must be an i64 tensor");
  CHECK_ERROR(cross_entropy(s, from_vector<int64_t>({0, 1}), 1.5), "cross_entropy: label_smoothing must be in [0, 1], got 1.5");
  CHECK_ERROR(cross_entropy(zeros({6}), from_vector<int64_t>({0})), "cross_entropy: input must be [N, C] or [N, C, d1, ...], got shape [6]");
  CHECK_ERROR(multi_margin_loss(s, from_vector<int64_t>({7, 0})), "multi_margin_loss: label 7");
  CHECK_ERROR(mse_loss(s, zeros({3})), "mse_loss: target shape [3] does not match input shape [2,3]");
  CHECK_ERROR(dropout(s, 1.5), "dropout: probability must be in [0, 1], got 1.5");
  CHECK_ERROR(softmax(zeros({2}, Dtype::i64), 0), "softmax: needs a floating tensor, got i64");
}

// Expected values below come from the loss definitions in PyTorch's documentation (and, for the
// label smoothing with weights, aten's cross_entropy_loss_label_smoothing), evaluated in plain
// Python with the math module (PyTorch itself was not available here).
namespace {
const Tensor kLogits = f64({0.3, -1.2, 2.0, 0.5, 1.5, 0.1, -0.7, -2.2, -0.4, 0.9, 0.2, 1.1}, {3, 4});
const Tensor kClassWeight = f64({0.2, 1.0, 0.5, 2.0}, {4});
Tensor labels_ignoring_second() { return from_vector<int64_t>({1, -100, 3}); }
}  // namespace

TEST_CASE("cross_entropy: weight, ignore_index, reduction, label smoothing as PyTorch") {
  Tensor y = labels_ignoring_second();
  auto ce = [&](const CrossEntropyOptions& o) { return cross_entropy(kLogits, y, o).item<double>(); };
  CHECK(ce({}) == doctest::Approx(2.2323232721013007).epsilon(1e-14));  // the mean over the 2 kept labels
  // Weighted mean: divided by the sum of the weights of the kept labels' classes.
  CHECK(ce({.weight = kClassWeight}) == doctest::Approx(1.7866979270120618).epsilon(1e-14));
  CHECK(ce({.weight = kClassWeight, .label_smoothing = 0.2}) == doctest::Approx(1.6321782118354764).epsilon(1e-14));
  CHECK(ce({.label_smoothing = 0.2}) == doctest::Approx(2.137323272101301).epsilon(1e-14));
  CHECK(ce({.weight = kClassWeight, .reduction = "sum", .label_smoothing = 0.2}) ==
        doctest::Approx(4.896534635506429).epsilon(1e-14));
  Tensor none = cross_entropy(kLogits, y, {.weight = kClassWeight, .reduction = "none", .label_smoothing = 0.2});
  CHECK(none.shape() == Shape{3});
  auto nv = none.to_vector<double>();
  CHECK(nv[0] == doctest::Approx(3.2506613177584835).epsilon(1e-14));
  CHECK(nv[1] == 0.0);
  CHECK(nv[2] == doctest::Approx(1.645873317747946).epsilon(1e-14));
  Tensor y2 = from_vector<int64_t>({1, 0, 3});
  CHECK(cross_entropy(kLogits, y2, {.weight = kClassWeight}).item<double>() == doctest::Approx(1.695255631088577).epsilon(1e-14));
  CHECK(cross_entropy(kLogits, y2, {.weight = kClassWeight, .ignore_index = 0, .label_smoothing = 0.1}).item<double>() ==
        doctest::Approx(1.7094380694237692).epsilon(1e-14));
  // The old positional label_smoothing still works, and equals the option.
  CHECK(cross_entropy(kLogits, y2, 0.3).item<double>() == cross_entropy(kLogits, y2, {.label_smoothing = 0.3}).item<double>());
  // nll_loss takes the same options; every label ignored gives 0 / 0, as PyTorch.
  CHECK(nll_loss(log_softmax(kLogits, 1), y, {.weight = kClassWeight}).item<double>() ==
        doctest::Approx(1.7866979270120618).epsilon(1e-14));
  CHECK(std::isnan(cross_entropy(kLogits, from_vector<int64_t>({-100, -100, -100})).item<double>()));
  CHECK(cross_entropy(kLogits, from_vector<int64_t>({-100, -100, -100}), {.reduction = "sum"}).item<double>() == 0.0);
  // An ignored row whose class 0 has log-probability -inf still adds exactly 0.
  Tensor inf_row = f64({-INFINITY, 0, 0, 0}, {1, 4});
  CHECK(cross_entropy(inf_row, from_vector<int64_t>({-100}), {.reduction = "sum", .label_smoothing = 0.1}).item<double>() == 0.0);
}

TEST_CASE("cross_entropy: [N, C, d1, ...] logits equal the flattened [N * d1, C] case") {
  Tensor x = leaf({2, 3, 2}, 71);
  Tensor y = from_vector<int64_t>({0, 2, 1, -100}, {2, 2});
  Tensor flat = reshape(permute(x, {0, 2, 1}), {4, 3});
  Tensor yf = reshape(y, {4});
  CrossEntropyOptions o{.weight = f64({0.5, 1.0, 2.0}, {3}), .label_smoothing = 0.1};
  CHECK(cross_entropy(x, y, o).item<double>() == doctest::Approx(cross_entropy(flat, yf, o).item<double>()).epsilon(1e-14));
  o.reduction = "none";
  Tensor none = cross_entropy(x, y, o);
  CHECK(none.shape() == Shape{2, 2});
  CHECK(none.to_vector<double>()[2] == doctest::Approx(cross_entropy(flat, yf, o).to_vector<double>()[2]).epsilon(1e-14));
  CHECK_GRADCHECK([y, o](auto& v) { return cross_entropy(v[0], y, o); }, {x});
}

TEST_CASE("binary_cross_entropy_with_logits, smooth_l1_loss, huber_loss, kl_div: values") {
  Tensor x = f64({-2, 0.5, 30, 100, -100, 0}, {2, 3}), y = f64({0, 1, 1, 0, 1, 0.3}, {2, 3});
  Tensor pw = f64({1, 2, 3}, {3}), w = f64({1, 0.5}, {2, 1});
  auto none = binary_cross_entropy_with_logits(x, y, {.reduction = "none"}).to_vector<double>();
  std::vector<double> want = {0.1269280110429725, 0.4740769841801067, 9.357622968839737e-14, 100.0, 100.0, 0.6931471805599453};
  for (int i = 0; i < 6; ++i) CHECK(none[i] == doctest::Approx(want[i]).epsilon(1e-13).scale(0));  // finite at +-100
  CHECK(binary_cross_entropy_with_logits(x, y, {.weight = w, .pos_weight = pw}).item<double>() ==
        doctest::Approx(25.27159995397524).epsilon(1e-14));
  CHECK(binary_cross_entropy_with_logits(x, y, {.reduction = "sum", .pos_weight = pw}).item<double>() ==
        doctest::Approx(302.1841174682994).epsilon(1e-14));

  Tensor in = f64({0.3, -2, 1.0, 0.0}, {4}), tg = f64({0, 0.5, -0.5, 0}, {4});
  auto sl1 = smooth_l1_loss(in, tg, {.reduction = "none", .beta = 1.5}).to_vector<double>();
  CHECK(sl1[0] == doctest::Approx(0.03).epsilon(1e-14));
  CHECK(std::vector<double>(sl1.begin() + 1, sl1.end()) == std::vector<double>{1.75, 0.75, 0.0});
  CHECK(smooth_l1_loss(in, tg, {.beta = 1.5}).item<double>() == doctest::Approx(0.6325).epsilon(1e-15));
  CHECK(smooth_l1_loss(in, tg).item<double>() == doctest::Approx(0.76125).epsilon(1e-15));
  CHECK(smooth_l1_loss(in, tg, {.reduction = "sum", .beta = 0}).item<double>() == doctest::Approx(0.3 + 2.5 + 1.5));
  CHECK(huber_loss(in, tg, {.reduction = "sum", .delta = 1.5}).item<double>() == doctest::Approx(3.795).epsilon(1e-15));
  CHECK(huber_loss(in, tg, {.delta = 1.5}).item<double>() ==
        doctest::Approx(1.5 * smooth_l1_loss(in, tg, {.beta = 1.5}).item<double>()).epsilon(1e-15));

  Tensor logq = f64({-1.2, -0.5, -2.0, -0.1, -3, -4}, {2, 3}), p = f64({0.2, 0.8, 0.0, 0.5, 0.25, 0.25}, {2, 3});
  CHECK(kl_div(logq, p, {.reduction = "sum"}).item<double>() == doctest::Approx(0.8998768056218942).epsilon(1e-14));
  CHECK(kl_div(logq, p).item<double>() == doctest::Approx(0.14997946760364902).epsilon(1e-14));
  CHECK(kl_div(logq, p, {.reduction = "batchmean"}).item<double>() == doctest::Approx(0.4499384028109471).epsilon(1e-14));
  CHECK(kl_div(logq, p, {.reduction = "none"}).to_vector<double>()[2] == 0.0);  // 0 log 0 = 0
  Tensor logp = f64({-1.6, -0.2, -3.0, -0.7, -1.4, -1.4}, {2, 3});
  CHECK(kl_div(logq, logp, {.reduction = "batchmean", .log_target = true}).item<double>() ==
        doctest::Approx(0.426414808318785).epsilon(1e-14));
}

TEST_CASE("gradcheck: the losses with options") {
  Tensor x = leaf({3, 4}, 72);
  Tensor y = labels_ignoring_second(), w = kClassWeight;
  for (const char* r : {"mean", "sum", "none"}) {
    std::string red = r;
    CHECK_GRADCHECK([&](auto& v) { return cross_entropy(v[0], y, {.weight = w, .reduction = red, .label_smoothing = 0.3}); }, {x});
    CHECK_GRADCHECK([&](auto& v) { return nll_loss(log_softmax(v[0], 1), y, {.weight = w, .reduction = red}); }, {x});
    Tensor t = leaf({3, 4}, 73), pw = f64({1, 2, 0.5, 3}, {4});
    Tensor prob = sigmoid(t).detach();
    CHECK_GRADCHECK([&](auto& v) { return binary_cross_entropy_with_logits(v[0], v[1], {.weight = w, .reduction = red, .pos_weight = pw}); }, {x, prob.requires_grad_()});
    CHECK_GRADCHECK([&](auto& v) { return smooth_l1_loss(v[0], v[1], {.reduction = red, .beta = 0.7}); }, {x, t});
    CHECK_GRADCHECK([&](auto& v) { return huber_loss(v[0], v[1], {.reduction = red, .delta = 0.6}); }, {x, t});
    CHECK_GRADCHECK([&](auto& v) { return kl_div(log_softmax(v[0], 1), softmax(v[1], 1), {.reduction = red}); }, {x, t});
    CHECK_GRADCHECK([&](auto& v) { return kl_div(v[0], v[1], {.reduction = red, .log_target = true}); }, {x, t});
  }
  // The class weights get a gradient too.
  Tensor cw = kClassWeight.clone().detach().requires_grad_();
  CHECK_GRADCHECK([&](auto& v) { return cross_entropy(v[0], y, {.weight = v[1], .label_smoothing = 0.3}); }, {x, cw});
  // BCE's gradient is sigmoid(x) - y, also at x = +-100 (no overflow into it).
  Tensor big = f64({100, -100, 0}, {3});
  big.requires_grad_();
  binary_cross_entropy_with_logits(big, f64({0, 1, 1}, {3}), {.reduction = "sum"}).backward();
  CHECK(big.grad().to_vector<double>() == std::vector<double>{1, -1, -0.5});
}

TEST_CASE("loss option errors") {
  Tensor s = zeros({2, 3}), y = from_vector<int64_t>({0, 2});
  CHECK_ERROR(cross_entropy(s, y, {.reduction = "avg"}), "cross_entropy: reduction must be \"mean\", \"sum\" or \"none\", got \"avg\"");
  CHECK_ERROR(cross_entropy(s, y, {.weight = zeros({2})}),
              "cross_entropy: weight must be a floating 1-D tensor with one element per class (3), got shape [2] (f32)");
  CHECK_ERROR(cross_entropy(s, y, {.weight = zeros({3}, Dtype::i64)}), "got shape [3] (i64)");
  CHECK_ERROR(cross_entropy(s, from_vector<int64_t>({0, -100}), {.ignore_index = -1}), "cross_entropy: label -100 at position 1 is out of range for 3 classes");
  CHECK_ERROR(cross_entropy(zeros({2, 3, 4}), y), "cross_entropy: labels shape [2] does not match input shape [2,3,4] (expected [2,4])");
  CHECK_ERROR(nll_loss(s, y, {.reduction = "batchmean"}), "nll_loss: reduction must be \"mean\", \"sum\" or \"none\", got \"batchmean\"");
  CHECK_ERROR(binary_cross_entropy_with_logits(s, zeros({3})), "binary_cross_entropy_with_logits: target shape [3] does not match input shape [2,3]");
  CHECK_ERROR(binary_cross_entropy_with_logits(s, zeros({2, 3}), {.pos_weight = zeros({2})}),
              "binary_cross_entropy_with_logits: pos_weight (shape [2], f32) must be floating and broadcast to the input shape [2,3]");
  CHECK_ERROR(binary_cross_entropy_with_logits(s, zeros({2, 3}), {.weight = zeros({3, 2, 3})}), "weight (shape [3,2,3], f32)");
  CHECK_ERROR(binary_cross_entropy_with_logits(s, zeros({2, 3}), {.reduction = ""}), "binary_cross_entropy_with_logits: reduction must be");
  CHECK_ERROR(binary_cross_entropy_with_logits(s, zeros({2, 3}, Dtype::i64)), "binary_cross_entropy_with_logits: target must be floating, got i64");
  CHECK_ERROR(smooth_l1_loss(s, s, {.beta = -1}), "smooth_l1_loss: beta must be finite and >= 0, got -1");
  CHECK_ERROR(smooth_l1_loss(s, zeros({3, 2})), "smooth_l1_loss: target shape [3,2] does not match input shape [2,3]");
  CHECK_ERROR(huber_loss(s, s, {.delta = 0}), "huber_loss: delta must be finite and > 0, got 0");
  CHECK_ERROR(huber_loss(s, s, {.reduction = "Mean"}), "huber_loss: reduction must be");
  CHECK_ERROR(kl_div(s, s, {.reduction = "batch"}), "kl_div: reduction must be \"batchmean\", \"mean\", \"sum\" or \"none\", got \"batch\"");
  CHECK_ERROR(kl_div(s, Tensor()), "kl_div: target shape [] does not match input shape [2,3]");
  CHECK_ERROR(kl_div(zeros({2}, Dtype::i64), zeros({2})), "kl_div: needs a floating tensor, got i64");
}

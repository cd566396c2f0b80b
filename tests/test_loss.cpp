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

TEST_CASE("loss errors") {
  Tensor s = zeros({2, 3});
  CHECK_ERROR(cross_entropy(s, from_vector<int64_t>({0, 3})), "cross_entropy: label 3 at position 1 is out of range for 3 classes");
  CHECK_ERROR(cross_entropy(s, from_vector<int64_t>({0, -1})), "cross_entropy: label -1 at position 1");
  CHECK_ERROR(cross_entropy(s, from_vector<int64_t>({0})), "cross_entropy: labels shape [1] does not match input shape [2,3]");
  CHECK_ERROR(cross_entropy(s, zeros({2})), "cross_entropy: labels must be an i64 tensor");
  CHECK_ERROR(cross_entropy(s, from_vector<int64_t>({0, 1}), 1.5), "cross_entropy: label_smoothing must be in [0, 1], got 1.5");
  CHECK_ERROR(cross_entropy(zeros({6}), from_vector<int64_t>({0})), "cross_entropy: input must be 2-D [N, C], got shape [6]");
  CHECK_ERROR(multi_margin_loss(s, from_vector<int64_t>({7, 0})), "multi_margin_loss: label 7");
  CHECK_ERROR(mse_loss(s, zeros({3})), "mse_loss: target shape [3] does not match input shape [2,3]");
  CHECK_ERROR(dropout(s, 1.5), "dropout: probability must be in [0, 1], got 1.5");
  CHECK_ERROR(softmax(zeros({2}, Dtype::i64), 0), "softmax: needs a floating tensor, got i64");
}

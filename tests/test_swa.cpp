// Weight averaging: AveragedModel's running mean and EMA over parameters and buffers, Lookahead's
// pull every k steps, and their errors.
#include "helpers.hpp"

using namespace xg;
using namespace xg::optim;

namespace {
// Sets every parameter of m to `value` (off the tape), the running mean to `value` as well.
void fill(nn::Module& m, double value) {
  NoGradGuard no_grad;
  for (const auto& [n, t] : m.named_parameters()) t.fill_(value);
  for (const auto& [n, t] : m.named_buffers())
    if (is_floating(t.dtype())) t.fill_(value);
}
double first(const Tensor& t) { return t.to_vector<double>()[0]; }
}  // namespace

TEST_CASE("AveragedModel: the running mean (SWA) and the EMA, with and without buffers") {
  nn::Sequential net(nn::Linear(2, 2), nn::BatchNorm1d(2));
  fill(net, 1.0);
  swa_utils::AveragedModel swa(net);
  swa_utils::AveragedModel ema(net, {.decay = 0.9, .use_buffers = true});
  for (double v : {2.0, 6.0}) {
    fill(net, v);
    swa.update_parameters(net);
    ema.update_parameters(net);
  }
  CHECK(swa.n_averaged() == 3);
  CHECK(first(swa.averages()[0].second) == doctest::Approx(3.0));      // (1 + 2 + 6) / 3
  CHECK(first(ema.averages()[0].second) == doctest::Approx(1.59));     // 0.9 (0.9 + 0.2) + 0.6
  // buffers: averaged with use_buffers, else as last seen
  auto buffer = [](const swa_utils::AveragedModel& a, const std::string& name) {
    for (const auto& [n, t] : a.averages())
      if (n == name) return first(t);
    return -1.0;
  };
  CHECK(buffer(swa, "1.running_mean") == 6.0);
  CHECK(buffer(ema, "1.running_mean") == doctest::Approx(1.59));
  nn::Sequential other(nn::Linear(2, 2), nn::BatchNorm1d(2));
  ema.copy_to(other);
  CHECK(first(other.named_parameters()[0].second) == doctest::Approx(1.59));
  CHECK(first(other.named_buffers()[0].second) == doctest::Approx(1.59));

  nn::Sequential wrong(nn::Linear(2, 3));
  CHECK_ERROR(swa.update_parameters(wrong), "AveragedModel: the model has");
  CHECK_ERROR(swa.copy_to(wrong), "AveragedModel: copy_to:");
  CHECK_ERROR(swa_utils::AveragedModel(net, {.decay = 1.0}), "AveragedModel: decay must be in [0, 1), got 1");
  // copy_to is an in-place write: a graph that saved the old weights refuses to run backward
  Tensor x = randn({3, 2});
  x.requires_grad_();
  Tensor y = sum(other.forward(x) * other.forward(x));
  swa.copy_to(other);
  CHECK_ERROR(y.backward(), "modified by an in-place operation");
}

TEST_CASE("Lookahead: every k steps the slow weights move alpha of the way and the fast ones follow") {
  Tensor w = from_vector<double>({0.0}, {1});
  w.requires_grad_();
  Tensor buf = from_vector<double>({10.0}, {1});
  SGD sgd({w}, {.lr = 1.0});
  Lookahead la(sgd, {.k = 2, .alpha = 0.5}, {buf});
  auto step = [&] {
    la.zero_grad();
    sum(w * -1.0).backward();  // gradient -1: each SGD step adds 1
    {
      NoGradGuard g;
      buf.add_(ones({1}, Dtype::f64));
    }
    la.step();
  };
  step();
  CHECK(first(w) == 1.0);  // between syncs the fast weights run free
  step();                  // fast 2, slow 0 -> slow 1, fast 1
  CHECK(first(w) == 1.0);
  CHECK(first(buf) == 11.0);  // 10 -> 12 fast, slow 10 + 0.5 * 2
  la.set_alpha(1.0);          // alpha 1: plain SGD
  step(), step();
  CHECK(first(w) == 3.0);
  CHECK(la.steps() == 4);
  CHECK_ERROR(la.set_alpha(1.5), "Lookahead: alpha must be in [0, 1], got 1.5");
  CHECK_ERROR(Lookahead(sgd, {.k = 0}), "Lookahead: k must be at least 1, got 0");
  CHECK_ERROR(Lookahead(sgd, {}, {zeros({1}, Dtype::i64)}), "Lookahead: extra tensors must be defined and floating");
}

TEST_CASE("Lookahead: finalize hands the fast weights the average; the state round-trips exactly") {
  Tensor w = from_vector<double>({0.0}, {1});
  w.requires_grad_();
  Tensor buf = from_vector<double>({10.0}, {1});
  SGD sgd({w}, {.lr = 1.0});
  Lookahead la(sgd, {.k = 2, .alpha = 0.5}, {buf});
  auto step = [&] {
    la.zero_grad();
    sum(w * -1.0).backward();  // each SGD step adds 1
    la.step();
  };
  step(), step();  // slow 1
  step();          // fast 2, slow still 1
  const NamedTensors state = la.state_dict();
  CHECK(state.size() == 3);  // steps, slow.0 (w), slow.1 (buf)
  la.finalize();
  CHECK(first(w) == 1.0);
  CHECK(first(buf) == 10.0);
  CHECK(la.steps() == 3);  // finalize is not a step

  // A second Lookahead restored from the state continues as the first would have.
  Tensor w2 = from_vector<double>({2.0}, {1});
  w2.requires_grad_();
  Tensor buf2 = from_vector<double>({10.0}, {1});
  SGD sgd2({w2}, {.lr = 1.0});
  Lookahead la2(sgd2, {.k = 2, .alpha = 0.5}, {buf2});
  la2.load_state_dict(state);
  CHECK(la2.steps() == 3);
  la2.zero_grad();
  sum(w2 * -1.0).backward();
  la2.step();  // fast 3, slow 1 -> 2
  CHECK(first(w2) == 2.0);

  NamedTensors bad = state;
  bad[1].second = zeros({2}, Dtype::f64);
  CHECK_ERROR(la2.load_state_dict(bad), "Lookahead: load_state_dict: 'slow.0' must be f64 [1], got f64 [2]");
  CHECK_ERROR(la2.load_state_dict({{"steps", state[0].second}, {"slow.7", state[1].second}}),
              "Lookahead: load_state_dict: unexpected 'slow.7' (2 tracked tensors)");
  CHECK_ERROR(la2.load_state_dict({{"steps", state[0].second}, {"slow.0", state[1].second}}),
              "Lookahead: load_state_dict: 'slow.1' is missing");
  CHECK(la2.steps() == 4);  // the refused states changed nothing
  CHECK(first(w2) == 2.0);
}

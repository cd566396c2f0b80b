// Parameter groups: per-group options in every optimizer, add_param_group / param_groups, schedules
// scaling every group, and state saved and restored per group.
#include "helpers.hpp"

using namespace xg;
using namespace xg::optim;

namespace {
Tensor param(const Shape& s, uint64_t seed) {
  manual_seed(seed);
  Tensor t = randn(s, Dtype::f64);
  t.requires_grad_();
  return t;
}

// Runs `steps` steps of loss = sum(w^2 * c) over the given parameters with the optimizer `opt`.
void train(Optimizer& opt, const std::vector<Tensor>& params, int steps) {
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    Tensor loss = scalar_tensor(0.0, Dtype::f64);
    for (size_t i = 0; i < params.size(); ++i) loss = loss + sum(params[i] * params[i] * double(i + 1)) + sum(params[i]);
    loss.backward();
    opt.step();
  }
}

std::vector<double> values(const std::vector<Tensor>& ps) {
  std::vector<double> out;
  for (const Tensor& p : ps) {
    std::vector<double> v = p.to_vector<double>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}
}  // namespace

TEST_CASE("param groups: each group's options act as a separate optimizer's would") {
  const SGDOptions a{.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-2, .nesterov = true};
  const SGDOptions b{.lr = 0.03, .momentum = 0.5, .dampening = 0.1};
  Tensor w1 = param({3, 2}, 1), w2 = param({4}, 2);
  SGD grouped({{{w1}, a}, {{w2}, b}});
  CHECK(grouped.num_param_groups() == 2);
  CHECK(grouped.lr(1) == 0.03);
  CHECK(grouped.momentum(1) == 0.5);
  train(grouped, {w1, w2}, 5);

  Tensor v1 = param({3, 2}, 1), v2 = param({4}, 2);
  SGD alone1({v1}, a), alone2({v2}, b);
  for (int s = 0; s < 5; ++s) {  // the same loss, one optimizer per group
    alone1.zero_grad(), alone2.zero_grad();
    (sum(v1 * v1 * 1.0) + sum(v1) + sum(v2 * v2 * 2.0) + sum(v2)).backward();
    alone1.step(), alone2.step();
  }
  CHECK(values({w1, w2}) == values({v1, v2}));

  // Adam and AdamW, RMSprop and Adagrad the same way.
  Tensor p1 = param({5}, 3), p2 = param({2, 2}, 4), q1 = param({5}, 3), q2 = param({2, 2}, 4);
  Adam adam({{{p1}, {.lr = 1e-2}}, {{p2}, {.lr = 3e-3, .betas = {0.8, 0.99}, .weight_decay = 0.1, .amsgrad = true}}});
  train(adam, {p1, p2}, 4);
  Adam a1({q1}, {.lr = 1e-2}), a2({q2}, {.lr = 3e-3, .betas = {0.8, 0.99}, .weight_decay = 0.1, .amsgrad = true});
  for (int s = 0; s < 4; ++s) {
    a1.zero_grad(), a2.zero_grad();
    (sum(q1 * q1) + sum(q1) + sum(q2 * q2 * 2.0) + sum(q2)).backward();
    a1.step(), a2.step();
  }
  CHECK(values({p1, p2}) == values({q1, q2}));
  AdamW adamw({{{param({2}, 5)}, {.weight_decay = 0.5}}, {{param({2}, 6)}, {.lr = 0.1}}});
  CHECK(adamw.options(0).weight_decay == 0.5);
  CHECK(adamw.options(1).weight_decay == 1e-2);  // AdamW's default
  RMSprop rms({{{param({2}, 7)}, {.lr = 0.1}}, {{param({2}, 8)}, {.lr = 0.2, .momentum = 0.3}}});
  CHECK(rms.momentum(1) == 0.3);
  Adagrad ada({{{param({2}, 9)}, {.lr = 0.1}}, {{param({2}, 10)}, {.lr = 0.2, .lr_decay = 0.1}}});
  CHECK(ada.options(1).lr_decay == 0.1);
}

TEST_CASE("param groups: add_param_group, param_groups, and refusals that change nothing") {
  Tensor w1 = param({2}, 1), w2 = param({3}, 2), w3 = param({1}, 3);
  SGD opt({w1}, {.lr = 0.1, .momentum = 0.9});
  opt.add_param_group({{w2, w3}, {.lr = 0.01, .weight_decay = 5e-4}});
  std::vector<ParamGroup<SGDOptions>> groups = opt.param_groups();
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].params.size() == 1);
  CHECK(groups[1].params.size() == 2);
  CHECK(groups[1].params[1].same(w3));
  CHECK(groups[1].options.weight_decay == 5e-4);
  CHECK(opt.group_of(2) == 1);
  CHECK(opt.params().size() == 3);
  CHECK_ERROR(opt.add_param_group({{w1}, {.lr = 0.1}}), "SGD: parameter 3 (shape [2]) appears more than once");
  CHECK_ERROR(opt.add_param_group({{param({2}, 4)}, {.lr = -1.0}}), "SGD: learning rate must be non-negative");
  CHECK_ERROR(opt.add_param_group({{}, {.lr = 0.1}}), "SGD: got an empty parameter list (group 2)");
  CHECK(opt.num_param_groups() == 2);
  CHECK(opt.params().size() == 3);
  CHECK_ERROR(opt.lr(2), "SGD: parameter group 2 of 2");
  CHECK_ERROR(opt.set_lr(5, 0.1), "SGD: parameter group 5 of 2");
  CHECK_ERROR(opt.set_momentum(1, -0.5), "SGD: momentum must be non-negative");
  CHECK(opt.momentum(1) == 0);
  opt.set_lr(1, 0.5);
  CHECK(opt.lr(0) == 0.1);
  CHECK(opt.lr(1) == 0.5);
  opt.set_lr(0.2);  // every group
  CHECK(opt.lr(1) == 0.2);
  CHECK_ERROR(SGD(std::vector<ParamGroup<SGDOptions>>{{{w1}, {}}, {{w1}, {}}}), "appears more than once");
}

TEST_CASE("param groups: schedules scale every group from its own base rate") {
  Tensor w1 = param({2}, 1), w2 = param({2}, 2);
  SGD opt({{{w1}, {.lr = 0.1, .momentum = 0.9}}, {{w2}, {.lr = 0.01, .momentum = 0.9}}});
  StepLR step(opt, 2, 0.5);
  step.step(), step.step();
  CHECK(opt.lr(0) == doctest::Approx(0.05));
  CHECK(opt.lr(1) == doctest::Approx(0.005));
  CosineAnnealingLR cos(opt, 4);  // from the current rates
  for (int i = 0; i < 4; ++i) cos.step();
  CHECK(opt.lr(0) == doctest::Approx(0.0).epsilon(1e-12));

  SGD opt2({{{param({2}, 3)}, {.lr = 1, .momentum = 0.9}}, {{param({2}, 4)}, {.lr = 1, .momentum = 0.9}}});
  OneCycleLR one(opt2, {.max_lrs = {0.4, 0.04}, .total_steps = 10, .div_factor = 4});
  CHECK(opt2.lr(0) == doctest::Approx(0.1));
  CHECK(opt2.lr(1) == doctest::Approx(0.01));
  for (int i = 0; i < 2; ++i) one.step();  // the peak: pct_start 0.3 of 10 steps
  CHECK(opt2.lr(0) == doctest::Approx(0.4));
  CHECK(opt2.lr(1) == doctest::Approx(0.04));
  CHECK(opt2.momentum(1) == doctest::Approx(0.85));
  CHECK_ERROR(OneCycleLR(opt2, {.max_lrs = {0.1}, .total_steps = 10}), "OneCycleLR: 1 max_lrs for 2 parameter groups");
}

TEST_CASE("param groups: state is saved and restored per group, and another layout is refused") {
  Tensor w1 = param({2}, 1), w2 = param({3}, 2);
  SGD opt({{{w1}, {.lr = 0.1, .momentum = 0.9}}, {{w2}, {.lr = 0.02, .momentum = 0.5}}});
  StepLR sched(opt, 1, 0.5);
  train(opt, {w1, w2}, 3);
  sched.step();
  NamedTensors state = opt.state_dict(), sched_state = sched.state_dict();
  auto has = [&](const std::string& key) {
    return std::any_of(state.begin(), state.end(), [&](const auto& e) { return e.first == key; });
  };
  CHECK(has("lr"));
  CHECK(has("param_groups.1.lr"));
  CHECK(has("param_groups.1.momentum"));
  CHECK(has("state.1.momentum_buffer"));

  Tensor u1 = param({2}, 1), u2 = param({3}, 2);
  SGD again({{{u1}, {.lr = 0.7, .momentum = 0.1}}, {{u2}, {.lr = 0.7, .momentum = 0.1}}});
  StepLR sched2(again, 1, 0.5);
  again.load_state_dict(state);
  sched2.load_state_dict(sched_state);
  CHECK(again.lr(1) == doctest::Approx(0.01));
  CHECK(again.momentum(1) == 0.5);
  CHECK(again.state(1).buffers.count("momentum_buffer") == 1);

  SGD one_group({param({2}, 5), param({3}, 6)}, {.lr = 0.3, .momentum = 0.2});
  CHECK_ERROR(one_group.load_state_dict(state), "unexpected 'param_groups.1.lr'");
  CHECK(one_group.lr() == 0.3);
  CHECK_ERROR(StepLR(one_group, 1).load_state_dict(sched_state), "StepLR: load_state_dict: unexpected 'base_lr.1'");
  // a refused momentum in group 1 leaves group 0's new rate unapplied too
  NamedTensors bad = state;
  for (auto& [k, t] : bad)
    if (k == "param_groups.1.momentum") t = scalar_tensor(-1.0, Dtype::f64);
  CHECK_ERROR(again.load_state_dict(bad), "SGD: momentum must be non-negative");
  CHECK(again.lr(0) == doctest::Approx(0.05));
  CHECK(again.momentum(1) == 0.5);
}

TEST_CASE("LambdaLR and piecewise_linear: every group follows the multiplier from its own base rate") {
  Tensor w1 = param({2}, 1), w2 = param({2}, 2);
  SGD opt({{{w1}, {.lr = 0.1, .momentum = 0.9}}, {{w2}, {.lr = 6.4, .momentum = 0.9}}});
  // airbench's multiplier over 10 steps: 0.2 -> 1 over the first 2 steps, then down to 0.07 at step 10
  const auto f = piecewise_linear({{0, 0.2}, {2, 1}, {10, 0.07}});
  CHECK(f(-1) == 0.2);  // constant beyond the ends, as numpy.interp
  CHECK(f(1) == doctest::Approx(0.6));
  CHECK(f(6) == doctest::Approx(1 - 0.93 / 2));
  CHECK(f(12) == 0.07);
  LambdaLR sched(opt, [&](int64_t step) { return f(static_cast<double>(step)); });
  CHECK(opt.lr(0) == doctest::Approx(0.02));  // construction sets step 0's rate
  CHECK(opt.lr(1) == doctest::Approx(1.28));
  sched.step(), sched.step();
  CHECK(opt.lr(0) == doctest::Approx(0.1));
  CHECK(opt.lr(1) == doctest::Approx(6.4));
  for (int i = 0; i < 8; ++i) sched.step();
  CHECK(opt.lr(0) == doctest::Approx(0.007));
  CHECK(sched.get_last_lr() == doctest::Approx(0.007));
  // The state round trip restores the step and the base rates.
  const NamedTensors state = sched.state_dict();
  CHECK_ERROR(LambdaLR(opt, std::function<double(int64_t)>{}), "LambdaLR: no lr_lambda");
  CHECK_ERROR(LambdaLR(opt, [](int64_t) { return -1.0; }), "LambdaLR: lr_lambda(0) = -1; it must be finite and non-negative");
  CHECK(opt.lr(0) == doctest::Approx(0.007));  // the refused schedules changed nothing
  LambdaLR other(opt, [&](int64_t step) { return f(static_cast<double>(step)); });
  other.load_state_dict(state);
  CHECK(other.last_epoch() == 10);
  CHECK_ERROR(piecewise_linear({}), "piecewise_linear: needs at least one point");

  // One function per group (PyTorch's list form); the wrong count, or a missing one, is refused.
  SGD fresh({{{w1}, {.lr = 0.1}}, {{w2}, {.lr = 6.4}}});
  LambdaLR per_group(fresh, {[](int64_t e) { return 1.0 / double(e + 1); }, [](int64_t e) { return e < 2 ? 1.0 : 0.0; }});
  CHECK(fresh.lr(0) == doctest::Approx(0.1));
  CHECK(fresh.lr(1) == doctest::Approx(6.4));
  per_group.step(), per_group.step();
  CHECK(fresh.lr(0) == doctest::Approx(0.1 / 3));
  CHECK(fresh.lr(1) == 0.0);
  CHECK_ERROR(LambdaLR(fresh, std::vector<std::function<double(int64_t)>>(3, [](int64_t) { return 1.0; })),
              "LambdaLR: 3 lr_lambdas for 2 parameter groups; give one, or one per group");
  CHECK_ERROR(LambdaLR(fresh, std::vector<std::function<double(int64_t)>>{[](int64_t) { return 1.0; }, {}}),
              "LambdaLR: no lr_lambda for group 1");
  CHECK_ERROR(LambdaLR(fresh, {[](int64_t) { return 1.0; }, [](int64_t) { return NAN; }}),
              "LambdaLR: lr_lambda(0) = nan for group 1; it must be finite and non-negative");
  CHECK(fresh.lr(1) == 0.0);  // unchanged by the refused schedules
  CHECK_ERROR(piecewise_linear({{0, 1}, {0, 2}}), "piecewise_linear: x must increase strictly, but point 1 has x = 0 after 0");
}

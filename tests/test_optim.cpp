// Optimizers' first steps against PyTorch's update rules, schedules, clip_grad_norm, state and errors.
#include <cmath>
#include <limits>
#include <memory>

#include "helpers.hpp"

using namespace xg;
using namespace xg::optim;

namespace {
using Rows = std::vector<std::vector<double>>;

// The fixed problem: L = 0.5 * sum(a * w^2), so g = a * w, with w0 = [1, -2, 3] and a = [1, 2, 0.5].
// The expected rows (w after steps 1, 2, 3) come from a plain-Python restatement of
// torch/optim/*.py on this problem (scalar loops, f64, printed with %.17g); the formula of each
// optimizer is quoted in optimizers.hpp and above each case.
template <class Make>
void check_three_steps(Make make, const Rows& expected) {
  Tensor w = from_vector<double>({1, -2, 3});
  w.requires_grad_();
  Tensor a = from_vector<double>({1, 2, 0.5});
  std::unique_ptr<Optimizer> opt = make(std::vector<Tensor>{w});
  for (size_t s = 0; s < expected.size(); ++s) {
    opt->zero_grad();
    (sum(a * w * w) * 0.5).backward();
    opt->step();
    auto got = w.to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("step " << s + 1 << ", element " << i);
      CHECK(std::abs(got[i] - expected[s][i]) < 1e-10);
    }
  }
}
}  // namespace

TEST_CASE("SGD: plain, momentum with dampening and weight decay, Nesterov") {
  // w -= lr * g
  check_three_steps([](auto p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1}); },
                    {{0.9, -1.6, 2.85}, {0.81, -1.28, 2.7075}, {0.729, -1.024, 2.572125}});
  // d = g + wd*w; b = d (step 1), b = m*b + (1-damp)*d; w -= lr*b
  check_three_steps(
      [](auto p) {
        return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
      },
      {{0.89900000000000002, -1.5980000000000001, 2.847},
       {0.7263809, -0.94712180000000001, 2.5786226999999999},
       {0.50499568619000001, -0.1899970863799999, 2.2187243480699999}});
  // b as above; w -= lr * (g + m*b)
  check_three_steps(
      [](auto p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true}); },
      {{0.81000000000000005, -1.24, 2.7149999999999999},
       {0.57510000000000006, -0.44479999999999997, 2.335575},
       {0.32732100000000003, 0.21670400000000001, 1.8943878750000001}});
}

TEST_CASE("RMSprop: defaults, and centered with momentum and weight decay") {
  // s = alpha*s + (1-alpha)*g^2; w -= lr * g / (sqrt(s) + eps); lr 0.01, alpha 0.99, eps 1e-8
  check_three_steps([](auto p) { return std::make_unique<RMSprop>(p); },
                    {{0.90000000999999907, -1.9000000024999999, 2.9000000066666662},
                     {0.83291797526505928, -1.8309433291098638, 2.830317456889818},
                     {0.77998228198235409, -1.7753494456014602, 2.773888578459935}});
  // a = a + (1-alpha)*(g-a); d = sqrt(s - a^2) + eps; b = m*b + g/d; w -= lr*b
  check_three_steps(
      [](auto p) {
        return std::make_unique<RMSprop>(
            p, RMSpropOptions{.lr = 0.01, .alpha = 0.9, .weight_decay = 0.1, .momentum = 0.5, .centered = true});
      },
      {{0.96666666767676768, -1.9666666669312169, 2.9666666672839508},
       {0.92492347796825203, -1.9247134863721067, 2.9246448020273603},
       {0.88241836727359602, -1.8816602313950654, 2.881414290983086}});
}

TEST_CASE("Adagrad: lr decay, weight decay, initial accumulator") {
  // clr = lr / (1 + (t-1)*lr_decay); s += g^2 (s0 = 0.2); w -= clr * g / (sqrt(s) + eps)
  check_three_steps(
      [](auto p) {
        return std::make_unique<Adagrad>(
            p, AdagradOptions{.lr = 0.1, .lr_decay = 0.5, .weight_decay = 0.1, .initial_accumulator_value = 0.2});
      },
      {{0.90736328869048433, -1.9005621180021748, 2.902950504122138},
       {0.86446731680676414, -1.8547745420866031, 2.8573130722177669},
       {0.83833557353452004, -1.8269360888447352, 2.8293736382481938}});
}

TEST_CASE("Adam and AdamW: bias corrections, amsgrad, decoupled decay") {
  // m = m + (1-b1)(g-m); v = b2 v + (1-b2) g^2; w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
  check_three_steps([](auto p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.1}); },
                    {{0.90000000099999999, -1.9000000002499999, 2.9000000006666666},
                     {0.80041222971233816, -1.800166486115701, 2.8001027084220778},
                     {0.70158627450441502, -1.7006233920464651, 2.7003815249719785}});
  // g += wd*w; v_max = max(v_max, v) replaces v
  check_three_steps(
      [](auto p) {
        return std::make_unique<Adam>(
            p, AdamOptions{.lr = 0.1, .betas = {0.8, 0.9}, .weight_decay = 0.1, .amsgrad = true});
      },
      {{0.90000000090909094, -1.9000000002380952, 2.9000000005555555},
       {0.80044681625957792, -1.8001829558107925, 2.8001135396381671},
       {0.70171922813897902, -1.7006834050301525, 2.7004204547588242}});
  // w *= 1 - lr*wd, then the Adam step on the plain gradient
  check_three_steps([](auto p) { return std::make_unique<AdamW>(p, AdamWOptions{.lr = 0.1, .weight_decay = 0.1}); },
                    {{0.89000000099999999, -1.8800000002499999, 2.8700000006666664},
                     {0.78157185695416109, -1.7614089505845592, 2.7414399419121342},
                     {0.67510122318920085, -1.6443686835605893, 2.6144056187940881}});
  CHECK(AdamW({ones({1})}).options().weight_decay == 1e-2);  // AdamW's default decay reaches Adam's update
}

TEST_CASE("optimizers: PyTorch defaults, skipped parameters, f32 updates") {
  Tensor w = ones({2});
  w.requires_grad_();
  CHECK(SGD({w}).lr() == 1e-3);
  CHECK(Adam({w}).lr() == 1e-3);
  CHECK(Adam({w}).options().betas == std::pair{0.9, 0.999});
  CHECK(AdamW({w}).lr() == 1e-3);
  CHECK(RMSprop({w}).options().alpha == 0.99);
  CHECK(Adagrad({w}).options().eps == 1e-10);

  Tensor unused = ones({3});
  unused.requires_grad_();
  SGD opt({w, unused}, {.lr = 0.5});
  sum(w * w).backward();
  opt.step();
  CHECK(w.to_vector<float>() == std::vector<float>{0.0f, 0.0f});  // 1 - 0.5 * 2
  CHECK(unused.to_vector<float>() == std::vector<float>{1, 1, 1});  // no gradient: untouched
  CHECK(opt.state(1).step == 0);
  opt.zero_grad();
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("schedules: StepLR, ExponentialLR, CosineAnnealingLR") {
  Tensor w = ones({1});
  w.requires_grad_();
  SGD opt({w}, {.lr = 0.1});
  StepLR step_lr(opt, 2, 0.5);
  std::vector<double> lrs{opt.lr()};
  for (int e = 0; e < 4; ++e) {
    step_lr.step();
    lrs.push_back(opt.lr());
  }
  CHECK(lrs == std::vector<double>{0.1, 0.1, 0.05, 0.05, 0.025});

  SGD opt2({w}, {.lr = 1.0});
  ExponentialLR decay(opt2, 0.95);  // CS231n: learning_rate *= lr_decay after each epoch
  decay.step();
  decay.step();
  CHECK(opt2.lr() == doctest::Approx(0.95 * 0.95));

  // PyTorch's recursive CosineAnnealingLR.get_lr (what its step() runs) for base 0.1, eta_min 0.01,
  // T_max 4, epochs 0..8, evaluated in Python; the closed form must agree to rounding.
  const std::vector<double> cosine = {0.1, 0.086819805153394644, 0.055000000000000007, 0.023180194846605363, 0.01,
                                      0.023180194846605363, 0.055000000000000021, 0.086819805153394686, 0.1};
  SGD opt3({w}, {.lr = 0.1});
  CosineAnnealingLR cos_lr(opt3, 4, 0.01);
  for (size_t e = 0; e < cosine.size(); ++e) {
    CHECK(opt3.lr() == doctest::Approx(cosine[e]).epsilon(1e-12));
    cos_lr.step();
  }
}

TEST_CASE("OneCycleLR: PyTorch's defaults, lr and momentum per step") {
  // torch's OneCycleLR.get_lr restated in Python for max_lr 1, total_steps 10 and the defaults
  // (pct_start 0.3, cos, div_factor 25, final_div_factor 1e4, momentum 0.85..0.95).
  const std::vector<double> lr = {0.040000000000000036, 0.52, 1, 0.95048463201347366, 0.81174565394976306,
                                  0.61126202193628931, 0.38874197806371075, 0.18825834605023697,
                                  0.049519367986526286, 3.9999999999999998e-06};
  const std::vector<double> mom = {0.95, 0.9, 0.85, 0.85495155660487898, 0.86882550990706331, 0.88887395330218422,
                                   0.91112604669781572, 0.93117449009293662, 0.94504844339512095, 0.95};
  Tensor w = ones({1});
  w.requires_grad_();
  SGD opt({w}, {.lr = 0.1, .momentum = 0.9});
  OneCycleLR sched(opt, {.max_lr = 1.0, .total_steps = 10});
  for (size_t s = 0; s < lr.size(); ++s) {
    INFO("step " << s);
    CHECK(opt.lr() == doctest::Approx(lr[s]).epsilon(1e-12));
    CHECK(opt.momentum() == doctest::Approx(mom[s]).epsilon(1e-12));
    if (s + 1 < lr.size()) sched.step();
  }
  sched.step();  // step 10 = total_steps is still allowed, as in PyTorch
  CHECK_ERROR(sched.step(), "OneCycleLR: stepped 11 times, but total_steps is 10");

  // Adam's beta1 cycles; three_phase returns to initial_lr before annealing.
  const std::vector<double> three = {0.040000000000000036, 0.52, 1, 0.52, 0.04, 0.036180721853510199,
                                     0.026181721853510202, 0.013822278146489805, 0.0038232781464898036, 4e-06};
  Adam adam({w});
  OneCycleLR three_phase(adam, {.max_lr = 1.0, .total_steps = 10, .three_phase = true});
  CHECK(adam.options().betas.first == doctest::Approx(0.95));
  for (size_t s = 0; s < three.size(); ++s) {
    CHECK(adam.lr() == doctest::Approx(three[s]).epsilon(1e-12));
    if (s + 1 < three.size()) three_phase.step();
  }
  Adagrad adagrad({w});
  CHECK_ERROR(OneCycleLR(adagrad, {.max_lr = 1.0, .total_steps = 10}), "OneCycleLR: Adagrad has no momentum");
  CHECK_ERROR(OneCycleLR(opt, {.max_lr = 1.0}), "OneCycleLR: give total_steps");
}

TEST_CASE("clip_grad_norm: total norm, scaling, nothing to clip") {
  Tensor a = from_vector<double>({3, 0}), b = from_vector<double>({4});
  a.requires_grad_();
  b.requires_grad_();
  a.set_grad(from_vector<double>({3, 0}));
  b.set_grad(from_vector<double>({4}));
  CHECK(clip_grad_norm({a, b}, 1.0) == doctest::Approx(5.0));
  const double coef = 1.0 / (5.0 + 1e-6);
  CHECK(a.grad().to_vector<double>()[0] == doctest::Approx(3 * coef));
  CHECK(b.grad().to_vector<double>()[0] == doctest::Approx(4 * coef));
  CHECK(clip_grad_norm({a, b}, 10.0) == doctest::Approx(1.0).epsilon(1e-5));  // below max: unchanged
  CHECK(b.grad().to_vector<double>()[0] == doctest::Approx(4 * coef));
  CHECK(clip_grad_norm({a, b}, 10.0, std::numeric_limits<double>::infinity()) == doctest::Approx(4 * coef));
  Tensor none = ones({2});
  CHECK(clip_grad_norm({none}, 1.0) == 0.0);
  CHECK_ERROR(clip_grad_norm({a}, -1.0), "clip_grad_norm: max_norm must be non-negative");
}

TEST_CASE("optimizer state: save, restore, continue exactly") {
  auto run = [](Optimizer& opt, const Tensor& w, int steps) {
    Tensor a = from_vector<double>({1, 2, 0.5});
    for (int s = 0; s < steps; ++s) {
      opt.zero_grad();
      (sum(a * w * w) * 0.5 + sum(w)).backward();
      opt.step();
    }
  };
  Tensor w = from_vector<double>({1, -2, 3});
  w.requires_grad_();
  Adam adam({w}, {.lr = 0.05, .amsgrad = true});
  run(adam, w, 3);
  nn::NamedTensors saved = adam.state_dict();
  Tensor w_saved = w.clone().detach();
  run(adam, w, 4);

  Tensor w2 = w_saved.clone().detach();
  w2.requires_grad_();
  Adam resumed({w2}, {.lr = 0.05, .amsgrad = true});
  resumed.load_state_dict(saved);
  CHECK(resumed.state(0).step == 3);
  run(resumed, w2, 4);
  CHECK(w2.to_vector<double>() == w.to_vector<double>());  // bit-exact

  // Every problem at once, optimizer unchanged.
  nn::NamedTensors bad = {{"lr", scalar_tensor(0.1, Dtype::f64)},
                          {"state.0.exp_avg", zeros({4}, Dtype::f64)},
                          {"state.7.step", scalar_tensor(1, Dtype::i64)},
                          {"state.0.velocity", zeros({3}, Dtype::f64)},
                          {"bogus", zeros({1})}};
  std::string msg;
  try {
    resumed.load_state_dict(bad);
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("Adam: load_state_dict") == 0);
  for (const char* part : {"'state.0.exp_avg': shape [4]", "index 7 but there are 1 parameters",
                           "unexpected 'state.0.velocity'", "unexpected 'bogus'", "the optimizer is unchanged"})
    CHECK_MESSAGE(msg.find(part) != std::string::npos, part);
  CHECK(resumed.state(0).step == 7);
  CHECK(resumed.lr() == 0.05);
}

TEST_CASE("optimizers: bad input names the optimizer") {
  Tensor w = ones({2});
  w.requires_grad_();
  CHECK_ERROR(SGD(std::vector<Tensor>{}), "SGD: got an empty parameter list");
  CHECK_ERROR(SGD(std::vector<ParamGroup<SGDOptions>>{}), "SGD: got no parameter groups");
  CHECK_ERROR(SGD({w, w}), "SGD: parameter 1 (shape [2]) appears more than once");
  CHECK_ERROR(Adam({w * 2.0}), "Adam: parameter 0 (shape [2]) is not a leaf tensor");
  CHECK_ERROR(SGD({zeros({2}, Dtype::i64)}), "SGD: parameter 0 (shape [2]) must be f32 or f64, got i64");
  CHECK_ERROR(SGD({w}, {.lr = -1}), "SGD: learning rate must be non-negative");
  CHECK_ERROR(SGD({w}, {.nesterov = true}), "SGD: nesterov needs momentum > 0 and dampening = 0");
  CHECK_ERROR(Adam({w}, {.betas = {1.0, 0.9}}), "Adam: betas must be in [0, 1), got (1, 0.9)");
  CHECK_ERROR(AdamW({w}, {.eps = -1}), "AdamW: eps must be non-negative");
  CHECK_ERROR(RMSprop({w}, {.alpha = -0.5}), "RMSprop: alpha must be non-negative");
  CHECK_ERROR(Adagrad({w}, {.lr_decay = -1}), "Adagrad: lr_decay must be non-negative");
  CHECK_ERROR(StepLR(*std::make_unique<SGD>(std::vector<Tensor>{w}), 0), "StepLR: step_size must be positive, got 0");
  SGD opt({w});
  w.set_grad(ones({2}, Dtype::f32));
  CHECK_NOTHROW(opt.step());
  Tensor v = ones({3}, Dtype::f64);
  v.requires_grad_();
  v.impl().grad = ones({3}, Dtype::f32).impl_ptr();  // a gradient of the wrong dtype
  Adam bad({w, v});
  w.set_grad(ones({2}));
  CHECK_ERROR(bad.step(), "Adam: gradient of parameter 1 has shape [3] and dtype f32, the parameter [3] and f64");
  CHECK(w.to_vector<float>()[0] == doctest::Approx(1.0f - 1e-3f));  // only SGD's step landed
  Adagrad no_momentum({w});
  CHECK_ERROR(no_momentum.set_momentum(0.9), "Adagrad: has no momentum");
}

TEST_CASE("schedules: state round trip and bad input") {
  Tensor w = ones({1});
  w.requires_grad_();
  SGD opt({w}, {.lr = 0.1});
  CosineAnnealingLR sched(opt, 10);
  sched.step();
  sched.step();
  nn::NamedTensors saved = sched.state_dict();
  SGD opt2({w}, {.lr = 0.1});
  CosineAnnealingLR resumed(opt2, 10);
  resumed.load_state_dict(saved);
  opt2.set_lr(opt.lr());  // the optimizer's own state carries the current rate
  sched.step();
  resumed.step();
  CHECK(resumed.last_epoch() == 3);
  CHECK(opt2.lr() == opt.lr());
  CHECK_ERROR(resumed.load_state_dict({{"last_epoch", scalar_tensor(1, Dtype::i64)}}),
              "CosineAnnealingLR: load_state_dict: needs 'base_lr'");
  CHECK_ERROR(resumed.load_state_dict({{"epoch", scalar_tensor(1, Dtype::i64)}}),
              "CosineAnnealingLR: load_state_dict: unexpected 'epoch'");
  CHECK_ERROR(CosineAnnealingLR(opt, 0), "CosineAnnealingLR: T_max must be positive, got 0");
  CHECK_ERROR(ExponentialLR(opt, 0.0), "ExponentialLR: gamma must be positive, got 0");
  CHECK_ERROR(OneCycleLR(opt, {.max_lr = 1.0, .total_steps = 10, .pct_start = 1.5}),
              "OneCycleLR: pct_start must be in [0, 1], got 1.5");
  CHECK_ERROR(opt.set_lr(-0.5), "SGD: learning rate must be non-negative, got -0.5");
  const double lr_before = opt.lr();
  CHECK_ERROR(opt.load_state_dict({}), "SGD: load_state_dict: missing 'lr'; missing 'momentum'");
  CHECK_ERROR(opt.load_state_dict({{"lr", scalar_tensor(-1)}, {"momentum", scalar_tensor(0)}}),
              "SGD: load_state_dict: 'lr' is negative (-1)");
  CHECK_ERROR(opt.load_state_dict({{"lr", scalar_tensor(0.5)}, {"momentum", scalar_tensor(-1)}}),
              "SGD: momentum must be non-negative, got -1");
  CHECK(opt.lr() == lr_before);  // unchanged by either failure
  CHECK(opt.momentum() == 0.0);
}

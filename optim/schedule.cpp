// Learning-rate schedules: the shared stepping and state, and each schedule's formula.
#include "optim/schedule.hpp"

#include <fmt/format.h>

#include <cmath>
#include <numbers>

namespace xg::optim {

LRScheduler::LRScheduler(Optimizer& optimizer, const char* name)
    : optimizer_(optimizer), name_(name) {
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g) base_lrs_.push_back(optimizer.lr(g));
}

void LRScheduler::initial_step() { step(); }

void LRScheduler::step() {
  const int64_t next = last_epoch_ + 1;
  std::vector<double> lrs;
  for (size_t g = 0; g < base_lrs_.size(); ++g) lrs.push_back(group_lr_at(g, base_lrs_[g], next));  // may throw (OneCycleLR past its end): nothing changes then
  last_epoch_ = next;
  for (size_t g = 0; g < lrs.size(); ++g) optimizer_.set_lr(g, lrs[g]);
  last_lr_ = lrs[0];
  on_step(next);
}

namespace {
std::string base_key(size_t g) { return g == 0 ? "base_lr" : fmt::format("base_lr.{}", g); }
}  // namespace

NamedTensors LRScheduler::state_dict() const {
  NamedTensors out{{"last_epoch", scalar_tensor(static_cast<double>(last_epoch_), Dtype::i64)}};
  for (size_t g = 0; g < base_lrs_.size(); ++g) out.emplace_back(base_key(g), scalar_tensor(base_lrs_[g], Dtype::f64));
  return out;
}

void LRScheduler::load_state_dict(const NamedTensors& state) {
  Tensor epoch;
  std::vector<Tensor> bases(base_lrs_.size());
  for (const auto& [n, t] : state) {
    bool known = n == "last_epoch";
    if (known) epoch = t;
    for (size_t g = 0; g < bases.size() && !known; ++g)
      if (n == base_key(g)) bases[g] = t, known = true;
    check(known, "{}: load_state_dict: unexpected '{}'", name_, n);
  }
  check(epoch.defined() && epoch.dtype() == Dtype::i64 && epoch.numel() == 1 && epoch.item<int64_t>() >= 0,
        "{}: load_state_dict: needs 'last_epoch', one non-negative i64", name_);
  for (size_t g = 0; g < bases.size(); ++g)
    check(bases[g].defined() && is_floating(bases[g].dtype()) && bases[g].numel() == 1,
          "{}: load_state_dict: needs '{}', one floating value", name_, base_key(g));
  last_epoch_ = epoch.item<int64_t>();
  for (size_t g = 0; g < bases.size(); ++g) base_lrs_[g] = bases[g].item<double>();
  last_lr_ = optimizer_.lr();  // the optimizer's state carries the current rate
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  check(step_size > 0, "StepLR: step_size must be positive, got {}", step_size);
  initial_step();
}

double StepLR::lr_at(double base_lr, int64_t epoch) const {
  return base_lr * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
  check(gamma > 0, "ExponentialLR: gamma must be positive, got {}", gamma);
  initial_step();
}

double ExponentialLR::lr_at(double base_lr, int64_t epoch) const {
  return base_lr * std::pow(gamma_, static_cast<double>(epoch));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
  check(T_max > 0, "CosineAnnealingLR: T_max must be positive, got {}", T_max);
  initial_step();
}

double CosineAnnealingLR::lr_at(double base_lr, int64_t epoch) const {
  const double c = std::cos(std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(T_max_));
  return eta_min_ + (base_lr - eta_min_) * (1 + c) / 2;
}

OneCycleLR::OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& o)
    : LRScheduler(optimizer, "OneCycleLR"), options_(o) {
  total_steps_ = o.total_steps > 0 ? o.total_steps : o.epochs * o.steps_per_epoch;
  check(total_steps_ > 0, "OneCycleLR: give total_steps, or epochs and steps_per_epoch (got {}, {}, {})",
        o.total_steps, o.epochs, o.steps_per_epoch);
  const size_t groups = optimizer.num_param_groups();
  check(o.max_lrs.empty() || o.max_lrs.size() == groups, "OneCycleLR: {} max_lrs for {} parameter groups",
        o.max_lrs.size(), groups);
  std::vector<double> max_lrs = o.max_lrs.empty() ? std::vector<double>(groups, o.max_lr) : o.max_lrs;
  for (double m : max_lrs) check(m > 0, "OneCycleLR: max_lr must be positive, got {}", m);
  check(o.pct_start >= 0 && o.pct_start <= 1, "OneCycleLR: pct_start must be in [0, 1], got {}", o.pct_start);
  check(o.div_factor > 0 && o.final_div_factor > 0, "OneCycleLR: div_factor and final_div_factor must be positive");
  check(!o.cycle_momentum || optimizer.has_momentum(),
        "OneCycleLR: {} has no momentum or beta1 to cycle; set cycle_momentum = false", optimizer.name());
  const double initial = 1 / o.div_factor, min_lr = initial / o.final_div_factor;  // fractions of max_lr
  const double T = static_cast<double>(total_steps_), up = o.pct_start * T - 1;
  const double lo = o.base_momentum, hi = o.max_momentum;
  if (o.three_phase)
    phases_ = {{up, initial, 1, hi, lo}, {2 * o.pct_start * T - 2, 1, initial, lo, hi}, {T - 1, initial, min_lr, hi, hi}};
  else
    phases_ = {{up, initial, 1, hi, lo}, {T - 1, 1, min_lr, lo, hi}};
  for (size_t g = 0; g < groups; ++g) {  // each group starts at its own max_lr / div_factor
    base_lrs_[g] = max_lrs[g] / o.div_factor;
    optimizer.set_lr(g, base_lrs_[g]);
  }
  if (o.cycle_momentum) optimizer.set_momentum(hi);
  initial_step();
}

double OneCycleLR::at(int64_t step, bool momentum) const {
  check(step <= total_steps_, "OneCycleLR: stepped {} times, but total_steps is {}", step, total_steps_);
  double start_step = 0;
  for (size_t i = 0; i < phases_.size(); ++i) {
    const Phase& p = phases_[i];
    if (static_cast<double>(step) <= p.end_step || i + 1 == phases_.size()) {
      const double pct = (static_cast<double>(step) - start_step) / (p.end_step - start_step);
      const double a = momentum ? p.start_momentum : p.start_lr, b = momentum ? p.end_momentum : p.end_lr;
      if (options_.anneal_strategy == AnnealStrategy::linear) return (b - a) * pct + a;
      return b + (a - b) / 2 * (std::cos(std::numbers::pi * pct) + 1);
    }
    start_step = p.end_step;
  }
  return 0;  // unreachable: the last phase always matches
}

double OneCycleLR::lr_at(double base_lr, int64_t step) const { return base_lr * options_.div_factor * at(step, false); }

void OneCycleLR::on_step(int64_t step) {
  if (options_.cycle_momentum) optimizer_.set_momentum(at(step, true));
}

LambdaLR::LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> lr_lambda)
    : LambdaLR(optimizer, std::vector<std::function<double(int64_t)>>{std::move(lr_lambda)}) {}

LambdaLR::LambdaLR(Optimizer& optimizer, std::vector<std::function<double(int64_t)>> lr_lambdas)
    : LRScheduler(optimizer, "LambdaLR"), lr_lambdas_(std::move(lr_lambdas)) {
  check(lr_lambdas_.size() == 1 || lr_lambdas_.size() == base_lrs_.size(),
        "LambdaLR: {} lr_lambdas for {} parameter groups; give one, or one per group", lr_lambdas_.size(),
        base_lrs_.size());
  check(lr_lambdas_.size() > 1 || static_cast<bool>(lr_lambdas_[0]), "LambdaLR: no lr_lambda");
  for (size_t g = 0; g < lr_lambdas_.size(); ++g)
    check(static_cast<bool>(lr_lambdas_[g]), "LambdaLR: no lr_lambda for group {}", g);
  initial_step();
}

double LambdaLR::group_lr_at(size_t group, double base_lr, int64_t epoch) const {
  const double m = lr_lambdas_[lr_lambdas_.size() == 1 ? 0 : group](epoch);
  check(std::isfinite(m) && m >= 0, "LambdaLR: lr_lambda({}) = {}{}; it must be finite and non-negative", epoch, m,
        lr_lambdas_.size() == 1 ? "" : fmt::format(" for group {}", group));
  return base_lr * m;
}

std::function<double(double)> piecewise_linear(std::vector<std::pair<double, double>> points) {
  check(!points.empty(), "piecewise_linear: needs at least one point");
  for (size_t i = 0; i < points.size(); ++i) {
    check(std::isfinite(points[i].first) && std::isfinite(points[i].second), "piecewise_linear: point {} is ({}, {})",
          i, points[i].first, points[i].second);
    check(i == 0 || points[i].first > points[i - 1].first,
          "piecewise_linear: x must increase strictly, but point {} has x = {} after {}", i, points[i].first,
          points[i - 1].first);
  }
  return [p = std::move(points)](double x) {
    if (x <= p.front().first) return p.front().second;
    for (size_t i = 1; i < p.size(); ++i)
      if (x <= p[i].first) {
        const double t = (x - p[i - 1].first) / (p[i].first - p[i - 1].first);
        return p[i - 1].second + t * (p[i].second - p[i - 1].second);
      }
    return p.back().second;
  };
}

}  // namespace xg::optim

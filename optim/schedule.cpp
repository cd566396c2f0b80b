// Learning-rate schedules: the shared stepping and state, and each schedule's formula.
#include "optim/schedule.hpp"

#include <cmath>
#include <numbers>

namespace xg::optim {

LRScheduler::LRScheduler(Optimizer& optimizer, const char* name)
    : optimizer_(optimizer), base_lr_(optimizer.lr()), name_(name) {}

void LRScheduler::initial_step() { step(); }

void LRScheduler::step() {
  const int64_t next = last_epoch_ + 1;
  const double lr = lr_at(next);  // may throw (OneCycleLR past its end): nothing changes then
  last_epoch_ = next;
  optimizer_.set_lr(lr);
  last_lr_ = lr;
  on_step(next);
}

NamedTensors LRScheduler::state_dict() const {
  return {{"last_epoch", scalar_tensor(static_cast<double>(last_epoch_), Dtype::i64)},
          {"base_lr", scalar_tensor(base_lr_, Dtype::f64)}};
}

void LRScheduler::load_state_dict(const NamedTensors& state) {
  Tensor epoch, base;
  for (const auto& [n, t] : state) {
    if (n == "last_epoch") epoch = t;
    else if (n == "base_lr") base = t;
    else fail("{}: load_state_dict: unexpected '{}'", name_, n);
  }
  check(epoch.defined() && epoch.dtype() == Dtype::i64 && epoch.numel() == 1 && epoch.item<int64_t>() >= 0,
        "{}: load_state_dict: needs 'last_epoch', one non-negative i64", name_);
  check(base.defined() && is_floating(base.dtype()) && base.numel() == 1,
        "{}: load_state_dict: needs 'base_lr', one floating value", name_);
  last_epoch_ = epoch.item<int64_t>();
  base_lr_ = base.item<double>();
  last_lr_ = optimizer_.lr();  // the optimizer's state carries the current rate
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  check(step_size > 0, "StepLR: step_size must be positive, got {}", step_size);
  initial_step();
}

double StepLR::lr_at(int64_t epoch) const {
  return base_lr_ * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
  check(gamma > 0, "ExponentialLR: gamma must be positive, got {}", gamma);
  initial_step();
}

double ExponentialLR::lr_at(int64_t epoch) const { return base_lr_ * std::pow(gamma_, static_cast<double>(epoch)); }

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
  check(T_max > 0, "CosineAnnealingLR: T_max must be positive, got {}", T_max);
  initial_step();
}

double CosineAnnealingLR::lr_at(int64_t epoch) const {
  const double c = std::cos(std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(T_max_));
  return eta_min_ + (base_lr_ - eta_min_) * (1 + c) / 2;
}

OneCycleLR::OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& o)
    : LRScheduler(optimizer, "OneCycleLR"), options_(o) {
  total_steps_ = o.total_steps > 0 ? o.total_steps : o.epochs * o.steps_per_epoch;
  check(total_steps_ > 0, "OneCycleLR: give total_steps, or epochs and steps_per_epoch (got {}, {}, {})",
        o.total_steps, o.epochs, o.steps_per_epoch);
  check(o.max_lr > 0, "OneCycleLR: max_lr must be positive, got {}", o.max_lr);
  check(o.pct_start >= 0 && o.pct_start <= 1, "OneCycleLR: pct_start must be in [0, 1], got {}", o.pct_start);
  check(o.div_factor > 0 && o.final_div_factor > 0, "OneCycleLR: div_factor and final_div_factor must be positive");
  check(!o.cycle_momentum || optimizer.has_momentum(),
        "OneCycleLR: {} has no momentum or beta1 to cycle; set cycle_momentum = false", optimizer.name());
  const double initial = o.max_lr / o.div_factor, min_lr = initial / o.final_div_factor;
  const double T = static_cast<double>(total_steps_), up = o.pct_start * T - 1;
  const double lo = o.base_momentum, hi = o.max_momentum;
  if (o.three_phase)
    phases_ = {{up, initial, o.max_lr, hi, lo}, {2 * o.pct_start * T - 2, o.max_lr, initial, lo, hi},
               {T - 1, initial, min_lr, hi, hi}};
  else
    phases_ = {{up, initial, o.max_lr, hi, lo}, {T - 1, o.max_lr, min_lr, lo, hi}};
  base_lr_ = initial;
  optimizer.set_lr(initial);
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

double OneCycleLR::lr_at(int64_t step) const { return at(step, false); }

void OneCycleLR::on_step(int64_t step) {
  if (options_.cycle_momentum) optimizer_.set_momentum(at(step, true));
}

}  // namespace xg::optim

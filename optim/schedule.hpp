// Learning-rate schedules (torch.optim.lr_scheduler): StepLR, ExponentialLR (CS231n's per-epoch
// decay), CosineAnnealingLR, OneCycleLR, LambdaLR, and piecewise-linear multipliers for LambdaLR. A schedule holds a reference to its optimizer, which
// must outlive it. Construction sets the epoch-0 rate; step() advances one epoch (one batch for
// OneCycleLR), called after optimizer.step().
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "optim/optimizer.hpp"

namespace xg::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  void step();
  double get_last_lr() const { return last_lr_; }  // group 0's
  int64_t last_epoch() const { return last_epoch_; }
  // "last_epoch" (i64) and "base_lr" (f64; "base_lr.g" for groups g > 0): restored together with
  // the optimizer's own state.
  NamedTensors state_dict() const;
  void load_state_dict(const NamedTensors& state);

 protected:
  LRScheduler(Optimizer& optimizer, const char* name);
  void initial_step();  // call at the end of the derived constructor: epoch 0
  // The learning rate at `epoch` of a group whose base (initial) rate is base_lr: every group follows
  // the same formula from its own base, as PyTorch's schedules do.
  virtual double lr_at(double base_lr, int64_t epoch) const = 0;
  // Group g's rate: lr_at unless a schedule gives each group its own formula (LambdaLR's list).
  virtual double group_lr_at(size_t, double base_lr, int64_t epoch) const { return lr_at(base_lr, epoch); }
  virtual void on_step(int64_t) {}  // extra per-step work (OneCycleLR's momentum)

  Optimizer& optimizer_;
  std::vector<double> base_lrs_;  // per parameter group
  const char* name_;

 private:
  int64_t last_epoch_ = -1;
  double last_lr_ = 0;
};

// lr = base_lr * gamma^(epoch / step_size)   (integer division)
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

 protected:
  double lr_at(double base_lr, int64_t epoch) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// lr = base_lr * gamma^epoch: CS231n's `learning_rate *= lr_decay` after every epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);

 protected:
  double lr_at(double base_lr, int64_t epoch) const override;

 private:
  double gamma_;
};

// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2  (PyTorch's closed form)
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0);

 protected:
  double lr_at(double base_lr, int64_t epoch) const override;

 private:
  int64_t T_max_;
  double eta_min_;
};

enum class AnnealStrategy { cos, linear };

struct OneCycleLROptions {
  double max_lr = 0;         // required (every group's, unless max_lrs gives one per group)
  std::vector<double> max_lrs{};
  int64_t total_steps = 0;   // or epochs * steps_per_epoch
  int64_t epochs = 0;
  int64_t steps_per_epoch = 0;
  double pct_start = 0.3;
  AnnealStrategy anneal_strategy = AnnealStrategy::cos;
  bool cycle_momentum = true;  // needs an optimizer with momentum or beta1
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25.0;         // initial_lr = max_lr / div_factor
  double final_div_factor = 1e4;    // min_lr = initial_lr / final_div_factor
  bool three_phase = false;
};

// Warm up from initial_lr to max_lr over pct_start of the steps, then anneal to min_lr; momentum
// moves the opposite way between max_momentum and base_momentum. Stepped once per batch.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& options);

 protected:
  double lr_at(double base_lr, int64_t step) const override;
  void on_step(int64_t step) override;

 private:
  struct Phase {  // learning rates as fractions of max_lr
    double end_step, start_lr, end_lr, start_momentum, end_momentum;
  };
  // Interpolates within the phase holding `step`; momentum when `momentum` is true.
  double at(int64_t step, bool momentum) const;

  OneCycleLROptions options_;
  int64_t total_steps_;
  std::vector<Phase> phases_;
};

// lr = base_lr * lr_lambda(epoch), every group from its own base rate (PyTorch's LambdaLR with one
// function), or group g's base rate times lr_lambdas[g](epoch) (PyTorch's list: one function per
// group). Stepped per epoch or per batch, as the caller counts.
class LambdaLR : public LRScheduler {
 public:
  LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> lr_lambda);
  LambdaLR(Optimizer& optimizer, std::vector<std::function<double(int64_t)>> lr_lambdas);

 protected:
  double lr_at(double base_lr, int64_t epoch) const override { return group_lr_at(0, base_lr, epoch); }
  double group_lr_at(size_t group, double base_lr, int64_t epoch) const override;

 private:
  std::vector<std::function<double(int64_t)>> lr_lambdas_;  // one for every group, or one per group
};

// The piecewise-linear function through `points` (x strictly increasing, at least one point), constant
// beyond the first and the last (numpy.interp). airbench's multiplier over T steps:
// piecewise_linear({{0, 0.2}, {floor(0.23 T), 1}, {T, 0.07}}).
std::function<double(double)> piecewise_linear(std::vector<std::pair<double, double>> points);

}  // namespace xg::optim

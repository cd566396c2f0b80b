// SGD, RMSprop, Adagrad, Adam and AdamW with PyTorch's defaults and update rules (torch/optim/*.py).
// In the comments g is the gradient, w the parameter, t the parameter's step count (from 1).
#pragma once

#include <utility>

#include "optim/optimizer.hpp"

namespace xg::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;  // needs momentum > 0 and dampening = 0
};

// g += wd*w; with momentum: b = g on the first step, else b = momentum*b + (1-dampening)*g;
// g = nesterov ? g + momentum*b : b. Then w -= lr*g.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options = {});
  bool has_momentum() const override { return true; }
  double momentum() const override { return options_.momentum; }
  void set_momentum(double m) override;
  const SGDOptions& options() const { return options_; }

 protected:
  void update(const Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> state_names() const override { return {"momentum_buffer"}; }

 private:
  SGDOptions options_;
};

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
};

// g += wd*w; s = alpha*s + (1-alpha)*g^2; centered: a = a + (1-alpha)*(g-a), d = sqrt(s - a^2) + eps,
// else d = sqrt(s) + eps; with momentum: b = momentum*b + g/d, w -= lr*b; else w -= lr*g/d.
class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<Tensor> params, const RMSpropOptions& options = {});
  bool has_momentum() const override { return true; }
  double momentum() const override { return options_.momentum; }
  void set_momentum(double m) override;
  const RMSpropOptions& options() const { return options_; }

 protected:
  void update(const Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> state_names() const override { return {"square_avg", "momentum_buffer", "grad_avg"}; }

 private:
  RMSpropOptions options_;
};

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0;
  double weight_decay = 0;
  double initial_accumulator_value = 0;
  double eps = 1e-10;
};

// g += wd*w; clr = lr / (1 + (t-1)*lr_decay); s += g^2; w -= clr * g / (sqrt(s) + eps).
class Adagrad : public Optimizer {
 public:
  Adagrad(std::vector<Tensor> params, const AdagradOptions& options = {});
  const AdagradOptions& options() const { return options_; }

 protected:
  void update(const Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> state_names() const override { return {"sum"}; }

 private:
  AdagradOptions options_;
};

struct AdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
};

struct AdamWOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;  // decoupled: w *= 1 - lr*wd before the Adam step
  bool amsgrad = false;
};

// Adam: g += wd*w; m = m + (1-b1)*(g-m); v = b2*v + (1-b2)*g^2; (amsgrad: v_max = max(v_max, v),
// used for v); w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options = {});
  bool has_momentum() const override { return true; }  // beta1
  double momentum() const override { return options_.betas.first; }
  void set_momentum(double beta1) override;
  const AdamOptions& options() const { return options_; }

 protected:
  Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled, const char* name);
  void update(const Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}; }

 private:
  AdamOptions options_;
  bool decoupled_;  // AdamW
};

// AdamW: the decay multiplies the weights (w *= 1 - lr*wd) instead of entering the gradient.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
};

}  // namespace xg::optim

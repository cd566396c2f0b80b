// SGD, RMSprop, Adagrad, Adam and AdamW with PyTorch's defaults and update rules (torch/optim/*.py).
// In the comments g is the gradient, w the parameter, t the parameter's step count (from 1).
#pragma once

#include <array>
#include <string>
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
class SGD : public OptimizerWith<SGDOptions> {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options = {});
  explicit SGD(std::vector<ParamGroup<SGDOptions>> groups);
  bool has_momentum() const override { return true; }

 protected:
  void update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) override;
  std::vector<std::string> state_names() const override { return {"momentum_buffer"}; }
  void check_options(const SGDOptions& o) const override;
  double group_momentum(size_t g) const override { return options_[g].momentum; }
  void store_momentum(size_t g, double m) override;
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
class RMSprop : public OptimizerWith<RMSpropOptions> {
 public:
  RMSprop(std::vector<Tensor> params, const RMSpropOptions& options = {});
  explicit RMSprop(std::vector<ParamGroup<RMSpropOptions>> groups);
  bool has_momentum() const override { return true; }

 protected:
  void update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) override;
  std::vector<std::string> state_names() const override { return {"square_avg", "momentum_buffer", "grad_avg"}; }
  void check_options(const RMSpropOptions& o) const override;
  double group_momentum(size_t g) const override { return options_[g].momentum; }
  void store_momentum(size_t g, double m) override;
};

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0;
  double weight_decay = 0;
  double initial_accumulator_value = 0;
  double eps = 1e-10;
};

// g += wd*w; clr = lr / (1 + (t-1)*lr_decay); s += g^2; w -= clr * g / (sqrt(s) + eps).
class Adagrad : public OptimizerWith<AdagradOptions> {
 public:
  Adagrad(std::vector<Tensor> params, const AdagradOptions& options = {});
  explicit Adagrad(std::vector<ParamGroup<AdagradOptions>> groups);

 protected:
  void update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) override;
  std::vector<std::string> state_names() const override { return {"sum"}; }
  void check_options(const AdagradOptions& o) const override;
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
class Adam : public OptimizerWith<AdamOptions> {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options = {});
  explicit Adam(std::vector<ParamGroup<AdamOptions>> groups);
  bool has_momentum() const override { return true; }  // beta1

 protected:
  Adam(std::vector<ParamGroup<AdamOptions>> groups, bool decoupled, const char* name);
  void update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) override;
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}; }
  void check_options(const AdamOptions& o) const override;
  double group_momentum(size_t g) const override { return options_[g].betas.first; }
  void store_momentum(size_t g, double beta1) override;

 private:
  bool decoupled_;  // AdamW
};

// AdamW: the decay multiplies the weights (w *= 1 - lr*wd) instead of entering the gradient. Its
// groups' options are AdamOptions (with AdamW's weight_decay meaning).
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
  explicit AdamW(std::vector<ParamGroup<AdamWOptions>> groups);
};

struct MuonOptions {
  double lr = 1e-3;
  // Muon groups: decoupled, w *= 1 - lr*wd before the update (torch.optim.Muon's); SGD groups: SGD's.
  double weight_decay = 0.1;
  double momentum = 0.95;
  bool nesterov = true;
  std::array<double, 3> ns_coefficients = {3.4445, -4.775, 2.0315};  // (a, b, c) of newton_schulz
  double eps = 1e-7;
  int64_t ns_steps = 5;
  // The step's factor for a [rows, cols] matrix: "original" max(1, rows/cols)^0.5 (Keller Jordan's),
  // "match_rms_adamw" 0.2 sqrt(max(rows, cols)) (Moonshot's), or "none".
  std::string adjust_lr_fn = "original";
  // Rescale w to Frobenius norm sqrt(rows) before each update (airbench94_muon's step), for weights
  // followed by a normalisation, whose scale carries no information.
  bool normalize_weights = false;
  // false: the group is updated by SGD (momentum, nesterov, coupled weight_decay, no dampening), for
  // the parameters Muon is not meant for (biases, norm shifts, a classifier head).
  bool use_muon = true;
};

// Muon (MomentUm Orthogonalized by Newton-Schulz; Keller Jordan, 2024), as torch.optim.Muon:
// b = momentum*b + g; u = nesterov ? g + momentum*b : b; w *= 1 - lr*wd; w -= lr * adjust * O, where
// O = newton_schulz(u viewed as [size(0), numel / size(0)]) is u with its singular values pushed
// towards 1. Parameters of more than two dimensions (conv filters [F, C, KH, KW]) are taken as such
// matrices; groups with use_muon need parameters of at least two dimensions.
class Muon : public OptimizerWith<MuonOptions> {
 public:
  Muon(std::vector<Tensor> params, const MuonOptions& options = {});
  explicit Muon(std::vector<ParamGroup<MuonOptions>> groups);
  bool has_momentum() const override { return true; }

 protected:
  void update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) override;
  std::vector<std::string> state_names() const override { return {"momentum_buffer"}; }
  void check_options(const MuonOptions& o) const override;
  void check_group(const ParamGroup<MuonOptions>& g) const override;
  double group_momentum(size_t g) const override { return options_[g].momentum; }
  void store_momentum(size_t g, double m) override;
};

// The quintic Newton-Schulz iteration Muon orthogonalises with: X = g / max(|g|_F, eps), then `steps`
// times A = X X^T, X = a X + (b A + c A A) X, on the wide orientation of g (its transpose when it has
// more rows than columns). With Muon's coefficients the singular values land near 1 (in about
// [0.7, 1.2]) rather than on it; with (1.5, -0.5, 0) it converges to the polar factor U V^T.
// g: 2-D, f32 or f64 (computed in its dtype); a zero g gives zeros. Off the tape.
Tensor newton_schulz(const Tensor& g, int64_t steps = 5, std::array<double, 3> coefficients = {3.4445, -4.775, 2.0315},
                     double eps = 1e-7);

}  // namespace xg::optim

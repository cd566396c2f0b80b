// xg::optim::Optimizer: the parameter list, per-parameter state, its state dict, and clip_grad_norm.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace xg::optim {

using nn::NamedTensors;

// Per-parameter state: a step counter and named buffers (exp_avg, momentum_buffer, ...), shaped and
// typed like the parameter. A parameter that never had a gradient has no state yet.
struct ParamState {
  int64_t step = 0;
  std::map<std::string, Tensor> buffers;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient, off the tape; parameters without a
  // gradient are skipped (as PyTorch). All gradients are checked before any parameter changes.
  void step();
  void zero_grad();  // drops the gradients (PyTorch's set_to_none)

  double lr() const { return lr_; }
  void set_lr(double lr);
  // The momentum a schedule may cycle (OneCycleLR): SGD's and RMSprop's momentum, Adam's beta1.
  virtual bool has_momentum() const { return false; }
  virtual double momentum() const;
  virtual void set_momentum(double m);

  const std::vector<Tensor>& params() const { return params_; }
  const ParamState& state(size_t index) const;
  const std::string& name() const { return name_; }

  // "lr", "momentum" (when has_momentum), and per parameter index i "state.i.step" (i64 0-d) and
  // "state.i.<buffer>". Tensors are copies: the dict stays valid as training continues.
  NamedTensors state_dict() const;
  // All or nothing: every problem (unknown names, bad index, wrong shape or dtype, buffers without
  // a step) is listed in one xg::Error and the optimizer is left unchanged.
  void load_state_dict(const NamedTensors& state);

 protected:
  Optimizer(std::vector<Tensor> params, double lr, std::string name);
  // Called off the tape for each parameter with a gradient, after its step counter has advanced.
  // grad has the parameter's shape and dtype; both are contiguous.
  virtual void update(const Tensor& param, const Tensor& grad, ParamState& state) = 0;
  // Every buffer name this optimizer may keep (for validating a loaded state dict).
  virtual std::vector<std::string> state_names() const = 0;
  // The named buffer, created filled with `init` (shaped and typed like param) when missing.
  static Tensor& buffer(ParamState& state, const std::string& name, const Tensor& param, double init = 0.0);

  double lr_;

 private:
  std::vector<Tensor> params_;
  std::vector<ParamState> state_;
  std::string name_;
};

// Rescales the gradients in place so their joint norm is at most max_norm (PyTorch's
// clip_grad_norm_: coef = min(1, max_norm / (total + 1e-6))). norm_type 2 by default; infinity
// gives the max-abs norm. Returns the total norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0);

}  // namespace xg::optim

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

// One parameter group (PyTorch's param_groups entry): its tensors and the optimizer's own options
// (SGDOptions, AdamOptions, ...), every field of which applies to this group alone.
template <class Options>
struct ParamGroup {
  std::vector<Tensor> params;
  Options options;
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

  // Learning rate and momentum per parameter group; lr() and momentum() read group 0, set_lr(lr)
  // and set_momentum(m) set every group.
  size_t num_param_groups() const { return group_begin_.size(); }
  double lr(size_t group = 0) const;
  void set_lr(double lr);
  void set_lr(size_t group, double lr);
  // The momentum a schedule may cycle (OneCycleLR): SGD's and RMSprop's momentum, Adam's beta1.
  virtual bool has_momentum() const { return false; }
  double momentum(size_t group = 0) const;
  void set_momentum(double m);
  void set_momentum(size_t group, double m);

  const std::vector<Tensor>& params() const { return params_; }  // every group's, in group order
  size_t group_of(size_t param_index) const;
  const ParamState& state(size_t index) const;  // by index in params()
  const std::string& name() const { return name_; }

  // "lr", "momentum" (when has_momentum) for group 0 and "param_groups.g.lr", ".momentum" for the
  // others; per parameter index i (in params()) "state.i.step" (i64 0-d) and "state.i.<buffer>".
  // Tensors are copies: the dict stays valid as training continues.
  NamedTensors state_dict() const;
  // All or nothing: every problem (unknown names, bad index, wrong shape or dtype, buffers without
  // a step, another number of groups) is listed in one xg::Error and the optimizer is left unchanged.
  void load_state_dict(const NamedTensors& state);

 protected:
  explicit Optimizer(std::string name) : name_(std::move(name)) {}
  // Appends a group's parameters (checked: defined, floating, leaves, in no other group).
  void add_params(const std::vector<Tensor>& params);
  // Called off the tape for each parameter with a gradient, after its step counter has advanced.
  // grad has the parameter's shape and dtype; both are contiguous.
  virtual void update(const Tensor& param, const Tensor& grad, ParamState& state, size_t group) = 0;
  // Every buffer name this optimizer may keep (for validating a loaded state dict).
  virtual std::vector<std::string> state_names() const = 0;
  // A group's learning rate and momentum as the optimizer keeps them; store_* validate.
  virtual double group_lr(size_t group) const = 0;
  virtual void store_lr(size_t group, double lr) = 0;
  virtual double group_momentum(size_t group) const;
  virtual void store_momentum(size_t group, double m);
  // The named buffer, created filled with `init` (shaped and typed like param) when missing.
  static Tensor& buffer(ParamState& state, const std::string& name, const Tensor& param, double init = 0.0);

 private:
  std::vector<Tensor> params_;
  std::vector<ParamState> state_;
  std::vector<size_t> group_begin_;  // index in params_ of each group's first parameter
  std::string name_;
};

// The optimizers' shared handling of per-group options: construction from one parameter list or
// from groups, add_param_group and param_groups, PyTorch's names.
template <class Options>
class OptimizerWith : public Optimizer {
 public:
  const Options& options(size_t group = 0) const;
  std::vector<ParamGroup<Options>> param_groups() const;
  void add_param_group(ParamGroup<Options> group);

 protected:
  explicit OptimizerWith(std::string name) : Optimizer(std::move(name)) {}
  // Validates one group's options (the derived constructor adds the groups, so that it is called).
  virtual void check_options(const Options& o) const = 0;
  // Validates a group's parameters against its options (Muon: matrices only); undefined tensors are
  // left to add_params, which rejects them.
  virtual void check_group(const ParamGroup<Options>&) const {}
  void add_param_groups(std::vector<ParamGroup<Options>> groups) {
    check(!groups.empty(), "{}: got no parameter groups", name());
    for (auto& g : groups) add_param_group(std::move(g));
  }
  double group_lr(size_t group) const override { return options_[group].lr; }
  void store_lr(size_t group, double lr) override;
  std::vector<Options> options_;
};

template <class Options>
const Options& OptimizerWith<Options>::options(size_t group) const {
  check(group < options_.size(), "{}: parameter group {} of {}", name(), group, options_.size());
  return options_[group];
}

template <class Options>
std::vector<ParamGroup<Options>> OptimizerWith<Options>::param_groups() const {
  std::vector<ParamGroup<Options>> out;
  for (size_t g = 0; g < options_.size(); ++g) out.push_back({{}, options_[g]});
  for (size_t i = 0; i < params().size(); ++i) out[group_of(i)].params.push_back(params()[i]);
  return out;
}

template <class Options>
void OptimizerWith<Options>::add_param_group(ParamGroup<Options> group) {
  check_options(group.options);
  check_group(group);
  add_params(group.params);  // checks the parameters; throws before anything changes
  options_.push_back(group.options);
}

template <class Options>
void OptimizerWith<Options>::store_lr(size_t group, double lr) {
  Options o = options(group);
  o.lr = lr;
  check_options(o);
  options_[group] = o;
}

// Rescales the gradients in place so their joint norm is at most max_norm (PyTorch's
// clip_grad_norm_: coef = min(1, max_norm / (total + 1e-6))). norm_type 2 by default; infinity
// gives the max-abs norm. Returns the total norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0);

}  // namespace xg::optim

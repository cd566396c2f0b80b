// Weight averaging: AveragedModel (an equal-weight running mean, as SWA, or an exponential moving
// average of a model's parameters and optionally its buffers) and Lookahead (slow weights pulled
// towards the fast ones every k steps, the fast ones reset to them).
#pragma once

#include <cstdint>

#include "nn/module.hpp"
#include "optim/optimizer.hpp"

namespace xg::optim {

namespace swa_utils {

struct AveragedModelOptions {
  double decay = 0;          // 0: the running mean of every update (SWA); in (0, 1): EMA avg = decay avg + (1 - decay) w
  bool use_buffers = false;  // average the buffers too (batch norm statistics); else they are copied as they are
};

// PyTorch's torch.optim.swa_utils.AveragedModel, holding the averages rather than a module copy:
// copy_to(module) writes them into a model of the same architecture (the same one at the end of
// training, or a second instance for evaluation).
class AveragedModel {
 public:
  AveragedModel(const nn::Module& model, const AveragedModelOptions& options = {});  // starts at model's values
  void update_parameters(const nn::Module& model);  // one more average (names and shapes checked)
  int64_t n_averaged() const { return n_averaged_; }
  void copy_to(nn::Module& model) const;  // parameters, and buffers (averaged or as last seen)
  const nn::NamedTensors& averages() const { return averages_; }  // parameters, then buffers

 private:
  AveragedModelOptions options_;
  nn::NamedTensors averages_;
  size_t num_params_ = 0;
  int64_t n_averaged_ = 1;
};

}  // namespace swa_utils

struct LookaheadOptions {
  int64_t k = 5;       // sync every k steps
  double alpha = 0.5;  // slow += alpha (fast - slow)
};

// Lookahead (Zhang et al., 2019) around any optimizer: step() runs the inner optimizer, and every
// k-th step pulls the slow weights towards the fast ones and resets the fast ones to them. `extra`
// tensors (a model's batch-norm buffers, say) follow the same rule. set_alpha changes the pull
// between syncs (airbench's decaying lookahead).
class Lookahead {
 public:
  Lookahead(Optimizer& inner, const LookaheadOptions& options = {}, const std::vector<Tensor>& extra = {});
  void step();
  void zero_grad() { inner_.zero_grad(); }
  void set_alpha(double alpha);
  // The fast weights (and extra tensors) become the slow ones, with no step: airbench's last update,
  // which makes the average the final weights.
  void finalize();
  int64_t steps() const { return steps_; }
  // "steps" (i64 0-d) and "slow.i" per tracked tensor (the inner optimizer's parameters, then the
  // extra tensors). load_state_dict checks everything before it changes anything.
  nn::NamedTensors state_dict() const;
  void load_state_dict(const nn::NamedTensors& state);
  Optimizer& inner() { return inner_; }

 private:
  Optimizer& inner_;
  LookaheadOptions options_;
  std::vector<Tensor> fast_, slow_;
  int64_t steps_ = 0;
};

}  // namespace xg::optim

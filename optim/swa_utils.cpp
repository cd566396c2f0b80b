// AveragedModel and Lookahead: the averages and the pulls, as in-place writes off the tape.
#include "optim/swa_utils.hpp"

#include "autograd/grad_mode.hpp"
#include "ops/ops.hpp"

namespace xg::optim {

namespace swa_utils {

namespace {
nn::NamedTensors tracked(const nn::Module& model) {
  nn::NamedTensors all = model.named_parameters();
  nn::NamedTensors buffers = model.named_buffers();
  all.insert(all.end(), buffers.begin(), buffers.end());
  return all;
}
}  // namespace

AveragedModel::AveragedModel(const nn::Module& model, const AveragedModelOptions& options) : options_(options) {
  check(options.decay >= 0 && options.decay < 1, "AveragedModel: decay must be in [0, 1), got {}", options.decay);
  num_params_ = model.named_parameters().size();
  for (const auto& [name, t] : tracked(model)) averages_.emplace_back(name, t.detach().clone());
}

void AveragedModel::update_parameters(const nn::Module& model) {
  nn::NamedTensors now = tracked(model);
  check(now.size() == averages_.size(), "AveragedModel: the model has {} parameters and buffers, the average {}",
        now.size(), averages_.size());
  for (size_t i = 0; i < now.size(); ++i)
    check(now[i].first == averages_[i].first && now[i].second.shape() == averages_[i].second.shape(),
          "AveragedModel: '{}' {} does not match the averaged '{}' {}", now[i].first, now[i].second.shape(),
          averages_[i].first, averages_[i].second.shape());
  NoGradGuard no_grad;
  // Weight of the new values: 1 / (n + 1) for the running mean, 1 - decay for the EMA.
  const double w = options_.decay > 0 ? 1 - options_.decay : 1.0 / static_cast<double>(n_averaged_ + 1);
  for (size_t i = 0; i < now.size(); ++i) {
    const Tensor& avg = averages_[i].second;
    const Tensor& v = now[i].second;
    if (i >= num_params_ && (!options_.use_buffers || !is_floating(v.dtype()))) avg.copy_(v);
    else avg.add_(sub(v.detach(), avg), w);
  }
  ++n_averaged_;
}

void AveragedModel::copy_to(nn::Module& model) const {
  nn::NamedTensors target = tracked(model);
  check(target.size() == averages_.size(), "AveragedModel: copy_to: the model has {} parameters and buffers, the "
        "average {}", target.size(), averages_.size());
  for (size_t i = 0; i < target.size(); ++i)
    check(target[i].first == averages_[i].first && target[i].second.shape() == averages_[i].second.shape(),
          "AveragedModel: copy_to: '{}' {} does not match the averaged '{}' {}", target[i].first,
          target[i].second.shape(), averages_[i].first, averages_[i].second.shape());
  NoGradGuard no_grad;
  for (size_t i = 0; i < target.size(); ++i) target[i].second.copy_(averages_[i].second);
}

}  // namespace swa_utils

Lookahead::Lookahead(Optimizer& inner, const LookaheadOptions& options, const std::vector<Tensor>& extra)
    : inner_(inner), options_(options) {
  check(options.k >= 1, "Lookahead: k must be at least 1, got {}", options.k);
  set_alpha(options.alpha);
  fast_ = inner.params();
  for (const Tensor& t : extra) {
    check(t.defined() && is_floating(t.dtype()), "Lookahead: extra tensors must be defined and floating");
    fast_.push_back(t);
  }
  for (const Tensor& t : fast_) slow_.push_back(t.detach().clone());
}

void Lookahead::set_alpha(double alpha) {
  check(alpha >= 0 && alpha <= 1, "Lookahead: alpha must be in [0, 1], got {}", alpha);
  options_.alpha = alpha;
}

void Lookahead::finalize() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < fast_.size(); ++i) fast_[i].copy_(slow_[i]);
}

nn::NamedTensors Lookahead::state_dict() const {
  nn::NamedTensors out{{"steps", scalar_tensor(static_cast<double>(steps_), Dtype::i64)}};
  for (size_t i = 0; i < slow_.size(); ++i) out.emplace_back(fmt::format("slow.{}", i), slow_[i].clone());
  return out;
}

void Lookahead::load_state_dict(const nn::NamedTensors& state) {
  Tensor steps;
  std::vector<Tensor> slow(slow_.size());
  for (const auto& [name, t] : state) {
    if (name == "steps") {
      steps = t;
      continue;
    }
    size_t i = slow.size();
    if (name.starts_with("slow.")) {
      const std::string index = name.substr(5);
      if (!index.empty() && index.size() < 10 && index.find_first_not_of("0123456789") == std::string::npos)
        i = std::stoul(index);
    }
    check(i < slow.size(), "Lookahead: load_state_dict: unexpected '{}' ({} tracked tensors)", name, slow.size());
    check(t.defined() && t.shape() == slow_[i].shape() && t.dtype() == slow_[i].dtype(),
          "Lookahead: load_state_dict: '{}' must be {} {}, got {}", name, dtype_name(slow_[i].dtype()),
          slow_[i].shape(), t.defined() ? fmt::format("{} {}", dtype_name(t.dtype()), t.shape()) : "undefined");
    slow[i] = t;
  }
  check(steps.defined() && steps.dtype() == Dtype::i64 && steps.numel() == 1 && steps.item<int64_t>() >= 0,
        "Lookahead: load_state_dict: needs 'steps', one non-negative i64");
  for (size_t i = 0; i < slow.size(); ++i)
    check(slow[i].defined(), "Lookahead: load_state_dict: 'slow.{}' is missing", i);
  steps_ = steps.item<int64_t>();
  NoGradGuard no_grad;
  for (size_t i = 0; i < slow.size(); ++i) slow_[i].copy_(slow[i]);
}

void Lookahead::step() {
  inner_.step();
  if (++steps_ % options_.k != 0) return;
  NoGradGuard no_grad;
  for (size_t i = 0; i < fast_.size(); ++i) {
    slow_[i].add_(sub(fast_[i].detach(), slow_[i]), options_.alpha);
    fast_[i].copy_(slow_[i]);
  }
}

}  // namespace xg::optim

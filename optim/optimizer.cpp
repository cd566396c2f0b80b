// Optimizer base: parameter checks, the step loop, state save/restore, and clip_grad_norm.
#include "optim/optimizer.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_set>

#include "autograd/grad_mode.hpp"

namespace xg::optim {

namespace {
// State-dict keys of group g's scalars: "lr" for group 0 (as before groups existed), else
// "param_groups.g.lr".
std::string group_key(size_t g, const char* what) {
  return g == 0 ? std::string(what) : fmt::format("param_groups.{}.{}", g, what);
}
}  // namespace

void Optimizer::add_params(const std::vector<Tensor>& params) {
  check(!params.empty(), "{}: got an empty parameter list (group {})", name_, group_begin_.size());
  std::unordered_set<const TensorImpl*> seen;
  for (const Tensor& p : params_) seen.insert(&p.impl());
  for (size_t k = 0; k < params.size(); ++k) {
    const Tensor& p = params[k];
    const size_t i = params_.size() + k;
    check(p.defined(), "{}: parameter {} is undefined", name_, i);
    check(is_floating(p.dtype()), "{}: parameter {} (shape {}) must be f32 or f64, got {}", name_, i, p.shape(),
          dtype_name(p.dtype()));
    check(p.is_leaf(), "{}: parameter {} (shape {}) is not a leaf tensor", name_, i, p.shape());
    check(seen.insert(&p.impl()).second, "{}: parameter {} (shape {}) appears more than once", name_, i, p.shape());
  }
  group_begin_.push_back(params_.size());
  params_.insert(params_.end(), params.begin(), params.end());
  state_.resize(params_.size());
}

size_t Optimizer::group_of(size_t index) const {
  check(index < params_.size(), "{}: parameter {}: there are {} parameters", name_, index, params_.size());
  return static_cast<size_t>(std::upper_bound(group_begin_.begin(), group_begin_.end(), index) - group_begin_.begin()) - 1;
}

void Optimizer::set_lr(double lr) {
  check(lr >= 0, "{}: learning rate must be non-negative, got {}", name_, lr);
  for (size_t g = 0; g < num_param_groups(); ++g) store_lr(g, lr);
}

void Optimizer::set_lr(size_t group, double lr) {
  check(group < num_param_groups(), "{}: parameter group {} of {}", name_, group, num_param_groups());
  check(lr >= 0, "{}: learning rate must be non-negative, got {}", name_, lr);
  store_lr(group, lr);
}

double Optimizer::lr(size_t group) const {
  check(group < num_param_groups(), "{}: parameter group {} of {}", name_, group, num_param_groups());
  return group_lr(group);
}

double Optimizer::momentum(size_t group) const {
  check(group < num_param_groups(), "{}: parameter group {} of {}", name_, group, num_param_groups());
  return group_momentum(group);
}

double Optimizer::group_momentum(size_t) const { fail("{}: has no momentum", name_); }
void Optimizer::store_momentum(size_t, double) { fail("{}: has no momentum", name_); }

void Optimizer::set_momentum(double m) {
  for (size_t g = 0; g < num_param_groups(); ++g) set_momentum(g, m);
}

void Optimizer::set_momentum(size_t group, double m) {
  check(group < num_param_groups(), "{}: parameter group {} of {}", name_, group, num_param_groups());
  store_momentum(group, m);
}

Tensor& Optimizer::buffer(ParamState& state, const std::string& name, const Tensor& param, double init) {
  auto it = state.buffers.find(name);
  if (it == state.buffers.end()) it = state.buffers.emplace(name, full(param.shape(), init, param.dtype())).first;
  return it->second;
}

void Optimizer::step() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    check(g.shape() == params_[i].shape() && g.dtype() == params_[i].dtype(),
          "{}: gradient of parameter {} has shape {} and dtype {}, the parameter {} and {}", name_, i, g.shape(),
          dtype_name(g.dtype()), params_[i].shape(), dtype_name(params_[i].dtype()));
  }
  NoGradGuard no_grad;
  for (size_t i = 0, group = 0; i < params_.size(); ++i) {
    while (group + 1 < group_begin_.size() && group_begin_[group + 1] <= i) ++group;
    Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    ++state_[i].step;
    params_[i].bump_version();  // update() writes the parameter's buffer in place
    update(params_[i], g, state_[i], group);
  }
}

const ParamState& Optimizer::state(size_t index) const {
  check(index < state_.size(), "{}: state({}): there are {} parameters", name_, index, state_.size());
  return state_[index];
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  for (size_t g = 0; g < num_param_groups(); ++g) {
    out.emplace_back(group_key(g, "lr"), scalar_tensor(lr(g), Dtype::f64));
    if (has_momentum()) out.emplace_back(group_key(g, "momentum"), scalar_tensor(momentum(g), Dtype::f64));
  }
  for (size_t i = 0; i < state_.size(); ++i) {
    if (state_[i].step == 0) continue;
    out.emplace_back(fmt::format("state.{}.step", i), scalar_tensor(static_cast<double>(state_[i].step), Dtype::i64));
    for (const auto& [n, t] : state_[i].buffers) {
      Tensor copy = Tensor::empty(t.shape(), t.dtype());
      copy.copy_(t);
      out.emplace_back(fmt::format("state.{}.{}", i, n), copy);
    }
  }
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& dict) {
  std::vector<std::string> problems;
  std::vector<ParamState> fresh(params_.size());
  const std::vector<std::string> known = state_names();
  auto scalar = [&](const std::string& key, double& out) {
    auto it = std::find_if(dict.begin(), dict.end(), [&](const auto& e) { return e.first == key; });
    if (it == dict.end()) return problems.push_back(fmt::format("missing '{}'", key));
    if (!it->second.defined() || it->second.numel() != 1 || !is_floating(it->second.dtype()))
      return problems.push_back(fmt::format("'{}' must be one floating value", key));
    out = it->second.item<double>();
  };
  std::vector<double> lrs(num_param_groups()), momenta(num_param_groups());
  std::set<std::string> group_keys;
  for (size_t g = 0; g < num_param_groups(); ++g) {
    scalar(group_key(g, "lr"), lrs[g]);
    if (lrs[g] < 0) problems.push_back(fmt::format("'{}' is negative ({})", group_key(g, "lr"), lrs[g]));
    group_keys.insert(group_key(g, "lr"));
    if (has_momentum()) {
      scalar(group_key(g, "momentum"), momenta[g]);
      group_keys.insert(group_key(g, "momentum"));
    }
  }
  for (const auto& [key, t] : dict) {
    if (group_keys.count(key)) continue;
    // "state.<index>.<name>"
    size_t index = 0;
    const size_t dot = key.find('.', 6);
    bool ok = key.compare(0, 6, "state.") == 0 && dot != std::string::npos;
    if (ok) {
      auto r = std::from_chars(key.data() + 6, key.data() + dot, index);
      ok = r.ec == std::errc() && r.ptr == key.data() + dot;
    }
    if (!ok) {
      problems.push_back(fmt::format("unexpected '{}'", key));
      continue;
    }
    const std::string name = key.substr(dot + 1);
    if (index >= params_.size()) {
      problems.push_back(fmt::format("'{}': index {} but there are {} parameters", key, index, params_.size()));
    } else if (!t.defined()) {
      problems.push_back(fmt::format("'{}': undefined tensor", key));
    } else if (name == "step") {
      if (t.dtype() != Dtype::i64 || t.numel() != 1 || t.item<int64_t>() < 1)
        problems.push_back(fmt::format("'{}': must be one positive i64", key));
      else
        fresh[index].step = t.item<int64_t>();
    } else if (std::find(known.begin(), known.end(), name) == known.end()) {
      problems.push_back(fmt::format("unexpected '{}' ({} keeps {})", key, name_, fmt::join(known, ", ")));
    } else if (t.shape() != params_[index].shape() || !is_floating(t.dtype())) {
      problems.push_back(fmt::format("'{}': shape {} dtype {}, parameter {} has shape {} dtype {}", key, t.shape(),
                                     dtype_name(t.dtype()), index, params_[index].shape(),
                                     dtype_name(params_[index].dtype())));
    } else {
      Tensor copy = Tensor::empty(t.shape(), params_[index].dtype());
      copy.copy_(t);
      fresh[index].buffers[name] = copy;
    }
  }
  for (size_t i = 0; i < fresh.size(); ++i)
    if (fresh[i].step == 0 && !fresh[i].buffers.empty())
      problems.push_back(fmt::format("parameter {} has buffers but no 'state.{}.step'", i, i));
  check(problems.empty(), "{}: load_state_dict: {}; the optimizer is unchanged", name_, fmt::join(problems, "; "));
  // Options are validated group by group before any is stored, so a refused value changes nothing.
  std::vector<std::pair<double, double>> before;
  for (size_t g = 0; g < num_param_groups(); ++g) before.emplace_back(lr(g), has_momentum() ? momentum(g) : 0.0);
  try {
    for (size_t g = 0; g < num_param_groups(); ++g) {
      store_lr(g, lrs[g]);
      if (has_momentum()) store_momentum(g, momenta[g]);
    }
  } catch (const Error&) {
    for (size_t g = 0; g < num_param_groups(); ++g) {
      store_lr(g, before[g].first);
      if (has_momentum()) store_momentum(g, before[g].second);
    }
    throw;
  }
  state_ = std::move(fresh);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type) {
  check(max_norm >= 0, "clip_grad_norm: max_norm must be non-negative, got {}", max_norm);
  check(norm_type > 0, "clip_grad_norm: norm_type must be positive, got {}", norm_type);
  const bool inf = std::isinf(norm_type);
  double acc = 0;
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined()) continue;
    grads.push_back(g);
    dispatch_floating(g.dtype(), [&]<class T>() {
      const T* d = g.data<T>();
      for (int64_t i = 0; i < g.numel(); ++i) {
        const double a = std::abs(static_cast<double>(d[i]));
        acc = inf ? std::max(acc, a) : acc + std::pow(a, norm_type);
      }
    });
  }
  if (grads.empty()) return 0.0;
  const double total = inf ? acc : std::pow(acc, 1.0 / norm_type);
  const double coef = std::min(1.0, max_norm / (total + 1e-6));
  NoGradGuard no_grad;  // a gradient kept with create_graph is itself on the tape
  for (const Tensor& g : grads) g.mul_(coef);
  return total;
}

}  // namespace xg::optim

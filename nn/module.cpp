// Module: registration, recursive traversal, train/eval, dtype conversion and state-dict loading.
#include "nn/module.hpp"

#include <cxxabi.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.hpp"
#include "autograd/trace.hpp"
#include "nn/checkpoint.hpp"

namespace xg::nn {

Tensor Module::forward(const Tensor&) {
  fail("{}: forward(const Tensor&) is not defined for this module", name());
}

namespace detail {
ForwardObserver*& forward_observer() {
  thread_local ForwardObserver* observer = nullptr;
  return observer;
}

namespace {
thread_local std::vector<const Module*> calls;
struct CallFrame {  // pushes the module for the duration of its forward, while tracing
  bool pushed;
  explicit CallFrame(const Module* m) : pushed(trace::state.listener != nullptr) {
    if (pushed) calls.push_back(m);
  }
  ~CallFrame() {
    if (pushed) calls.pop_back();
  }
};
}  // namespace

const std::vector<const Module*>& call_stack() { return calls; }
}  // namespace detail

Tensor Module::operator()(const Tensor& x) {
  detail::CallFrame frame(this);
  Tensor y = forward(x);
  if (detail::ForwardObserver* observe = detail::forward_observer()) (*observe)(*this, y);
  return y;
}

std::string Module::name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string full = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  // "xg::nn::Linear" -> "Linear"; a template's arguments keep their namespaces.
  size_t end = full.find('<');
  size_t colon = full.rfind("::", end);
  return colon == std::string::npos ? full : full.substr(colon + 2);
}

void Module::check_new_name(const std::string& n, const char* what) const {
  check(!n.empty(), "{}: {}: empty name", name(), what);
  check(n.find('.') == std::string::npos, "{}: {}: name '{}' contains a '.'", name(), what, n);
  auto taken = [&](const auto& list) {
    for (const auto& entry : list)
      if (entry.first == n) return true;
    return false;
  };
  check(!taken(params_) && !taken(buffers_) && !taken(children_), "{}: {}: name '{}' is already registered",
        name(), what, n);
}

Tensor Module::register_parameter(std::string n, Tensor t, bool requires_grad) {
  check_new_name(n, "register_parameter");
  check(t.defined(), "{}: register_parameter: '{}' is an undefined tensor", name(), n);
  check(is_floating(t.dtype()), "{}: register_parameter: '{}' must be f32 or f64, got {}", name(), n,
        dtype_name(t.dtype()));
  check(t.is_leaf(), "{}: register_parameter: '{}' must be a leaf tensor (use detach())", name(), n);
  t.requires_grad_(requires_grad);
  params_.emplace_back(std::move(n), t);
  return t;
}

Tensor Module::register_buffer(std::string n, Tensor t) {
  check_new_name(n, "register_buffer");
  check(t.defined(), "{}: register_buffer: '{}' is an undefined tensor", name(), n);
  buffers_.emplace_back(std::move(n), t);
  return t;
}

void Module::add_child(std::string n, std::shared_ptr<Module> module) {
  check_new_name(n, "register_module");
  check(module != nullptr, "{}: register_module: '{}' is a null pointer", name(), n);
  check(module.get() != this, "{}: register_module: '{}' is the module itself", name(), n);
  children_.emplace_back(std::move(n), std::move(module));
}

void Module::collect(const std::string& prefix, bool params, bool buffers, bool recurse, bool dedupe,
                     NamedTensors& out) const {
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& [n, t] : out) seen.insert(&t.impl());
  auto add = [&](const NamedTensors& list) {
    for (const auto& [n, t] : list)
      if (!dedupe || seen.insert(&t.impl()).second) out.emplace_back(prefix + n, t);
  };
  if (params) add(params_);
  if (buffers) add(buffers_);
  if (!recurse) return;
  for (const auto& [n, child] : children_) child->collect(prefix + n + ".", params, buffers, true, dedupe, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", true, false, recurse, true, out);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", false, true, recurse, true, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [n, c] : children_) out.push_back(c);
  return out;
}

void Module::collect_modules(const std::string& prefix, NamedModules& out, std::vector<const Module*>& seen) const {
  for (const auto& [n, c] : children_) {
    if (std::find(seen.begin(), seen.end(), c.get()) != seen.end()) continue;
    seen.push_back(c.get());
    const std::string name = prefix.empty() ? n : prefix + "." + n;
    out.emplace_back(name, c);
    c->collect_modules(name, out, seen);
  }
}

NamedModules Module::named_modules(const std::string& prefix, bool include_self) const {
  NamedModules out;
  std::vector<const Module*> seen{this};
  // The aliasing constructor with an empty owner: a pointer to this module that owns nothing.
  if (include_self) out.emplace_back(prefix, std::shared_ptr<Module>(std::shared_ptr<Module>(), const_cast<Module*>(this)));
  collect_modules(prefix, out, seen);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::modules() const {
  std::vector<std::shared_ptr<Module>> out;
  for (auto& [n, m] : named_modules()) out.push_back(m);
  return out;
}

Module& Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& [n, c] : children_) c->apply(fn);
  fn(*this);
  return *this;
}

Module& Module::requires_grad_(bool on) {
  for (Tensor& p : parameters()) p.requires_grad_(on);
  return *this;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

void Module::to(Dtype dtype) {
  check(is_floating(dtype), "{}: to: dtype must be f32 or f64, got {}", name(), dtype_name(dtype));
  NoGradGuard no_grad;
  NamedTensors all;
  collect("", true, true, true, true, all);
  for (auto& [n, t] : all) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) continue;
    // Swap the storage under the shared TensorImpl so every handle follows (PyTorch's param.data = ...).
    Tensor converted = t.detach().to(dtype);
    TensorImpl& impl = t.impl();
    impl.storage = converted.impl().storage;
    impl.dtype = dtype;
    impl.grad.reset();
  }
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", true, true, true, false, out);
  return out;
}

std::string Module::mismatches(const NamedTensors& state, bool strict, IncompatibleKeys* keys) const {
  std::unordered_map<std::string, const Tensor*> given;
  std::vector<std::string> duplicate, missing, unexpected, wrong;
  for (const auto& [n, t] : state)
    if (!given.emplace(n, &t).second) duplicate.push_back(n);
  std::set<std::string> expected;
  for (const auto& [n, t] : state_dict()) {
    expected.insert(n);
    auto it = given.find(n);
    if (it == given.end()) {
      missing.push_back(n);
      continue;
    }
    const Tensor& src = *it->second;
    if (!src.defined())
      wrong.push_back(fmt::format("{}: undefined tensor", n));
    else if (src.shape() != t.shape())
      wrong.push_back(fmt::format("{}: shape {} in the checkpoint, {} in the model", n, src.shape(), t.shape()));
    else if (is_floating(src.dtype()) != is_floating(t.dtype()))
      wrong.push_back(fmt::format("{}: dtype {} in the checkpoint, {} in the model", n, dtype_name(src.dtype()),
                                  dtype_name(t.dtype())));
  }
  for (const auto& [n, t] : state)
    if (!expected.count(n)) unexpected.push_back(n);
  if (keys) *keys = {missing, unexpected};
  std::string msg;
  auto list = [&](const std::vector<std::string>& v, const char* what) {
    if (v.empty()) return;
    msg += fmt::format("{}{} {}: {}", msg.empty() ? "" : "; ", v.size(), what, fmt::join(v, ", "));
  };
  if (strict) {
    list(missing, "missing");
    list(unexpected, "unexpected");
  }
  list(wrong, "wrong");
  list(duplicate, "duplicated");
  return msg;
}

namespace {
// Weights cannot go into a model nn::fuse_for_inference changed: those of the unfused layers would be
// misread (a folded batch norm is not folded again).
void refuse_if_fused(const Module& model, const char* op) {
  for (const auto& [n, m] : model.named_modules())
    check(!m->fused_for_inference(),
          "{}: {}: '{}' was fused for inference (nn::fuse_for_inference), so weights of the unfused layers would be "
          "misread; load them into a model that is not fused, then fuse; the model is unchanged",
          model.name(), op, n.empty() ? m->name() : n);
}
}  // namespace

IncompatibleKeys Module::load_state_dict(const NamedTensors& state, const LoadStateDictOptions& options) {
  refuse_if_fused(*this, "load_state_dict");
  IncompatibleKeys keys;
  std::string problems = mismatches(state, options.strict, &keys);
  check(problems.empty(), "{}: load_state_dict: {}; the model is unchanged", name(), problems);
  std::unordered_map<std::string, Tensor> given(state.begin(), state.end());
  NoGradGuard no_grad;
  for (const auto& [n, t] : state_dict())
    if (auto it = given.find(n); it != given.end()) t.copy_(it->second);
  if (options.strict) return {};
  return keys;
}

void Module::save(const std::string& path, const Metadata& metadata) const {
  save_safetensors(path, state_dict(), metadata);
}

namespace {
void print(const Module& m, const std::string& indent, std::string& out) {
  const std::string extra = m.extra_repr();
  if (m.named_children().empty()) {
    out += m.name() + "(" + extra + ")";
    return;
  }
  // With children, the options (if any) get a line of their own, as in PyTorch.
  const std::string inner = indent + "  ";
  out += m.name() + "(\n";
  if (!extra.empty()) out += inner + extra + "\n";
  for (const auto& [n, c] : m.named_children()) {
    out += inner + "(" + n + "): ";
    print(*c, inner, out);
    out += "\n";
  }
  out += indent + ")";
}
}  // namespace

std::string to_string(const Module& module) {
  std::string out;
  print(module, "", out);
  return out;
}

Metadata Module::load(const std::string& path) {
  refuse_if_fused(*this, "load");
  Safetensors file = load_safetensors(path);  // validated in full before anything is touched
  std::string problems = mismatches(file.tensors, true);
  check(problems.empty(), "{}: load: checkpoint '{}' does not match the model: {}; the model is unchanged", name(),
        path, problems);
  load_state_dict(file.tensors);
  return file.metadata;
}

}  // namespace xg::nn

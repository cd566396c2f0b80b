// xg::nn::Module: the base of every layer and model; parameters, buffers and submodules by name.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "autograd/tensor.hpp"

namespace xg::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;  // in registration order
using Metadata = std::map<std::string, std::string>;               // a checkpoint's free-form strings
class Module;
using NamedModules = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

struct LoadStateDictOptions {
  bool strict = true;  // false: missing and unexpected keys are returned instead of refused
};
// What load_state_dict did not match (PyTorch's _IncompatibleKeys); both empty when strict.
struct IncompatibleKeys {
  std::vector<std::string> missing_keys, unexpected_keys;
};

// Ownership. A Module cannot be copied. Submodules live in std::shared_ptr: register_module stores
// the pointer and returns it, and the model keeps that very pointer as its member:
//
//   struct Net : nn::Module {
//     std::shared_ptr<nn::Linear> fc = register_module("fc", nn::Linear(4, 3));  // moved in
//     Tensor forward(const Tensor& x) override { return fc->forward(x); }
//   };
//
// The registry and the member are one object, so train()/eval(), load() and optimizers act on the
// module forward() uses. Registering a named local (`register_module("fc", fc)`) does not compile:
// it would copy, and the copy would silently diverge. Pass a temporary or a std::shared_ptr.
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;  // lets a temporary be moved into its shared_ptr
  Module& operator=(Module&&) = delete;

  // The one-input forward Sequential chains; a model with other inputs declares its own.
  virtual Tensor forward(const Tensor& x);
  // Calls forward. As PyTorch's __call__, this is the call nn::summary observes: a layer whose
  // forward() is called directly is listed there without an output shape.
  Tensor operator()(const Tensor& x);
  // The class name without namespaces ("Linear", "Net"): the first word of every error message.
  virtual std::string name() const;
  // The options shown when printing the module ("in_features=4, out_features=3, bias=true").
  virtual std::string extra_repr() const { return ""; }
  // Whether nn::fuse_for_inference changed this layer (nn/fuse.hpp). A model holding one refuses
  // load_state_dict and load: weights for the unfused layers would be misread.
  virtual bool fused_for_inference() const { return false; }

  // Names are non-empty, have no '.', and are unique within the module. Parameters become leaves
  // that require grad (unless requires_grad = false). The same handle is returned, so a layer keeps
  // it as a member: both refer to one tensor.
  Tensor register_parameter(std::string name, Tensor t, bool requires_grad = true);
  Tensor register_buffer(std::string name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>, "register_module: not a Module");
    add_child(std::move(name), module);
    return module;
  }
  template <class M>
    requires std::is_base_of_v<Module, M>
  std::shared_ptr<M> register_module(std::string name, M&& module) {  // a temporary: moved in
    return register_module(std::move(name), std::make_shared<M>(std::move(module)));
  }
  // A named module would be copied, and the copy would diverge from the one forward() uses: pass a
  // temporary or a std::shared_ptr instead.
  template <class M>
    requires std::is_base_of_v<Module, M>
  void register_module(std::string name, M& module) = delete;

  // Dotted names ("features.0.weight"): own entries first, then each child's, in registration order.
  // A tensor registered twice is listed once (as PyTorch's named_parameters).
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  // This module (named prefix, held without ownership: it must outlive the list) and every
  // descendant, pre-order, by dotted name ("features.0"); a module registered twice is listed once.
  NamedModules named_modules(const std::string& prefix = "", bool include_self = true) const;
  std::vector<std::shared_ptr<Module>> modules() const;  // the same, without names
  // Calls fn on every descendant (children before their parent, in registration order), then on
  // this module; returns *this. E.g. model.apply([](nn::Module& m) { ... dynamic_cast ... }).
  Module& apply(const std::function<void(Module&)>& fn);
  // Sets requires_grad on every parameter (false freezes the module); returns *this.
  Module& requires_grad_(bool on = true);

  virtual void train(bool on = true);  // this module and every descendant
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();  // drops every parameter's gradient (PyTorch's set_to_none)
  // Converts floating parameters and buffers in place (PyTorch's module.to(dtype)): every handle to
  // them, including a layer's members and an optimizer's list, sees the new dtype. Drops gradients.
  void to(Dtype dtype);

  // Parameters and buffers of this module, then of each child, by dotted name (PyTorch's order).
  // The entries are the live tensors, not copies: clone them to keep a snapshot.
  NamedTensors state_dict() const;
  // All or nothing: problems are collected into one xg::Error and nothing is copied. Wrongly shaped,
  // undefined or duplicated entries are always refused; missing and unexpected keys too when strict,
  // and otherwise returned (only the matching entries are loaded). Floating values convert dtype as
  // copy_ does; integer/floating mismatch is an error.
  IncompatibleKeys load_state_dict(const NamedTensors& state, const LoadStateDictOptions& options = {});
  // A .safetensors checkpoint of state_dict() (see checkpoint.hpp); the write is atomic.
  void save(const std::string& path, const Metadata& metadata = {}) const;
  // Reads a checkpoint written by save (or by Python's safetensors); returns its metadata.
  Metadata load(const std::string& path);

 private:
  void add_child(std::string name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  void collect(const std::string& prefix, bool params, bool buffers, bool recurse, bool dedupe,
               NamedTensors& out) const;
  // Empty when state fits the model (ignoring missing and unexpected keys unless strict); fills keys.
  std::string mismatches(const NamedTensors& state, bool strict, IncompatibleKeys* keys = nullptr) const;
  void collect_modules(const std::string& prefix, NamedModules& out, std::vector<const Module*>& seen) const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// The module tree as libtorch prints it:
//   Net(
//     (fc): Linear(in_features=4, out_features=3, bias=true)
//   )
std::string to_string(const Module& module);

namespace detail {
// Called with each module and its output by Module::operator() while set (nn::summary); thread-local.
using ForwardObserver = std::function<void(const Module&, const Tensor&)>;
ForwardObserver*& forward_observer();
// The modules whose operator() is running on this thread, outermost first. Kept only while an op
// tracer listens (autograd/trace.hpp), so that an ONNX export error can name the module.
const std::vector<const Module*>& call_stack();
}  // namespace detail

}  // namespace xg::nn

// fmt::print("{}", model) for Module and every class derived from it.
template <class M>
struct fmt::formatter<M, char, std::enable_if_t<std::is_base_of_v<xg::nn::Module, M>>> : fmt::formatter<std::string> {
  auto format(const xg::nn::Module& m, format_context& ctx) const {
    return fmt::formatter<std::string>::format(xg::nn::to_string(m), ctx);
  }
};

// Custom ops: xg::Function<Derived> joins the tape as one node with a hand-written backward.
// The fused conv/pool/batch-norm kernels register through exactly this mechanism.
#pragma once

#include <any>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "autograd/engine.hpp"

namespace xg {

// What forward leaves for backward: tensors, non-tensor data, and which inputs want gradients.
class Context {
 public:
  void save_for_backward(std::vector<Tensor> tensors) { saved_ = std::move(tensors); }
  const std::vector<Tensor>& saved() const { return saved_; }

  // Non-tensor state (strides, flags, shapes): ctx.save("stride", 2); ctx.get<int>("stride").
  template <class T>
  void save(const std::string& key, T value) { data_[key] = std::move(value); }
  template <class T>
  const T& get(const std::string& key) const {
    auto it = data_.find(key);
    check(it != data_.end(), "Context: nothing saved under '{}'", key);
    const T* v = std::any_cast<T>(&it->second);
    check(v != nullptr, "Context: '{}' was saved with another type", key);
    return *v;
  }

  // Index among the op's tensor arguments, in call order. Valid during backward.
  bool needs_input_grad(size_t i) const { return i < needs_.size() && needs_[i]; }

 private:
  template <class D>
  friend struct Function;
  std::vector<Tensor> saved_;
  std::unordered_map<std::string, std::any> data_;
  std::vector<bool> needs_;
};

// A differentiable backward for a fused op: the gradients of `composition` (the op written with
// primitive ops, such as its xg::ref version) at `inputs`, for the upstream gradient `grad`, recorded
// on the tape. A fused op returns these when create_graph is on (GradMode is enabled inside its
// backward), so its gradients can be differentiated again, while first-order backward keeps the
// hand-written kernel. needs[i]: input i wants a gradient (Context::needs_input_grad).
std::vector<Tensor> composite_backward(const std::function<Tensor(const std::vector<Tensor>&)>& composition,
                                       const std::vector<Tensor>& inputs, const Tensor& grad,
                                       const std::vector<bool>& needs);

// struct Square : xg::Function<Square> {
//   static Tensor forward(Context& ctx, const Tensor& x);                      // recording off
//   static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads);
//   static constexpr const char* name = "square";           // optional, shown in grad_fn
//   static constexpr bool once_differentiable = true;       // optional: backward uses raw
// };                                                        // buffers, so refuse create_graph
// Tensor y = Square::apply(x);
// backward returns one gradient per tensor argument of forward (undefined where not needed).
template <class Derived>
struct Function {
  template <class... Args>
  static Tensor apply(Args&&... args) {
    std::vector<Tensor> inputs;
    (collect(inputs, args), ...);
    auto ctx = std::make_shared<Context>();
    Tensor out;
    {
      NoGradGuard no_grad;
      out = Derived::forward(*ctx, std::forward<Args>(args)...);
    }
    return record(op_name(), out, inputs, [ctx](const GradArgs& g) {
      if constexpr (requires { Derived::once_differentiable; }) {
        if (Derived::once_differentiable && GradMode::is_enabled())
          fail("{}: double backward (create_graph) is not implemented for this op", op_name());
      }
      ctx->needs_ = g.needs;
      std::vector<Tensor> grads = Derived::backward(*ctx, {g.grad});
      ctx->needs_.clear();
      return grads;
    }, {.tensors = ctx->saved()});
  }

 private:
  static const char* op_name() {
    if constexpr (requires { Derived::name; }) return Derived::name;
    else return "custom_function";
  }
  template <class A>
  static void collect(std::vector<Tensor>& inputs, const A& a) {
    if constexpr (std::is_same_v<std::decay_t<A>, Tensor>) inputs.push_back(a);
  }
};

}  // namespace xg

// nn::Sequential: modules applied in order, registered as "0", "1", ... (so "0.weight").
#pragma once

#include <memory>
#include <vector>

#include "nn/module.hpp"

namespace xg::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  // Sequential(nn::Linear(4, 8), nn::ReLU(), std::make_shared<nn::Linear>(8, 2)): temporaries are
  // moved into shared_ptrs, shared_ptrs are kept as given (see module.hpp on ownership).
  template <class... Ms>
    requires(sizeof...(Ms) > 1 || (!std::is_same_v<std::remove_cvref_t<Ms>, Sequential> && ...))  // not a move
  explicit Sequential(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }

  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    auto out = register_module(std::to_string(modules_.size()), std::move(module));
    modules_.push_back(out);
    return out;
  }
  template <class M>
    requires std::is_base_of_v<Module, M>
  std::shared_ptr<M> push_back(M&& module) {  // a temporary: moved in
    return push_back(std::make_shared<M>(std::move(module)));
  }
  template <class M>
    requires std::is_base_of_v<Module, M>
  void push_back(M& module) = delete;  // would copy: pass a temporary or a std::shared_ptr

  Tensor forward(const Tensor& x) override;
  size_t size() const { return modules_.size(); }
  bool is_empty() const { return modules_.empty(); }
  std::shared_ptr<Module> operator[](size_t index) const;  // throws xg::Error when out of range
  std::shared_ptr<Module> ptr(size_t index) const { return (*this)[index]; }
  // The module at `index` as its concrete type; throws xg::Error when it is not an M.
  template <class M>
  M& at(size_t index) const {
    auto* m = dynamic_cast<M*>((*this)[index].get());
    check(m != nullptr, "Sequential: module {} is a {}, not the requested type", index, (*this)[index]->name());
    return *m;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace xg::nn

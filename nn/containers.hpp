// nn::ModuleList and nn::ModuleDict: modules held by index or by key, registered under "0", "1", ...
// or under their keys, so their parameters are found, saved and trained. Neither has a forward.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace xg::nn {

class ModuleList : public Module {
 public:
  ModuleList() = default;
  // ModuleList(nn::Linear(4, 8), nn::ReLU(), std::make_shared<nn::Linear>(8, 2)), as Sequential.
  template <class... Ms>
    requires(sizeof...(Ms) > 1 || (!std::is_same_v<std::remove_cvref_t<Ms>, ModuleList> && ...))  // not a move
  explicit ModuleList(Ms&&... modules) {
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
  template <class M>
  auto append(M&& module) {  // PyTorch's name
    return push_back(std::forward<M>(module));
  }

  size_t size() const { return modules_.size(); }
  bool is_empty() const { return modules_.empty(); }
  std::shared_ptr<Module> operator[](size_t index) const;  // throws xg::Error when out of range
  std::shared_ptr<Module> ptr(size_t index) const { return (*this)[index]; }
  // The module at `index` as its concrete type; throws xg::Error when it is not an M.
  template <class M>
  M& at(size_t index) const {
    auto* m = dynamic_cast<M*>((*this)[index].get());
    check(m != nullptr, "{}: module {} is a {}, not the requested type", name(), index, (*this)[index]->name());
    return *m;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 protected:
  std::vector<std::shared_ptr<Module>> modules_;
};

// Keys keep their insertion order; a key is a module name (non-empty, no '.', not taken twice).
class ModuleDict : public Module {
 public:
  ModuleDict() = default;

  template <class M>
  std::shared_ptr<M> insert(std::string key, std::shared_ptr<M> module) {
    return register_module(std::move(key), std::move(module));
  }
  template <class M>
    requires std::is_base_of_v<Module, M>
  std::shared_ptr<M> insert(std::string key, M&& module) {  // a temporary: moved in
    return insert(std::move(key), std::make_shared<M>(std::move(module)));
  }
  template <class M>
    requires std::is_base_of_v<Module, M>
  void insert(std::string key, M& module) = delete;  // would copy: pass a temporary or a std::shared_ptr

  size_t size() const { return named_children().size(); }
  bool is_empty() const { return named_children().empty(); }
  bool contains(const std::string& key) const;
  std::vector<std::string> keys() const;
  std::vector<std::shared_ptr<Module>> values() const { return children(); }
  const NamedModules& items() const { return named_children(); }
  std::shared_ptr<Module> operator[](const std::string& key) const;  // throws xg::Error for an unknown key
  template <class M>
  M& at(const std::string& key) const {
    auto* m = dynamic_cast<M*>((*this)[key].get());
    check(m != nullptr, "ModuleDict: module '{}' is a {}, not the requested type", key, (*this)[key]->name());
    return *m;
  }
  auto begin() const { return named_children().begin(); }
  auto end() const { return named_children().end(); }
};

}  // namespace xg::nn

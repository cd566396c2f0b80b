// nn::Sequential: a ModuleList whose forward applies its modules in order ("0", "1", ... so "0.weight").
#pragma once

#include "nn/containers.hpp"

namespace xg::nn {

class Sequential : public ModuleList {
 public:
  Sequential() = default;
  // Sequential(nn::Linear(4, 8), nn::ReLU(), std::make_shared<nn::Linear>(8, 2)): temporaries are
  // moved into shared_ptrs, shared_ptrs are kept as given (see module.hpp on ownership).
  template <class... Ms>
    requires(sizeof...(Ms) > 1 || (!std::is_same_v<std::remove_cvref_t<Ms>, Sequential> && ...))  // not a move
  explicit Sequential(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }

  Tensor forward(const Tensor& x) override;
};

}  // namespace xg::nn

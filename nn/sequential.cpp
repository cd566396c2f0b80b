// Sequential: the forward chain and checked index access.
#include "nn/sequential.hpp"

namespace xg::nn {

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = (*m)(y);  // through operator(), which nn::summary observes
  return y;
}

std::shared_ptr<Module> Sequential::operator[](size_t index) const {
  check(index < modules_.size(), "Sequential: index {} is out of range for {} modules", index, modules_.size());
  return modules_[index];
}

}  // namespace xg::nn

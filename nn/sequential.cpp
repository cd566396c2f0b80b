// Sequential: the forward chain.
#include "nn/sequential.hpp"

namespace xg::nn {

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = (*m)(y);  // through operator(), which nn::summary observes
  return y;
}

}  // namespace xg::nn

// Sequential: the forward chain.
#include "nn/sequential.hpp"

#include <typeinfo>

#include "autograd/trace.hpp"
#include "nn/activation.hpp"
#include "nn/layers.hpp"
#include "nn/norm.hpp"

namespace xg::nn {

namespace {
// The activation a batch norm at modules[i] can run in its own output pass: modules[i + 1] when it is
// a ReLU or an exact GELU, and nothing watches the modules one by one (nn::summary's observer, the
// ONNX exporter's call stack); else none.
PostActivation fusable_activation(const std::vector<std::shared_ptr<Module>>& modules, size_t i) {
  if (i + 1 >= modules.size() || detail::forward_observer() != nullptr || trace::state.listener != nullptr)
    return PostActivation::none;
  // Exact types: a subclass may override forward().
  const Module &m = *modules[i], &next = *modules[i + 1];
  if (typeid(m) != typeid(BatchNorm1d) && typeid(m) != typeid(BatchNorm2d)) return PostActivation::none;
  if (static_cast<const BatchNormBase&>(m).folded()) return PostActivation::none;
  if (typeid(next) == typeid(ReLU) && !static_cast<const ReLU&>(next).fused()) return PostActivation::relu;
  if (typeid(next) == typeid(GELU) && static_cast<const GELU&>(next).approximate() == "none")
    return PostActivation::gelu;
  return PostActivation::none;
}
}  // namespace

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (size_t i = 0; i < modules_.size(); ++i) {
    if (const PostActivation act = fusable_activation(modules_, i); act != PostActivation::none) {
      y = static_cast<BatchNormBase&>(*modules_[i]).forward_activated(y, act);  // and modules_[i + 1]
      ++i;
      continue;
    }
    y = (*modules_[i])(y);  // through operator(), which nn::summary observes
  }
  return y;
}

}  // namespace xg::nn

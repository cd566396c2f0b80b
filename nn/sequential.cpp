// Sequential: the forward chain.
#include "nn/sequential.hpp"

#include <typeinfo>

#include "autograd/grad_mode.hpp"
#include "autograd/trace.hpp"
#include "nn/activation.hpp"
#include "nn/layers.hpp"
#include "nn/norm.hpp"

namespace xg::nn {

namespace {
// Whether modules[i] and modules[i + 1] may run other than one after the other through operator():
// not while something watches the modules one by one (nn::summary's observer, the ONNX exporter's
// call stack).
bool may_rewrite(const std::vector<std::shared_ptr<Module>>& modules, size_t i) {
  return i + 1 < modules.size() && detail::forward_observer() == nullptr && trace::state.listener == nullptr;
}

// The activation a batch norm at modules[i] can run in its own output pass: modules[i + 1] when it is
// a ReLU or an exact GELU; else none.
PostActivation fusable_activation(const std::vector<std::shared_ptr<Module>>& modules, size_t i) {
  if (!may_rewrite(modules, i)) return PostActivation::none;
  // Exact types: a subclass may override forward().
  const Module &m = *modules[i], &next = *modules[i + 1];
  if (typeid(m) != typeid(BatchNorm1d) && typeid(m) != typeid(BatchNorm2d)) return PostActivation::none;
  if (static_cast<const BatchNormBase&>(m).folded()) return PostActivation::none;
  if (typeid(next) == typeid(ReLU) && !static_cast<const ReLU&>(next).fused()) return PostActivation::relu;
  if (typeid(next) == typeid(GELU) && static_cast<const GELU&>(next).approximate() == "none")
    return PostActivation::gelu;
  return PostActivation::none;
}

// A ReLU then an undilated max-pool: max_pool(relu(x)) = relu(max_pool(x)), values and gradients
// (relu keeps the order, and a window's maximum is at most 0 exactly when relu makes it 0, where either
// order passes no gradient), so the ReLU can run on the pooled tensor, a quarter of the size for 2x2.
// A dilated window can lie wholly in the padding, where the two orders give -inf and 0.
bool relu_after_pool(const std::vector<std::shared_ptr<Module>>& modules, size_t i) {
  if (!may_rewrite(modules, i)) return false;
  const Module &m = *modules[i], &next = *modules[i + 1];
  if (typeid(m) != typeid(ReLU) || static_cast<const ReLU&>(m).fused() || typeid(next) != typeid(MaxPool2d))
    return false;
  const Pool2dOptions& o = static_cast<const MaxPool2d&>(next).options();
  return o.dilation == Pair2(1);
}

// A Conv2d at modules[i] followed by a MaxPool2d, with nothing between them but a ReLU (`relu` set)
// or the batch norm and ReLU folded into the conv (identities, in eval mode): the max-pool's index,
// else 0. A ReLU module between them only in no-grad mode: with a gradient to record,
// relu_after_pool runs it after the pool.
size_t pool_after_conv(const std::vector<std::shared_ptr<Module>>& modules, size_t i, bool& relu) {
  relu = false;
  if (!may_rewrite(modules, i) || typeid(*modules[i]) != typeid(Conv2d)) return 0;
  size_t j = i + 1;
  for (; j < modules.size(); ++j) {
    const Module& m = *modules[j];
    const bool folded_bn = typeid(m) == typeid(BatchNorm2d) && static_cast<const BatchNormBase&>(m).folded();
    const bool fused_relu = typeid(m) == typeid(ReLU) && static_cast<const ReLU&>(m).fused();
    if (typeid(m) == typeid(ReLU) && !fused_relu && !relu) {
      relu = true;
      continue;
    }
    if (!(folded_bn || fused_relu) || m.is_training()) break;  // (in training mode, its forward refuses)
  }
  if (relu && GradMode::is_enabled()) return 0;
  return j < modules.size() && typeid(*modules[j]) == typeid(MaxPool2d) ? j : 0;
}
}  // namespace

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (size_t i = 0; i < modules_.size(); ++i) {
    if (const PostActivation act = fusable_activation(modules_, i); act != PostActivation::none) {
      // and modules_[i + 1], and a max-pool after them
      const bool pool = i + 2 < modules_.size() && typeid(*modules_[i + 2]) == typeid(MaxPool2d);
      y = static_cast<BatchNormBase&>(*modules_[i])
              .forward_activated(y, act, pool ? static_cast<const MaxPool2d*>(modules_[i + 2].get()) : nullptr);
      i += pool ? 2 : 1;
      continue;
    }
    bool relu = false;
    if (const size_t pool = pool_after_conv(modules_, i, relu); pool != 0) {
      y = static_cast<Conv2d&>(*modules_[i]).forward_pooled(y, relu, static_cast<const MaxPool2d&>(*modules_[pool]));
      i = pool;
      continue;
    }
    if (relu_after_pool(modules_, i)) {
      y = modules_[i]->forward(modules_[i + 1]->forward(y));
      ++i;
      continue;
    }
    y = (*modules_[i])(y);  // through operator(), which nn::summary observes
  }
  return y;
}

}  // namespace xg::nn

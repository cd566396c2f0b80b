// BatchNorm1d/2d, LayerNorm and GroupNorm: parameters, running statistics and forward.
#include "nn/norm.hpp"

#include "autograd/grad_mode.hpp"
#include "nn/layers.hpp"
#include "nn/reference_ops.hpp"
#include "ops/geometry.hpp"

namespace xg::nn {

BatchNormBase::BatchNormBase(const BatchNormOptions& o, const char* module) : options_(o) {
  check(o.num_features > 0, "{}: num_features must be positive, got {}", module, o.num_features);
  check(o.eps > 0, "{}: eps must be positive, got {}", module, o.eps);
  check(!o.momentum || (*o.momentum >= 0 && *o.momentum <= 1), "{}: momentum must be in [0, 1], got {}", module,
        o.momentum.value_or(0));
  const int64_t C = o.num_features;
  if (o.affine) {
    weight_ = register_parameter("weight", ones({C}));
    bias_ = register_parameter("bias", zeros({C}));
  }
  if (o.track_running_stats) {
    running_mean_ = register_buffer("running_mean", zeros({C}));
    running_var_ = register_buffer("running_var", ones({C}));
    num_batches_tracked_ = register_buffer("num_batches_tracked", zeros({}, Dtype::i64));
  }
}

void BatchNormBase::reset_running_stats() {
  if (!options_.track_running_stats) return;
  running_mean_.fill_(0.0);
  running_var_.fill_(1.0);
  num_batches_tracked_.fill_(0.0);
}

void BatchNormBase::reset_parameters() {
  reset_running_stats();
  if (!options_.affine) return;
  weight_.fill_(1.0);
  bias_.fill_(0.0);
}

Tensor BatchNormBase::forward(const Tensor& x) { return forward_activated(x, PostActivation::none); }

Tensor BatchNormBase::forward_activated(const Tensor& x, PostActivation act, const MaxPool2d* pool) {
  xg::detail::check_post_activation(act, name().c_str());
  check(x.defined(), "{}: undefined input", name());
  check_input(x);
  const int64_t C = options_.num_features;
  check(x.shape()[1] == C, "{}: input shape {} has {} channels, but num_features is {}", name(), x.shape(),
        x.shape()[1], C);
  if (folded_) {
    detail::check_fused_eval(*this);
    const Tensor y = xg::detail::apply_post_activation(x, act);  // the layer before computes x
    return pool ? detail::max_pool2d(y, pool->options()) : y;
  }
  const Tensor& ref = options_.affine ? weight_ : running_mean_;
  if (ref.defined())  // (the message's arguments are evaluated eagerly: ref must exist)
    check(x.dtype() == ref.dtype(), "{}: input dtype {} does not match the layer's dtype {}", name(),
          dtype_name(x.dtype()), dtype_name(ref.dtype()));
  const bool track = options_.track_running_stats;
  const bool batch_stats = is_training() || !track;
  check(!batch_stats || x.numel() / C > 1,
        "{}: expected more than 1 value per channel when training, got input shape {}", name(), x.shape());

  // PyTorch's exponential_average_factor: momentum, or 1/num_batches_tracked for a cumulative average.
  int64_t batches = track ? num_batches_tracked_.item<int64_t>() + (is_training() ? 1 : 0) : 0;
  double factor = options_.momentum.value_or(0.0);
  if (is_training() && track && !options_.momentum) factor = 1.0 / static_cast<double>(batches);

  // [N, C, L] runs as [N, C, L, 1]: the same statistics per channel.
  const bool seq = x.dim() == 3;
  Tensor in = seq ? reshape(x, {x.shape()[0], C, x.shape()[2], 1}) : x;
  const Tensor &mean = track ? running_mean_ : Tensor(), &var = track ? running_var_ : Tensor();
  Tensor y = pool && !seq
                 ? detail::batch_norm_activation_pool(in, weight_, bias_, mean, var, batch_stats, factor, options_.eps,
                                                      act, pool->options())
                 : detail::batch_norm_activation(in, weight_, bias_, mean, var, batch_stats, factor, options_.eps, act);
  if (is_training() && track) num_batches_tracked_.fill_(static_cast<double>(batches));
  if (seq) y = reshape(y, x.shape());
  return pool && seq ? detail::max_pool2d(y, pool->options()) : y;
}

void BatchNorm1d::check_input(const Tensor& x) const {
  check(x.dim() == 2 || x.dim() == 3, "BatchNorm1d: input must be [N,C] or [N,C,L], got shape {}", x.shape());
}

void BatchNorm2d::check_input(const Tensor& x) const {
  check(x.dim() == 4, "BatchNorm2d: input must be 4-D (N,C,H,W), got shape {}", x.shape());
}

LayerNorm::LayerNorm(const LayerNormOptions& o) : options_(o) {
  check(!o.normalized_shape.empty(), "LayerNorm: normalized_shape must not be empty");
  for (int64_t s : o.normalized_shape)
    check(s > 0, "LayerNorm: normalized_shape {} must have positive sizes", o.normalized_shape);
  check(o.eps > 0, "LayerNorm: eps must be positive, got {}", o.eps);
  if (o.elementwise_affine) {
    weight_ = register_parameter("weight", ones(o.normalized_shape));
    if (o.bias) bias_ = register_parameter("bias", zeros(o.normalized_shape));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  check(x.defined(), "LayerNorm: undefined input");
  const Shape& ns = options_.normalized_shape;
  const auto k = static_cast<int64_t>(ns.size());
  check(x.dim() >= k && Shape(x.shape().end() - k, x.shape().end()) == ns,
        "LayerNorm: input shape {} does not end with normalized_shape {}", x.shape(), ns);
  if (weight_.defined())
    check(x.dtype() == weight_.dtype(), "LayerNorm: input dtype {} does not match weight dtype {}",
          dtype_name(x.dtype()), dtype_name(weight_.dtype()));
  return layer_norm(x, ns, weight_, bias_, options_.eps);
}

GroupNorm::GroupNorm(const GroupNormOptions& o) : options_(o) {
  check(o.num_groups > 0 && o.num_channels > 0 && o.num_channels % o.num_groups == 0,
        "GroupNorm: num_channels {} must be a positive multiple of num_groups {}", o.num_channels, o.num_groups);
  check(o.eps > 0, "GroupNorm: eps must be positive, got {}", o.eps);
  if (o.affine) {
    weight_ = register_parameter("weight", ones({o.num_channels}));
    bias_ = register_parameter("bias", zeros({o.num_channels}));
  }
}

Tensor GroupNorm::forward(const Tensor& x) {
  check(x.defined(), "GroupNorm: undefined input");
  check(x.dim() >= 2 && x.shape()[1] == options_.num_channels,
        "GroupNorm: input shape {} must be [N,C,*] with C = num_channels {}", x.shape(), options_.num_channels);
  if (weight_.defined())
    check(x.dtype() == weight_.dtype(), "GroupNorm: input dtype {} does not match weight dtype {}",
          dtype_name(x.dtype()), dtype_name(weight_.dtype()));
  return group_norm(x, options_.num_groups, weight_, bias_, options_.eps);
}

std::string BatchNormBase::extra_repr() const {
  const BatchNormOptions& o = options_;
  return fmt::format("{}, eps={}, momentum={}, affine={}, track_running_stats={}{}", o.num_features, o.eps,
                     o.momentum ? fmt::format("{}", *o.momentum) : "none", o.affine, o.track_running_stats,
                     folded_ ? ", folded into the layer before" : "");
}

std::string LayerNorm::extra_repr() const {
  return fmt::format("{}, eps={}, elementwise_affine={}", options_.normalized_shape, options_.eps,
                     options_.elementwise_affine);
}

std::string GroupNorm::extra_repr() const {
  return fmt::format("{}, {}, eps={}, affine={}", options_.num_groups, options_.num_channels, options_.eps,
                     options_.affine);
}

}  // namespace xg::nn

// Normalisation layers: BatchNorm1d, BatchNorm2d (running statistics as buffers), LayerNorm, GroupNorm.
#pragma once

#include <optional>

#include "nn/module.hpp"

namespace xg::nn {

struct BatchNormOptions {
  int64_t num_features = 0;
  double eps = 1e-5;
  // running = (1 - momentum) * running + momentum * batch; nullopt: cumulative average over
  // num_batches_tracked batches (PyTorch's momentum=None).
  std::optional<double> momentum = 0.1;
  bool affine = true;               // weight (ones) and bias (zeros) parameters
  bool track_running_stats = true;  // running_mean (zeros), running_var (ones), num_batches_tracked (i64)
};
using BatchNorm1dOptions = BatchNormOptions;
using BatchNorm2dOptions = BatchNormOptions;

namespace detail {
struct Fusion;  // nn/fuse.cpp
}

// Training normalises with the batch statistics and updates the running ones; eval() uses the
// running statistics (unless track_running_stats is off). After nn::fuse_for_inference folded it
// into the layer before it, the identity (eval mode only), its tensors reset to an identity's.
class BatchNormBase : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  // act(forward(x)) as one fused op (xg::batch_norm_activation): what nn::Sequential runs for a batch
  // norm followed by a ReLU or an exact GELU, and what a model's own forward() can call. With a pool,
  // pool->forward(act(forward(x))), one op for 2x2 windows at stride 2 (the pool in the same output
  // pass): what nn::Sequential runs when a MaxPool2d follows the activation.
  Tensor forward_activated(const Tensor& x, PostActivation act, const class MaxPool2d* pool = nullptr);
  std::string extra_repr() const override;
  void reset_running_stats();
  void reset_parameters();  // running stats, then weight = 1, bias = 0
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  const Tensor& num_batches_tracked() const { return num_batches_tracked_; }
  const BatchNormOptions& options() const { return options_; }
  bool folded() const { return folded_; }

 protected:
  BatchNormBase(const BatchNormOptions& options, const char* module);
  virtual void check_input(const Tensor& x) const = 0;

 private:
  friend struct detail::Fusion;
  BatchNormOptions options_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
  bool folded_ = false;
};

// x [N, C] or [N, C, L].
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(const BatchNormOptions& options) : BatchNormBase(options, "BatchNorm1d") {}
  explicit BatchNorm1d(int64_t num_features) : BatchNorm1d(BatchNormOptions{.num_features = num_features}) {}

 protected:
  void check_input(const Tensor& x) const override;
};

// x [N, C, H, W].
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(const BatchNormOptions& options) : BatchNormBase(options, "BatchNorm2d") {}
  explicit BatchNorm2d(int64_t num_features) : BatchNorm2d(BatchNormOptions{.num_features = num_features}) {}

 protected:
  void check_input(const Tensor& x) const override;
};

struct LayerNormOptions {
  Shape normalized_shape;  // the trailing dims normalised over
  double eps = 1e-5;
  bool elementwise_affine = true;  // weight (ones) and bias (zeros) of normalized_shape
  bool bias = true;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(const LayerNormOptions& options);
  explicit LayerNorm(const Shape& normalized_shape) : LayerNorm(LayerNormOptions{.normalized_shape = normalized_shape}) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  LayerNormOptions options_;
  Tensor weight_, bias_;
};

struct GroupNormOptions {
  int64_t num_groups = 0;
  int64_t num_channels = 0;
  double eps = 1e-5;
  bool affine = true;  // weight (ones) and bias (zeros) of [num_channels]
};

// x [N, C, *]: statistics per sample over each group of C / num_groups channels.
class GroupNorm : public Module {
 public:
  explicit GroupNorm(const GroupNormOptions& options);
  GroupNorm(int64_t num_groups, int64_t num_channels)
      : GroupNorm(GroupNormOptions{.num_groups = num_groups, .num_channels = num_channels}) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  GroupNormOptions options_;
  Tensor weight_, bias_;
};

}  // namespace xg::nn

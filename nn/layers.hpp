// Layers with PyTorch's arguments, defaults, parameter names and initialisation: Linear, Conv2d,
// ConvTranspose2d, pooling, Flatten, Dropout and the activations. Options are aggregates with libtorch's names:
//   nn::Conv2d({.in_channels = 3, .out_channels = 8, .kernel_size = 3, .padding = 1})
// Parameters are read through accessors (fc->weight()), not public members: a member could be
// rebound to a new tensor and silently stop being the registered parameter.
#pragma once

#include <optional>

#include "nn/module.hpp"
#include "ops/ops.hpp"

namespace xg::nn {

namespace detail {
struct Fusion;  // nn/fuse.cpp: nn::fuse_for_inference's changes to the layers below
// Refuses training mode in a layer nn::fuse_for_inference changed, naming it.
void check_fused_eval(const Module& m);
}  // namespace detail

// What nn::fuse_for_inference (nn/fuse.hpp) put into a Conv2d or Linear: such a layer computes what
// layer -> batch norm -> ReLU computed, runs in eval mode only, and its parameters are frozen.
struct Fused {
  bool batch_norm = false;  // the batch norm after the layer, folded into weight and bias
  bool relu = false;        // the ReLU after it (or after its batch norm), applied in the output pass
  bool any() const { return batch_norm || relu; }
};

struct LinearOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = true;
};

// y = x W^T + b; x [*, in_features] -> [*, out_features]; weight [out, in], bias [out].
class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& options);
  Linear(int64_t in_features, int64_t out_features, bool bias = true)
      : Linear(LinearOptions{in_features, out_features, bias}) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  // torch.nn.Linear.reset_parameters: weight kaiming_uniform(a = sqrt(5)), i.e. U(+-1/sqrt(in));
  // bias U(+-1/sqrt(in)).
  void reset_parameters();
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without bias
  const LinearOptions& options() const { return options_; }
  const Fused& fused() const { return fused_; }
  bool fused_for_inference() const override { return fused_.any(); }

 private:
  friend struct detail::Fusion;
  LinearOptions options_;
  Tensor weight_, bias_;
  Fused fused_;
  // W^T [in, out], written by nn::fuse_for_inference: the inference GEMM then reads B untransposed
  // instead of transposing the weight on every call. Used without gradient while the weight's
  // version is the one packed; a weight written since (training again) runs the unpacked path.
  Tensor packed_weight_;
  uint32_t packed_version_ = 0;
};

struct Conv2dOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  Pair2 kernel_size = 0;  // required
  Pair2 stride = 1;
  Pair2 padding = 0;      // zeros
  Pair2 dilation = 1;
  int64_t groups = 1;  // divides in_channels and out_channels; groups = in_channels is depthwise
  bool bias = true;
};

// x [N, in_channels, H, W] -> [N, out_channels, HO, WO]; weight [out, in / groups, KH, KW], bias [out].
class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  Conv2d(int64_t in_channels, int64_t out_channels, Pair2 kernel_size)
      : Conv2d(Conv2dOptions{.in_channels = in_channels, .out_channels = out_channels, .kernel_size = kernel_size}) {}
  Tensor forward(const Tensor& x) override;
  // pool.forward(forward(x)), with `relu` pool.forward(relu(forward(x))). With no gradient to record
  // (and no ONNX tracer or reference ops), an im2col convolution pools each image's output (after
  // its bias and ReLU) while it is in cache, and the unpooled output is never stored. nn::Sequential
  // runs a Conv2d followed by a MaxPool2d, with a ReLU, a folded batch norm or a fused ReLU between
  // them or none, this way.
  Tensor forward_pooled(const Tensor& x, bool relu, const class MaxPool2d& pool);
  std::string extra_repr() const override;
  void reset_parameters();  // as Linear, with fan_in = in_channels / groups * KH * KW
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Conv2dOptions& options() const { return options_; }
  const Fused& fused() const { return fused_; }
  bool fused_for_inference() const override { return fused_.any(); }

 private:
  friend struct detail::Fusion;
  Conv2dOptions options_;
  Tensor weight_, bias_;
  Fused fused_;
};

struct ConvTranspose2dOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  Pair2 kernel_size = 0;  // required
  Pair2 stride = 1;
  Pair2 padding = 0;
  Pair2 output_padding = 0;  // smaller than stride or dilation
  int64_t groups = 1;
  bool bias = true;
  Pair2 dilation = 1;
};

// The transposed convolution (xg::conv_transpose2d): x [N, in_channels, H, W] -> [N, out_channels,
// (H - 1) stride - 2 padding + dilation (KH - 1) + output_padding + 1, ...]; weight
// [in, out / groups, KH, KW] (PyTorch's layout), bias [out].
class ConvTranspose2d : public Module {
 public:
  explicit ConvTranspose2d(const ConvTranspose2dOptions& options);
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair2 kernel_size)
      : ConvTranspose2d(ConvTranspose2dOptions{
            .in_channels = in_channels, .out_channels = out_channels, .kernel_size = kernel_size}) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();  // as PyTorch: fan_in = weight.size(1) * KH * KW = out_channels / groups * KH * KW
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const ConvTranspose2dOptions& options() const { return options_; }

 private:
  ConvTranspose2dOptions options_;
  Tensor weight_, bias_;
};

struct MaxPool2dOptions {
  Pair2 kernel_size = 0;          // required
  std::optional<Pair2> stride{};  // default: kernel_size
  Pair2 padding = 0;
  Pair2 dilation = 1;
  bool ceil_mode = false;
};
struct AvgPool2dOptions {
  Pair2 kernel_size = 0;          // required
  std::optional<Pair2> stride{};  // default: kernel_size
  Pair2 padding = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;  // zero padding counts in the average
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options);
  explicit MaxPool2d(Pair2 kernel_size) : MaxPool2d(MaxPool2dOptions{.kernel_size = kernel_size}) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  const Pool2dOptions& options() const { return opts_; }

 private:
  Pool2dOptions opts_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const AvgPool2dOptions& options);
  explicit AvgPool2d(Pair2 kernel_size) : AvgPool2d(AvgPool2dOptions{.kernel_size = kernel_size}) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  Pool2dOptions opts_;
};

// Flattens dims start_dim..end_dim into one: [N, C, H, W] -> [N, C*H*W] by default.
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim_(start_dim), end_dim_(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  int64_t start_dim_, end_dim_;
};

// Inverted dropout with drop probability p while training; the identity in eval().
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  double p_;
};

// After nn::fuse_for_inference fused it into the layer before it, the identity (eval mode only).
class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  bool fused() const { return fused_; }

 private:
  friend struct detail::Fusion;
  bool fused_ = false;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  double negative_slope_;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

}  // namespace xg::nn

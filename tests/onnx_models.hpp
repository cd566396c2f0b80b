// Models for the ONNX export tests: a residual CNN, a model touching every exportable op, and the
// zoo, with random batch-norm statistics so that eval-mode normalisation is not the identity.
#pragma once

#include <xgrad.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "train/models.hpp"

namespace xg::onnx_test {

// conv - bn - relu (- conv - bn), the ResNet basic block's halves.
inline std::shared_ptr<nn::Sequential> conv_bn(int64_t in, int64_t out, int64_t stride, bool relu_after) {
  auto s = std::make_shared<nn::Sequential>();
  s->push_back(nn::Conv2d(nn::Conv2dOptions{
      .in_channels = in, .out_channels = out, .kernel_size = 3, .stride = stride, .padding = 1, .bias = false}));
  s->push_back(nn::BatchNorm2d(out));
  if (relu_after) s->push_back(nn::ReLU());
  return s;
}

// ResNet's basic block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)), the shortcut a strided 1x1
// conv when the shape changes.
class BasicBlock : public nn::Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride) {
    body = register_module("body", nn::Sequential());
    body->push_back(conv_bn(in, out, stride, true));
    body->push_back(conv_bn(out, out, 1, false));
    if (stride != 1 || in != out)
      shortcut = register_module("shortcut", nn::Conv2d(nn::Conv2dOptions{
                                                 .in_channels = in, .out_channels = out, .kernel_size = 1,
                                                 .stride = stride}));
  }
  Tensor forward(const Tensor& x) override { return relu(add((*body)(x), shortcut ? (*shortcut)(x) : x)); }
  std::shared_ptr<nn::Sequential> body;
  std::shared_ptr<nn::Conv2d> shortcut;
};

class ResidualNet : public nn::Module {
 public:
  ResidualNet() {
    stem = register_module("stem", conv_bn(3, 16, 1, true));
    block1 = register_module("block1", BasicBlock(16, 16, 1));
    block2 = register_module("block2", BasicBlock(16, 32, 2));
    fc = register_module("fc", nn::Linear(32, 10));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*block2)((*block1)((*stem)(x)));
    return (*fc)(flatten(adaptive_avg_pool2d(h, 1), 1));
  }
  std::shared_ptr<nn::Sequential> stem;
  std::shared_ptr<BasicBlock> block1, block2;
  std::shared_ptr<nn::Linear> fc;
};

// Every exportable op once, on [N, 3, 8, 8] inputs.
class OpsNet : public nn::Module {
 public:
  OpsNet() {
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions{.in_channels = 3, .out_channels = 4, .kernel_size = 3,
                                                                 .padding = 1}));
    bn = register_module("bn", nn::BatchNorm2d(24));
    scale = register_parameter("scale", rand({1, 24, 1, 1}) + 0.5);
    w = register_parameter("w", randn({8, 6}));
    fc = register_module("fc", nn::Linear(24, 10));
  }
  Tensor forward(const Tensor& x) override {
    Tensor a = (*conv)(x);  // [N, 4, 8, 8]
    Tensor b = cat({gelu(a), gelu(a, "tanh"), silu(a), leaky_relu(a, 0.1), mul(sigmoid(a), tanh(a)), elu(a)}, 1);
    Tensor c = (*bn)(avg_pool2d(b, {.kernel = 2}));  // [N, 24, 4, 4]
    Tensor d = max_pool2d(add(hardswish(c), mish(c)), {.kernel = 3, .stride = 1, .padding = 1});
    Tensor e = div(sub(softplus(d), clamp(d, -0.5, 0.5)), scale);
    Tensor f = add(adaptive_avg_pool2d(e, 2), adaptive_max_pool2d(dropout(e, 0.5, false), 2));  // [N, 24, 2, 2]
    Tensor g = add(mean(f, {2, 3}), sum(sqrt(exp(neg(abs(f)))), {-1, -2}));  // [N, 24]
    Tensor h = matmul(reshape(g, {-1, 3, 8}), w);  // [N, 3, 6]
    Tensor k = flatten(transpose(unsqueeze(h, 1), 2, 3), 1);  // [N, 18]
    Tensor l = cat({k, pow(squeeze(slice_first(g), 1), 2.0)}, 1);  // [N, 24]
    Tensor m = (*fc)(sub(l, log(add(sigmoid(l), 1.0))));  // [N, 10]
    Tensor p = flatten(permute(reshape(m, {-1, 10, 1}), {0, 2, 1}), 1);  // [N, 10] again
    return add(log_softmax(m, 1), mul(softmax(p, -1), 0.5));
  }
  // The first 6 columns of g [N, 24] as [N, 1, 6] (a weight-free reshape path).
  static Tensor slice_first(const Tensor& g) { return reshape(matmul(g, eye_cols()), {-1, 1, 6}); }
  static Tensor eye_cols() {
    std::vector<float> v(24 * 6, 0.0f);
    for (int i = 0; i < 6; ++i) v[i * 6 + i] = 1.0f;
    return from_vector(v, {24, 6});
  }
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;
  Tensor scale, w;
  std::shared_ptr<nn::Linear> fc;
};

// The convolution and pooling options: a dilated conv, a depthwise and a grouped conv (MobileNet's
// separable block), pools with ceil_mode, and an average pool that leaves padding out of its divisor.
class OptionsNet : public nn::Module {
 public:
  OptionsNet() {
    dilated = register_module("dilated", nn::Conv2d(nn::Conv2dOptions{.in_channels = 3, .out_channels = 8,
                                                                       .kernel_size = 3, .padding = 2, .dilation = 2}));
    depthwise = register_module("depthwise", nn::Conv2d(nn::Conv2dOptions{.in_channels = 8, .out_channels = 8,
                                                                           .kernel_size = 3, .padding = 1, .groups = 8}));
    grouped = register_module("grouped", nn::Conv2d(nn::Conv2dOptions{.in_channels = 8, .out_channels = 16,
                                                                       .kernel_size = 1, .groups = 2}));
    fc = register_module("fc", nn::Linear(16, 10));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*grouped)(relu((*depthwise)(relu((*dilated)(x)))));                    // [N, 16, 32, 32]
    h = max_pool2d(h, {.kernel = 3, .stride = 2, .ceil_mode = true});                     // [N, 16, 16, 16]
    h = avg_pool2d(h, {.kernel = 3, .stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false});  // 9x9
    return (*fc)(flatten(adaptive_avg_pool2d(h, 1), 1));
  }
  std::shared_ptr<nn::Conv2d> dilated, depthwise, grouped;
  std::shared_ptr<nn::Linear> fc;
};

// Random running statistics and affine parameters for every batch norm, so eval mode is not the
// identity.
inline void randomize_batch_norms(nn::Module& model) {
  NoGradGuard no_grad;
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNormBase*>(m.get())) {
      if (bn->running_mean().defined()) bn->running_mean().copy_(randn(bn->running_mean().shape()) * 0.2);
      if (bn->running_var().defined()) bn->running_var().copy_(rand(bn->running_var().shape()) + 0.5);
      if (bn->weight().defined()) bn->weight().copy_(rand(bn->weight().shape()) + 0.5);
      if (bn->bias().defined()) bn->bias().copy_(randn(bn->bias().shape()) * 0.2);
    }
}

// Every model the consumer checks run: name, model, one input's shape [C, H, W].
inline std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> export_test_models() {
  std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> out;
  for (const std::string& name : models::model_names()) out.emplace_back(name, models::make_model(name));
  out.emplace_back("residual", std::make_shared<ResidualNet>());
  out.emplace_back("ops", std::make_shared<OpsNet>());
  out.emplace_back("options", std::make_shared<OptionsNet>());
  out.emplace_back("vgg-fused", models::make_model("vgg"));  // nn::fuse_for_inference's Conv + Relu, no batch norm
  out.emplace_back("residual-fused", std::make_shared<ResidualNet>());
  for (auto& [name, m] : out) {
    randomize_batch_norms(*m);
    if (name.ends_with("-fused")) m->eval(), nn::fuse_for_inference(*m);
  }
  return out;
}

inline Shape example_shape(const std::string& name, int64_t batch) {
  if (name == "ops") return {batch, 3, 8, 8};
  return {batch, 3, 32, 32};
}

}  // namespace xg::onnx_test

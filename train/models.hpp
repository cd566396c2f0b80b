// The model zoo: CS231n's networks and the main command's default CNN, as C++ module classes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/nn.hpp"

namespace xg::models {

// affine - ReLU - affine on flattened images (CS231n's TwoLayerNet).
class TwoLayerNet : public nn::Module {
 public:
  explicit TwoLayerNet(int64_t input_dim = 3072, int64_t hidden = 100, int64_t classes = 10);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

enum class Norm { none, batch, layer };

// {affine - [norm] - ReLU - [dropout]} x (L - 1) - affine (CS231n's FullyConnectedNet).
class FullyConnectedNet : public nn::Module {
 public:
  FullyConnectedNet(std::vector<int64_t> hidden_dims, int64_t input_dim = 3072, int64_t classes = 10,
                    Norm norm = Norm::none, double dropout = 0.0);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> layers;
};

// conv 32x7x7 pad 3 - [spatial batchnorm] - ReLU - 2x2 max-pool - affine 100 - ReLU - affine 10.
class ThreeLayerConvNet : public nn::Module {
 public:
  explicit ThreeLayerConvNet(int64_t filters = 32, int64_t filter_size = 7, int64_t hidden = 100,
                             int64_t classes = 10, bool batchnorm = false);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> features, classifier;
};

// The main command's default: three stages of two 3x3 conv - batchnorm - ReLU blocks (channels
// 32-32-64-64-128-128), each stage ending in a 2x2 max-pool, then one affine layer.
class VGG : public nn::Module {
 public:
  explicit VGG(std::vector<int64_t> channels = {32, 32, 64, 64, 128, 128}, int64_t classes = 10);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::Linear> classifier;
};

// ResNet's BasicBlock: relu(bn(conv3x3(relu(bn(conv3x3(x, stride))))) + shortcut(x)), the shortcut a 1x1
// conv with the block's stride and a batch norm when the shape changes, the identity otherwise.
class BasicBlock : public nn::Module {
 public:
  BasicBlock(int64_t in_channels, int64_t channels, int64_t stride = 1);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Sequential> shortcut;  // empty: the identity
};

// ResNet-18 for 32x32 images (the CIFAR variant: a 3x3 stem, no max-pool), stages of two BasicBlocks
// with 64-128-256-512 channels (strides 1-2-2-2), adaptive average pool to 1x1, linear.
class ResNet18 : public nn::Module {
 public:
  explicit ResNet18(int64_t classes = 10, int64_t in_channels = 3);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> stem, layer1, layer2, layer3, layer4;
  std::shared_ptr<nn::AdaptiveAvgPool2d> pool;
  std::shared_ptr<nn::Linear> fc;
};

// conv 3x3 - batchnorm - ReLU, optionally followed by a 2x2 max-pool (ResNet-9's building block).
std::shared_ptr<nn::Sequential> conv_bn(int64_t in_channels, int64_t out_channels, bool pool = false);

// x + res2(res1(x)), each res a conv_bn at the same width (ResNet-9's residual).
class Residual : public nn::Module {
 public:
  explicit Residual(int64_t channels);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> res1, res2;
};

// David Page's ResNet-9 (DAWNBench CIFAR-10): prep conv_bn 64; layer1 conv_bn 128 + pool + Residual;
// layer2 conv_bn 256 + pool; layer3 conv_bn 512 + pool + Residual; global max pool (4x4 at 32x32
// input), linear without bias, logits scaled by 0.125.
class ResNet9 : public nn::Module {
 public:
  explicit ResNet9(int64_t classes = 10, int64_t in_channels = 3);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> prep, layer1, layer2, layer3;
  std::shared_ptr<Residual> res1, res3;
  std::shared_ptr<nn::MaxPool2d> pool;
  std::shared_ptr<nn::Linear> fc;
};

// "vgg", "convnet", "convnet-bn", "twolayer", "fc", "resnet18" or "resnet9"; throws naming the choices otherwise.
std::shared_ptr<nn::Module> make_model(const std::string& name);
const std::vector<std::string>& model_names();

// The weights worth looking at as images: the first conv layer's filters [F,C,KH,KW], or the first
// affine layer's rows viewed as 3x32x32 images. Undefined if the model has neither.
Tensor first_layer_images(nn::Module& model);

}  // namespace xg::models

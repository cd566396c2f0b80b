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

struct AirbenchOptions {
  std::vector<int64_t> widths = {64, 256, 256};  // the three conv groups' channels (airbench94's)
  int64_t classes = 10;
  double bn_eps = 1e-12;
  double bn_momentum = 0.4;  // PyTorch's convention (airbench's own 0.6 is 1 - this)
  double scale = 1.0 / 9;    // the logits' factor
  double head_std = 0;       // > 0: the head's initial weights rescaled to this standard deviation (airbench94_muon: 1)
};

// airbench94's conv group: conv 3x3 (same padding, no bias) - max-pool 2 - batch norm - GELU - conv 3x3 -
// batch norm - GELU. Both convs start as PyTorch's default with their first in_channels filters set to
// the identity (dirac); both batch norms have their scale frozen at 1 (only the shift learns).
class AirbenchGroup : public nn::Module {
 public:
  AirbenchGroup(int64_t in_channels, int64_t channels, const AirbenchOptions& options);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::MaxPool2d> pool;
  std::shared_ptr<nn::BatchNorm2d> norm1, norm2;  // each runs with its GELU (BatchNormBase::forward_activated)
};

// Keller Jordan's airbench94 network for 3x32x32 images (arXiv 2404.00498): a 2x2 convolution 3 -> 24
// without padding (31x31 out) whose weights are frozen (set them with set_whitening; the bias learns),
// GELU, three AirbenchGroups (31 -> 15 -> 7 -> 3), max-pool 3, flatten, linear without bias, times `scale`.
class Airbench : public nn::Module {
 public:
  explicit Airbench(const AirbenchOptions& options = {});
  Tensor forward(const Tensor& x) override;
  // The whitening filters of `images` [N, 3, H, W] (normalised as the model's inputs will be):
  // data::patch_whitening(images, 2, eps) into whiten's frozen weight, and a zero bias.
  void set_whitening(const Tensor& images, double eps = 5e-4);
  std::shared_ptr<nn::Conv2d> whiten;
  std::shared_ptr<nn::GELU> activ;
  std::shared_ptr<AirbenchGroup> group1, group2, group3;
  std::shared_ptr<nn::MaxPool2d> pool;
  std::shared_ptr<nn::Linear> head;

 private:
  double scale_;
};

// "vgg", "convnet", "convnet-bn", "twolayer", "fc", "resnet18", "resnet9" or "airbench"; throws naming the
// choices otherwise.
std::shared_ptr<nn::Module> make_model(const std::string& name);
const std::vector<std::string>& model_names();

// The weights worth looking at as images: the first conv layer's filters [F,C,KH,KW], or the first
// affine layer's rows viewed as 3x32x32 images. Undefined if the model has neither.
Tensor first_layer_images(nn::Module& model);

}  // namespace xg::models

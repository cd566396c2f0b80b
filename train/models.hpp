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

// "twolayer", "fc", "convnet", "convnet-bn" or "vgg"; throws naming the choices otherwise.
std::shared_ptr<nn::Module> make_model(const std::string& name);
const std::vector<std::string>& model_names();

// The weights worth looking at as images: the first conv layer's filters [F,C,KH,KW], or the first
// affine layer's rows viewed as 3x32x32 images. Undefined if the model has neither.
Tensor first_layer_images(nn::Module& model);

}  // namespace xg::models

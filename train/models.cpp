// The model zoo's layers, wired in constructors and run in forward.
#include "train/models.hpp"

namespace xg::models {

TwoLayerNet::TwoLayerNet(int64_t input_dim, int64_t hidden, int64_t classes) {
  fc1 = register_module("fc1", nn::Linear(input_dim, hidden));
  fc2 = register_module("fc2", nn::Linear(hidden, classes));
}

Tensor TwoLayerNet::forward(const Tensor& x) { return fc2->forward(relu(fc1->forward(flatten(x, 1)))); }

FullyConnectedNet::FullyConnectedNet(std::vector<int64_t> hidden_dims, int64_t input_dim, int64_t classes, Norm norm,
                                     double dropout) {
  layers = register_module("layers", nn::Sequential());
  layers->push_back(nn::Flatten());
  int64_t in = input_dim;
  for (int64_t h : hidden_dims) {
    layers->push_back(nn::Linear(in, h));
    if (norm == Norm::batch) layers->push_back(nn::BatchNorm1d(h));
    if (norm == Norm::layer) layers->push_back(nn::LayerNorm(Shape{h}));
    layers->push_back(nn::ReLU());
    if (dropout > 0) layers->push_back(nn::Dropout(dropout));
    in = h;
  }
  layers->push_back(nn::Linear(in, classes));
}

Tensor FullyConnectedNet::forward(const Tensor& x) { return layers->forward(x); }

ThreeLayerConvNet::ThreeLayerConvNet(int64_t filters, int64_t filter_size, int64_t hidden, int64_t classes,
                                     bool batchnorm) {
  features = register_module("features", nn::Sequential());
  features->push_back(nn::Conv2d(nn::Conv2dOptions{
      .in_channels = 3, .out_channels = filters, .kernel_size = filter_size, .padding = (filter_size - 1) / 2}));
  if (batchnorm) features->push_back(nn::BatchNorm2d(filters));
  features->push_back(nn::ReLU());
  features->push_back(nn::MaxPool2d(2));
  classifier = register_module("classifier", nn::Sequential());
  classifier->push_back(nn::Flatten());
  classifier->push_back(nn::Linear(filters * 16 * 16, hidden));
  classifier->push_back(nn::ReLU());
  classifier->push_back(nn::Linear(hidden, classes));
}

Tensor ThreeLayerConvNet::forward(const Tensor& x) { return classifier->forward(features->forward(x)); }

VGG::VGG(std::vector<int64_t> channels, int64_t classes) {
  check(!channels.empty() && channels.size() % 2 == 0, "VGG: channels must come in pairs (two convs per stage), got {}",
        channels.size());
  features = register_module("features", nn::Sequential());
  int64_t in = 3, size = 32;
  for (size_t i = 0; i < channels.size(); ++i) {
    features->push_back(nn::Conv2d(nn::Conv2dOptions{
        .in_channels = in, .out_channels = channels[i], .kernel_size = 3, .padding = 1, .bias = false}));
    features->push_back(nn::BatchNorm2d(channels[i]));
    features->push_back(nn::ReLU());
    if (i % 2 == 1) features->push_back(nn::MaxPool2d(2)), size /= 2;
    in = channels[i];
  }
  classifier = register_module("classifier", nn::Linear(in * size * size, classes));
}

Tensor VGG::forward(const Tensor& x) { return classifier->forward(flatten(features->forward(x), 1)); }

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names{"vgg", "convnet", "convnet-bn", "twolayer", "fc", "resnet18", "resnet9"};
  return names;
}

std::shared_ptr<nn::Module> make_model(const std::string& name) {
  if (name == "vgg") return std::make_shared<VGG>();
  if (name == "convnet") return std::make_shared<ThreeLayerConvNet>();
  if (name == "convnet-bn") return std::make_shared<ThreeLayerConvNet>(32, 7, 100, 10, true);
  if (name == "twolayer") return std::make_shared<TwoLayerNet>();
  if (name == "resnet18") return std::make_shared<ResNet18>();
  if (name == "resnet9") return std::make_shared<ResNet9>();
  if (name == "fc") return std::make_shared<FullyConnectedNet>(std::vector<int64_t>{512, 256, 100}, 3072, 10, Norm::batch, 0.1);
  fail("make_model: unknown model '{}'; choose one of vgg, convnet, convnet-bn, twolayer, fc, resnet18, resnet9", name);
}

Tensor first_layer_images(nn::Module& model) {
  for (auto& [name, p] : model.named_parameters()) {
    if (p.dim() == 4 && (p.shape()[1] == 1 || p.shape()[1] == 3)) return p.detach();
    if (p.dim() == 2 && p.shape()[1] == 3 * 32 * 32) return reshape(p.detach(), {p.shape()[0], 3, 32, 32});
  }
  return Tensor();
}

}  // namespace xg::models

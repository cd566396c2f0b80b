// The residual networks of the model zoo: ResNet-18 (CIFAR variant) and Page's ResNet-9.
#include "train/models.hpp"

namespace xg::models {

namespace {
std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return std::make_shared<nn::Conv2d>(nn::Conv2dOptions{.in_channels = in, .out_channels = out, .kernel_size = kernel,
                                                        .stride = stride, .padding = kernel / 2, .bias = false});
}
}  // namespace

BasicBlock::BasicBlock(int64_t in_channels, int64_t channels, int64_t stride) {
  check(in_channels > 0 && channels > 0 && stride > 0, "BasicBlock: channels ({} -> {}) and stride ({}) must be positive",
        in_channels, channels, stride);
  conv1 = register_module("conv1", conv(in_channels, channels, 3, stride));
  bn1 = register_module("bn1", nn::BatchNorm2d(channels));
  conv2 = register_module("conv2", conv(channels, channels, 3, 1));
  bn2 = register_module("bn2", nn::BatchNorm2d(channels));
  shortcut = register_module("shortcut", nn::Sequential());
  if (stride != 1 || in_channels != channels) {
    shortcut->push_back(conv(in_channels, channels, 1, stride));
    shortcut->push_back(nn::BatchNorm2d(channels));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor y = bn2->forward(conv2->forward(relu(bn1->forward(conv1->forward(x)))));
  return relu(add(y, shortcut->size() == 0 ? x : shortcut->forward(x)));
}

ResNet18::ResNet18(int64_t classes, int64_t in_channels) {
  stem = register_module("stem", nn::Sequential());
  stem->push_back(conv(in_channels, 64, 3, 1));
  stem->push_back(nn::BatchNorm2d(64));
  stem->push_back(nn::ReLU());
  int64_t in = 64;
  auto stage = [&](const std::string& name, int64_t channels, int64_t stride) {
    auto s = register_module(name, nn::Sequential());
    s->push_back(std::make_shared<BasicBlock>(in, channels, stride));
    s->push_back(std::make_shared<BasicBlock>(channels, channels, 1));
    in = channels;
    return s;
  };
  layer1 = stage("layer1", 64, 1);
  layer2 = stage("layer2", 128, 2);
  layer3 = stage("layer3", 256, 2);
  layer4 = stage("layer4", 512, 2);
  pool = register_module("pool", nn::AdaptiveAvgPool2d(1));
  fc = register_module("fc", nn::Linear(512, classes));
}

Tensor ResNet18::forward(const Tensor& x) {
  Tensor y = layer4->forward(layer3->forward(layer2->forward(layer1->forward(stem->forward(x)))));
  return fc->forward(flatten(pool->forward(y), 1));
}

std::shared_ptr<nn::Sequential> conv_bn(int64_t in_channels, int64_t out_channels, bool pool) {
  auto s = std::make_shared<nn::Sequential>();
  s->push_back(conv(in_channels, out_channels, 3, 1));
  s->push_back(nn::BatchNorm2d(out_channels));
  s->push_back(nn::ReLU());
  if (pool) s->push_back(nn::MaxPool2d(2));
  return s;
}

Residual::Residual(int64_t channels) {
  res1 = register_module("res1", conv_bn(channels, channels));
  res2 = register_module("res2", conv_bn(channels, channels));
}

Tensor Residual::forward(const Tensor& x) { return add(x, res2->forward(res1->forward(x))); }

ResNet9::ResNet9(int64_t classes, int64_t in_channels) {
  prep = register_module("prep", conv_bn(in_channels, 64));
  layer1 = register_module("layer1", conv_bn(64, 128, true));
  res1 = register_module("res1", std::make_shared<Residual>(128));
  layer2 = register_module("layer2", conv_bn(128, 256, true));
  layer3 = register_module("layer3", conv_bn(256, 512, true));
  res3 = register_module("res3", std::make_shared<Residual>(512));
  pool = register_module("pool", nn::MaxPool2d(4));
  fc = register_module("fc", nn::Linear(512, classes, /*bias=*/false));
}

Tensor ResNet9::forward(const Tensor& x) {
  Tensor y = res3->forward(layer3->forward(layer2->forward(res1->forward(layer1->forward(prep->forward(x))))));
  return mul(fc->forward(flatten(pool->forward(y), 1)), 0.125);
}

}  // namespace xg::models

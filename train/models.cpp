// The model zoo's layers, wired in constructors and run in forward.
#include "train/models.hpp"

#include <fmt/ranges.h>

#include <cmath>

#include "autograd/grad_mode.hpp"
#include "data/whitening.hpp"

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

namespace {
// conv 3x3, same padding, no bias; PyTorch's default init, then its first in_channels filters (all of
// them if fewer) the identity: airbench's dirac_(w[:in]).
std::shared_ptr<nn::Conv2d> dirac_conv(int64_t in, int64_t out) {
  auto conv = std::make_shared<nn::Conv2d>(
      nn::Conv2dOptions{.in_channels = in, .out_channels = out, .kernel_size = 3, .padding = 1, .bias = false});
  const Tensor& w = conv->weight();
  const int64_t k = std::min(in, out);
  Tensor identity = nn::init::dirac_(zeros({k, in, 3, 3}));
  NoGradGuard no_grad;
  w.copy_(k == out ? identity : cat({identity, slice(w.detach(), 0, k, out)}, 0));
  return conv;
}

std::shared_ptr<nn::BatchNorm2d> frozen_scale_norm(int64_t channels, const AirbenchOptions& o) {
  auto bn = std::make_shared<nn::BatchNorm2d>(
      nn::BatchNormOptions{.num_features = channels, .eps = o.bn_eps, .momentum = o.bn_momentum});
  Tensor scale = bn->weight();  // a handle to the parameter: frozen at 1
  scale.requires_grad_(false);
  return bn;
}
}  // namespace

AirbenchGroup::AirbenchGroup(int64_t in_channels, int64_t channels, const AirbenchOptions& options) {
  conv1 = register_module("conv1", dirac_conv(in_channels, channels));
  pool = register_module("pool", nn::MaxPool2d(2));
  norm1 = register_module("norm1", frozen_scale_norm(channels, options));
  conv2 = register_module("conv2", dirac_conv(channels, channels));
  norm2 = register_module("norm2", frozen_scale_norm(channels, options));
}

Tensor AirbenchGroup::forward(const Tensor& x) {
  // The first conv and the pool run as one op, as do each batch norm and the GELU after it (the exporter
  // still sees the ops one by one).
  Tensor y = norm1->forward_activated(conv1->forward_pooled(x, false, *pool), PostActivation::gelu);
  return norm2->forward_activated(conv2->forward(y), PostActivation::gelu);
}

Airbench::Airbench(const AirbenchOptions& options) : scale_(options.scale) {
  check(options.widths.size() == 3 && options.widths[0] > 0 && options.widths[1] > 0 && options.widths[2] > 0,
        "Airbench: widths must be three positive channel counts, got {}", fmt::join(options.widths, ","));
  check(options.classes > 0, "Airbench: classes must be positive, got {}", options.classes);
  whiten = register_module("whiten", nn::Conv2d(nn::Conv2dOptions{.in_channels = 3, .out_channels = 24, .kernel_size = 2}));
  Tensor filters = whiten->weight();  // set by set_whitening, never trained
  filters.requires_grad_(false);
  activ = register_module("activ", nn::GELU());
  group1 = register_module("group1", std::make_shared<AirbenchGroup>(24, options.widths[0], options));
  group2 = register_module("group2", std::make_shared<AirbenchGroup>(options.widths[0], options.widths[1], options));
  group3 = register_module("group3", std::make_shared<AirbenchGroup>(options.widths[1], options.widths[2], options));
  pool = register_module("pool", nn::MaxPool2d(3));
  head = register_module("head", nn::Linear(options.widths[2], options.classes, false));
  check(options.head_std >= 0 && std::isfinite(options.head_std), "Airbench: head_std must be >= 0, got {}",
        options.head_std);
  if (options.head_std > 0) {
    NoGradGuard no_grad;
    Tensor w = head->weight();
    const double sd = std::sqrt(var(w.to(Dtype::f64), {0, 1}).item<double>());  // unbiased, as torch.std
    if (sd > 0) w.mul_(options.head_std / sd);  // not for one weight alone (NaN) or all equal
  }
}

Tensor Airbench::forward(const Tensor& x) {
  Tensor y = group3->forward(group2->forward(group1->forward(activ->forward(whiten->forward(x)))));
  return mul(head->forward(flatten(pool->forward(y), 1)), scale_);
}

void Airbench::set_whitening(const Tensor& images, double eps) {
  check(images.dim() == 4 && images.shape()[1] == 3, "Airbench: set_whitening needs images [N, 3, H, W], got {}",
        images.shape());
  Tensor filters = data::patch_whitening(images, 2, eps);  // [24, 3, 2, 2]
  NoGradGuard no_grad;
  whiten->weight().copy_(filters);
  whiten->bias().copy_(zeros_like(whiten->bias()));
}

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names{"vgg",  "convnet",  "convnet-bn", "twolayer",
                                              "fc",   "resnet18", "resnet9",    "airbench"};
  return names;
}

std::shared_ptr<nn::Module> make_model(const std::string& name) {
  if (name == "vgg") return std::make_shared<VGG>();
  if (name == "convnet") return std::make_shared<ThreeLayerConvNet>();
  if (name == "convnet-bn") return std::make_shared<ThreeLayerConvNet>(32, 7, 100, 10, true);
  if (name == "twolayer") return std::make_shared<TwoLayerNet>();
  if (name == "resnet18") return std::make_shared<ResNet18>();
  if (name == "resnet9") return std::make_shared<ResNet9>();
  if (name == "airbench") return std::make_shared<Airbench>();
  if (name == "fc") return std::make_shared<FullyConnectedNet>(std::vector<int64_t>{512, 256, 100}, 3072, 10, Norm::batch, 0.1);
  fail("make_model: unknown model '{}'; choose one of vgg, convnet, convnet-bn, twolayer, fc, resnet18, resnet9, airbench", name);
}

Tensor first_layer_images(nn::Module& model) {
  for (auto& [name, p] : model.named_parameters()) {
    if (p.dim() == 4 && (p.shape()[1] == 1 || p.shape()[1] == 3)) return p.detach();
    if (p.dim() == 2 && p.shape()[1] == 3 * 32 * 32) return reshape(p.detach(), {p.shape()[0], 3, 32, 32});
  }
  return Tensor();
}

}  // namespace xg::models

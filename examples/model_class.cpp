// A model defined as a class (conv -> batchnorm -> relu -> pool -> linear), trained with Adam, saved.
#include <xgrad.hpp>

using namespace xg;

struct Net : nn::Module {
  std::shared_ptr<nn::Conv2d> conv = register_module("conv", nn::Conv2d({.in_channels = 3, .out_channels = 16,
                                                                          .kernel_size = 3, .padding = 1}));
  std::shared_ptr<nn::BatchNorm2d> bn = register_module("bn", nn::BatchNorm2d(16));
  std::shared_ptr<nn::MaxPool2d> pool = register_module("pool", nn::MaxPool2d(2));
  std::shared_ptr<nn::Linear> fc = register_module("fc", nn::Linear(16 * 16 * 16, 10));

  Tensor forward(const Tensor& x) override {
    Tensor h = pool->forward(relu(bn->forward(conv->forward(x))));
    return fc->forward(flatten(h, 1));
  }
};

int main() {
  configure_process();  // malloc and OpenBLAS settings for speed; xgrad changes neither by itself
  manual_seed(0);
  Net model;
  optim::Adam opt(model.parameters(), {.lr = 1e-3});
  Tensor images = randn({32, 3, 32, 32});  // stand-ins for a CIFAR-10 batch
  Tensor labels = randint(0, 10, {32});
  for (int step = 0; step < 5; ++step) {
    Tensor loss = cross_entropy(model.forward(images), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    fmt::print("step {}  loss {:.4f}\n", step, loss.item<float>());
  }
  model.save("model_class.safetensors", {{"steps", "5"}});
  fmt::print("saved {} tensors\n", model.state_dict().size());
}

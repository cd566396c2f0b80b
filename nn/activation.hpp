// Activation modules over the functional ops of ops/activation.cpp, and Identity.
#pragma once

#include <string>

#include "nn/module.hpp"
#include "ops/ops.hpp"

namespace xg::nn {

class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none");  // "none" (the erf form) or "tanh"
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  const std::string& approximate() const { return approximate_; }

 private:
  std::string approximate_;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class ELU : public Module {
 public:
  explicit ELU(double alpha = 1.0);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  double alpha_;
};

class Softplus : public Module {
 public:
  explicit Softplus(double beta = 1.0, double threshold = 20.0);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  double beta_, threshold_;
};

class Hardswish : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Mish : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

// Returns its input unchanged (the same tensor): a placeholder, e.g. for a removed layer.
class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

}  // namespace xg::nn

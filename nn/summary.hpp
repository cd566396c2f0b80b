// nn::summary (a torchinfo-like table: each module's output shape and parameter count) and
// nn::count_parameters.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace xg::nn {

struct SummaryRow {
  std::string name;  // dotted ("features.0"); "" for the model itself
  std::string type;  // the class name ("Conv2d")
  int depth = 0;     // 0 for the model, 1 for its children, ...
  std::optional<Shape> output_shape;  // unset when the module was not called through operator()
  int64_t params = 0;                 // the module's own parameters (not its children's)
};

struct ModelSummary {
  std::vector<SummaryRow> rows;  // pre-order, every module once
  Shape input_shape, output_shape;
  int64_t total_params = 0, trainable_params = 0;  // shared parameters counted once
};

// Runs model(zeros(input_shape)) once, in eval mode and without recording (the modes are restored
// afterwards, so batch-norm statistics do not move), recording the output shape of every module
// called through operator() (Sequential calls its modules so; a forward() call is not observed,
// as PyTorch's hooks). The input's dtype is the first parameter's (f32 without parameters).
ModelSummary summary(Module& model, const Shape& input_shape);
std::string to_string(const ModelSummary& s);

// The number of parameter elements, each shared parameter once; trainable_only counts only those
// that require grad.
int64_t count_parameters(const Module& model, bool trainable_only = false);

}  // namespace xg::nn

template <>
struct fmt::formatter<xg::nn::ModelSummary> : fmt::formatter<std::string> {
  auto format(const xg::nn::ModelSummary& s, format_context& ctx) const {
    return fmt::formatter<std::string>::format(xg::nn::to_string(s), ctx);
  }
};

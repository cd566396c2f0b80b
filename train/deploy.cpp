// Normalized and the main command's ONNX export.
#include "train/deploy.hpp"

#include <vector>

#include "onnx/export.hpp"
#include "ops/ops.hpp"

namespace xg::train {

namespace {
// [3, 1, 1], not [1, 3, 1, 1]: the same broadcast, but OpenCV 4.6 fails on an Add or Sub whose
// constant has a leading 1 once the batch is larger than 1 (shape_utils.hpp:170, "total").
Tensor per_channel(const std::vector<float>& v) {
  check(v.size() == 3, "export_onnx: the normalisation has {} channels, the deployed model takes 3", v.size());
  return from_vector(v, {3, 1, 1});
}
}  // namespace

Normalized::Normalized(std::shared_ptr<nn::Module> m, const data::Normalization& norm) {
  mean = register_buffer("mean", per_channel(norm.mean));
  std = register_buffer("std", per_channel(norm.std));
  model = register_module("model", std::move(m));
}

Tensor Normalized::forward(const Tensor& x) { return (*model)(div(sub(x, mean), std)); }

void export_onnx(std::shared_ptr<nn::Module> model, const data::Normalization& norm, const std::string& path) {
  Normalized wrapped(std::move(model), norm);
  onnx::export_model(wrapped, full({1, 3, 32, 32}, 0.5), path, {.output_names = {"logits"}});
}

std::string channel_list(const std::vector<float>& values) {
  return fmt::format("{:.6f},{:.6f},{:.6f}", values[0], values[1], values[2]);
}

}  // namespace xg::train

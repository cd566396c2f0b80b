// The main command's deployable model: model.onnx, which takes raw pixels and does the per-channel
// normalisation itself, so that a consumer needs nothing but the file.
#pragma once

#include <memory>
#include <string>

#include "data/transforms.hpp"
#include "nn/module.hpp"

namespace xg::train {

// (x - mean) / std per channel, then `model`: images [N, 3, H, W] with pixels in [0, 1] in,
// the model's output out.
class Normalized : public nn::Module {
 public:
  Normalized(std::shared_ptr<nn::Module> model, const data::Normalization& norm);
  Tensor forward(const Tensor& x) override;
  Tensor mean, std;  // [3, 1, 1]
  std::shared_ptr<nn::Module> model;
};

// Writes `path` (atomically): Normalized(model, norm) exported to ONNX with input "input"
// [N, 3, 32, 32] and output "logits" [N, classes], N dynamic.
void export_onnx(std::shared_ptr<nn::Module> model, const data::Normalization& norm, const std::string& path);

// "0.491400,0.482200,0.446500": how a checkpoint's metadata records a normalisation's mean or std.
std::string channel_list(const std::vector<float>& values);

}  // namespace xg::train

// ONNX export: one eval-mode forward of a module, traced op by op (autograd/trace.hpp), written as
// an ONNX model that ONNX Runtime and OpenCV's DNN module load.
//
//   xg::onnx::export_model(model, xg::rand({1, 3, 32, 32}), "model.onnx");
//
// Every op the forward calls must report itself to the tracer and have an export rule
// (onnx/rules.cpp); tensors computed without the input (weights, buffers, constants) become
// initializers. An op without a rule is an xg::Error naming it and, where known, the module path;
// the file is then not written (nor is it ever written half-way: temporary file and rename).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/module.hpp"
#include "onnx/graph.hpp"

namespace xg::onnx {

struct ExportOptions {
  int64_t opset = 13;         // 13 to 17; 13 (IR version 7) loads in ONNX Runtime and OpenCV 4.6
  bool dynamic_batch = true;  // dim 0 of the input and the output is the symbolic "N"
  std::vector<std::string> input_names{};   // default {"input"}
  std::vector<std::string> output_names{};  // default {"output"}
};

// The model export_model writes, in memory. The module is traced in eval mode (and put back in the
// modes it was in); example_input fixes every dim but the batch.
Model trace_model(nn::Module& module, const Tensor& example_input, const ExportOptions& options = {});

void export_model(nn::Module& module, const Tensor& example_input, const std::string& path,
                  const ExportOptions& options = {});

template <class M>
void export_model(const std::shared_ptr<M>& module, const Tensor& example_input, const std::string& path,
                  const ExportOptions& options = {}) {
  check(module != nullptr, "onnx::export_model: null module");
  export_model(*module, example_input, path, options);
}

}  // namespace xg::onnx

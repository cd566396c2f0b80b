// An ONNX model in memory (the few messages of onnx.proto xgrad writes) and its serialisation.
#pragma once

#include <string>
#include <vector>

#include "autograd/tensor.hpp"
#include "autograd/trace.hpp"

namespace xg::onnx {

// Attribute values: int64 -> INT, double -> FLOAT (stored as f32), string -> STRING, ints -> INTS.
using Attrs = trace::Attrs;

struct Node {
  std::string op_type, name;
  std::vector<std::string> inputs, outputs;  // "" stands for an absent optional input
  Attrs attrs;
};

struct Initializer {
  std::string name;
  Tensor value;  // f32, f64 or i64; written as raw little-endian data
};

struct ValueInfo {
  std::string name;
  Dtype dtype = Dtype::f32;
  Shape shape;
  bool dynamic_batch = false;  // dim 0 is the symbolic "N" instead of shape[0]
};

struct Graph {
  std::string name = "xgrad";
  std::vector<Node> nodes;  // in execution order, which is topological
  std::vector<Initializer> initializers;
  std::vector<ValueInfo> inputs, outputs;
};

struct Model {
  int64_t ir_version = 7;
  int64_t opset = 13;  // of the default domain "ai.onnx"
  Graph graph;
};

// The ModelProto bytes: a .onnx file's whole content.
std::string serialize(const Model& model);

}  // namespace xg::onnx

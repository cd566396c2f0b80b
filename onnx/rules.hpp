// ONNX export rules: how each traced op kind becomes ONNX nodes (used by onnx/export.cpp).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "onnx/graph.hpp"

namespace xg::onnx::detail {

// The graph under construction, as the rules see it.
class Builder {
 public:
  virtual ~Builder() = default;
  // The value name of a tensor an op consumes: a graph value, or a new initializer for a tensor
  // computed without the graph input (a weight). "" for an undefined tensor (absent optional input).
  virtual std::string value(const Tensor& t) = 0;
  virtual std::string constant(const Tensor& t) = 0;  // always a new initializer
  // Appends a node with one output; returns the output's value name.
  virtual std::string node(const std::string& op_type, const std::vector<std::string>& inputs, Attrs attrs = {}) = 0;
  virtual bool dynamic_batch() const = 0;
  virtual int64_t opset() const = 0;
  virtual std::string where() const = 0;  // " in module 'features.0' (Conv2d)", or ""
};

// One traced op, with helpers for the rules.
struct Op {
  std::string_view kind;
  const std::vector<Tensor>& in;
  const Tensor& out;
  const trace::Attrs& attrs;
  Builder& b;

  std::string input(size_t i) const { return i < in.size() ? b.value(in[i]) : std::string(); }
  std::string scalar(double v) const;                 // a 0-d initializer of the output's dtype
  std::string ints(const std::vector<int64_t>& v) const;  // a 1-D i64 initializer
  bool has(std::string_view name) const;
  int64_t i(std::string_view name) const;
  double f(std::string_view name) const;
  const std::vector<int64_t>& ints_attr(std::string_view name) const;
  const std::string& s(std::string_view name) const;
  [[noreturn]] void refuse(const std::string& why) const;  // xg::Error naming the op and module
};

// Returns the value name of the op's output (an input's name when the op is the identity).
using Rule = std::function<std::string(const Op&)>;
const Rule* find_rule(std::string_view kind);

}  // namespace xg::onnx::detail

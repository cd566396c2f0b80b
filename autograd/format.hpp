// fmt formatting of tensors: fmt::format("{}", t).
#pragma once

#include <fmt/format.h>

#include <string>

#include "autograd/tensor.hpp"

namespace xg {
// "tensor([[1.0000, 2.0000], ...], shape=[2,2], dtype=f32, requires_grad)"; large tensors are
// summarised with the first and last three entries of each dim.
std::string to_string(const Tensor& t);
}  // namespace xg

template <>
struct fmt::formatter<xg::Tensor> : fmt::formatter<std::string> {
  auto format(const xg::Tensor& t, format_context& ctx) const {
    return fmt::formatter<std::string>::format(xg::to_string(t), ctx);
  }
};

// xg::Shape (the sizes of a tensor's dimensions) and the helpers every op uses on shapes.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

namespace xg {

struct Shape : std::vector<int64_t> {
  using std::vector<int64_t>::vector;
  Shape(const std::vector<int64_t>& v) : std::vector<int64_t>(v) {}  // NOLINT: implicit on purpose
};

std::string to_string(const Shape& s);  // "[2,3]"

// Number of elements; throws when a size is negative or the count overflows (before any allocation).
int64_t checked_numel(const Shape& s, const char* op);

// Row-major strides in elements.
std::vector<int64_t> contiguous_strides(const Shape& s);

// Wraps a possibly negative dim into [0, rank); `op` names the caller in the error.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* op);

// NumPy broadcasting of two shapes; throws naming `op` when they are incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace xg

template <>
struct fmt::formatter<xg::Shape> : fmt::formatter<std::string> {
  auto format(const xg::Shape& s, format_context& ctx) const {
    return fmt::formatter<std::string>::format(xg::to_string(s), ctx);
  }
};

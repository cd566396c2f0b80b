// xg::Error, the one exception type xgrad throws for bad input, and the check helper that raises it.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace xg {

class Error : public std::invalid_argument {
 public:
  explicit Error(const std::string& what) : std::invalid_argument(what) {}
};

// check(cond, "conv2d: input must be 4-D, got {}", shape): the message is only formatted on failure.
template <class... Args>
inline void check(bool cond, fmt::format_string<Args...> f, Args&&... args) {
  if (!cond) [[unlikely]]
    throw Error(fmt::format(f, std::forward<Args>(args)...));
}

template <class... Args>
[[noreturn]] inline void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace xg

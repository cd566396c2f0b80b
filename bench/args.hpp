// The benchmarks' command-line numbers: a whole number or a finite number, at least a minimum, else an
// xg::Error naming the tool, the argument and the text (std::atoi would read "abc" as 0, std::stoi throws
// a message naming neither).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <xgrad.hpp>

namespace xg::bench {

inline int64_t int_arg(std::string_view tool, std::string_view what, std::string_view text, int64_t min) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  check(ec == std::errc() && end == text.data() + text.size() && v >= min,
        "{}: {} takes a whole number >= {}, got '{}'", tool, what, min, text);
  return v;
}

inline double positive_arg(std::string_view tool, std::string_view what, std::string_view text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  check(ec == std::errc() && end == text.data() + text.size() && std::isfinite(v) && v > 0,
        "{}: {} takes a number > 0, got '{}'", tool, what, text);
  return v;
}

}  // namespace xg::bench

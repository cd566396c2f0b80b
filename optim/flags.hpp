// with_flag: turns a runtime option into a compile-time one, so that an optimizer's update loop is
// compiled once per combination of its options and each variant vectorises (per-element branches
// on the options keep GCC from it).
#pragma once

#include <type_traits>

namespace xg::optim::detail {

// Calls f(std::true_type{}) or f(std::false_type{}).
template <class F>
void with_flag(bool v, F&& f) {
  if (v) f(std::true_type{});
  else f(std::false_type{});
}

}  // namespace xg::optim::detail

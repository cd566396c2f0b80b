// Sums over raw buffers kept in independent lanes, so that the loops vectorise: one running sum must
// add in source order, which the compiler may not reorder (no -ffast-math here).
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace xg::detail {

// The lanes' total: double for floating lanes, the lane type itself for integers.
template <class Acc>
using LaneTotal = std::conditional_t<std::is_integral_v<Acc>, Acc, double>;

inline constexpr int sum_lanes = 16;

// Sum of f(i) over i in [0, n), in sum_lanes lanes of type Acc.
template <class Acc, class F>
LaneTotal<Acc> lane_sum(int64_t n, F f) {
  Acc a[sum_lanes] = {};
  int64_t i = 0;
  for (; i + sum_lanes <= n; i += sum_lanes)
    for (int l = 0; l < sum_lanes; ++l) a[l] += f(i + l);
  LaneTotal<Acc> s = 0;
  for (; i < n; ++i) s += f(i);
  for (int l = 0; l < sum_lanes; ++l) s += a[l];
  return s;
}

// Sums of f(i) and of g(i) over i in [0, n), in one pass.
template <class Acc, class F, class G>
std::pair<LaneTotal<Acc>, LaneTotal<Acc>> lane_sums(int64_t n, F f, G g) {
  Acc a[sum_lanes] = {}, b[sum_lanes] = {};
  int64_t i = 0;
  for (; i + sum_lanes <= n; i += sum_lanes)
    for (int l = 0; l < sum_lanes; ++l) a[l] += f(i + l), b[l] += g(i + l);
  LaneTotal<Acc> sa = 0, sb = 0;
  for (; i < n; ++i) sa += f(i), sb += g(i);
  for (int l = 0; l < sum_lanes; ++l) sa += a[l], sb += b[l];
  return {sa, sb};
}

// lane_sums over several runs: add() accumulates f and g over a run of n values (its tail into the
// first lanes), totals() reduces once. Short runs (a batch norm channel's 8x8 plane per image) then
// pay the reduction once per channel, not once per run.
template <class Acc>
struct LanePairs {
  Acc a[sum_lanes] = {}, b[sum_lanes] = {};
  template <class F, class G>
  void add(int64_t n, F f, G g) {
    int64_t i = 0;
    for (; i + sum_lanes <= n; i += sum_lanes)
      for (int l = 0; l < sum_lanes; ++l) a[l] += f(i + l), b[l] += g(i + l);
    for (int l = 0; i + l < n; ++l) a[l] += f(i + l), b[l] += g(i + l);
  }
  std::pair<LaneTotal<Acc>, LaneTotal<Acc>> totals() const {
    LaneTotal<Acc> sa = 0, sb = 0;
    for (int l = 0; l < sum_lanes; ++l) sa += a[l], sb += b[l];
    return {sa, sb};
  }
};

}  // namespace xg::detail

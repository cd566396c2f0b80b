// Benchmark timing: run a callable repeatedly and report the median wall time.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include <cblas.h>

namespace xg::bench {

// The reference side of a benchmark: OpenBLAS with its own thread pool, as a user calling it gets.
// xgrad runs OpenBLAS single-threaded (its GEMMs split over OpenMP), so the bench switches back and
// forth around each reference call.
struct OpenblasThreads {
  explicit OpenblasThreads(int n) { openblas_set_num_threads(n); }
  ~OpenblasThreads() { openblas_set_num_threads(1); }
};

// Waits until threads that spin after a BLAS call (OpenBLAS's) have gone to sleep.
inline void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(300)); }

// Median seconds of `reps` runs of f, after one warm-up run.
template <class F>
double median_seconds(F&& f, int reps) {
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto start = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

// Median seconds of f over as many runs as fit in `seconds` (at least 5), after two warm-up runs.
template <class F>
double median_seconds_for(F&& f, double seconds) {
  using clock = std::chrono::steady_clock;
  f();
  f();
  std::vector<double> t;
  const auto start = clock::now();
  while (t.size() < 5 || std::chrono::duration<double>(clock::now() - start).count() < seconds) {
    const auto s = clock::now();
    f();
    t.push_back(std::chrono::duration<double>(clock::now() - s).count());
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

// Medians of a and of b, measured one after the other. Not interleaved: OpenBLAS's threads spin for
// about 0.1 s after each call and would slow whatever runs right after them, so the pause lets them
// sleep before the next measurement.
template <class A, class B>
std::pair<double, double> median_pair(A&& a, B&& b, int reps) {
  double ta = median_seconds(a, reps);
  double tb = median_seconds(b, reps);
  settle();
  return {ta, tb};
}

// Medians of a and of b over `rounds` rounds, each round timing both for about `seconds` each, the
// order swapped every round, so that drift in the machine's speed falls on both alike.
template <class A, class B>
std::pair<double, double> alternating_medians(A&& a, B&& b, int rounds, double seconds) {
  std::vector<double> ta, tb;
  for (int r = 0; r < rounds; ++r) {
    if (r % 2 == 0) {
      ta.push_back(median_seconds_for(a, seconds));
      tb.push_back(median_seconds_for(b, seconds));
    } else {
      tb.push_back(median_seconds_for(b, seconds));
      ta.push_back(median_seconds_for(a, seconds));
    }
  }
  auto median = [](std::vector<double>& v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  return {median(ta), median(tb)};
}

}  // namespace xg::bench

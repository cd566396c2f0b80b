// Benchmark timing: run a callable repeatedly and report the median wall time.
#pragma once

#include <algorithm>
#include <chrono>
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

// Interleaves a and b (a, b, a, b, ...) so machine drift hits both; returns their medians.
template <class A, class B>
std::pair<double, double> median_pair(A&& a, B&& b, int reps) {
  a();
  b();
  std::vector<double> ta, tb;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    a();
    auto t1 = std::chrono::steady_clock::now();
    b();
    auto t2 = std::chrono::steady_clock::now();
    ta.push_back(std::chrono::duration<double>(t1 - t0).count());
    tb.push_back(std::chrono::duration<double>(t2 - t1).count());
  }
  auto med = [](std::vector<double>& v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  return {med(ta), med(tb)};
}

}  // namespace xg::bench

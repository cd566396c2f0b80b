// The worker pool: coverage of the range, nesting, exceptions, thread counts, identical results.
#include <atomic>
#include <chrono>
#include <thread>

#include "helpers.hpp"

using namespace xg;

TEST_CASE("parallel_for covers the range exactly once, nests inline, and propagates exceptions") {
  std::vector<std::atomic<int>> hits(10000);
  parallel_for(0, 10000, 16, [&](int64_t lo, int64_t hi) {
    parallel_for(lo, hi, 1, [&](int64_t a, int64_t b) {  // nested: runs inline
      for (int64_t i = a; i < b; ++i) hits[i]++;
    });
  });
  CHECK(std::all_of(hits.begin(), hits.end(), [](auto& h) { return h.load() == 1; }));
  CHECK_ERROR(parallel_for(0, 1000, 1, [](int64_t lo, int64_t) {
                if (lo > 0) fail("kernel: failed in piece at {}", lo);
              }),
              "kernel: failed in piece at");
  CHECK_ERROR(set_num_threads(0), "set_num_threads: need at least one thread, got 0");
}

TEST_CASE("a pool resized after use starts its new workers idle (regression: they re-ran the last piece)") {
  const int before = get_num_threads();
  set_num_threads(2);
  std::atomic<int> calls = 0;
  parallel_for(0, 1000, 1, [&](int64_t, int64_t) { calls++; });  // a region of two pieces
  CHECK(calls.load() == 2);
  set_num_threads(1);
  set_num_threads(2);  // the new worker used to run piece 1 of the region above, through a null function
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(calls.load() == 2);
  std::vector<std::atomic<int>> hits(1000);
  for (int round = 0; round < 50; ++round)
    parallel_for(0, 1000, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) hits[i]++;
    });
  CHECK(std::all_of(hits.begin(), hits.end(), [](auto& h) { return h.load() == 50; }));
  set_num_threads(before);
}

TEST_CASE("kernels give identical results on 1 and 2 threads, and from two user threads at once") {
  const int before = get_num_threads();
  manual_seed(1);
  Tensor x = randn({4, 8, 12, 12}), w = randn({16, 8, 3, 3});
  set_num_threads(1);
  std::vector<float> one = conv2d(x, w, Tensor(), {.padding = 1}).to_vector<float>();
  set_num_threads(2);
  std::vector<float> two = conv2d(x, w, Tensor(), {.padding = 1}).to_vector<float>();
  CHECK(one == two);
  // The conv's output and input gradient, on both paths: im2col (3 channels) and Winograd with
  // enough images that two threads each run chunks of their own. (Weight gradients are summed per
  // thread, in a fixed order: identical run to run on the same thread count.)
  for (int64_t C : {3, 32}) {
    CAPTURE(C);
    Tensor xs = randn({40, C, 16, 16}), ws = randn({16, C, 3, 3}), up = randn({40, 16, 16, 16});
    auto run = [&](int threads) {
      set_num_threads(threads);
      Tensor xl = xs.detach(), wl = ws.detach();
      xl.requires_grad_();
      wl.requires_grad_();
      Tensor y = conv2d(xl, wl, Tensor(), {.padding = 1});
      y.backward(up);
      return std::pair(y.to_vector<float>(), xl.grad().to_vector<float>());
    };
    auto [y1, dx1] = run(1);
    auto [y2, dx2] = run(2);
    CHECK(y1 == y2);
    CHECK(dx1 == dx2);
  }
  set_num_threads(2);
  std::vector<float> a, b;
  std::thread t([&] { a = conv2d(x, w, Tensor(), {.padding = 1}).to_vector<float>(); });
  b = conv2d(x, w, Tensor(), {.padding = 1}).to_vector<float>();
  t.join();
  CHECK(a == one);
  CHECK(b == one);
  set_num_threads(before);
}

// The worker pool: coverage of the range, nesting, exceptions, thread counts, identical results.
#include <atomic>
#include <bit>
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

TEST_CASE("set_flush_denormal reaches the worker threads, and false restores IEEE denormals") {
  const int before = get_num_threads();
  set_num_threads(2);
  struct Restore {
    int threads;
    ~Restore() {
      set_flush_denormal(false);
      set_num_threads(threads);
    }
  } restore{before};
  // Results are compared by their bits: under DAZ, a comparison reads a denormal as 0 too.
  auto bits = [](float v) { return std::bit_cast<uint32_t>(v); };
  auto all_bits = [&](const Tensor& t, uint32_t want) {
    const float* p = t.data<float>();
    return std::all_of(p, p + t.numel(), [&](float e) { return bits(e) == want; });
  };
  // Each piece multiplies a denormal by 1 on its own thread: DAZ reads it as 0.
  auto pieces = [&] {
    float out[2] = {-1.f, -1.f};
    std::thread::id who[2];
    parallel_for(0, 2, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        volatile float tiny = 1e-39f, one = 1.f;  // volatile: not folded to tiny
        out[i] = tiny * one;
        who[i] = std::this_thread::get_id();
      }
    });
    CHECK(who[0] != who[1]);  // piece 1 ran on a worker
    return std::vector<uint32_t>{bits(out[0]), bits(out[1])};
  };
  const float tiny = 1e-39f, twice = 2e-39f;  // denormals, converted before any flushing
  REQUIRE(bits(tiny) != 0);
  const Tensor x = full({1 << 18}, tiny);  // f32; a kernel split over both threads
  REQUIRE(set_flush_denormal(true));       // x86-64 always has FTZ/DAZ
  CHECK(pieces() == std::vector<uint32_t>{0, 0});
  CHECK(all_bits(x * 1.0, 0));
  CHECK(all_bits(x + x, 0));
  REQUIRE(set_flush_denormal(false));
  CHECK(pieces() == std::vector<uint32_t>{bits(tiny), bits(tiny)});
  CHECK(all_bits(x * 1.0, bits(tiny)));
  CHECK(all_bits(x + x, bits(twice)));
}

// The worker pool behind parallel_for: a generation counter the workers watch, spinning briefly
// before they sleep on a condition variable (waking a sleeping thread costs up to a millisecond on
// this kind of VM, longer than many kernels; spinning for ever would steal the loader's core).
#include "autograd/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "autograd/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define XGRAD_HAVE_MXCSR 1
#endif

namespace xg {

namespace {

thread_local bool inside_region = false;

// set_flush_denormal's mode for the workers (-1: never set, each keeps the mode it started with), and
// the mode a worker last put in its own control register.
std::atomic<int> flush_denormal_mode{-1};
thread_local int flush_denormal_applied = -1;

#ifdef XGRAD_HAVE_MXCSR
constexpr unsigned ftz_daz = 0x8040;  // MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6)
void set_thread_flush_denormal(bool mode) { _mm_setcsr(mode ? _mm_getcsr() | ftz_daz : _mm_getcsr() & ~ftz_daz); }
#endif

// On a worker, before each piece: the last mode set_flush_denormal asked for.
void follow_flush_denormal() {
#ifdef XGRAD_HAVE_MXCSR
  const int mode = flush_denormal_mode.load(std::memory_order_relaxed);
  if (mode >= 0 && mode != flush_denormal_applied) {
    set_thread_flush_denormal(mode == 1);
    flush_denormal_applied = mode;
  }
#endif
}

// How long a thread spins for the next piece of work (or for its helpers to finish) before sleeping.
constexpr auto spin_for = std::chrono::microseconds(2000);

// Spins until pred() holds or spin_for has passed; returns whether it holds.
template <class Pred>
bool spin_until(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + spin_for;
  for (int i = 0;; ++i) {
    if (pred()) return true;
    if ((i & 255) == 255 && std::chrono::steady_clock::now() > until) return false;
    __builtin_ia32_pause();
  }
}

int default_threads() {
  for (const char* var : {"XGRAD_NUM_THREADS", "OMP_NUM_THREADS"})
    if (const char* v = std::getenv(var)) {
      int n = std::atoi(v);
      if (n > 0) return n;
    }
  return std::max(1u, std::thread::hardware_concurrency());
}

class Pool {
 public:
  explicit Pool(int threads) { resize(threads); }
  ~Pool() { stop_workers(); }

  int threads() const { return threads_; }

  void resize(int threads) {
    std::lock_guard<std::mutex> busy(busy_);
    stop_workers();
    threads_ = threads;
    stop_ = false;
    // A new worker has seen every region so far: starting from 0 it would take the last region's
    // piece again, with its function already gone.
    const uint64_t now = generation_.load();
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i, now] { work(i, now); });
  }

  // Runs f over `pieces` pieces of [begin, end); piece 0 on the caller. If another thread is
  // already using the pool, runs everything inline instead of queueing behind it.
  void run(int64_t begin, int64_t end, int pieces, const std::function<void(int64_t, int64_t)>& f) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) {
      f(begin, end);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(m_);
      f_ = &f, begin_ = begin, end_ = end, pieces_ = pieces, error_ = nullptr;
      pending_.store(pieces - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    run_piece(0);
    if (!spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(m_);
      done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    std::lock_guard<std::mutex> lock(m_);
    f_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_piece(int i) {
    const int64_t n = end_ - begin_;
    const int64_t lo = begin_ + n * i / pieces_, hi = begin_ + n * (i + 1) / pieces_;
    inside_region = true;
    try {
      (*f_)(lo, hi);
    } catch (...) {
      std::lock_guard<std::mutex> lock(m_);
      if (!error_) error_ = std::current_exception();
    }
    inside_region = false;
  }

  void work(int index, uint64_t seen) {
    for (;;) {
      auto fresh = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until([&] { return fresh() || stop_.load(std::memory_order_relaxed); })) {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return stop_.load() || fresh(); });
      }
      if (stop_.load()) return;
      int pieces;
      {
        std::lock_guard<std::mutex> lock(m_);
        seen = generation_.load();
        pieces = pieces_;
      }
      if (index >= pieces) continue;
      follow_flush_denormal();
      run_piece(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(m_);  // pairs with the caller's sleeping wait
        done_.notify_one();
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex busy_;  // one parallel region at a time
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  int threads_ = 1;
  std::atomic<bool> stop_ = false;
  std::atomic<uint64_t> generation_ = 0;
  const std::function<void(int64_t, int64_t)>* f_ = nullptr;
  int64_t begin_ = 0, end_ = 0;
  int pieces_ = 0;
  std::atomic<int> pending_ = 0;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool* p = new Pool(default_threads());  // never destroyed: kernels may run during teardown
  return *p;
}

}  // namespace

void set_num_threads(int n) {
  check(n > 0, "set_num_threads: need at least one thread, got {}", n);
  if (n != pool().threads()) pool().resize(n);
}

int get_num_threads() { return pool().threads(); }

bool set_flush_denormal(bool mode) {
#ifdef XGRAD_HAVE_MXCSR
  set_thread_flush_denormal(mode);
  flush_denormal_mode.store(mode ? 1 : 0, std::memory_order_relaxed);  // seen by a worker's next piece
  return true;
#else
  (void)mode;
  return false;
#endif
}

namespace detail {

bool in_parallel_region() { return inside_region; }

void parallel_run(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  const int64_t by_grain = (end - begin + std::max<int64_t>(grain, 1) - 1) / std::max<int64_t>(grain, 1);
  const int pieces = static_cast<int>(std::min<int64_t>(pool().threads(), by_grain));
  if (pieces <= 1) {
    f(begin, end);
    return;
  }
  pool().run(begin, end, pieces, f);
}

}  // namespace detail

}  // namespace xg

// xgrad's intra-op parallelism: a small pool of sleeping worker threads and parallel_for.
// Workers wait on a condition variable rather than spinning, so they never steal the cores from the
// data loader's thread or another process (OpenMP's default busy-wait does, on a 2-core machine).
#pragma once

#include <cstdint>
#include <functional>

namespace xg {

// Threads used by xgrad's kernels, the caller included. Default: XGRAD_NUM_THREADS, else
// OMP_NUM_THREADS, else the hardware's. Like torch.set_num_threads.
void set_num_threads(int n);
int get_num_threads();

// Denormal (subnormal) f32/f64 values read as zero and results that would be denormal stored as zero,
// on the calling thread and on xgrad's worker threads (x86's FTZ and DAZ), or (false) IEEE behaviour
// again. Like torch.set_flush_denormal, returns whether the CPU supports it (false: nothing changed).
// Arithmetic on denormals takes a slow path on x86 (a 512^3 matmul with denormal products: 66x in
// bench_ops); a network whose activations or gradients drift below 1.2e-38 (f32) slows down as much.
// Threads started later inherit their creator's mode (as POSIX threads do); others keep theirs.
bool set_flush_denormal(bool mode);

namespace detail {
void parallel_run(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& f);
bool in_parallel_region();
}  // namespace detail

// Calls f(lo, hi) over disjoint contiguous pieces of [begin, end), at most one per thread and none
// smaller than `grain` (except the last). Runs inline for small ranges, one thread, or when nested.
template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, F&& f) {
  if (end <= begin) return;
  if (end - begin <= grain || get_num_threads() <= 1 || detail::in_parallel_region()) {
    f(begin, end);
    return;
  }
  detail::parallel_run(begin, end, grain, std::function<void(int64_t, int64_t)>(std::ref(f)));
}

}  // namespace xg

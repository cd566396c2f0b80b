// What xgrad's oneDNN calls share (ops/blas.cpp, ops/fused/onednn_conv.cpp); only for builds with
// oneDNN (XGRAD_HAVE_ONEDNN).
#pragma once

#include <omp.h>

#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>

namespace xg::detail {

inline const dnnl::engine& onednn_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

inline dnnl::stream& onednn_stream() {  // one per thread: primitives run on the calling thread
  thread_local dnnl::stream stream(onednn_engine());
  return stream;
}

// Held while creating oneDNN primitives and their descriptors. oneDNN's primitive cache is shared by
// every thread and its own locking is invisible to ThreadSanitizer (the library is not instrumented):
// a primitive one worker had just created, compared by another under oneDNN's locks, was reported as
// a race. Creation happens once per shape and thread, so the lock costs nothing in a step.
inline std::mutex& onednn_create_mutex() {
  static std::mutex m;
  return m;
}

// Debian's oneDNN runs on OpenMP. Each call is made single-threaded by setting the calling thread's
// OpenMP thread count to 1 around it (and back, so a host program's own OpenMP setting is left as
// it was): the parallelism is xgrad's (ops/blas.hpp splits products over its workers), and no
// OpenMP team is ever started, so no OpenMP thread spins on a core xgrad needs.
struct OneOpenmpThread {
  int before = omp_get_max_threads();
  OneOpenmpThread() {
    if (before != 1) omp_set_num_threads(1);
  }
  ~OneOpenmpThread() {
    if (before != 1) omp_set_num_threads(before);
  }
  OneOpenmpThread(const OneOpenmpThread&) = delete;
  OneOpenmpThread& operator=(const OneOpenmpThread&) = delete;
};

}  // namespace xg::detail

// What xgrad's oneDNN calls share (ops/blas.cpp, ops/fused/onednn_conv.cpp); only for builds with
// oneDNN (XGRAD_HAVE_ONEDNN).
#pragma once

#include <omp.h>

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

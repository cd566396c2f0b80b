// configure_process: the malloc and OpenBLAS settings, applied only when asked for.
#include "autograd/process.hpp"

#include <cblas.h>
#include <malloc.h>

namespace xg {

void configure_process(const ProcessOptions& opts) {
  if (opts.tune_malloc) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  }
  if (opts.single_threaded_blas) openblas_set_num_threads(1);
}

}  // namespace xg

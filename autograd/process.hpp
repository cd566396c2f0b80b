// Process-wide settings xgrad's speed relies on. A library must not change its host process behind
// its back, so linking or using xgrad changes none of them: xgrad's own commands (the main command,
// cs231n, the benchmarks, the test suite) call configure_process() at start-up, and a program that
// embeds xgrad decides for itself.
#pragma once

namespace xg {

struct ProcessOptions {
  // glibc malloc keeps up to 256 MiB of freed heap top and serves blocks up to 32 MiB from the heap
  // (mallopt M_TRIM_THRESHOLD, M_MMAP_THRESHOLD), instead of handing memory back and faulting it in
  // again every training step. FullyConnectedNet training: about 50k -> 55k img/s.
  bool tune_malloc = true;
  // OpenBLAS runs single-threaded (openblas_set_num_threads(1)): xgrad splits GEMMs over its own
  // worker pool, which OpenBLAS's pool would otherwise fight for the cores. Without it, xgrad hands
  // each large GEMM to OpenBLAS whole, and the convolutions' per-image GEMMs contend.
  bool single_threaded_blas = true;
};
void configure_process(const ProcessOptions& opts = {});

}  // namespace xg

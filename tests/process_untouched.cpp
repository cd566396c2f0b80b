// A program that uses xgrad without calling configure_process keeps its own process settings:
// OpenBLAS's thread count and OpenMP's (oneDNN, xgrad's f32 GEMMs, runs on OpenMP) are what the
// program set, and xgrad's results are the same as under
// configure_process's settings. Exits non-zero, saying why, otherwise.
#include <cblas.h>
#include <omp.h>

#include <cstdio>

#include <xgrad.hpp>

int main() {
  using namespace xg;
  openblas_set_num_threads(2);  // the host's choices
  omp_set_num_threads(3);
  manual_seed(1);
  Tensor x = randn({8, 16, 12, 12}), w = randn({16, 16, 3, 3}), a = randn({256, 256}), b = randn({256, 256});
  x.requires_grad_();
  w.requires_grad_();
  auto run = [&] {
    Tensor y = conv2d(x, w, Tensor(), {.padding = 1});  // the Winograd path
    Tensor z = conv2d(x, w, Tensor(), {.stride = 2});   // the im2col path
    Tensor loss = sum(y * y) + sum(z * z) + sum(matmul(a, b));
    x.zero_grad();
    w.zero_grad();
    loss.backward();
    return std::vector<Tensor>{loss.detach(), x.grad(), w.grad()};
  };
  std::vector<Tensor> host = run();
  if (openblas_get_num_threads() != 2) {
    std::fprintf(stderr, "FAIL: xgrad changed OpenBLAS's thread count to %d\n", openblas_get_num_threads());
    return 1;
  }
  if (omp_get_max_threads() != 3) {
    std::fprintf(stderr, "FAIL: xgrad changed OpenMP's thread count to %d\n", omp_get_max_threads());
    return 1;
  }
  configure_process();
  std::vector<Tensor> tuned = run();
  for (size_t i = 0; i < host.size(); ++i)
    if (!allclose(host[i], tuned[i], 1e-4, 1e-3)) {
      std::fprintf(stderr, "FAIL: result %zu differs between the host's and xgrad's settings\n", i);
      return 1;
    }
  std::puts("process settings untouched; results agree");
  return 0;
}

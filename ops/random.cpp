// Ops that draw from the global generator: dropout.
#include "autograd/random.hpp"
#include "ops/kernels.hpp"

namespace xg {

Tensor dropout(const Tensor& x, double p, bool training) {
  check(x.defined(), "dropout: undefined tensor");
  check(p >= 0.0 && p <= 1.0, "dropout: probability must be in [0, 1], got {}", p);
  check(is_floating(x.dtype()), "dropout: needs a floating tensor, got {}", dtype_name(x.dtype()));
  if (!training || p == 0.0) return x;
  // Inverted dropout: kept units are scaled by 1/(1-p) so eval needs no rescaling.
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    std::bernoulli_distribution keep(1.0 - p);
    const T scale = p == 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
    T* m = mask.data<T>();
    for (int64_t i = 0; i < mask.numel(); ++i) m[i] = keep(generator()) ? scale : T(0);
  });
  return mul(x, mask);
}

}  // namespace xg

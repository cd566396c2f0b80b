// Ops that draw from the global generator: dropout.
#include <cmath>

#include "autograd/random.hpp"
#include "ops/kernels.hpp"

namespace xg {

Tensor dropout(const Tensor& x, double p, bool training) {
  if (trace::enabled())
    return trace::op("dropout", {x}, {{"p", p}, {"training", int64_t{training}}},
                     [&] { return dropout(x, p, training); });
  check(x.defined(), "dropout: undefined tensor");
  check(p >= 0.0 && p <= 1.0, "dropout: probability must be in [0, 1], got {}", p);
  check(is_floating(x.dtype()), "dropout: needs a floating tensor, got {}", dtype_name(x.dtype()));
  if (!training || p == 0.0) return x;
  // Inverted dropout: kept units are scaled by 1/(1-p) so eval needs no rescaling.
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    // A unit is kept when a uniform 32-bit draw falls below (1 - p) 2^32; each 64-bit draw serves two.
    const uint64_t keep = static_cast<uint64_t>(std::ldexp(1.0 - p, 32));
    const T scale = p == 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
    T* m = mask.data<T>();
    const int64_t n = mask.numel();
    for (int64_t i = 0; i < n; i += 2) {
      const uint64_t r = generator()();
      m[i] = (r & 0xffffffffu) < keep ? scale : T(0);
      if (i + 1 < n) m[i + 1] = (r >> 32) < keep ? scale : T(0);
    }
  });
  return mul(x, mask);
}

}  // namespace xg

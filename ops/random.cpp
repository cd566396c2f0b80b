// Ops that draw from the global generator: dropout.
#include <cmath>

#include "autograd/parallel.hpp"
#include "autograd/random.hpp"
#include "ops/kernels.hpp"

namespace xg {

namespace {
// SplitMix64's output function (Steele, Lea and Flood 2014): a bijective mix of a 64-bit state.
inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

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
  // One draw from the generator keys the call; unit pair j then takes the 64-bit SplitMix64 output
  // for counter j under that key (its low and high halves decide units 2j and 2j + 1), so the mask
  // is computed in parallel and does not depend on the number of threads. A serial draw per pair
  // from the generator had been 9% of FullyConnectedNet's training step, the other core idle.
  const uint64_t key = generator()();
  dispatch_floating(x.dtype(), [&]<class T>() {
    // A unit is kept when a uniform 32-bit draw falls below (1 - p) 2^32.
    const uint64_t keep = static_cast<uint64_t>(std::ldexp(1.0 - p, 32));
    const T scale = p == 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
    T* m = mask.data<T>();
    const int64_t n = mask.numel();
    auto draw = [key](int64_t j) { return splitmix64(key + static_cast<uint64_t>(j + 1) * 0x9e3779b97f4a7c15ull); };
    parallel_for(0, n / 2, int64_t{1} << 14, [=](int64_t lo, int64_t hi) {  // by value: the loop vectorises
      for (int64_t j = lo; j < hi; ++j) {
        const uint64_t r = draw(j);
        m[2 * j] = (r & 0xffffffffu) < keep ? scale : T(0);
        m[2 * j + 1] = (r >> 32) < keep ? scale : T(0);
      }
    });
    if (n % 2 == 1) m[n - 1] = (draw(n / 2) & 0xffffffffu) < keep ? scale : T(0);
  });
  return mul(x, mask);
}

}  // namespace xg

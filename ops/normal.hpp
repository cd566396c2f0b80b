// The standard normal's cdf Phi and pdf phi on raw buffers (exact gelu's forward and backward), shared
// by gelu (ops/activation.cpp) and the fused batch norm + gelu (ops/fused/batch_norm.cpp).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <type_traits>

namespace xg::detail {

// Vectorisable f32 erf and exp: float arithmetic and selects only, which GCC compiles to AVX-512 code,
// where std::erf and std::exp are scalar library calls (8 ns per element here). The polynomials are
// fitted by scripts/fit_erf.py, which also checks them in float arithmetic: erf within 2.0e-7
// relative for |x| <= 1 and 8.3e-8 absolute above; exp within 1e-7 relative.
constexpr float kErfInner[] = {1.128379107e+00f, -3.761241436e-01f, 1.128078923e-01f,
                               -2.672698908e-02f, 4.934519064e-03f,  -5.696713342e-04f};
constexpr float kErfOuter[] = {9.995930791e-01f,  3.266968997e-03f,  -1.225590799e-02f, 2.819584496e-02f,
                               -4.360219464e-02f, 4.632207006e-02f,  -3.216432780e-02f, 9.810791351e-03f,
                               7.483625785e-03f,  -1.079766080e-02f, 3.426099662e-03f,  1.851567649e-03f,
                               -1.130018034e-03f};
constexpr float kExp[] = {1.000000000e+00f, 1.000000000e+00f, 4.999999106e-01f, 1.666642129e-01f,
                          4.166835919e-02f, 8.374771103e-03f, 1.382942079e-03f};

template <size_t n>
inline float horner(const float (&c)[n], float t) {
  float r = c[n - 1];
  for (size_t i = n - 1; i-- > 0;) r = r * t + c[i];
  return r;
}

inline float erf_f32(float x) {
  const float a = std::min(std::fabs(x), 4.0f);  // NaN stays NaN
  const float inner = a * horner(kErfInner, a * a), outer = horner(kErfOuter, (a - 2.5f) * (1.0f / 1.5f));
  return std::copysign(a <= 1.0f ? inner : a < 4.0f ? outer : 1.0f, x);  // erf is 1 in float from 3.92
}

// exp(x) = 2^k exp(r), r = x - k ln2 (ln2 in two parts, so r is exact); x clamped to where 2^k is a
// normal float. NaN maps to exp(-87): callers multiply by x, which brings the NaN back.
inline float exp_f32(float x) {
  x = x > -87.0f ? (x < 88.0f ? x : 88.0f) : -87.0f;
  const float k = (x * 1.44269504f + 12582912.0f) - 12582912.0f;  // x / ln2 rounded to an integer
  const float r = (x - k * 0.693145752f) - k * 1.42860677e-6f;
  return horner(kExp, r) * std::bit_cast<float>((static_cast<int32_t>(k) + 127) << 23);
}

// Phi(x) = (1 + erf(x / sqrt 2)) / 2 and phi(x) = exp(-x^2 / 2) / sqrt(2 pi), per dtype: the
// vectorised forms in f32, the library's in f64 (where gradcheck needs full precision).
template <class T>
inline T normal_cdf(T x) {
  if constexpr (std::is_same_v<T, float>) return 0.5f + 0.5f * erf_f32(x * 0.707106781f);
  else return 0.5 + 0.5 * std::erf(x * (std::numbers::sqrt2 / 2));
}
template <class T>
inline T normal_pdf(T x) {
  if constexpr (std::is_same_v<T, float>) return 0.398942280f * exp_f32(-0.5f * x * x);
  else return std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi);
}

}  // namespace xg::detail

// Element types of xgrad tensors and the switch that turns a runtime dtype into a C++ type.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>

namespace xg {

enum class Dtype : uint8_t { f32, f64, i64 };

constexpr std::string_view dtype_name(Dtype d) {
  switch (d) {
    case Dtype::f32: return "f32";
    case Dtype::f64: return "f64";
    case Dtype::i64: return "i64";
  }
  return "?";
}

constexpr std::size_t dtype_size(Dtype d) { return d == Dtype::f32 ? 4 : 8; }
constexpr bool is_floating(Dtype d) { return d != Dtype::i64; }

template <class T>
constexpr Dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>) return Dtype::f32;
  else if constexpr (std::is_same_v<T, double>) return Dtype::f64;
  else {
    static_assert(std::is_same_v<T, int64_t>, "xgrad tensors hold float, double or int64_t");
    return Dtype::i64;
  }
}

// PyTorch's promotion for the three dtypes: i64 < f32 < f64.
constexpr Dtype promote(Dtype a, Dtype b) {
  if (a == Dtype::f64 || b == Dtype::f64) return Dtype::f64;
  if (a == Dtype::f32 || b == Dtype::f32) return Dtype::f32;
  return Dtype::i64;
}

// Calls f.template operator()<T>() with T the C++ type of `d`:
//   dispatch(x.dtype(), [&]<class T>() { ... x.data<T>() ... });
template <class F>
decltype(auto) dispatch(Dtype d, F&& f) {
  switch (d) {
    case Dtype::f64: return f.template operator()<double>();
    case Dtype::i64: return f.template operator()<int64_t>();
    default: return f.template operator()<float>();
  }
}

// Same, for kernels that only make sense on floating types.
template <class F>
decltype(auto) dispatch_floating(Dtype d, F&& f) {
  if (d == Dtype::f64) return f.template operator()<double>();
  return f.template operator()<float>();
}

}  // namespace xg

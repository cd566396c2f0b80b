// Short rows copied and zeroed inline, in fixed-size pieces that compile to vector moves, the last
// piece overlapping the one before: im2col's and the Winograd staging's rows are tens of values,
// where a libc call per row (and one more per zero fill at the borders) cost as much as the copying.
#pragma once

#include <cstdint>
#include <cstring>

namespace xg::detail {

// n bytes, a multiple of 4 (rows of float or double).
inline void copy_bytes(char* dst, const char* src, size_t n) {
  if (n >= 64) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64) std::memcpy(dst + i, src + i, 64);
    if (i < n) std::memcpy(dst + n - 64, src + n - 64, 64);
  } else if (n >= 32) {
    std::memcpy(dst, src, 32), std::memcpy(dst + n - 32, src + n - 32, 32);
  } else if (n >= 16) {
    std::memcpy(dst, src, 16), std::memcpy(dst + n - 16, src + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(dst, src, 8), std::memcpy(dst + n - 8, src + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(dst, src, 4);
  }
}

inline void zero_bytes(char* dst, size_t n) {
  static constexpr char zeros[64] = {};
  if (n < 64) return copy_bytes(dst, zeros, n);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) std::memcpy(dst + i, zeros, 64);
  if (i < n) std::memcpy(dst + n - 64, zeros, 64);
}

template <class T>
inline void copy_row(T* dst, const T* src, int64_t n) {
  copy_bytes(reinterpret_cast<char*>(dst), reinterpret_cast<const char*>(src), static_cast<size_t>(n) * sizeof(T));
}

template <class T>
inline void zero_row(T* dst, int64_t n) {
  zero_bytes(reinterpret_cast<char*>(dst), static_cast<size_t>(n) * sizeof(T));
}

}  // namespace xg::detail

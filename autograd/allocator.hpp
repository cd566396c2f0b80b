// The host allocator behind tensor storage: large blocks are cached for reuse (first-touch page
// faults are costly, and a training step allocates the same sizes every iteration).
#pragma once

#include <cstddef>
#include <cstdint>

namespace xg {

// Releases every cached block to the system (like torch.cuda.empty_cache, for host memory).
void empty_cache();

struct CacheStats {
  std::size_t cached_bytes = 0;  // free blocks held for reuse
  std::size_t hits = 0, misses = 0;
};
CacheStats cache_stats();

namespace detail {
void* alloc_bytes(std::size_t n);
void free_bytes(void* p, std::size_t n) noexcept;

// A standard allocator over alloc_bytes, for xtensor containers.
template <class T>
struct CachingAllocator {
  using value_type = T;
  CachingAllocator() = default;
  template <class U>
  CachingAllocator(const CachingAllocator<U>&) {}  // NOLINT: rebinding
  T* allocate(std::size_t n) { return static_cast<T*>(alloc_bytes(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { free_bytes(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const CachingAllocator<U>&) const { return true; }
};
}  // namespace detail

}  // namespace xg

// A size-class cache of large host blocks; small blocks go straight to malloc.
#include "autograd/allocator.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace xg {

namespace {

constexpr std::size_t large = std::size_t{1} << 20;       // cache blocks from 1 MiB up
constexpr std::size_t huge_page = std::size_t{2} << 20;   // transparent huge pages for big blocks
// The most free blocks held: a quarter of physical memory, at least 2 GiB. A training step at batch
// 1024 frees more than 2 GiB of activations (airbench: 60-250 MB each); with a smaller cache they went
// back to the system and every step had the kernel map and zero their pages again (20% of its time).
std::size_t cache_limit() {
  static const std::size_t limit = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    const std::size_t quarter = pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * page / 4 : 0;
    return std::max(std::size_t{2} << 30, quarter);
  }();
  return limit;
}

// Rounds a large request up to its size class: 64 KiB steps below 16 MiB, 2 MiB steps above.
std::size_t size_class(std::size_t n) {
  const std::size_t step = n < (std::size_t{16} << 20) ? (std::size_t{64} << 10) : huge_page;
  return (n + step - 1) / step * step;
}

// A request with no free block of its class takes the smallest free block of a larger class up to
// twice its size, which goes back to its own class when freed. With exact classes only, the cache
// held the largest count ever live of every size at once: airbench94_muon's step at batch 2000
// peaked at 3,109 MB of RSS (2,888 MB cached) against 2,662 MB lending (1.5x: 2,663; 4x: 2,657), VGG
// training at batch 128 at 225-226 MB against 212-213.
constexpr std::size_t lend_ratio = 2;

struct Cache {
  std::mutex mutex;
  std::map<std::size_t, std::vector<void*>> free_blocks;  // by size class, ascending: best fit first
  std::unordered_map<void*, std::size_t> lent;            // blocks serving a smaller class: their own
  CacheStats stats;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: storages may be freed during static teardown
  return *c;
}

void* system_alloc(std::size_t cls) {
  // aligned_alloc needs a size that is a multiple of the alignment (ASan enforces it).
  const std::size_t align = cls >= 2 * huge_page && cls % huge_page == 0 ? huge_page : 4096;
  void* p = std::aligned_alloc(align, cls);
  if (!p) throw std::bad_alloc();
  if (align == huge_page) madvise(p, cls, MADV_HUGEPAGE);  // fewer first-touch faults; advisory only
  return p;
}

}  // namespace

namespace detail {

void* alloc_bytes(std::size_t n) {
  if (n < large) {
    void* p = std::aligned_alloc(64, (n + 63) / 64 * 64 + (n == 0 ? 64 : 0));
    if (!p) throw std::bad_alloc();
    return p;
  }
  const std::size_t cls = size_class(n);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.lower_bound(cls);
    if (it != c.free_blocks.end() && it->first <= lend_ratio * cls) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= it->first;
      ++c.stats.hits;
      if (it->first != cls) c.lent.emplace(p, it->first);
      if (it->second.empty()) c.free_blocks.erase(it);
      return p;
    }
    ++c.stats.misses;
  }
  return system_alloc(cls);
}

void free_bytes(void* p, std::size_t n) noexcept {
  if (!p) return;
  if (n < large) {
    std::free(p);
    return;
  }
  std::size_t cls = size_class(n);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (auto l = c.lent.find(p); l != c.lent.end()) {
      cls = l->second;
      c.lent.erase(l);
    }
    if (c.stats.cached_bytes + cls <= cache_limit()) {
      c.free_blocks[cls].push_back(p);
      c.stats.cached_bytes += cls;
      return;
    }
  }
  std::free(p);
}

}  // namespace detail

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [cls, blocks] : c.free_blocks)
    for (void* p : blocks) std::free(p);
  c.free_blocks.clear();
  c.stats.cached_bytes = 0;
}

CacheStats cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

}  // namespace xg

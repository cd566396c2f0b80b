// Storage backed by xtensor's uninitialised contiguous container (over the caching allocator), and
// the shape helpers.
#include <xtensor/xstorage.hpp>

#include <fmt/ranges.h>

#include <limits>

#include "autograd/allocator.hpp"
#include "autograd/tensor.hpp"

namespace xg {

namespace {
template <class T>
class UvectorStorage final : public Storage {
 public:
  explicit UvectorStorage(int64_t n) : buf_(static_cast<size_t>(n)) {
    data_ = buf_.data();
    size_ = n;
  }

 private:
  xt::uvector<T, detail::CachingAllocator<T>> buf_;
};
}  // namespace

std::shared_ptr<Storage> Storage::allocate(Dtype d, int64_t n) {
  return dispatch(d, [&]<class T>() -> std::shared_ptr<Storage> { return std::make_shared<UvectorStorage<T>>(n); });
}

std::string to_string(const Shape& s) {
  return fmt::format("[{}]", fmt::join(s, ","));
}

int64_t checked_numel(const Shape& s, const char* op) {
  // Bounded well below size_t's range so that numel * sizeof(double) cannot overflow either.
  constexpr int64_t limit = std::numeric_limits<int64_t>::max() / 16;
  int64_t n = 1;
  for (int64_t d : s) {
    check(d >= 0, "{}: negative size in shape {}", op, s);
    if (d != 0 && n > limit / d) fail("{}: shape {} has more elements than can be addressed", op, s);
    n *= d;
  }
  return n;
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

int64_t wrap_dim(int64_t dim, int64_t rank, const char* op) {
  int64_t r = rank == 0 ? 1 : rank;  // a 0-d tensor accepts dim 0 and -1, as in PyTorch
  check(dim >= -r && dim < r, "{}: dim {} out of range for a tensor of rank {}", op, dim, rank);
  return dim < 0 ? dim + r : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    check(da == db || da == 1 || db == 1, "{}: shapes {} and {} cannot be broadcast together", op, a, b);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace xg

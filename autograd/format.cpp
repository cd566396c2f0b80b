// Readable printing of tensors, summarised past 1000 elements as PyTorch does.
#include "autograd/format.hpp"

#include "autograd/engine.hpp"

#include <cmath>

namespace xg {

namespace {
constexpr int64_t summarise_above = 1000, edge = 3;

void print_dim(std::string& out, const std::vector<double>& v, const Shape& s, const std::vector<int64_t>& st,
               size_t d, int64_t off, bool integral, bool summarise) {
  if (d == s.size()) {
    out += integral ? fmt::format("{}", static_cast<int64_t>(v[off])) : fmt::format("{:.4f}", v[off]);
    return;
  }
  out += "[";
  const int64_t n = s[d];
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && n > 2 * edge && i == edge) {
      out += "..., ";
      i = n - edge;
    }
    print_dim(out, v, s, st, d + 1, off + i * st[d], integral, summarise);
    if (i + 1 < n) out += d + 1 == s.size() ? ", " : ",\n" + std::string(d + 8, ' ');
  }
  out += "]";
}
}  // namespace

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  std::string out = "tensor(";
  std::vector<double> v = t.to_vector<double>();
  print_dim(out, v, t.shape(), contiguous_strides(t.shape()), 0, 0, t.dtype() == Dtype::i64,
            t.numel() > summarise_above);
  out += fmt::format(", shape={}, dtype={}", t.shape(), dtype_name(t.dtype()));
  if (t.requires_grad()) out += t.is_leaf() ? ", requires_grad" : fmt::format(", grad_fn={}", t.grad_fn()->name);
  return out + ")";
}

}  // namespace xg

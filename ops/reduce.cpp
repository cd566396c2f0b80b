// Reductions over any set of dims (sum, mean, var, max/min and their arg-forms) and sum_to.
#include <algorithm>
#include <cmath>

#include "ops/kernels.hpp"
#include "ops/lanes.hpp"

namespace xg {

using detail::Grads;

namespace {

struct ReducePlan {
  std::vector<bool> reduced;  // per input dim
  Shape kept;                 // keepdim shape (reduced dims are 1)
  Shape out;                  // final shape
  int64_t count = 1;          // elements folded into each output
};

ReducePlan plan(const Shape& in, const Dims& dims, bool keepdim, const char* op) {
  ReducePlan p;
  const int64_t r = static_cast<int64_t>(in.size());
  p.reduced.assign(in.size(), dims.empty());  // no dims: reduce everything
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, r, op);
    if (r == 0) continue;
    check(!p.reduced[w], "{}: dim {} appears more than once in {}", op, d, to_string(Shape(dims)));
    p.reduced[w] = true;
  }
  for (int64_t i = 0; i < r; ++i) {
    p.kept.push_back(p.reduced[i] ? 1 : in[i]);
    if (p.reduced[i]) p.count *= in[i];
    if (!p.reduced[i] || keepdim) p.out.push_back(p.reduced[i] ? 1 : in[i]);
  }
  return p;
}

// Sums x over the plan's dims into a tensor of shape p.out, accumulating in double (int64 for i64).
Tensor sum_kernel(const Tensor& x, const ReducePlan& p) {
  Tensor out = Tensor::empty(p.out, x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    using Acc = std::conditional_t<std::is_same_v<T, int64_t>, int64_t, double>;
    std::vector<Acc> acc(static_cast<size_t>(out.numel()), Acc(0));
    const T* px = x.data<T>();
    std::vector<int64_t> ost = detail::broadcast_strides(p.kept, x.shape());
    detail::broadcast_rows<1>(x.shape(), {ost}, [&](int64_t n, auto off, auto st, int64_t i0) {
      const T* row = px + i0;
      Acc* a = acc.data() + off[0];
      if (st[0] == 0) {
        *a += detail::lane_sum<Acc>(n, [&](int64_t i) { return static_cast<Acc>(row[i]); });
      } else {
        for (int64_t i = 0; i < n; ++i) a[i] += row[i];
      }
    });
    T* po = out.data<T>();
    for (size_t i = 0; i < acc.size(); ++i) po[i] = static_cast<T>(acc[i]);
  });
  return out;
}

// Sizes of x seen as [outer, D, inner] around dim d.
struct Split {
  int64_t outer = 1, dim = 1, inner = 1;
};
Split split_at(const Shape& s, int64_t d) {
  Split sp;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) (i < d ? sp.outer : i == d ? sp.dim : sp.inner) *= s[i];
  return sp;
}

Shape reduced_shape(const Shape& s, int64_t d, bool keepdim) {
  Shape out = s;
  if (s.empty()) return out;
  if (keepdim) out[d] = 1;
  else out.erase(out.begin() + d);
  return out;
}

// Index of the max (or min) along dim d of x, ties to the first, NaN wins (as PyTorch).
Tensor arg_extreme(const Tensor& x, int64_t dim, bool keepdim, bool is_max, const char* op) {
  check(x.defined(), "{}: undefined tensor", op);
  int64_t d = wrap_dim(dim, x.dim(), op);
  check(x.dim() == 0 || x.shape()[d] > 0, "{}: cannot reduce over dim {} of size 0 (shape {})", op, dim, x.shape());
  Split sp = split_at(x.shape(), x.dim() == 0 ? 0 : d);
  Tensor out = Tensor::empty(reduced_shape(x.shape(), d, keepdim), Dtype::i64);
  int64_t* po = out.data<int64_t>();
  dispatch(x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    for (int64_t o = 0; o < sp.outer; ++o)
      for (int64_t i = 0; i < sp.inner; ++i) {
        const T* base = px + o * sp.dim * sp.inner + i;
        int64_t best = 0;
        T bv = base[0];
        for (int64_t k = 1; k < sp.dim; ++k) {
          T v = base[k * sp.inner];
          bool nan_v = false, nan_b = false;
          if constexpr (!std::is_integral_v<T>) nan_v = std::isnan(v), nan_b = std::isnan(bv);
          if (nan_b) break;
          if (nan_v || (is_max ? v > bv : v < bv)) best = k, bv = v;
        }
        po[o * sp.inner + i] = best;
      }
  });
  return out;
}

// The values at the arg-extreme; the gradient flows back to those positions only.
Tensor extreme(const Tensor& x, int64_t dim, bool keepdim, bool is_max) {
  const char* op = is_max ? "max" : "min";
  Tensor idx = arg_extreme(x, dim, true, is_max, op);
  if (x.dim() == 0) return x.clone();
  int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor vals = gather(x, d, idx);  // differentiable: backward scatters into the winners
  return keepdim ? vals : squeeze(vals, d);
}

}  // namespace

Tensor sum(const Tensor& x, const Dims& dims, bool keepdim) {
  if (trace::enabled())
    return trace::op("sum", {x}, {{"dims", dims}, {"keepdim", int64_t{keepdim}}},
                     [&] { return sum(x, dims, keepdim); });
  check(x.defined(), "sum: undefined tensor");
  ReducePlan p = plan(x.shape(), dims, keepdim, "sum");
  return record("sum", sum_kernel(x, p), {x}, [kept = p.kept, shape = x.shape()](const GradArgs& g) {
    return Grads{expand(reshape(g.grad, kept), shape)};
  }, {});
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, const Dims& dims, bool keepdim) {
  if (trace::enabled())
    return trace::op("mean", {x}, {{"dims", dims}, {"keepdim", int64_t{keepdim}}},
                     [&] { return mean(x, dims, keepdim); });
  check(x.defined(), "mean: undefined tensor");
  check(is_floating(x.dtype()), "mean: needs a floating tensor, got {}", dtype_name(x.dtype()));
  ReducePlan p = plan(x.shape(), dims, keepdim, "mean");
  return div(sum(x, dims, keepdim), static_cast<double>(p.count));
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor var(const Tensor& x, const Dims& dims, bool unbiased, bool keepdim) {
  check(x.defined(), "var: undefined tensor");
  check(is_floating(x.dtype()), "var: needs a floating tensor, got {}", dtype_name(x.dtype()));
  ReducePlan p = plan(x.shape(), dims, keepdim, "var");
  Tensor d = sub(x, mean(x, dims, true));
  return div(sum(mul(d, d), dims, keepdim), static_cast<double>(p.count - (unbiased ? 1 : 0)));
}

Tensor max(const Tensor& x, int64_t dim, bool keepdim) { return extreme(x, dim, keepdim, true); }
Tensor min(const Tensor& x, int64_t dim, bool keepdim) { return extreme(x, dim, keepdim, false); }
Tensor max(const Tensor& x) { return max(reshape(x, {-1}), 0); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return arg_extreme(x, dim, keepdim, true, "argmax"); }
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { return arg_extreme(x, dim, keepdim, false, "argmin"); }

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  check(g.dim() >= static_cast<int64_t>(shape.size()), "sum_to: cannot reduce shape {} to {}", g.shape(), shape);
  Dims dims;
  int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  for (int64_t i = 0; i < g.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) dims.push_back(i);
  if (dims.empty()) return reshape(g, shape);  // only size-1 dims differ
  return reshape(sum(g, dims, true), shape);
}

}  // namespace xg

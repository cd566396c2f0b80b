// Binary elementwise ops with NumPy broadcasting, dtype promotion, comparisons and where.
#include <cmath>

#include "ops/kernels.hpp"

namespace xg {

using detail::Grads;

namespace {

struct Promoted {
  Tensor a, b;
  Shape shape;
};

// Checks, broadcasts and promotes two operands (the .to() conversions are themselves on the tape).
Promoted prepare(const Tensor& a, const Tensor& b, const char* op) {
  check(a.defined() && b.defined(), "{}: undefined tensor operand", op);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  checked_numel(shape, op);
  Dtype d = promote(a.dtype(), b.dtype());
  return {a.to(d), b.to(d), std::move(shape)};
}

template <class Op>
Tensor arith(const Promoted& p, Op op) {
  return dispatch(p.a.dtype(), [&]<class T>() {
    return detail::binary_kernel<T, T>(p.a, p.b, p.shape, p.a.dtype(), [&](T x, T y) { return static_cast<T>(op(x, y)); });
  });
}

template <class Op>
Tensor compare(const Tensor& a, const Tensor& b, const char* name, Op op) {
  Promoted p = prepare(a.detach(), b.detach(), name);
  return dispatch(p.a.dtype(), [&]<class T>() {
    return detail::binary_kernel<T, int64_t>(p.a, p.b, p.shape, Dtype::i64,
                                             [&](T x, T y) { return static_cast<int64_t>(op(x, y)); });
  });
}

// A 0-d tensor for a scalar operand: the tensor's dtype, or f32 when an i64 tensor meets a fraction.
Tensor scalar_like(const Tensor& t, double v) {
  Dtype d = t.dtype();
  if (d == Dtype::i64 && v != std::floor(v)) d = Dtype::f32;
  return scalar_tensor(v, d);
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  if (trace::enabled()) return trace::op("add", {a, b}, {}, [&] { return add(a, b); });
  Promoted p = prepare(a, b, "add");
  return record("add", arith(p, std::plus<>()), {p.a, p.b}, [sa = p.a.shape(), sb = p.b.shape()](const GradArgs& g) {
    return Grads{g.needs[0] ? sum_to(g.grad, sa) : Tensor(), g.needs[1] ? sum_to(g.grad, sb) : Tensor()};
  }, {});
}

Tensor sub(const Tensor& a, const Tensor& b) {
  if (trace::enabled()) return trace::op("sub", {a, b}, {}, [&] { return sub(a, b); });
  Promoted p = prepare(a, b, "sub");
  return record("sub", arith(p, std::minus<>()), {p.a, p.b}, [sa = p.a.shape(), sb = p.b.shape()](const GradArgs& g) {
    return Grads{g.needs[0] ? sum_to(g.grad, sa) : Tensor(), g.needs[1] ? sum_to(neg(g.grad), sb) : Tensor()};
  }, {});
}

Tensor mul(const Tensor& a, const Tensor& b) {
  if (trace::enabled()) return trace::op("mul", {a, b}, {}, [&] { return mul(a, b); });
  Promoted p = prepare(a, b, "mul");
  return record("mul", arith(p, std::multiplies<>()), {p.a, p.b}, [a = p.a, b = p.b](const GradArgs& g) {
    return Grads{g.needs[0] ? sum_to(mul(g.grad, b), a.shape()) : Tensor(),
                 g.needs[1] ? sum_to(mul(g.grad, a), b.shape()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  if (trace::enabled()) return trace::op("div", {a, b}, {}, [&] { return div(a, b); });
  Promoted p = prepare(a, b, "div");
  // Integer division follows PyTorch's true division: i64 / i64 gives f32.
  if (p.a.dtype() == Dtype::i64) return div(p.a.to(Dtype::f32), p.b.to(Dtype::f32));
  return record("div", arith(p, std::divides<>()), {p.a, p.b}, [a = p.a, b = p.b](const GradArgs& g) {
    return Grads{g.needs[0] ? sum_to(div(g.grad, b), a.shape()) : Tensor(),
                 g.needs[1] ? sum_to(neg(div(mul(g.grad, a), mul(b, b))), b.shape()) : Tensor()};
  });
}

namespace {
// maximum/minimum: the gradient goes to the winner; ties split it evenly (as PyTorch).
Tensor extremum(const Tensor& a, const Tensor& b, bool is_max) {
  const char* name = is_max ? "maximum" : "minimum";
  Promoted p = prepare(a, b, name);
  Tensor out = is_max ? arith(p, [](auto x, auto y) { return x > y || std::isnan(x) ? x : y; })
                      : arith(p, [](auto x, auto y) { return x < y || std::isnan(x) ? x : y; });
  return record(name, out, {p.a, p.b}, [a = p.a, b = p.b, is_max](const GradArgs& g) {
    Tensor wa;
    {
      NoGradGuard ng;  // the split weights are constants
      Tensor win = is_max ? gt(a, b) : lt(a, b);
      wa = add(win.to(g.grad.dtype()), mul(eq(a, b).to(g.grad.dtype()), scalar_tensor(0.5, g.grad.dtype())));
    }
    return Grads{g.needs[0] ? sum_to(mul(g.grad, wa), a.shape()) : Tensor(),
                 g.needs[1] ? sum_to(mul(g.grad, sub(scalar_tensor(1.0, wa.dtype()), wa)), b.shape()) : Tensor()};
  });
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(a, b, false); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check(cond.defined(), "where: undefined condition");
  Promoted p = prepare(a, b, "where");
  Shape shape = broadcast_shapes(cond.shape(), p.shape, "where");
  Tensor c = cond.detach().to(Dtype::i64);
  Tensor out = Tensor::empty(shape, p.a.dtype());
  dispatch(p.a.dtype(), [&]<class T>() {
    const int64_t* pc = c.data<int64_t>();
    const T* pa = p.a.data<T>();
    const T* pb = p.b.data<T>();
    T* po = out.data<T>();
    detail::broadcast_rows<3>(shape,
                              {detail::broadcast_strides(c.shape(), shape), detail::broadcast_strides(p.a.shape(), shape),
                               detail::broadcast_strides(p.b.shape(), shape)},
                              [&](int64_t n, auto off, auto st, int64_t o) {
                                for (int64_t i = 0; i < n; ++i)
                                  po[o + i] = pc[off[0] + i * st[0]] ? pa[off[1] + i * st[1]] : pb[off[2] + i * st[2]];
                              });
  });
  return record("where", out, {p.a, p.b}, [c, sa = p.a.shape(), sb = p.b.shape()](const GradArgs& g) {
    Tensor zero = scalar_tensor(0.0, g.grad.dtype());
    return Grads{g.needs[0] ? sum_to(where(c, g.grad, zero), sa) : Tensor(),
                 g.needs[1] ? sum_to(where(c, zero, g.grad), sb) : Tensor()};
  }, {.tensors = {c}});
}

Tensor where(const Tensor& cond, const Tensor& a, double b) { return where(cond, a, scalar_like(a, b)); }

Tensor eq(const Tensor& a, const Tensor& b) { return compare(a, b, "eq", std::equal_to<>()); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(a, b, "ne", std::not_equal_to<>()); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(a, b, "gt", std::greater<>()); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(a, b, "lt", std::less<>()); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(a, b, "ge", std::greater_equal<>()); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(a, b, "le", std::less_equal<>()); }
Tensor gt(const Tensor& a, double b) { return gt(a, scalar_like(a, b)); }
Tensor lt(const Tensor& a, double b) { return lt(a, scalar_like(a, b)); }
Tensor ge(const Tensor& a, double b) { return ge(a, scalar_like(a, b)); }
Tensor le(const Tensor& a, double b) { return le(a, scalar_like(a, b)); }
Tensor eq(const Tensor& a, double b) { return eq(a, scalar_like(a, b)); }

Tensor add(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor div(const Tensor& a, double b) { return div(a, scalar_like(a, b)); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(b, a), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(b, a), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(b, a), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(b, a), b); }

}  // namespace xg

// Shape ops: reshape and friends share storage; permute, slice, pad, cat and expand copy.
#include <algorithm>
#include <cstring>

#include "ops/kernels.hpp"

namespace xg {

using detail::Grads;

namespace {

Tensor view_as(const Tensor& x, const Shape& shape) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.impl().storage;
  impl->shape = shape;
  impl->numel = x.numel();
  impl->dtype = x.dtype();
  return Tensor(std::move(impl));
}

// Copies the strided region of x starting at `starts` with `steps` into a tensor of shape `shape`.
Tensor extract(const Tensor& x, const Dims& starts, const Dims& steps, const Shape& shape);
// The adjoint: a tensor of shape `big`, filled with `fill`, with g written into that region.
Tensor embed(const Tensor& g, const Shape& big, const Dims& starts, const Dims& steps, double fill);

Tensor extract(const Tensor& x, const Dims& starts, const Dims& steps, const Shape& shape) {
  Tensor out = Tensor::empty(shape, x.dtype());
  std::vector<int64_t> xs = contiguous_strides(x.shape());
  int64_t base = 0;
  std::vector<int64_t> st(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) base += starts[i] * xs[i], st[i] = xs[i] * steps[i];
  dispatch(x.dtype(), [&]<class T>() {
    const T* px = x.data<T>() + base;
    T* po = out.data<T>();
    detail::broadcast_rows<1>(shape, {st}, [&](int64_t n, auto off, auto s, int64_t o) {
      if (s[0] == 1) std::memcpy(po + o, px + off[0], n * sizeof(T));
      else for (int64_t i = 0; i < n; ++i) po[o + i] = px[off[0] + i * s[0]];
    });
  });
  return record("extract", out, {x}, [shape = x.shape(), starts, steps](const GradArgs& g) {
    return Grads{embed(g.grad, shape, starts, steps, 0.0)};
  }, {});
}

Tensor embed(const Tensor& g, const Shape& big, const Dims& starts, const Dims& steps, double fill) {
  Tensor out = full(big, fill, g.dtype());
  std::vector<int64_t> bs = contiguous_strides(big);
  int64_t base = 0;
  std::vector<int64_t> st(bs.size());
  for (size_t i = 0; i < bs.size(); ++i) base += starts[i] * bs[i], st[i] = bs[i] * steps[i];
  dispatch(g.dtype(), [&]<class T>() {
    const T* pg = g.data<T>();
    T* po = out.data<T>() + base;
    detail::broadcast_rows<1>(g.shape(), {st}, [&](int64_t n, auto off, auto s, int64_t o) {
      for (int64_t i = 0; i < n; ++i) po[off[0] + i * s[0]] = pg[o + i];
    });
  });
  return record("embed", out, {g}, [starts, steps, shape = g.shape()](const GradArgs& gg) {
    return Grads{extract(gg.grad, starts, steps, shape)};
  }, {});
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  if (trace::enabled()) return trace::op("reshape", {x}, {}, [&] { return reshape(x, shape); });
  check(x.defined(), "reshape: undefined tensor");
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      check(infer < 0, "reshape: only one dim can be -1, got {}", shape);
      infer = static_cast<int64_t>(i);
    } else {
      check(s[i] >= 0, "reshape: invalid size {} in {}", s[i], shape);
      check(!__builtin_mul_overflow(known, s[i], &known), "reshape: shape {} has more elements than can be addressed",
            shape);
    }
  }
  if (infer >= 0) {
    check(known != 0 && x.numel() % known == 0, "reshape: shape {} is invalid for input of size {}", shape, x.numel());
    s[infer] = x.numel() / known;
  }
  check(checked_numel(s, "reshape") == x.numel(), "reshape: shape {} is invalid for input of size {} (shape {})",
        shape, x.numel(), x.shape());
  if (s == x.shape()) return x;
  return record("reshape", view_as(x, s), {x}, [in = x.shape()](const GradArgs& g) {
    return Grads{reshape(g.grad, in)};
  }, {});
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (trace::enabled())
    return trace::op("flatten", {x}, {{"start_dim", start_dim}, {"end_dim", end_dim}},
                     [&] { return flatten(x, start_dim, end_dim); });
  if (x.dim() == 0) return reshape(x, {1});
  int64_t s = wrap_dim(start_dim, x.dim(), "flatten"), e = wrap_dim(end_dim, x.dim(), "flatten");
  check(s <= e, "flatten: start_dim {} comes after end_dim {}", start_dim, end_dim);
  Shape out(x.shape().begin(), x.shape().begin() + s);
  int64_t m = 1;
  for (int64_t i = s; i <= e; ++i) m *= x.shape()[i];
  out.push_back(m);
  out.insert(out.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, out);
}

Tensor permute(const Tensor& x, const Dims& dims) {
  if (trace::enabled()) return trace::op("permute", {x}, {{"dims", dims}}, [&] { return permute(x, dims); });
  check(x.defined(), "permute: undefined tensor");
  const int64_t r = x.dim();
  check(static_cast<int64_t>(dims.size()) == r, "permute: {} dims given for a tensor of rank {} (shape {})",
        dims.size(), r, x.shape());
  Dims d(r), inverse(r);
  std::vector<bool> seen(r, false);
  for (int64_t i = 0; i < r; ++i) {
    d[i] = wrap_dim(dims[i], r, "permute");
    check(!seen[d[i]], "permute: dim {} repeated in {}", dims[i], to_string(Shape(dims)));
    seen[d[i]] = true;
    inverse[d[i]] = i;
  }
  Shape out_shape(r);
  std::vector<int64_t> xs = contiguous_strides(x.shape()), st(r);
  bool identity = true;
  for (int64_t i = 0; i < r; ++i) out_shape[i] = x.shape()[d[i]], st[i] = xs[d[i]], identity = identity && d[i] == i;
  if (identity) return x;
  Tensor out = Tensor::empty(out_shape, x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    detail::broadcast_rows<1>(out_shape, {st}, [&](int64_t n, auto off, auto s, int64_t o) {
      for (int64_t i = 0; i < n; ++i) po[o + i] = px[off[0] + i * s[0]];
    });
  });
  return record("permute", out, {x}, [inverse](const GradArgs& g) { return Grads{permute(g.grad, inverse)}; }, {});
}

Tensor flip(const Tensor& x, const Dims& dims) {
  check(x.defined(), "flip: undefined tensor");
  const int64_t r = x.dim();
  std::vector<bool> flipped(std::max<int64_t>(r, 1), false);  // a 0-d tensor accepts dim 0, as in PyTorch
  for (int64_t dim : dims) {
    const int64_t d = wrap_dim(dim, r, "flip");
    check(!flipped[d], "flip: dim {} repeated in {}", dim, to_string(Shape(dims)));
    flipped[d] = true;
  }
  if (dims.empty() || r == 0) return x;
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const Shape& s = x.shape();
  const std::vector<int64_t> st = contiguous_strides(s);
  const int64_t inner = s[r - 1], rows = inner == 0 ? 0 : x.numel() / inner;
  dispatch(x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    std::vector<int64_t> idx(r, 0);  // the output row's index over the outer dims
    for (int64_t row = 0; row < rows; ++row) {
      int64_t src = 0;
      for (int64_t d = 0; d + 1 < r; ++d) src += (flipped[d] ? s[d] - 1 - idx[d] : idx[d]) * st[d];
      T* dst = po + row * inner;
      if (flipped[r - 1]) std::reverse_copy(px + src, px + src + inner, dst);
      else std::copy(px + src, px + src + inner, dst);
      for (int64_t d = r - 2; d >= 0 && ++idx[d] == s[d]; --d) idx[d] = 0;
    }
  });
  return record("flip", out, {x}, [dims](const GradArgs& g) { return Grads{flip(g.grad, dims)}; }, {});
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  if (trace::enabled())
    return trace::op("transpose", {x}, {{"dims", Dims{d0, d1}}}, [&] { return transpose(x, d0, d1); });
  Dims dims(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) dims[i] = i;
  std::swap(dims[wrap_dim(d0, x.dim(), "transpose")], dims[wrap_dim(d1, x.dim(), "transpose")]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  check(x.defined(), "slice: undefined tensor");
  check(x.dim() > 0, "slice: cannot slice a 0-d tensor");
  int64_t d = wrap_dim(dim, x.dim(), "slice");
  check(step > 0, "slice: step must be positive, got {}", step);
  const int64_t n = x.shape()[d];
  auto clampi = [n](int64_t v) { return v < 0 ? std::max<int64_t>(v + n, 0) : std::min(v, n); };
  start = clampi(start), end = clampi(end);
  int64_t len = end > start ? (end - start + step - 1) / step : 0;
  Shape shape = x.shape();
  shape[d] = len;
  Dims starts(x.dim(), 0), steps(x.dim(), 1);
  starts[d] = start, steps[d] = step;
  return extract(x, starts, steps, shape);
}

Tensor pad(const Tensor& x, const Dims& pads, double value) {
  check(x.defined(), "pad: undefined tensor");
  check(pads.size() % 2 == 0 && static_cast<int64_t>(pads.size()) / 2 <= x.dim(),
        "pad: {} pad values for a tensor of rank {}; give (left, right) pairs, last dim first", pads.size(), x.dim());
  Shape shape = x.shape();
  Dims starts(x.dim(), 0), steps(x.dim(), 1);
  for (size_t i = 0; i < pads.size() / 2; ++i) {
    int64_t d = x.dim() - 1 - static_cast<int64_t>(i);
    check(pads[2 * i] >= 0 && pads[2 * i + 1] >= 0, "pad: negative padding ({}, {}) is not supported", pads[2 * i],
          pads[2 * i + 1]);
    check(!__builtin_add_overflow(shape[d], pads[2 * i], &shape[d]) &&
              !__builtin_add_overflow(shape[d], pads[2 * i + 1], &shape[d]),
          "pad: padding ({}, {}) of dim {} (size {}) gives more elements than can be addressed", pads[2 * i],
          pads[2 * i + 1], d, x.shape()[d]);
    starts[d] = pads[2 * i];
  }
  checked_numel(shape, "pad");
  return embed(x, shape, starts, steps, value);
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  if (trace::enabled()) return trace::op("cat", tensors, {{"dim", dim}}, [&] { return cat(tensors, dim); });
  check(!tensors.empty(), "cat: expected a non-empty list of tensors");
  const Tensor& t0 = tensors[0];
  check(t0.defined() && t0.dim() > 0, "cat: zero-dimensional or undefined tensor cannot be concatenated");
  int64_t d = wrap_dim(dim, t0.dim(), "cat");
  Shape shape = t0.shape();
  Dtype dt = t0.dtype();
  shape[d] = 0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const Tensor& t = tensors[k];
    check(t.defined() && t.dim() == t0.dim(), "cat: tensor {} has rank {}, tensor 0 has rank {}", k,
          t.defined() ? t.dim() : 0, t0.dim());
    for (int64_t i = 0; i < t0.dim(); ++i)
      check(i == d || t.shape()[i] == t0.shape()[i],
            "cat: sizes must match except in dim {}: tensor 0 has shape {}, tensor {} has shape {}", d, t0.shape(), k,
            t.shape());
    shape[d] += t.shape()[d];
    dt = promote(dt, t.dtype());
  }
  Tensor out = Tensor::empty(shape, dt);
  int64_t outer = 1;
  for (int64_t i = 0; i < d; ++i) outer *= shape[i];
  const int64_t out_row = out.numel() / std::max<int64_t>(outer, 1);
  std::vector<Tensor> ins;
  int64_t col = 0;
  for (const Tensor& t : tensors) {
    Tensor tc = t.to(dt);
    ins.push_back(tc);
    const int64_t row = tc.numel() / std::max<int64_t>(outer, 1);
    dispatch(dt, [&]<class T>() {
      for (int64_t o = 0; o < outer && row > 0; ++o)
        std::memcpy(out.data<T>() + o * out_row + col, tc.data<T>() + o * row, row * sizeof(T));
    });
    col += row;
  }
  std::vector<int64_t> sizes;
  for (const Tensor& t : ins) sizes.push_back(t.shape()[d]);
  return record("cat", out, ins, [d, sizes](const GradArgs& g) {
    Grads gs;
    int64_t at = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      gs.push_back(g.needs[k] ? slice(g.grad, d, at, at + sizes[k]) : Tensor());
      at += sizes[k];
    }
    return gs;
  }, {});
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  check(!tensors.empty(), "stack: expected a non-empty list of tensors");
  int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t k = 0; k < tensors.size(); ++k) {
    check(tensors[k].shape() == tensors[0].shape(), "stack: tensor {} has shape {}, tensor 0 has shape {}", k,
          tensors[k].shape(), tensors[0].shape());
    parts.push_back(unsqueeze(tensors[k], d));
  }
  return cat(parts, d);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  if (trace::enabled()) return trace::op("reshape", {x}, {}, [&] { return unsqueeze(x, dim); });
  int64_t d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(s.begin() + d, 1);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  if (trace::enabled()) return trace::op("reshape", {x}, {}, [&] { return squeeze(x, dim); });
  if (x.dim() == 0) return x;
  int64_t d = wrap_dim(dim, x.dim(), "squeeze");
  if (x.shape()[d] != 1) return x;
  Shape s = x.shape();
  s.erase(s.begin() + d);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x) {
  if (trace::enabled()) return trace::op("reshape", {x}, {}, [&] { return squeeze(x); });
  Shape s;
  for (int64_t v : x.shape())
    if (v != 1) s.push_back(v);
  return reshape(x, s);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  check(x.defined(), "expand: undefined tensor");
  check(shape.size() >= x.shape().size(), "expand: the target shape {} has fewer dims than the input {}", shape,
        x.shape());
  Shape s = shape;
  size_t lead = s.size() - x.shape().size();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      check(i >= lead, "expand: -1 is not allowed in a new leading dim ({})", shape);
      s[i] = x.shape()[i - lead];
    }
    check(i < lead || x.shape()[i - lead] == s[i] || x.shape()[i - lead] == 1,
          "expand: shape {} cannot be expanded to {}", x.shape(), shape);
  }
  checked_numel(s, "expand");
  if (s == x.shape()) return x;
  Tensor out = Tensor::empty(s, x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    detail::broadcast_rows<1>(s, {detail::broadcast_strides(x.shape(), s)}, [&](int64_t n, auto off, auto st, int64_t o) {
      if (st[0] == 0) std::fill(po + o, po + o + n, px[off[0]]);
      else std::memcpy(po + o, px + off[0], n * sizeof(T));
    });
  });
  return record("expand", out, {x}, [in = x.shape()](const GradArgs& g) { return Grads{sum_to(g.grad, in)}; }, {});
}

}  // namespace xg

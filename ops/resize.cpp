// Adaptive pooling, interpolation and embedding lookup, composed of index_select, where, max, sum
// and matmul: the tape derives every gradient. Windows and sampling grids are integers worked out
// on the host once per call.
#include <cmath>
#include <optional>

#include "ops/ops.hpp"

namespace xg {

namespace {

// N, C, H, W name the dims of x [N, C, H, W].
void check_image(const Tensor& x, const char* op) {
  check(x.defined(), "{}: undefined input", op);
  check(is_floating(x.dtype()), "{}: input must be f32 or f64, got {}", op, dtype_name(x.dtype()));
  check(x.dim() == 4, "{}: input must be 4-D (N,C,H,W), got shape {}", op, x.shape());
}

// PyTorch's adaptive windows along one dim: output o covers [floor(o in / out), ceil((o + 1) in / out)).
// Returns the indices of every window padded to the widest one K with its first index ([out * K]),
// the mask of the real ones (i64 [out, K]) and K.
struct Windows {
  Tensor index, mask;
  int64_t K = 0;
};
Windows adaptive_windows(int64_t in, int64_t out) {
  auto start = [&](int64_t o) { return o * in / out; };
  auto end = [&](int64_t o) { return ((o + 1) * in + out - 1) / out; };
  Windows w;
  for (int64_t o = 0; o < out; ++o) w.K = std::max(w.K, end(o) - start(o));
  std::vector<int64_t> idx(out * w.K), mask(out * w.K);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < w.K; ++k) {
      const bool real = start(o) + k < end(o);
      idx[o * w.K + k] = real ? start(o) + k : start(o);
      mask[o * w.K + k] = real;
    }
  w.index = from_vector(idx, {out * w.K});
  w.mask = from_vector(mask, {out, w.K});
  return w;
}

// Reduces x [N, C, ..., L, ...] along dim d to `out` adaptive windows: the max, or the mean.
Tensor adaptive_1d(const Tensor& x, int64_t d, int64_t out, bool is_max) {
  const int64_t in = x.shape()[d];
  Windows w = adaptive_windows(in, out);
  Shape split = x.shape();  // ..., out, K, ...
  split[d] = w.K;
  split.insert(split.begin() + d, out);
  Tensor win = reshape(index_select(x, d, w.index), split);
  if (is_max) return max(win, d + 1);  // padding repeats a window's first index: the max is unchanged
  Shape mshape(split.size(), 1);
  mshape[d] = out, mshape[d + 1] = w.K;
  Tensor mask = reshape(w.mask, mshape);
  Tensor count = sum(reshape(w.mask.to(x.dtype()), mshape), {d + 1});
  return div(sum(where(mask, win, 0.0), {d + 1}), count);  // where, not * 0: an inf stays in its window
}

Tensor adaptive_pool(const Tensor& x, Pair2 size, bool is_max, const char* op) {
  check_image(x, op);
  check(size.h > 0 && size.w > 0, "{}: output size must be positive, got ({}, {})", op, size.h, size.w);
  check(x.shape()[2] > 0 && x.shape()[3] > 0, "{}: input shape {} has an empty spatial dim", op, x.shape());
  // Width first, then height: the first maximum found is the first in row-major window order.
  return adaptive_1d(adaptive_1d(x, 3, size.w, is_max), 2, size.h, is_max);
}

// The [out, in] matrix of 1-D linear interpolation, PyTorch's source coordinates.
Tensor linear_weights(int64_t in, int64_t out, double scale, bool align_corners, Dtype dtype) {
  std::vector<double> a(out * in, 0.0);
  for (int64_t o = 0; o < out; ++o) {
    double src = align_corners ? (out > 1 ? o * static_cast<double>(in - 1) / (out - 1) : 0.0)
                               : std::max((o + 0.5) * scale - 0.5, 0.0);
    const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1), i1 = std::min(i0 + 1, in - 1);
    const double l = std::min(src - i0, 1.0);
    a[o * in + i0] += 1 - l;
    a[o * in + i1] += l;
  }
  return from_vector(a, {out, in}).to(dtype);
}

}  // namespace

Tensor adaptive_avg_pool2d(const Tensor& x, Pair2 output_size) {
  if (trace::enabled())
    return trace::op("adaptive_avg_pool2d", {x}, {{"output_size", trace::hw(output_size)}},
                     [&] { return adaptive_avg_pool2d(x, output_size); });
  return adaptive_pool(x, output_size, false, "adaptive_avg_pool2d");
}

Tensor adaptive_max_pool2d(const Tensor& x, Pair2 output_size) {
  if (trace::enabled())
    return trace::op("adaptive_max_pool2d", {x}, {{"output_size", trace::hw(output_size)}},
                     [&] { return adaptive_max_pool2d(x, output_size); });
  return adaptive_pool(x, output_size, true, "adaptive_max_pool2d");
}

Tensor interpolate(const Tensor& x, const InterpolateOptions& o) {
  check_image(x, "interpolate");
  check(o.mode == "nearest" || o.mode == "bilinear", "interpolate: mode must be \"nearest\" or \"bilinear\", got \"{}\"",
        o.mode);
  check(o.size.has_value() != o.scale_factor.has_value(), "interpolate: give exactly one of size and scale_factor");
  check(o.mode == "bilinear" || !o.align_corners.has_value(),
        "interpolate: align_corners can only be set with mode \"bilinear\", got mode \"{}\"", o.mode);
  const int64_t H = x.shape()[2], W = x.shape()[3];
  int64_t OH, OW;
  double sh, sw;  // output -> input scale
  if (o.size) {
    OH = o.size->h, OW = o.size->w;
    check(OH > 0 && OW > 0, "interpolate: size must be positive, got ({}, {})", OH, OW);
    sh = static_cast<double>(H) / OH, sw = static_cast<double>(W) / OW;
  } else {
    const double fh = o.scale_factor->h, fw = o.scale_factor->w;
    check(fh > 0 && fw > 0 && std::isfinite(fh) && std::isfinite(fw),
          "interpolate: scale_factor must be positive, got ({}, {})", fh, fw);
    OH = static_cast<int64_t>(std::floor(H * fh)), OW = static_cast<int64_t>(std::floor(W * fw));
    check(OH > 0 && OW > 0, "interpolate: scale_factor ({}, {}) gives an empty output for input shape {}", fh, fw,
          x.shape());
    sh = 1 / fh, sw = 1 / fw;  // PyTorch uses the given factor, not the ratio of the rounded sizes
  }
  check(H > 0 && W > 0, "interpolate: input shape {} has an empty spatial dim", x.shape());
  if (o.mode == "nearest") {
    auto grid = [](int64_t in, int64_t out, double scale) {
      std::vector<int64_t> idx(out);
      for (int64_t i = 0; i < out; ++i) idx[i] = std::min(static_cast<int64_t>(std::floor(i * scale)), in - 1);
      return from_vector(idx, {out});
    };
    return index_select(index_select(x, 2, grid(H, OH, sh)), 3, grid(W, OW, sw));
  }
  const bool ac = o.align_corners.value_or(false);
  Tensor ah = linear_weights(H, OH, sh, ac, x.dtype()), aw = linear_weights(W, OW, sw, ac, x.dtype());
  return matmul(matmul(ah, x), transpose(aw, 0, 1));  // [OH, H] x [N, C, H, W] x [W, OW]
}

Tensor embedding(const Tensor& input, const Tensor& weight, std::optional<int64_t> padding_idx) {
  check(weight.defined() && weight.dim() == 2, "embedding: weight must be 2-D [num_embeddings, dim], got shape {}",
        weight.defined() ? weight.shape() : Shape{});
  check(input.defined() && input.dtype() == Dtype::i64, "embedding: input must be an i64 tensor");
  const int64_t n = weight.shape()[0];
  const int64_t* p = input.data<int64_t>();
  for (int64_t i = 0; i < input.numel(); ++i)
    check(p[i] >= 0 && p[i] < n, "embedding: index {} at position {} is out of range for {} embeddings", p[i], i, n);
  Shape shape = input.shape();
  shape.push_back(weight.shape()[1]);
  Tensor rows = reshape(index_select(weight, 0, reshape(input, {-1})), shape);
  if (!padding_idx) return rows;
  // The padding row's value passes, its gradient does not (PyTorch never updates it).
  Shape mshape = input.shape();
  mshape.push_back(1);
  return where(reshape(eq(input, static_cast<double>(*padding_idx)), mshape), rows.detach(), rows);
}

}  // namespace xg

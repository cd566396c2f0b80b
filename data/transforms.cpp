// The transforms on f32 [C, H, W] tensors (raw loops), and how each folds into a FusedPlan.
#include "data/transforms.hpp"

#include <algorithm>
#include <cmath>

namespace xg::data::transforms {

namespace {

// An f32 [C, H, W] input, or an error naming the transform.
void check_image(const Tensor& x, const char* op) {
  check(x.defined() && x.dtype() == Dtype::f32 && x.dim() == 3, "{}: input must be an f32 image [C, H, W], got {} {}",
        op, x.defined() ? dtype_name(x.dtype()) : "undefined", x.defined() ? x.shape() : Shape{});
}

// out[c, y, x] = x[c, top + y, left + x'] with x' = flip ? OW-1-x : x; positions outside the image read
// `fill`, or their reflection.
Tensor window(const Tensor& in, int64_t OH, int64_t OW, int64_t top, int64_t left, bool flip, bool reflect,
              float fill) {
  const int64_t C = in.shape()[0], H = in.shape()[1], W = in.shape()[2];
  Tensor out = Tensor::empty({C, OH, OW}, Dtype::f32);
  const float* src = in.data<float>();
  float* dst = out.data<float>();
  std::vector<int64_t> col(static_cast<size_t>(OW));
  for (int64_t x = 0; x < OW; ++x) col[x] = source_index(left + (flip ? OW - 1 - x : x), W, reflect);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < OH; ++y) {
      float* row = dst + (c * OH + y) * OW;
      const int64_t sy = source_index(top + y, H, reflect);
      if (sy < 0) {
        std::fill(row, row + OW, fill);
        continue;
      }
      const float* srow = src + (c * H + sy) * W;
      for (int64_t x = 0; x < OW; ++x) row[x] = col[x] < 0 ? fill : srow[col[x]];
    }
  return out;
}

}  // namespace

bool Transform::fuse(FusedPlan&) const { return false; }

Tensor Compose::operator()(const Tensor& x, Context& ctx) const {
  Tensor y = x;
  for (const AnyTransform& t : list_) y = t(y, ctx);
  return y;
}

bool Compose::fuse(FusedPlan& plan) const {
  for (const AnyTransform& t : list_)
    if (!t.fuse(plan)) return false;
  return true;
}

RandomCrop::RandomCrop(int64_t height, int64_t width, RandomCropOptions opts)
    : height_(height), width_(width < 0 ? height : width), opts_(std::move(opts)) {
  check(height_ > 0 && width_ > 0, "RandomCrop: size must be positive, got {}x{}", height_, width_);
  check(opts_.padding >= 0, "RandomCrop: padding must be >= 0, got {}", opts_.padding);
  check(opts_.padding_mode == "constant" || opts_.padding_mode == "reflect",
        "RandomCrop: padding_mode must be 'constant' or 'reflect', got '{}'", opts_.padding_mode);
}

Tensor RandomCrop::operator()(const Tensor& x, Context& ctx) const {
  check_image(x, "RandomCrop");
  const int64_t H = x.shape()[1], W = x.shape()[2], p = opts_.padding;
  const bool reflect = opts_.padding_mode == "reflect";
  check(!reflect || (p < H && p < W), "RandomCrop: reflect padding {} needs an image larger than {} pixels, got {}x{}",
        p, p, H, W);
  check(height_ <= H + 2 * p && width_ <= W + 2 * p, "RandomCrop: crop {}x{} is larger than the padded image {}x{}",
        height_, width_, H + 2 * p, W + 2 * p);
  const int64_t i = static_cast<int64_t>(below(ctx.rng, static_cast<uint64_t>(H + 2 * p - height_ + 1)));
  const int64_t j = static_cast<int64_t>(below(ctx.rng, static_cast<uint64_t>(W + 2 * p - width_ + 1)));
  return window(x, height_, width_, i - p, j - p, false, reflect, opts_.fill);
}

bool RandomCrop::fuse(FusedPlan& plan) const {
  const bool same_size = height_ == plan.chw[1] && width_ == plan.chw[2];
  const bool reflect = opts_.padding_mode == "reflect";
  if (plan.stage > 0 || !same_size || (!reflect && opts_.fill != 0.0f)) return false;
  if (reflect && (opts_.padding >= plan.chw[1] || opts_.padding >= plan.chw[2])) return false;  // fails unfused
  plan.stage = 1, plan.shift = true, plan.pad = opts_.padding, plan.reflect = reflect;
  return true;
}

RandomTranslate::RandomTranslate(int64_t max_shift) : max_shift_(max_shift) {
  check(max_shift >= 0, "RandomTranslate: max_shift must be >= 0, got {}", max_shift);
}

Tensor RandomTranslate::operator()(const Tensor& x, Context& ctx) const {
  check_image(x, "RandomTranslate");
  const int64_t H = x.shape()[1], W = x.shape()[2], p = max_shift_;
  check(p < H && p < W, "RandomTranslate: max_shift {} needs an image larger than {} pixels, got {}x{}", p, p, H, W);
  const int64_t dy = static_cast<int64_t>(below(ctx.rng, static_cast<uint64_t>(2 * p + 1))) - p;
  const int64_t dx = static_cast<int64_t>(below(ctx.rng, static_cast<uint64_t>(2 * p + 1))) - p;
  return window(x, H, W, dy, dx, false, true, 0.0f);
}

bool RandomTranslate::fuse(FusedPlan& plan) const {
  if (plan.stage > 0 || max_shift_ >= plan.chw[1] || max_shift_ >= plan.chw[2]) return false;
  plan.stage = 1, plan.shift = true, plan.pad = max_shift_, plan.reflect = true;
  return true;
}

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  check(p >= 0.0 && p <= 1.0, "RandomHorizontalFlip: p must be in [0, 1], got {}", p);
}

Tensor RandomHorizontalFlip::operator()(const Tensor& x, Context& ctx) const {
  check_image(x, "RandomHorizontalFlip");
  const bool flip = coin(ctx.rng, p_);
  return window(x, x.shape()[1], x.shape()[2], 0, 0, flip, false, 0.0f);
}

bool RandomHorizontalFlip::fuse(FusedPlan& plan) const {
  if (plan.stage > 1) return false;
  plan.stage = 2;
  plan.flip = FusedPlan::Flip::random;
  plan.flip_p = p_;
  return true;
}

bool AlternatingFlip::flips(uint64_t seed, int64_t epoch, int64_t index) {
  return ((mix(mix(seed) ^ static_cast<uint64_t>(index)) & 1) ^ static_cast<uint64_t>(epoch & 1)) != 0;
}

Tensor AlternatingFlip::operator()(const Tensor& x, Context& ctx) const {
  check_image(x, "AlternatingFlip");
  return window(x, x.shape()[1], x.shape()[2], 0, 0, flips(ctx.seed, ctx.epoch, ctx.index), false, 0.0f);
}

bool AlternatingFlip::fuse(FusedPlan& plan) const {
  if (plan.stage > 1) return false;
  plan.stage = 2;
  plan.flip = FusedPlan::Flip::alternating;
  return true;
}

Normalize::Normalize(std::vector<float> mean, std::vector<float> std) : norm_{std::move(mean), std::move(std)} {
  check(!norm_.mean.empty() && norm_.mean.size() == norm_.std.size(),
        "Normalize: needs one mean and one std per channel, got {} means and {} stds", norm_.mean.size(),
        norm_.std.size());
  for (size_t c = 0; c < norm_.mean.size(); ++c)
    check(std::isfinite(norm_.std[c]) && norm_.std[c] > 0.0f && std::isfinite(norm_.mean[c]),
          "Normalize: channel {} needs a finite mean and a positive std, got mean {} std {}", c, norm_.mean[c],
          norm_.std[c]);
}

Tensor Normalize::operator()(const Tensor& x, Context&) const {
  check_image(x, "Normalize");
  const int64_t C = x.shape()[0], HW = x.shape()[1] * x.shape()[2];
  check(C == static_cast<int64_t>(norm_.mean.size()), "Normalize: {} channel statistics for an image of shape {}",
        norm_.mean.size(), x.shape());
  Tensor out = Tensor::empty(x.shape(), Dtype::f32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t c = 0; c < C; ++c) {
    const float m = norm_.mean[c], s = norm_.std[c];
    for (int64_t p = 0; p < HW; ++p) dst[c * HW + p] = (src[c * HW + p] - m) / s;
  }
  return out;
}

bool Normalize::fuse(FusedPlan& plan) const {
  if (plan.stage > 2 || static_cast<int64_t>(norm_.mean.size()) != plan.chw[0]) return false;
  plan.stage = 3;
  plan.norm = norm_;
  return true;
}

Resize::Resize(int64_t size) : height_(size), width_(-1) {
  check(size > 0, "Resize: size must be positive, got {}", size);
}

Resize::Resize(int64_t height, int64_t width) : height_(height), width_(width) {
  check(height > 0 && width > 0, "Resize: size must be positive, got {}x{}", height, width);
}

Tensor Resize::operator()(const Tensor& x, Context&) const {
  check_image(x, "Resize");
  const int64_t C = x.shape()[0], H = x.shape()[1], W = x.shape()[2];
  check(H > 0 && W > 0, "Resize: input must have pixels, got shape {}", x.shape());
  int64_t OH = height_, OW = width_;
  if (width_ < 0) {  // the shorter side becomes height_ (torchvision truncates the longer one)
    if (H <= W) OW = std::max<int64_t>(1, height_ * W / H);
    else OH = std::max<int64_t>(1, height_ * H / W), OW = height_;
  }
  // Half-pixel centres: output i samples input (i + 0.5) * in/out - 0.5, clamped at 0.
  auto taps = [](int64_t in, int64_t out, std::vector<int64_t>& lo, std::vector<int64_t>& hi, std::vector<float>& w) {
    const double scale = static_cast<double>(in) / static_cast<double>(out);
    for (int64_t i = 0; i < out; ++i) {
      const double s = std::max(0.0, (static_cast<double>(i) + 0.5) * scale - 0.5);
      const int64_t l = std::min<int64_t>(static_cast<int64_t>(s), in - 1);
      lo.push_back(l), hi.push_back(std::min<int64_t>(l + 1, in - 1)), w.push_back(static_cast<float>(s - l));
    }
  };
  std::vector<int64_t> y0, y1, x0, x1;
  std::vector<float> wy, wx;
  taps(H, OH, y0, y1, wy);
  taps(W, OW, x0, x1, wx);
  Tensor out = Tensor::empty({C, OH, OW}, Dtype::f32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < OH; ++i) {
      const float* a = src + (c * H + y0[i]) * W;
      const float* b = src + (c * H + y1[i]) * W;
      float* row = dst + (c * OH + i) * OW;
      for (int64_t j = 0; j < OW; ++j) {
        const float top = a[x0[j]] + wx[j] * (a[x1[j]] - a[x0[j]]);
        const float bottom = b[x0[j]] + wx[j] * (b[x1[j]] - b[x0[j]]);
        row[j] = top + wy[i] * (bottom - top);
      }
    }
  return out;
}

namespace {
// torchvision's offset of a centred window of `crop` in `size`: round((size - crop) / 2) with Python's
// round-half-to-even; when the crop is larger, the image sits (crop - size) // 2 from the top.
int64_t offset(int64_t size, int64_t crop) {
  if (crop > size) return -((crop - size) / 2);
  const int64_t d = size - crop, half = d / 2;
  return d % 2 == 0 || half % 2 == 0 ? half : half + 1;
}
}  // namespace

CenterCrop::CenterCrop(int64_t height, int64_t width) : height_(height), width_(width < 0 ? height : width) {
  check(height_ > 0 && width_ > 0, "CenterCrop: size must be positive, got {}x{}", height_, width_);
}

Tensor CenterCrop::operator()(const Tensor& x, Context&) const {
  check_image(x, "CenterCrop");
  const int64_t H = x.shape()[1], W = x.shape()[2];
  return window(x, height_, width_, offset(H, height_), offset(W, width_), false, false, 0.0f);
}

}  // namespace xg::data::transforms

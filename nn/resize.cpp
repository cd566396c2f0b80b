// AdaptiveAvgPool2d, AdaptiveMaxPool2d, Upsample, Embedding: checks at construction, one op per forward.
#include "nn/resize.hpp"

#include <cmath>

namespace xg::nn {

namespace {
Pair2 checked_size(Pair2 s, const char* module) {
  check(s.h > 0 && s.w > 0, "{}: output_size must be positive, got ({}, {})", module, s.h, s.w);
  return s;
}
}  // namespace

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Pair2 size) : size_(checked_size(size, "AdaptiveAvgPool2d")) {}
Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, size_); }
std::string AdaptiveAvgPool2d::extra_repr() const { return fmt::format("output_size=[{}, {}]", size_.h, size_.w); }

AdaptiveMaxPool2d::AdaptiveMaxPool2d(Pair2 size) : size_(checked_size(size, "AdaptiveMaxPool2d")) {}
Tensor AdaptiveMaxPool2d::forward(const Tensor& x) { return adaptive_max_pool2d(x, size_); }
std::string AdaptiveMaxPool2d::extra_repr() const { return fmt::format("output_size=[{}, {}]", size_.h, size_.w); }

Upsample::Upsample(InterpolateOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  check(o.mode == "nearest" || o.mode == "bilinear", "Upsample: mode must be \"nearest\" or \"bilinear\", got \"{}\"",
        o.mode);
  check(o.size.has_value() != o.scale_factor.has_value(), "Upsample: give exactly one of size and scale_factor");
  check(o.mode == "bilinear" || !o.align_corners.has_value(),
        "Upsample: align_corners can only be set with mode \"bilinear\", got mode \"{}\"", o.mode);
  if (o.size) checked_size(*o.size, "Upsample");
  if (o.scale_factor)
    check(o.scale_factor->h > 0 && o.scale_factor->w > 0 && std::isfinite(o.scale_factor->h) &&
              std::isfinite(o.scale_factor->w),
          "Upsample: scale_factor must be positive, got ({}, {})", o.scale_factor->h, o.scale_factor->w);
}
Tensor Upsample::forward(const Tensor& x) { return interpolate(x, options_); }
std::string Upsample::extra_repr() const {
  const auto& o = options_;
  std::string s = o.size ? fmt::format("size=[{}, {}]", o.size->h, o.size->w)
                         : fmt::format("scale_factor=[{}, {}]", o.scale_factor->h, o.scale_factor->w);
  s += fmt::format(", mode={}", o.mode);
  if (o.align_corners) s += fmt::format(", align_corners={}", *o.align_corners);
  return s;
}

Embedding::Embedding(const EmbeddingOptions& o) : options_(o) {
  check(o.num_embeddings > 0 && o.embedding_dim > 0,
        "Embedding: num_embeddings and embedding_dim must be positive, got {} and {}", o.num_embeddings,
        o.embedding_dim);
  if (o.padding_idx) {
    const int64_t p = *o.padding_idx < 0 ? *o.padding_idx + o.num_embeddings : *o.padding_idx;
    check(p >= 0 && p < o.num_embeddings, "Embedding: padding_idx {} is out of range for {} embeddings", *o.padding_idx,
          o.num_embeddings);
    padding_idx_ = p;
  }
  Tensor w = randn({o.num_embeddings, o.embedding_dim});
  if (padding_idx_) {  // the padding row starts at 0
    std::vector<float> keep(o.num_embeddings, 1.0f);
    keep[*padding_idx_] = 0.0f;
    w = mul(w, from_vector(keep, {o.num_embeddings, 1}));
  }
  weight_ = register_parameter("weight", w);
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(indices, weight_, padding_idx_); }
std::string Embedding::extra_repr() const {
  return fmt::format("{}, {}{}", options_.num_embeddings, options_.embedding_dim,
                     padding_idx_ ? fmt::format(", padding_idx={}", *padding_idx_) : "");
}

}  // namespace xg::nn

// Modules over ops/resize.cpp: AdaptiveAvgPool2d, AdaptiveMaxPool2d, Upsample and Embedding.
#pragma once

#include <optional>

#include "nn/module.hpp"
#include "ops/ops.hpp"

namespace xg::nn {

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Pair2 output_size);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  Pair2 size_;
};

class AdaptiveMaxPool2d : public Module {
 public:
  explicit AdaptiveMaxPool2d(Pair2 output_size);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  Pair2 size_;
};

// interpolate with fixed options: nn::Upsample({.scale_factor = 2.0, .mode = "bilinear"}).
class Upsample : public Module {
 public:
  explicit Upsample(InterpolateOptions options);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  InterpolateOptions options_;
};

struct EmbeddingOptions {
  int64_t num_embeddings = 0;
  int64_t embedding_dim = 0;
  std::optional<int64_t> padding_idx{};  // negative counts from the end; that row starts at 0 and is never trained
};

// A lookup table: i64 indices [*] -> [*, embedding_dim]; weight [num_embeddings, embedding_dim] ~ N(0, 1).
class Embedding : public Module {
 public:
  explicit Embedding(const EmbeddingOptions& options);
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt)
      : Embedding(EmbeddingOptions{num_embeddings, embedding_dim, padding_idx}) {}
  Tensor forward(const Tensor& indices) override;
  std::string extra_repr() const override;
  const Tensor& weight() const { return weight_; }
  std::optional<int64_t> padding_idx() const { return padding_idx_; }  // wrapped to [0, num_embeddings)

 private:
  EmbeddingOptions options_;
  std::optional<int64_t> padding_idx_;
  Tensor weight_;
};

}  // namespace xg::nn

// xg::data::transforms: per-example transforms composable like torchvision's Compose (random crop,
// flips, reflect-padded translation, normalise, resize, center crop), and how a pipeline folds into
// the DataLoader's batched uint8 path.
#pragma once

#include <concepts>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/pixels.hpp"

namespace xg::data::transforms {

// What a random transform may draw from: the loader's generator for the batch (seeded by seed, epoch
// and batch; examples draw in batch order, transforms in pipeline order), and the example's identity.
struct Context {
  std::mt19937_64& rng;
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t index = 0;  // the example's index in the loader's dataset
};

// How a pipeline runs on same-sized uint8 images in one pass (transform_image): at most one shift
// (crop with padding to the same size, or a reflect-padded translation), then at most one flip, then
// at most one normalisation, in that order. Transforms fold themselves in with fuse().
struct FusedPlan {
  Shape chw;             // the images' [C, H, W]
  int stage = 0;         // 0: a shift may come; 1: a flip; 2: a normalisation; 3: nothing more
  bool shift = false;    // draw dy, dx in [-pad, pad]
  int64_t pad = 0;
  bool reflect = false;
  enum class Flip { none, random, alternating } flip = Flip::none;
  double flip_p = 0.5;
  Normalization norm;
};

class Transform {
 public:
  virtual ~Transform() = default;
  // x: one example's data (images: f32 [C, H, W]); returns a new tensor, never changes x.
  virtual Tensor operator()(const Tensor& x, Context& ctx) const = 0;
  // Adds this transform to `plan` and returns true when the batched path can do it exactly.
  virtual bool fuse(FusedPlan& plan) const;
};

// A transform held by value: what Compose's list and DataLoaderOptions::transform hold. Empty: the identity.
class AnyTransform {
 public:
  AnyTransform() = default;
  template <class T>
    requires std::derived_from<T, Transform>
  AnyTransform(T t) : ptr_(std::make_shared<const T>(std::move(t))) {}  // NOLINT: implicit like a value
  explicit AnyTransform(std::shared_ptr<const Transform> p) : ptr_(std::move(p)) {}
  explicit operator bool() const { return ptr_ != nullptr; }
  Tensor operator()(const Tensor& x, Context& ctx) const { return ptr_ ? (*ptr_)(x, ctx) : x; }
  bool fuse(FusedPlan& plan) const { return ptr_ ? ptr_->fuse(plan) : true; }

 private:
  std::shared_ptr<const Transform> ptr_;
};

// Applies its transforms in order.
class Compose : public Transform {
 public:
  explicit Compose(std::vector<AnyTransform> list) : list_(std::move(list)) {}
  Tensor operator()(const Tensor& x, Context& ctx) const override;
  bool fuse(FusedPlan& plan) const override;

 private:
  std::vector<AnyTransform> list_;
};

struct RandomCropOptions {
  int64_t padding = 0;                       // on every side, before cropping
  std::string padding_mode = "constant";     // or "reflect" (padding < the image's height and width)
  float fill = 0.0f;                         // the constant padding's value
};

// torchvision's RandomCrop(size, padding, fill, padding_mode): pad, then cut a height x width window at
// a position drawn uniformly (row first, then column).
class RandomCrop : public Transform {
 public:
  explicit RandomCrop(int64_t height, int64_t width = -1, RandomCropOptions opts = {});  // width -1: square
  RandomCrop(int64_t size, RandomCropOptions opts) : RandomCrop(size, -1, std::move(opts)) {}
  Tensor operator()(const Tensor& x, Context& ctx) const override;
  bool fuse(FusedPlan& plan) const override;

 private:
  int64_t height_, width_;
  RandomCropOptions opts_;
};

// A random shift by up to max_shift pixels each way, the uncovered border filled by reflection: a
// same-size RandomCrop with reflect padding (the "translate" of fast CIFAR-10 training recipes).
class RandomTranslate : public Transform {
 public:
  explicit RandomTranslate(int64_t max_shift);
  Tensor operator()(const Tensor& x, Context& ctx) const override;
  bool fuse(FusedPlan& plan) const override;

 private:
  int64_t max_shift_;
};

// Mirrors the last dimension with probability p (one draw per example, also when p is 0 or 1).
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);
  Tensor operator()(const Tensor& x, Context& ctx) const override;
  bool fuse(FusedPlan& plan) const override;

 private:
  double p_;
};

// Flips half the examples (chosen by seed and index) in even epochs and the other half in odd ones,
// so each example is seen both ways every two epochs (Keller Jordan's alternating flip). No draws.
class AlternatingFlip : public Transform {
 public:
  Tensor operator()(const Tensor& x, Context& ctx) const override;
  bool fuse(FusedPlan& plan) const override;
  static bool flips(uint64_t seed, int64_t epoch, int64_t index);
};

// (x - mean[c]) / std[c] per channel of [C, H, W] (torchvision's Normalize).
class Normalize : public Transform {
 public:
  Normalize(std::vector<float> mean, std::vector<float> std);
  explicit Normalize(const Normalization& n) : Normalize(n.mean, n.std) {}
  Tensor operator()(const Tensor& x, Context& ctx) const override;
  bool fuse(FusedPlan& plan) const override;

 private:
  Normalization norm_;
};

// Bilinear resize of [C, H, W] (torchvision's Resize without antialiasing, half-pixel centres). One
// size: the shorter side becomes `size`, keeping the aspect ratio; two: exactly height x width.
class Resize : public Transform {
 public:
  explicit Resize(int64_t size);
  Resize(int64_t height, int64_t width);
  Tensor operator()(const Tensor& x, Context& ctx) const override;

 private:
  int64_t height_, width_;  // width_ -1: shorter side
};

// The central height x width window (torchvision's CenterCrop; zero padding where it is larger).
class CenterCrop : public Transform {
 public:
  explicit CenterCrop(int64_t height, int64_t width = -1);
  Tensor operator()(const Tensor& x, Context& ctx) const override;

 private:
  int64_t height_, width_;
};

// splitmix64's finaliser: decorrelates seeds that differ in a few bits.
constexpr uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// The generator of one stream of one epoch under one seed (the loader's batches and shuffles, the
// DistributedSampler's shuffles): the same draws on every platform.
inline std::mt19937_64 stream_rng(uint64_t seed, int64_t epoch, uint64_t stream) {
  return std::mt19937_64(mix(mix(mix(seed) ^ static_cast<uint64_t>(epoch)) ^ stream));
}
// The stream of an epoch's shuffle (batch b of the DataLoader draws from stream b).
constexpr uint64_t kShuffleStream = ~0ull;
// A draw in [0, n), as every random transform draws (plain modulo: the same on every platform).
inline uint64_t below(std::mt19937_64& rng, uint64_t n) { return rng() % n; }
// A Bernoulli(p) draw from one 64-bit value: u >= 1 - p with u uniform on [0, 1) in steps of 2^-53.
inline bool coin(std::mt19937_64& rng, double p) { return static_cast<double>(rng() >> 11) * 0x1.0p-53 >= 1.0 - p; }
// Fisher-Yates over `order` with draws from rng (below), the same permutation on every platform.
inline void shuffle(std::vector<int64_t>& order, std::mt19937_64& rng) {
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[below(rng, i)]);
}

}  // namespace xg::data::transforms

// Per-image transforms on raw buffers: crop with zero padding, horizontal flip, per-channel normalisation.
#pragma once

#include <array>
#include <cstdint>

#include "data/subset.hpp"

namespace xg::data {

// Per-channel statistics in [0, 1] pixel units (torchvision's Normalize convention): a pixel byte v of
// channel c becomes (v / 255 - mean[c]) / std[c]. The default is the identity on [0, 1].
struct Normalization {
  std::array<float, kC> mean{0.0f, 0.0f, 0.0f};
  std::array<float, kC> std{1.0f, 1.0f, 1.0f};
};

// Mean and (population) standard deviation of each channel over every pixel of `data`; computed on
// the training split and handed to the loaders of every split. Exact integer sums: the result does not
// depend on the order of the images.
Normalization compute_mean_std(const Subset& data);

// The normalised float of every byte value, per channel: the inner loop is one table lookup.
class PixelTable {
 public:
  explicit PixelTable(const Normalization& norm = {});
  const float* channel(int64_t c) const { return table_[static_cast<size_t>(c)].data(); }

 private:
  std::array<std::array<float, 256>, kC> table_;
};

// Where one output image reads from. With padding p, torchvision's RandomCrop pads with zeros and
// cuts a 32x32 window at (i, j) in [0, 2p]; here dy = i - p and dx = j - p, each in [-p, p]. The flip
// mirrors the cropped window (RandomCrop then RandomHorizontalFlip).
struct CropFlip {
  int64_t dy = 0;
  int64_t dx = 0;
  bool flip = false;
};

// dst[c, y, x] = table(c, src[c, y + dy, x' + dx]) with x' = flip ? W-1-x : x, and table(c, 0) (a
// black padding pixel, normalised) where the source position falls outside the image.
// src: 3072 bytes (C planes of H x W); dst: 3072 floats.
void transform_image(const uint8_t* src, float* dst, const CropFlip& t, const PixelTable& table);

}  // namespace xg::data

// Per-image kernels on raw uint8 -> float buffers (the DataLoader's batched path for in-memory images):
// crop with zero or reflect padding, horizontal flip and per-channel normalisation in one pass; the
// channel statistics.
#pragma once

#include <cstdint>
#include <vector>

#include "data/subset.hpp"

namespace xg::data {

// Per-channel statistics in [0, 1] pixel units (torchvision's Normalize convention): a pixel byte v of
// channel c becomes (v / 255 - mean[c]) / std[c]. Empty (the default) is the identity on [0, 1].
struct Normalization {
  std::vector<float> mean;
  std::vector<float> std;
};

// Mean and (population) standard deviation of each channel over every pixel of `data`; computed on
// the training split and handed to the loaders of every split. Exact integer sums: the result does not
// depend on the order of the images.
Normalization compute_mean_std(const ImageDataset& data);

// The normalised float of every byte value, per channel: the inner loop is one table lookup.
class PixelTable {
 public:
  // norm has `channels` entries, or none (the identity).
  explicit PixelTable(const Normalization& norm = {}, int64_t channels = kC);
  const float* channel(int64_t c) const { return table_.data() + c * 256; }
  int64_t channels() const { return static_cast<int64_t>(table_.size()) / 256; }

 private:
  std::vector<float> table_;
};

// Where one output image reads from. With padding p, torchvision's RandomCrop pads and cuts an H x W
// window at (i, j) in [0, 2p]; here dy = i - p and dx = j - p, each in [-p, p]. The flip mirrors the
// cropped window (RandomCrop then RandomHorizontalFlip). Outside the image a position reads black
// (zero padding) or, with reflect, its mirror across the edge (PyTorch's "reflect": the edge pixel
// is not repeated).
struct CropFlip {
  int64_t dy = 0;
  int64_t dx = 0;
  bool flip = false;
  bool reflect = false;
};

// dst[c, y, x] = table(c, src[c, y + dy, x' + dx]) with x' = flip ? W-1-x : x, for images of shape
// chw = [C, H, W] (src: C*H*W bytes, dst: C*H*W floats). With reflect, |dy| < H and |dx| < W.
void transform_image(const uint8_t* src, float* dst, const Shape& chw, const CropFlip& t, const PixelTable& table);
// CIFAR-10's geometry, [3, 32, 32].
inline void transform_image(const uint8_t* src, float* dst, const CropFlip& t, const PixelTable& table) {
  transform_image(src, dst, Shape{kC, kH, kW}, t, table);
}

// The source index of position p in [-n, 2n) of a line of n, or -1 (padding) when outside without reflect.
inline int64_t source_index(int64_t p, int64_t n, bool reflect) {
  if (p >= 0 && p < n) return p;
  if (!reflect) return -1;
  return p < 0 ? -p : 2 * (n - 1) - p;
}

}  // namespace xg::data

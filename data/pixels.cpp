// Crop, flip and normalisation kernels on raw uint8 -> float buffers, and the channel statistics.
#include "data/pixels.hpp"

#include <algorithm>
#include <cmath>

namespace xg::data {

Normalization compute_mean_std(const ImageDataset& data) {
  check(data.size() > 0, "compute_mean_std: empty dataset");
  const Shape s = data.image_shape();
  const int64_t C = s[0], HW = s[1] * s[2];
  // Sums of v and v^2 over at most 2^31 pixels of 255^2 stay far below 2^64: exact.
  std::vector<uint64_t> sum(static_cast<size_t>(C)), sum_sq(static_cast<size_t>(C));
  for (int64_t i = 0; i < data.size(); ++i) {
    const uint8_t* img = data.image(i);
    for (int64_t c = 0; c < C; ++c) {
      uint64_t s1 = 0, s2 = 0;
      const uint8_t* plane = img + c * HW;
      for (int64_t p = 0; p < HW; ++p) {
        const uint64_t v = plane[p];
        s1 += v;
        s2 += v * v;
      }
      sum[c] += s1;
      sum_sq[c] += s2;
    }
  }
  Normalization norm;
  const double n = static_cast<double>(data.size()) * static_cast<double>(HW);
  for (int64_t c = 0; c < C; ++c) {
    const double mean = static_cast<double>(sum[c]) / n;
    const double var = std::max(0.0, static_cast<double>(sum_sq[c]) / n - mean * mean);
    norm.mean.push_back(static_cast<float>(mean / 255.0));
    norm.std.push_back(static_cast<float>(std::sqrt(var) / 255.0));
  }
  return norm;
}

PixelTable::PixelTable(const Normalization& norm, int64_t channels) {
  const bool identity = norm.mean.empty() && norm.std.empty();
  check(identity || (static_cast<int64_t>(norm.mean.size()) == channels &&
                     static_cast<int64_t>(norm.std.size()) == channels),
        "Normalization: {} means and {} stds for images of {} channels", norm.mean.size(), norm.std.size(), channels);
  table_.resize(static_cast<size_t>(channels * 256));
  for (int64_t c = 0; c < channels; ++c) {
    const float mean = identity ? 0.0f : norm.mean[c], std = identity ? 1.0f : norm.std[c];
    check(std::isfinite(std) && std > 0.0f && std::isfinite(mean),
          "Normalization: channel {} needs a finite mean and a positive std, got mean {} std {}", c, mean, std);
    for (int v = 0; v < 256; ++v) table_[c * 256 + v] = (static_cast<float>(v) / 255.0f - mean) / std;
  }
}

void transform_image(const uint8_t* src, float* dst, const Shape& chw, const CropFlip& t, const PixelTable& table) {
  const int64_t C = chw[0], H = chw[1], W = chw[2];
  if (t.reflect) {
    // Reflection: a column table built once per image, then one gather per pixel.
    check(t.dy > -H && t.dy < H && t.dx > -W && t.dx < W, "transform_image: reflect shift ({}, {}) must stay within "
          "an image of {}x{}", t.dy, t.dx, H, W);
    int64_t cols[1024];
    std::vector<int64_t> big;
    int64_t* col = W <= 1024 ? cols : (big.resize(static_cast<size_t>(W)), big.data());
    for (int64_t x = 0; x < W; ++x) col[x] = source_index((t.flip ? W - 1 - x : x) + t.dx, W, true);
    for (int64_t c = 0; c < C; ++c) {
      const float* lut = table.channel(c);
      for (int64_t y = 0; y < H; ++y) {
        float* row = dst + (c * H + y) * W;
        const uint8_t* srow = src + (c * H + source_index(y + t.dy, H, true)) * W;
        for (int64_t x = 0; x < W; ++x) row[x] = lut[srow[col[x]]];
      }
    }
    return;
  }
  // Output columns [x0, x1) read a source pixel; the others are padding. Unflipped, x reads x + dx;
  // flipped, x reads W-1-x+dx.
  const int64_t x0 = std::clamp<int64_t>(t.flip ? t.dx : -t.dx, 0, W);
  const int64_t x1 = std::clamp<int64_t>(t.flip ? W + t.dx : W - t.dx, 0, W);
  for (int64_t c = 0; c < C; ++c) {
    const float* lut = table.channel(c);
    const float pad = lut[0];
    for (int64_t y = 0; y < H; ++y) {
      float* row = dst + (c * H + y) * W;
      const int64_t sy = y + t.dy;
      if (sy < 0 || sy >= H || x0 >= x1) {
        std::fill(row, row + W, pad);
        continue;
      }
      const uint8_t* srow = src + (c * H + sy) * W;
      std::fill(row, row + x0, pad);
      if (t.flip) {
        const int64_t mirror = W - 1 + t.dx;
        for (int64_t x = x0; x < x1; ++x) row[x] = lut[srow[mirror - x]];
      } else {
        for (int64_t x = x0; x < x1; ++x) row[x] = lut[srow[x + t.dx]];
      }
      std::fill(row + x1, row + W, pad);
    }
  }
}

}  // namespace xg::data

// Crop, flip and normalisation kernels on raw uint8 -> float buffers, and the channel statistics.
#include "data/transforms.hpp"

#include <algorithm>
#include <cmath>

namespace xg::data {

Normalization compute_mean_std(const Subset& data) {
  check(data.size() > 0, "compute_mean_std: empty dataset");
  // Sums of v and v^2 over at most 2^31 pixels of 255^2 stay far below 2^64: exact.
  std::array<uint64_t, kC> sum{}, sum_sq{};
  for (int64_t i = 0; i < data.size(); ++i) {
    const uint8_t* img = data.image(i);
    for (int64_t c = 0; c < kC; ++c) {
      uint64_t s = 0, s2 = 0;
      const uint8_t* plane = img + c * kH * kW;
      for (int64_t p = 0; p < kH * kW; ++p) {
        const uint64_t v = plane[p];
        s += v;
        s2 += v * v;
      }
      sum[c] += s;
      sum_sq[c] += s2;
    }
  }
  Normalization norm;
  const double n = static_cast<double>(data.size()) * kH * kW;
  for (int64_t c = 0; c < kC; ++c) {
    const double mean = static_cast<double>(sum[c]) / n;
    const double var = std::max(0.0, static_cast<double>(sum_sq[c]) / n - mean * mean);
    norm.mean[c] = static_cast<float>(mean / 255.0);
    norm.std[c] = static_cast<float>(std::sqrt(var) / 255.0);
  }
  return norm;
}

PixelTable::PixelTable(const Normalization& norm) {
  for (int64_t c = 0; c < kC; ++c) {
    check(std::isfinite(norm.std[c]) && norm.std[c] > 0.0f && std::isfinite(norm.mean[c]),
          "Normalization: channel {} needs a finite mean and a positive std, got mean {} std {}", c, norm.mean[c],
          norm.std[c]);
    for (int v = 0; v < 256; ++v) table_[c][v] = (static_cast<float>(v) / 255.0f - norm.mean[c]) / norm.std[c];
  }
}

void transform_image(const uint8_t* src, float* dst, const CropFlip& t, const PixelTable& table) {
  // Output columns [x0, x1) read a source pixel; the others are padding. Unflipped, x reads x + dx;
  // flipped, x reads W-1-x+dx.
  const int64_t x0 = t.flip ? std::max<int64_t>(0, t.dx) : std::max<int64_t>(0, -t.dx);
  const int64_t x1 = t.flip ? std::min<int64_t>(kW, kW + t.dx) : std::min<int64_t>(kW, kW - t.dx);
  for (int64_t c = 0; c < kC; ++c) {
    const float* lut = table.channel(c);
    const float pad = lut[0];
    for (int64_t y = 0; y < kH; ++y) {
      float* row = dst + (c * kH + y) * kW;
      const int64_t sy = y + t.dy;
      if (sy < 0 || sy >= kH || x0 >= x1) {
        std::fill(row, row + kW, pad);
        continue;
      }
      const uint8_t* srow = src + (c * kH + sy) * kW;
      std::fill(row, row + x0, pad);
      if (t.flip) {
        const int64_t mirror = kW - 1 + t.dx;
        for (int64_t x = x0; x < x1; ++x) row[x] = lut[srow[mirror - x]];
      } else {
        for (int64_t x = x0; x < x1; ++x) row[x] = lut[srow[x + t.dx]];
      }
      std::fill(row + x1, row + kW, pad);
    }
  }
}

}  // namespace xg::data

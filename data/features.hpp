// Hand-made image features of CS231n's assignment 1: HOG on the grey image and a histogram of hue.
#pragma once

#include <cstdint>

#include "autograd/tensor.hpp"

namespace xg::data {

struct HogOptions {
  int64_t orientations = 9;  // unsigned orientation bins over [0, 180) degrees
  int64_t cell = 8;          // pixels per side of a square cell
  // CS231n's hog_feature code as distributed: orientation atan2(gy, gx + 1e-15) + 90 degrees, binned
  // over [0, 180) with the orientation 0 itself left out, so a gradient with gx < 0 (orientation
  // outside [0, 180)) is dropped rather than folded in: only half the gradients count.
  bool course_half_plane = false;
};

// Histogram of oriented gradients as CS231n's hog_feature defines it, for a batch of RGB images
// f32/f64 [N, 3, H, W] (the course feeds pixel values 0..255; the features scale with the pixels).
// The grey image is 0.299 R + 0.587 G + 0.144 B (the course's weights); gx and gy are forward
// differences along a row and down a column, zero in the last column / row. Each pixel's magnitude
// sqrt(gx² + gy²) goes to the bin of its orientation atan2(gy, gx) taken mod 180 degrees, and each
// cell's bin holds the mean over the cell's pixels of the magnitudes that fell in it. Cells are the
// floor(H / cell) x floor(W / cell) whole cells from the top left. Returns [N, cells_y * cells_x *
// orientations] in the input's dtype, ordered (cell row, cell column, bin): 144 values for 32x32.
// A NaN pixel makes the features of the cells it reaches NaN.
Tensor hog_features(const Tensor& images, const HogOptions& options = {});

// CS231n's color_histogram_hsv for a batch of RGB images f32/f64 [N, 3, H, W] with values in
// [0, xmax]: each pixel's hue in HSV (matplotlib's rgb_to_hsv of pixel / xmax; grey pixels have hue
// 0), binned into `nbin` equal bins over [0, 1] (the last one closed). Returns [N, nbin] in the
// input's dtype: the fraction of each image's pixels per bin (numpy's density times the bin width,
// as the course returns it), so each row sums to 1.
Tensor color_histogram_hsv(const Tensor& images, int64_t nbin = 10, double xmax = 255.0);

}  // namespace xg::data

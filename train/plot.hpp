// Plots a person can open: SVG line charts (loss curves, accuracies) and PNG image grids of
// first-layer filters (CS231n's visualize_grid).
#pragma once

#include <string>
#include <vector>

#include "autograd/tensor.hpp"

namespace xg::plot {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

// A line chart with axes, ticks, a legend and a title. Non-finite points are skipped.
void line_chart(const std::string& path, const std::string& title, const std::string& xlabel,
                const std::string& ylabel, const std::vector<Series>& series, bool log_x = false);

// Tiles a batch of images [N, C, H, W] (C = 1 or 3) into a grid of `cols` columns (0: near-square),
// row by row, `scale` pixels per value, and writes it as PNG. Each image is rescaled to 0..255 on its
// own (visualize_grid), or with rescale = false shown as it is (values clamped to 0..255: pictures).
void image_grid(const std::string& path, const Tensor& images, int scale = 4, int padding = 1, int64_t cols = 0,
                bool rescale = true);

}  // namespace xg::plot

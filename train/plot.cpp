// SVG line charts written by hand, PNG grids through stb_image_write.
#include "train/plot.hpp"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "autograd/error.hpp"

namespace xg::plot {

namespace {

constexpr double W = 720, H = 440, left = 70, right = 170, top = 40, bottom = 55;
const char* const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

// About five round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double span = hi - lo, raw = span / 5, mag = std::pow(10, std::floor(std::log10(raw)));
  const double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  check(static_cast<bool>(f), "plot: cannot open {} for writing", path);
  f << text;
  check(static_cast<bool>(f), "plot: failed writing {}", path);
}

}  // namespace

void line_chart(const std::string& path, const std::string& title, const std::string& xlabel,
                const std::string& ylabel, const std::vector<Series>& series, bool log_x) {
  auto tx = [log_x](double v) { return log_x ? std::log10(v) : v; };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const Series& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      const double x = tx(s.x[i]), y = s.y[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing finite to draw: empty axes
  if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
  const double pw = W - left - right, ph = H - top - bottom;
  auto px = [&](double x) { return left + (tx(x) - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + (1 - (y - y0) / (y1 - y0)) * ph; };

  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif' font-size='12'>\n"
      "<rect width='100%' height='100%' fill='white'/>\n"
      "<text x='{}' y='24' font-size='15' text-anchor='middle'>{}</text>\n",
      W, H, left + pw / 2, escape(title));
  for (double v : ticks(x0, x1)) {
    const double x = left + (v - x0) / (x1 - x0) * pw;
    svg += fmt::format("<line x1='{0:.1f}' y1='{1}' x2='{0:.1f}' y2='{2}' stroke='#e5e5e5'/>"
                       "<text x='{0:.1f}' y='{3}' text-anchor='middle'>{4}</text>\n",
                       x, top, top + ph, top + ph + 16, log_x ? fmt::format("1e{:g}", v) : fmt::format("{:g}", v));
  }
  for (double v : ticks(y0, y1))
    svg += fmt::format("<line x1='{1}' y1='{0:.1f}' x2='{2}' y2='{0:.1f}' stroke='#e5e5e5'/>"
                       "<text x='{3}' y='{4:.1f}' text-anchor='end'>{5:g}</text>\n",
                       py(v), left, left + pw, left - 6, py(v) + 4, v);
  svg += fmt::format("<rect x='{}' y='{}' width='{}' height='{}' fill='none' stroke='black'/>\n", left, top, pw, ph);
  svg += fmt::format("<text x='{}' y='{}' text-anchor='middle'>{}</text>\n", left + pw / 2, H - 14, escape(xlabel));
  svg += fmt::format("<text x='18' y='{0}' text-anchor='middle' transform='rotate(-90 18 {0})'>{1}</text>\n",
                     top + ph / 2, escape(ylabel));
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const char* color = colors[k % std::size(colors)];
    std::string pts;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(tx(s.x[i])) && std::isfinite(s.y[i])) pts += fmt::format("{:.1f},{:.1f} ", px(s.x[i]), py(s.y[i]));
    svg += fmt::format("<polyline fill='none' stroke='{}' stroke-width='1.5' points='{}'/>\n", color, pts);
    svg += fmt::format("<line x1='{0}' y1='{1}' x2='{2}' y2='{1}' stroke='{3}' stroke-width='3'/>"
                       "<text x='{4}' y='{5}'>{6}</text>\n",
                       left + pw + 12, top + 12 + 18 * k, left + pw + 32, color, left + pw + 38, top + 16 + 18 * k,
                       escape(s.name));
  }
  write_file(path, svg + "</svg>\n");
}

void image_grid(const std::string& path, const Tensor& images, int scale, int padding, int64_t cols, bool rescale) {
  check(images.dim() == 4 && (images.shape()[1] == 1 || images.shape()[1] == 3),
        "image_grid: images must be [N, 1 or 3, H, W], got shape {}", images.shape());
  check(scale > 0 && padding >= 0 && cols >= 0,
        "image_grid: scale ({}) must be positive, padding ({}) and cols ({}) non-negative", scale, padding, cols);
  const int64_t N = images.shape()[0], C = images.shape()[1], h = images.shape()[2], w = images.shape()[3];
  if (cols == 0) cols = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(N)))));
  const int64_t rows = std::max<int64_t>(1, (N + cols - 1) / cols);
  const int64_t cell_h = h * scale + padding, cell_w = w * scale + padding;
  const int64_t H_img = rows * cell_h + padding, W_img = cols * cell_w + padding;
  std::vector<unsigned char> rgb(static_cast<size_t>(H_img * W_img * 3), 255);
  std::vector<double> v = images.to_vector<double>();
  for (int64_t n = 0; n < N; ++n) {
    const double* img = v.data() + n * C * h * w;
    const auto [lo_it, hi_it] = std::minmax_element(img, img + C * h * w);
    const double lo = rescale ? *lo_it : 0.0, range = !rescale ? 255.0 : *hi_it - *lo_it > 0 ? *hi_it - *lo_it : 1;
    const int64_t oy = padding + (n / cols) * cell_h, ox = padding + (n % cols) * cell_w;
    for (int64_t y = 0; y < h * scale; ++y)
      for (int64_t x = 0; x < w * scale; ++x)
        for (int64_t ch = 0; ch < 3; ++ch) {
          const double val = img[(C == 3 ? ch : 0) * h * w + (y / scale) * w + x / scale];
          rgb[((oy + y) * W_img + ox + x) * 3 + ch] = static_cast<unsigned char>(std::lround(std::clamp(255 * (val - lo) / range, 0.0, 255.0)));
        }
  }
  check(stbi_write_png(path.c_str(), static_cast<int>(W_img), static_cast<int>(H_img), 3, rgb.data(),
                       static_cast<int>(W_img * 3)) != 0,
        "image_grid: cannot write {}", path);
}

}  // namespace xg::plot

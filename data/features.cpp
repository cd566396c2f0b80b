// HOG and hue-histogram features over a batch of images, on raw buffers, images split over the worker pool.
#include "data/features.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <utility>
#include <vector>

#include "autograd/error.hpp"
#include "autograd/parallel.hpp"

namespace xg::data {

namespace {

// N images of C = 3 planes of H x W pixels.
struct Geometry {
  int64_t N, H, W;
};

Geometry rgb_batch(const char* op, const Tensor& images) {
  check(images.defined(), "{}: images must be a defined tensor", op);
  check(images.dim() == 4 && images.shape()[1] == 3, "{}: images must be RGB [N, 3, H, W], got shape {}", op,
        images.shape());
  check(images.dtype() == Dtype::f32 || images.dtype() == Dtype::f64, "{}: images must be f32 or f64, got {}", op,
        dtype_name(images.dtype()));
  return {images.shape()[0], images.shape()[2], images.shape()[3]};
}

// One image's HOG into out[cells_y * cells_x * B]. grey, gx, gy, mag and bin are scratch of H * W.
struct HogScratch {
  std::vector<double> grey, gx, gy, mag;
  std::vector<int32_t> bin;
  std::vector<double> acc;
};

template <class T>
void hog_image(const T* img, T* out, const Geometry& g, const HogOptions& o, const std::vector<double>& cos_b,
               const std::vector<double>& sin_b, HogScratch& s) {
  const int64_t H = g.H, W = g.W, P = H * W, cell = o.cell, B = o.orientations;
  const int64_t cells_y = H / cell, cells_x = W / cell, Hc = cells_y * cell, Wc = cells_x * cell;
  const T *r = img, *gr = img + P, *b = img + 2 * P;
  double* grey = s.grey.data();
  for (int64_t p = 0; p < P; ++p) grey[p] = 0.299 * r[p] + 0.587 * gr[p] + 0.144 * b[p];
  // Forward differences over the pixels the cells cover; the last column's gx and last row's gy are 0.
  double *gx = s.gx.data(), *gy = s.gy.data(), *mag = s.mag.data();
  for (int64_t y = 0; y < Hc; ++y) {
    const double* row = grey + y * W;
    double* gxr = gx + y * Wc;
    double* gyr = gy + y * Wc;
    const int64_t inner = std::min(Wc, W - 1);  // columns with a right neighbour
    for (int64_t x = 0; x < inner; ++x) gxr[x] = row[x + 1] - row[x];
    for (int64_t x = inner; x < Wc; ++x) gxr[x] = 0.0;
    if (y + 1 < H)
      for (int64_t x = 0; x < Wc; ++x) gyr[x] = row[W + x] - row[x];
    else
      for (int64_t x = 0; x < Wc; ++x) gyr[x] = 0.0;
  }
  // Orientation bin without atan2: fold (gx, gy) into the upper half plane (angle in [0, 180)); the
  // angle is at least boundary k * 180 / B exactly when cos(b_k) gy - sin(b_k) gx >= 0.
  int32_t* bin = s.bin.data();
  const int64_t Q = Hc * Wc;
  if (o.course_half_plane) {
    const double width = 180.0 / static_cast<double>(B);
    for (int64_t q = 0; q < Q; ++q) {
      const double a = std::atan2(gy[q], gx[q] + 1e-15) * (180 / std::numbers::pi) + 90;
      mag[q] = std::sqrt(gx[q] * gx[q] + gy[q] * gy[q]);
      bin[q] = a > 0 && a < 180 ? static_cast<int32_t>(std::min<int64_t>(static_cast<int64_t>(a / width), B - 1)) : -1;
    }
  }
  for (int64_t q = 0; q < Q && !o.course_half_plane; ++q) {
    const bool flip = gy[q] < 0 || (gy[q] == 0 && gx[q] < 0);
    const double ux = flip ? -gx[q] : gx[q], uy = flip ? -gy[q] : gy[q];
    mag[q] = std::sqrt(ux * ux + uy * uy);
    int32_t k = 0;
    for (int64_t j = 0; j < B - 1; ++j) k += cos_b[j] * uy - sin_b[j] * ux >= 0 ? 1 : 0;
    bin[q] = k;
  }
  double* acc = s.acc.data();
  std::fill(s.acc.begin(), s.acc.end(), 0.0);
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  for (int64_t y = 0; y < Hc; ++y)
    for (int64_t x = 0; x < Wc; ++x) {
      const int64_t q = y * Wc + x;
      double* c = acc + ((y / cell) * cells_x + x / cell) * B;
      if (std::isnan(mag[q]))
        for (int64_t j = 0; j < B; ++j) c[j] = nan;
      else if (bin[q] >= 0)
        c[bin[q]] += mag[q];
    }
  const double inv_area = 1.0 / static_cast<double>(cell * cell);
  for (int64_t f = 0; f < cells_y * cells_x * B; ++f) out[f] = static_cast<T>(acc[f] * inv_area);
}

template <class T>
void hog_batch(const Tensor& images, Tensor& out, const Geometry& g, const HogOptions& o) {
  const int64_t B = o.orientations, F = out.shape()[1];
  std::vector<double> cos_b, sin_b;  // the bin boundaries k * 180 / B, k = 1 .. B - 1
  for (int64_t k = 1; k < B; ++k) {
    const double a = std::numbers::pi * static_cast<double>(k) / static_cast<double>(B);
    cos_b.push_back(std::cos(a)), sin_b.push_back(std::sin(a));
  }
  const T* x = images.data<T>();
  T* y = out.data<T>();
  const int64_t P = g.H * g.W;
  parallel_for(0, g.N, 16, [x, y, P, F, &g, &o, &cos_b, &sin_b](int64_t lo, int64_t hi) {
    HogScratch s{std::vector<double>(P), std::vector<double>(P),  std::vector<double>(P),
                 std::vector<double>(P), std::vector<int32_t>(P), std::vector<double>(F)};
    for (int64_t n = lo; n < hi; ++n) hog_image(x + n * 3 * P, y + n * F, g, o, cos_b, sin_b, s);
  });
}

// matplotlib's rgb_to_hsv hue of one pixel (r, g, b in [0, 1]) in [0, 1): among tied maxima blue wins
// over green over red, as its successive masked assignments do; the wrap is Python's float modulo.
inline double hue(double r, double g, double b) {
  const double mx = std::max(r, std::max(g, b)), delta = mx - std::min(r, std::min(g, b));
  if (!(delta > 0)) return 0.0;
  double h = b == mx ? 4.0 + (r - g) / delta : g == mx ? 2.0 + (b - r) / delta : (g - b) / delta;
  h = std::fmod(h / 6.0, 1.0);
  return h < 0 ? h + 1.0 : h;
}

template <class T>
void hue_histogram_batch(const Tensor& images, Tensor& out, const Geometry& g, int64_t nbin, double xmax) {
  const T* x = images.data<T>();
  T* y = out.data<T>();
  const int64_t P = g.H * g.W;
  // numpy's edges linspace(0, xmax, nbin + 1) on the hue scaled by xmax (the course's hsv * xmax): a
  // value v is in bin k when edge[k] <= v < edge[k + 1], the last bin closed.
  std::vector<double> edge(static_cast<size_t>(nbin + 1));
  for (int64_t k = 0; k < nbin; ++k) edge[k] = static_cast<double>(k) * (xmax / static_cast<double>(nbin));
  edge[nbin] = xmax;
  parallel_for(0, g.N, 16, [x, y, P, nbin, xmax, &edge](int64_t lo, int64_t hi) {
    std::vector<int64_t> count(static_cast<size_t>(nbin));
    for (int64_t n = lo; n < hi; ++n) {
      const T *r = x + n * 3 * P, *gr = r + P, *b = gr + P;
      std::fill(count.begin(), count.end(), 0);
      for (int64_t p = 0; p < P; ++p) {
        const double v = hue(r[p] / xmax, gr[p] / xmax, b[p] / xmax) * xmax;
        int64_t k = std::min(static_cast<int64_t>(v / xmax * static_cast<double>(nbin)), nbin - 1);
        if (v < edge[k])
          --k;
        else if (k + 1 < nbin && v >= edge[k + 1])
          ++k;
        ++count[k];
      }
      for (int64_t k = 0; k < nbin; ++k)
        y[n * nbin + k] = static_cast<T>(static_cast<double>(count[k]) / static_cast<double>(P));
    }
  });
}

// The first pixel outside [0, xmax] (or NaN), as (image, value); image -1 when every pixel is inside.
template <class T>
std::pair<int64_t, double> first_out_of_range(const Tensor& images, double xmax) {
  const T* x = images.data<T>();
  const int64_t per_image = images.numel() / std::max<int64_t>(1, images.shape()[0]);
  for (int64_t i = 0; i < images.numel(); ++i)
    if (!(x[i] >= 0 && x[i] <= xmax)) return {i / per_image, static_cast<double>(x[i])};
  return {-1, 0.0};
}

}  // namespace

Tensor hog_features(const Tensor& images, const HogOptions& o) {
  const Geometry g = rgb_batch("hog_features", images);
  check(o.orientations >= 1 && o.cell >= 1, "hog_features: orientations ({}) and cell ({}) must be positive",
        o.orientations, o.cell);
  check(g.H >= o.cell && g.W >= o.cell, "hog_features: images of {}x{} pixels hold no whole {}x{} cell (shape {})", g.H,
        g.W, o.cell, o.cell, images.shape());
  Tensor out = Tensor::empty({g.N, (g.H / o.cell) * (g.W / o.cell) * o.orientations}, images.dtype());
  if (images.dtype() == Dtype::f32)
    hog_batch<float>(images, out, g, o);
  else
    hog_batch<double>(images, out, g, o);
  return out;
}

Tensor color_histogram_hsv(const Tensor& images, int64_t nbin, double xmax) {
  const Geometry g = rgb_batch("color_histogram_hsv", images);
  check(nbin >= 1, "color_histogram_hsv: nbin must be positive, got {}", nbin);
  check(std::isfinite(xmax) && xmax > 0, "color_histogram_hsv: xmax must be positive and finite, got {}", xmax);
  check(g.H * g.W > 0, "color_histogram_hsv: images have no pixels (shape {})", images.shape());
  const auto [bad, value] =
      images.dtype() == Dtype::f32 ? first_out_of_range<float>(images, xmax) : first_out_of_range<double>(images, xmax);
  check(bad < 0, "color_histogram_hsv: pixel values must lie in [0, xmax = {}], got {} in image {}", xmax, value, bad);
  Tensor out = Tensor::empty({g.N, nbin}, images.dtype());
  if (images.dtype() == Dtype::f32)
    hue_histogram_batch<float>(images, out, g, nbin, xmax);
  else
    hue_histogram_batch<double>(images, out, g, nbin, xmax);
  return out;
}

}  // namespace xg::data

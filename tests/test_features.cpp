// Tests of xg::data's image features (HOG, hue histogram) against values worked out by hand on tiny images.
#include <cmath>
#include <functional>

#include "data/features.hpp"

using namespace xg;
using namespace xg::data;

namespace {

// One image [1, 3, H, W] (f64 unless asked) with pixel (c, y, x) = f(c, y, x).
Tensor image(int64_t H, int64_t W, const std::function<double(int64_t, int64_t, int64_t)>& f, Dtype dt = Dtype::f64) {
  std::vector<double> v;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) v.push_back(f(c, y, x));
  return from_vector(v, {1, 3, H, W}).to(dt);
}

// An image of pixels given as (r, g, b) triples, row-major.
Tensor rgb_pixels(int64_t H, int64_t W, const std::vector<std::array<double, 3>>& px) {
  return image(H, W, [&](int64_t c, int64_t y, int64_t x) { return px[static_cast<size_t>(y * W + x)][c]; });
}

void check_values(const Tensor& t, const std::vector<double>& expected) {
  const auto v = t.to(Dtype::f64).to_vector<double>();
  REQUIRE(v.size() == expected.size());
  for (size_t i = 0; i < v.size(); ++i) {
    INFO("feature " << i);
    CHECK(v[i] == doctest::Approx(expected[i]).epsilon(1e-12));
  }
}

constexpr double kGrey = 0.299 + 0.587 + 0.144;  // the course's grey weights sum to 1.03

}  // namespace

TEST_CASE("hog: one 8x8 cell, by hand") {
  // A grey ramp 10 x along a row: gx = 10.3 in columns 0..6, 0 in the last; gy = 0. All 56 magnitudes
  // sit at 0 degrees (bin 0), and the cell holds their mean over its 64 pixels.
  const double ramp = 10 * kGrey * 56 / 64;
  check_values(hog_features(image(8, 8, [](auto, auto, int64_t x) { return 10.0 * x; })),
               {ramp, 0, 0, 0, 0, 0, 0, 0, 0});
  // The ramp falling to the right points at 180 degrees: unsigned, the same bin 0.
  check_values(hog_features(image(8, 8, [](auto, auto, int64_t x) { return 10.0 * (7 - x); })),
               {ramp, 0, 0, 0, 0, 0, 0, 0, 0});
  // Falling down the rows: gy = -10.3, atan2 = -90 degrees, mod 180 = 90: bin 4 (80..100).
  check_values(hog_features(image(8, 8, [](auto, int64_t y, auto) { return 10.0 * (7 - y); })),
               {0, 0, 0, 0, ramp, 0, 0, 0, 0});
  // The diagonal 10 (x + y): 49 pixels at 45 degrees (bin 2) with magnitude 10.3 sqrt 2; the last
  // column has only gy (90 degrees, bin 4) and the last row only gx (bin 0), 7 pixels each.
  check_values(hog_features(image(8, 8, [](auto, int64_t y, int64_t x) { return 10.0 * (x + y); })),
               {7 * 10 * kGrey / 64, 0, 49 * 10 * kGrey * std::sqrt(2.0) / 64, 0, 7 * 10 * kGrey / 64, 0, 0, 0, 0});
  // 10 (y - x): gx = -10.3, gy = 10.3, 135 degrees: bin 6 (120..140).
  check_values(hog_features(image(8, 8, [](auto, int64_t y, int64_t x) { return 10.0 * (y - x); })),
               {7 * 10 * kGrey / 64, 0, 0, 0, 7 * 10 * kGrey / 64, 0, 49 * 10 * kGrey * std::sqrt(2.0) / 64, 0, 0});
  // A constant image has no gradient.
  check_values(hog_features(image(8, 8, [](auto, auto, auto) { return 100.0; })), std::vector<double>(9, 0.0));
}

TEST_CASE("hog: the grey weights are the course's 0.299, 0.587, 0.144") {
  for (int64_t ch = 0; ch < 3; ++ch) {
    const double w = std::array<double, 3>{0.299, 0.587, 0.144}[ch];
    const Tensor f = hog_features(image(8, 8, [ch](int64_t c, auto, int64_t x) { return c == ch ? 4.0 * x : 0.0; }));
    check_values(f, {4 * w * 56 / 64, 0, 0, 0, 0, 0, 0, 0, 0});
  }
}

TEST_CASE("hog: cells in (row, column, bin) order, differences across cell borders, partial cells dropped") {
  // 8 rows x 17 columns: a ramp 10 x up to column 7, then 70 (the last column 0 adds only to gx of
  // column 15 and lies outside the two whole cells). Left cell: gx = 10.3 in columns 0..6, and 0 at
  // column 7 (70 - 70). Right cell: flat except column 15, whose gx is (0 - 70) * 1.03: 180 degrees, bin 0.
  const Tensor f = hog_features(image(8, 17, [](auto, auto, int64_t x) {
    return x < 8 ? 10.0 * x : x < 16 ? 70.0 : 0.0;
  }));
  CHECK(f.shape() == Shape{1, 18});
  std::vector<double> expected(18, 0.0);
  expected[0] = 10 * kGrey * 56 / 64;
  expected[9] = 70 * kGrey * 8 / 64;
  check_values(f, expected);
  // 16 rows x 8 columns: the top cell flat, the bottom cell a ramp down the rows, 10 (y - 8) for y >= 8.
  // The top cell's last row sees gy = 0 (both rows 0); the bottom cell 7 rows of gy = 10.3 (bin 4).
  const Tensor g = hog_features(image(16, 8, [](auto, int64_t y, auto) { return y < 8 ? 0.0 : 10.0 * (y - 8); }));
  expected.assign(18, 0.0);
  expected[9 + 4] = 10 * kGrey * 56 / 64;
  check_values(g, expected);
}

TEST_CASE("hog: options, batches over threads, dtypes") {
  // Two orientation bins of 90 degrees: gradients at 0 degrees in bin 0, at 90 in bin 1; 4x4 cells.
  const Tensor up = image(4, 4, [](auto, int64_t y, auto) { return 3.0 * y; });
  check_values(hog_features(up, {.orientations = 2, .cell = 4}), {0, 3 * kGrey * 12 / 16});
  // A batch gives each image's own features, whatever the thread split.
  manual_seed(3);
  Tensor batch = mul(rand({37, 3, 32, 32}, Dtype::f64), 255.0);
  const Tensor all = hog_features(batch);
  REQUIRE(all.shape() == Shape{37, 144});
  const auto av = all.to_vector<double>();
  for (int64_t n : {0, 17, 36}) {
    const auto one = hog_features(slice(batch, 0, n, n + 1)).to_vector<double>();
    for (int64_t k = 0; k < 144; ++k) CHECK(av[static_cast<size_t>(n * 144 + k)] == one[static_cast<size_t>(k)]);
  }
  // f32 in, f32 out: the f64 features of the same (f32) pixels, rounded.
  const Tensor batch32 = batch.to(Dtype::f32);
  const Tensor f32 = hog_features(batch32);
  CHECK(f32.dtype() == Dtype::f32);
  CHECK(allclose(f32.to(Dtype::f64), hog_features(batch32.to(Dtype::f64)), 1e-6, 1e-6));
}

TEST_CASE("hog: the course's code keeps only gradients with gx >= 0, at atan2 + 90 degrees") {
  const HogOptions course{.course_half_plane = true};
  const double ramp = 10 * kGrey * 56 / 64;
  // Rising to the right: atan2 = 0, + 90: bin 4. Falling to the right (gx < 0): dropped.
  check_values(hog_features(image(8, 8, [](auto, auto, int64_t x) { return 10.0 * x; }), course),
               {0, 0, 0, 0, ramp, 0, 0, 0, 0});
  check_values(hog_features(image(8, 8, [](auto, auto, int64_t x) { return 10.0 * (7 - x); }), course),
               std::vector<double>(9, 0.0));
  // Vertical gradients (gx = 0) are dropped too: atan2(gy, 1e-15) rounds to +-90 degrees, so the
  // orientation is exactly 180 or 0, both outside the bins. The diagonal 10 (x + y) at 45 + 90 = 135
  // degrees: bin 6; its last row (gx only) bin 4; its last column (gy only) nowhere.
  check_values(hog_features(image(8, 8, [](auto, int64_t y, auto) { return 10.0 * y; }), course),
               std::vector<double>(9, 0.0));
  check_values(hog_features(image(8, 8, [](auto, int64_t y, int64_t x) { return 10.0 * (x + y); }), course),
               {0, 0, 0, 0, 7 * 10 * kGrey / 64, 0, 49 * 10 * kGrey * std::sqrt(2.0) / 64, 0, 0});
}

TEST_CASE("hog: bad input names the op and the shape") {
  CHECK_ERROR(hog_features(zeros({3, 32, 32})), "hog_features: images must be RGB [N, 3, H, W], got shape [3,32,32]");
  CHECK_ERROR(hog_features(zeros({2, 1, 32, 32})), "got shape [2,1,32,32]");
  CHECK_ERROR(hog_features(zeros({2, 3, 7, 32})), "hog_features: images of 7x32 pixels hold no whole 8x8 cell");
  CHECK_ERROR(hog_features(zeros({2, 3, 8, 8}, Dtype::i64)), "hog_features: images must be f32 or f64, got i64");
  CHECK_ERROR(hog_features(zeros({2, 3, 8, 8}), {.orientations = 0}), "orientations (0) and cell (8) must be positive");
  // A NaN pixel makes the cells it reaches NaN, and only those.
  Tensor nan_img = image(8, 16, [](auto, int64_t y, int64_t x) { return y == 3 && x == 4 ? std::nan("") : 1.0 * x; });
  const auto v = hog_features(nan_img).to_vector<double>();
  for (int k = 0; k < 9; ++k) CHECK(std::isnan(v[static_cast<size_t>(k)]));
  for (int k = 9; k < 18; ++k) CHECK(!std::isnan(v[static_cast<size_t>(k)]));
}

TEST_CASE("hue histogram: by hand, matplotlib's rgb_to_hsv and numpy's bins") {
  // Red (hue 0), green (1/3: bin 3), blue (2/3: bin 6), grey (no hue: 0) -> fractions of the 4 pixels.
  const Tensor four = rgb_pixels(2, 2, {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {128, 128, 128}});
  check_values(color_histogram_hsv(four), {0.5, 0, 0, 0.25, 0, 0, 0.25, 0, 0, 0});
  // Yellow (1/6: bin 1), magenta (5/6: bin 8), cyan (exactly 1/2: the edge 127.5, bin 5), and
  // (255, 0, 100): red is the maximum, h = -100/255 / 6 wraps to 0.935: bin 9.
  const Tensor wrap = rgb_pixels(1, 4, {{255, 255, 0}, {255, 0, 255}, {0, 255, 255}, {255, 0, 100}});
  check_values(color_histogram_hsv(wrap), {0, 0.25, 0, 0, 0, 0.25, 0, 0, 0.25, 0.25});
  // Four bins: green 1/3 -> bin 1, blue 2/3 -> bin 2.
  check_values(color_histogram_hsv(four, 4), {0.5, 0.25, 0.25, 0});
  // Hue does not depend on the scale: [0, 1] pixels with xmax = 1 give the same, in f32 too.
  check_values(color_histogram_hsv(mul(four, 1.0 / 255).to(Dtype::f32), 10, 1.0),
               {0.5, 0, 0, 0.25, 0, 0, 0.25, 0, 0, 0});
  // Rows of a random batch sum to 1, and a batch gives each image's own histogram.
  manual_seed(5);
  std::vector<double> bytes;
  for (double u : rand({40, 3, 5, 6}, Dtype::f64).to_vector<double>()) bytes.push_back(std::floor(u * 256));
  const Tensor batch = from_vector(bytes, {40, 3, 5, 6});
  const Tensor h = color_histogram_hsv(batch, 7);
  REQUIRE(h.shape() == Shape{40, 7});
  check_values(sum(h, {1}), std::vector<double>(40, 1.0));
  const auto hv = h.to_vector<double>(), one = color_histogram_hsv(slice(batch, 0, 29, 30), 7).to_vector<double>();
  for (size_t k = 0; k < 7; ++k) CHECK(hv[29 * 7 + k] == one[k]);
}

TEST_CASE("hue histogram: bad input names the op and the values") {
  const Tensor ok = zeros({2, 3, 4, 4});
  CHECK_ERROR(color_histogram_hsv(ok, 0), "color_histogram_hsv: nbin must be positive, got 0");
  CHECK_ERROR(color_histogram_hsv(ok, 10, -1.0), "color_histogram_hsv: xmax must be positive and finite, got -1");
  CHECK_ERROR(color_histogram_hsv(zeros({2, 4, 4, 4})),
              "color_histogram_hsv: images must be RGB [N, 3, H, W], got shape [2,4,4,4]");
  Tensor bad = image(4, 4, [](int64_t c, int64_t y, int64_t x) { return c == 1 && y == 1 && x == 0 ? 300.0 : 1.0; });
  CHECK_ERROR(color_histogram_hsv(cat({ok.to(Dtype::f64), bad}, 0)),
              "color_histogram_hsv: pixel values must lie in [0, xmax = 255], got 300 in image 2");
  CHECK_ERROR(color_histogram_hsv(full({1, 3, 2, 2}, -1.0)), "got -1 in image 0");
}

// Plots: SVG line charts and PNG image grids are written and hold what was drawn.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "helpers.hpp"
#include "train/plot.hpp"

using namespace xg;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("plot: line chart and image grid") {
  auto dir = std::filesystem::temp_directory_path() / "xgrad_test_plot";
  std::filesystem::create_directories(dir);
  const std::string svg = (dir / "loss.svg").string();
  plot::line_chart(svg, "loss", "step", "loss", {{"train", {0, 1, 2}, {2.3, 1.5, NAN}}, {"val <a&b>", {0, 2}, {2, 1}}});
  std::string text = slurp(svg);
  CHECK(text.rfind("<svg", 0) == 0);
  CHECK(text.find("<polyline") != std::string::npos);
  CHECK(text.find("val &lt;a&amp;b&gt;") != std::string::npos);  // labels are escaped
  CHECK(text.find("nan") == std::string::npos);                  // non-finite points are skipped

  const std::string png = (dir / "grid.png").string();
  manual_seed(0);
  plot::image_grid(png, randn({5, 3, 7, 7}), 2, 1);
  std::string bytes = slurp(png);
  REQUIRE(bytes.size() > 24);
  CHECK(bytes.substr(1, 3) == "PNG");
  // 5 images -> a 3x2 grid of (7*2 + 1) cells plus the outer padding: 46 x 31 pixels.
  auto be32 = [&](size_t at) {
    return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
           (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
  };
  CHECK(be32(16) == 46);
  CHECK(be32(20) == 31);
  // 5 images in 5 columns, shown as they are: 76 x 16 pixels.
  plot::image_grid(png, mul(rand({5, 3, 7, 7}), 255.0), 2, 1, 5, false);
  bytes = slurp(png);
  CHECK(be32(16) == 76);
  CHECK(be32(20) == 16);
  CHECK_ERROR(plot::image_grid(png, randn({5, 3, 7, 7}), 2, 1, -1),
              "image_grid: scale (2) must be positive, padding (1) and cols (-1) non-negative");
  CHECK_ERROR(plot::image_grid(png, randn({5, 2, 7, 7})), "image_grid: images must be [N, 1 or 3, H, W], got shape [5,2,7,7]");
  CHECK_ERROR(plot::line_chart((dir / "no" / "x.svg").string(), "t", "x", "y", {}), "plot: cannot open");
  std::filesystem::remove_all(dir);
}

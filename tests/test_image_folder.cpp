// Tests of xg::data::ImageFolder on a folder of real PNG, BMP and JPEG files the test writes, plus
// broken ones: classes, pixel values, transforms to one size, errors naming the file, skipping.
#include <stb/stb_image_write.h>

#include "data_fixtures.hpp"

using namespace xg;
using namespace xg::data;
using xg::test::data_fixtures::TempDir;
namespace fs = std::filesystem;
namespace T = xg::data::transforms;

namespace {

// A W x H RGB image, interleaved: pixel (x, y) = (10x + y, 20y, 100 + k).
std::vector<unsigned char> rgb(int w, int h, int k) {
  std::vector<unsigned char> px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) px.insert(px.end(), {static_cast<unsigned char>(10 * x + y),
                                                     static_cast<unsigned char>(20 * y), static_cast<unsigned char>(100 + k)});
  return px;
}

void write_png(const fs::path& p, int w, int h, int k) {
  REQUIRE(stbi_write_png(p.c_str(), w, h, 3, rgb(w, h, k).data(), w * 3) != 0);
}

// root/zebra: a.png (4x3), b.BMP (5x2); root/ant: c.jpg (8x8), notes.txt; root/empty_class/.
void write_folder(const fs::path& root) {
  fs::create_directories(root / "zebra");
  fs::create_directories(root / "ant");
  fs::create_directories(root / "empty_class");
  write_png(root / "zebra" / "a.png", 4, 3, 1);
  REQUIRE(stbi_write_bmp((root / "zebra" / "b.BMP").c_str(), 5, 2, 3, rgb(5, 2, 2).data()) != 0);
  REQUIRE(stbi_write_jpg((root / "ant" / "c.jpg").c_str(), 8, 8, 3, rgb(8, 8, 3).data(), 95) != 0);
  xg::test::data_fixtures::write_bytes(root / "ant" / "notes.txt", {1, 2, 3});
}

}  // namespace

TEST_CASE("image folder: classes sorted, files decoded to [C, H, W] in [0, 1]") {
  TempDir tmp;
  write_folder(tmp.path);
  ImageFolder f(tmp.str());
  CHECK(f.classes() == std::vector<std::string>{"ant", "empty_class", "zebra"});
  REQUIRE(f.size() == 3);
  CHECK(f.samples()[0].second == 0);  // ant/c.jpg
  CHECK(f.samples()[1].second == 2);  // zebra/a.png
  CHECK(f.samples()[2].second == 2);  // zebra/b.BMP
  const Example png = f.get(1), bmp = f.get(2), jpg = f.get(0);
  CHECK(png.data.shape() == Shape{3, 3, 4});
  CHECK(png.target.item<int64_t>() == 2);
  const auto v = png.data.to_vector<float>();
  auto at = [&](int64_t c, int64_t y, int64_t x) { return v[static_cast<size_t>((c * 3 + y) * 4 + x)] * 255.0f; };
  CHECK(at(0, 2, 3) == doctest::Approx(32));  // 10x + y, lossless
  CHECK(at(1, 2, 0) == doctest::Approx(40));  // 20y
  CHECK(at(2, 1, 1) == doctest::Approx(101));
  CHECK(bmp.data.shape() == Shape{3, 2, 5});
  CHECK(bmp.data.to_vector<float>()[4] * 255.0f == doctest::Approx(40));  // R at (x 4, y 0)
  CHECK(jpg.data.shape() == Shape{3, 8, 8});
  CHECK(jpg.data.to_vector<float>()[2 * 64 + 9] * 255.0f == doctest::Approx(103).epsilon(0.05));  // lossy: near
  ImageFolder grey(tmp.str(), {.channels = 1});
  CHECK(grey.get(1).data.shape() == Shape{1, 3, 4});
  // Through a loader: examples of three sizes brought to one by Resize, and the labels.
  auto ds = std::make_shared<const ImageFolder>(tmp.str());
  DataLoader loader(ds, {.batch_size = 3, .shuffle = false, .transform = T::Compose({T::Resize(6, 6), T::CenterCrop(4)})});
  const auto batches = xg::test::data_fixtures::whole_epoch(loader, 0);
  REQUIRE(batches.size() == 1);
  CHECK(batches[0].images.shape() == Shape{3, 3, 4, 4});
  CHECK(batches[0].labels.to_vector<int64_t>() == std::vector<int64_t>{0, 2, 2});
}

TEST_CASE("image folder: unreadable, corrupt and truncated files name the file, or are skipped and counted") {
  TempDir tmp;
  write_folder(tmp.path);
  const fs::path bad = tmp.path / "zebra" / "corrupt.png";
  xg::test::data_fixtures::write_bytes(bad, {0x89, 'P', 'N', 'G', 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK_ERROR(ImageFolder(tmp.str()), fmt::format("ImageFolder: '{}' is not a readable image", bad.string()));
  ImageFolder skip(tmp.str(), {.skip_bad = true});
  CHECK(skip.size() == 3);
  CHECK(skip.skipped() == 1);
  CHECK(skip.skipped_files() == std::vector<std::string>{bad.string()});

  // A whole header with the pixels cut off passes the scan and fails in get, naming the file.
  fs::remove(bad);
  write_png(tmp.path / "zebra" / "big.png", 64, 64, 5);
  std::vector<uint8_t> whole;
  {
    std::ifstream in(tmp.path / "zebra" / "big.png", std::ios::binary);
    whole.assign(std::istreambuf_iterator<char>(in), {});
  }
  const fs::path cut = tmp.path / "zebra" / "cut.png";
  xg::test::data_fixtures::write_bytes(cut, std::vector<uint8_t>(whole.begin(), whole.begin() + 60));
  ImageFolder lazy(tmp.str());
  REQUIRE(lazy.samples()[4].first == cut.string());
  CHECK_ERROR(lazy.get(4), fmt::format("ImageFolder: cannot decode '{}'", cut.string()));
  ImageFolder checked(tmp.str(), {.skip_bad = true});
  CHECK(checked.size() == 4);
  CHECK(checked.skipped() == 1);
  xg::test::data_fixtures::write_bytes(cut, {});
  CHECK_ERROR(ImageFolder(tmp.str()), fmt::format("ImageFolder: '{}' is empty", cut.string()));

  CHECK_ERROR(ImageFolder((tmp.path / "nowhere").string()), "ImageFolder: '");
  CHECK_ERROR(ImageFolder((tmp.path / "ant" / "c.jpg").string()), "is not a directory");
  CHECK_ERROR(ImageFolder((tmp.path / "empty_class").string()), "has no class subfolders");
  CHECK_ERROR(ImageFolder(tmp.str(), {.channels = 2}), "ImageFolder: channels must be 1 or 3, got 2");
  CHECK_ERROR(ImageFolder(tmp.str(), {.extensions = {".gif"}}), "ImageFolder: no readable .gif images under");
  CHECK_ERROR(lazy.get(9), "ImageFolder::get: index 9 out of range for 5 examples");
}

TEST_CASE("README: the image-folder example runs as written") {
  TempDir tmp;
  const fs::path photos = tmp.path / "photos";
  for (const char* cls : {"cats", "dogs"}) {
    fs::create_directories(photos / cls);
    for (int i = 0; i < 40; ++i) write_png(photos / cls / fmt::format("{}.png", i), 40 + i % 3, 40, i);
  }
  auto folder = std::make_shared<const data::ImageFolder>(photos.string());
  data::DataLoader loader(folder, {.batch_size = 64,
                                   .transform = T::Compose({T::Resize(36, 36), T::RandomCrop(32),
                                                            T::RandomHorizontalFlip(),
                                                            T::Normalize({0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f})}),
                                   .seed = 1, .num_workers = 2});
  int64_t seen = 0;
  for (data::Batch& b : loader.epoch(0)) {
    CHECK(b.images.shape() == Shape{b.labels.numel(), 3, 32, 32});
    seen += b.labels.numel();
  }
  CHECK(seen == 80);
  CHECK(loader.num_batches() == 2);
  CHECK(!loader.is_fused());
}

// ImageFolder: the class folders scanned and sorted, files read whole and decoded by stb_image.
#include "data/image_folder.hpp"

#include <fmt/ranges.h>
#include <stb/stb_image.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>

namespace xg::data {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::vector<unsigned char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  check(static_cast<bool>(in), "ImageFolder: cannot open '{}'", path);
  const std::streamsize n = in.tellg();
  check(n > 0, "ImageFolder: '{}' is empty", path);
  std::vector<unsigned char> bytes(static_cast<size_t>(n));
  in.seekg(0);
  check(static_cast<bool>(in.read(reinterpret_cast<char*>(bytes.data()), n)), "ImageFolder: cannot read '{}'", path);
  return bytes;
}

// Only the header: size and format, without decoding pixels.
void check_header(const std::string& path) {
  const auto bytes = read_file(path);
  int w = 0, h = 0, c = 0;
  check(stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c) != 0,
        "ImageFolder: '{}' is not a readable image: {}", path, stbi_failure_reason());
}

}  // namespace

Tensor ImageFolder::load_image(const std::string& path, int64_t channels) {
  check(channels == 1 || channels == 3, "ImageFolder: channels must be 1 or 3, got {}", channels);
  const auto bytes = read_file(path);
  int w = 0, h = 0, c = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> px(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c, static_cast<int>(channels)),
      stbi_image_free);
  check(px != nullptr, "ImageFolder: cannot decode '{}': {}", path, stbi_failure_reason());
  // stb gives interleaved rows (HWC); tensors are planar (CHW).
  const int64_t H = h, W = w, C = channels;
  Tensor out = Tensor::empty({C, H, W}, Dtype::f32);
  float* dst = out.data<float>();
  const unsigned char* src = px.get();
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t k = 0; k < C; ++k) dst[(k * H + y) * W + x] = static_cast<float>(src[(y * W + x) * C + k]) / 255.0f;
  return out;
}

ImageFolder::ImageFolder(const std::string& root, ImageFolderOptions opts) : opts_(std::move(opts)) {
  check(opts_.channels == 1 || opts_.channels == 3, "ImageFolder: channels must be 1 or 3, got {}", opts_.channels);
  std::error_code ec;
  check(fs::is_directory(root, ec), "ImageFolder: '{}' is not a directory", root);
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.is_directory()) classes_.push_back(entry.path().filename().string());
  check(!ec, "ImageFolder: cannot list '{}': {}", root, ec.message());
  std::sort(classes_.begin(), classes_.end());
  check(!classes_.empty(), "ImageFolder: '{}' has no class subfolders (root/<class>/<image>)", root);
  std::vector<std::string> ext;
  for (const std::string& e : opts_.extensions) ext.push_back(lower(e));
  for (size_t k = 0; k < classes_.size(); ++k) {
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(fs::path(root) / classes_[k], ec))
      if (entry.is_regular_file() &&
          std::find(ext.begin(), ext.end(), lower(entry.path().extension().string())) != ext.end())
        files.push_back(entry.path().string());
    check(!ec, "ImageFolder: cannot list '{}': {}", (fs::path(root) / classes_[k]).string(), ec.message());
    std::sort(files.begin(), files.end());
    for (std::string& f : files) {
      if (!opts_.skip_bad) {
        check_header(f);
        samples_.emplace_back(std::move(f), static_cast<int64_t>(k));
        continue;
      }
      try {
        load_image(f, opts_.channels);
        samples_.emplace_back(std::move(f), static_cast<int64_t>(k));
      } catch (const Error&) {
        skipped_.push_back(std::move(f));
      }
    }
  }
  check(!samples_.empty(), "ImageFolder: no readable {} images under '{}' ({} skipped)", fmt::join(ext, "/"), root,
        skipped_.size());
}

Example ImageFolder::get(int64_t i) const {
  check_index("ImageFolder::get", i, size());
  const auto& [path, label] = samples_[static_cast<size_t>(i)];
  return {load_image(path, opts_.channels), scalar_tensor(static_cast<double>(label), Dtype::i64)};
}

}  // namespace xg::data

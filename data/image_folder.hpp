// xg::data::ImageFolder: torchvision's ImageFolder, one subfolder of PNG/JPEG/BMP files per class,
// decoded with stb_image when an example is asked for.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "data/dataset.hpp"

namespace xg::data {

struct ImageFolderOptions {
  int64_t channels = 3;  // every image is decoded to 3 (RGB) or 1 (grey) channels
  // false: a file stb_image cannot read is an xg::Error naming it, at construction (header) or in get
  // (pixels). true: every file is decoded once at construction and those that fail are left out,
  // counted in skipped() and named in skipped_files().
  bool skip_bad = false;
  std::vector<std::string> extensions{".png", ".jpg", ".jpeg", ".bmp"};  // matched case-insensitively
};

// root/<class>/<file>: classes are the subfolders' names sorted (their indices 0, 1, ...), and the
// examples each class's files in sorted order. get(i) gives the image as f32 [C, H, W] in [0, 1] at
// its own size (a Resize or CenterCrop transform brings examples to one size) and a 0-d i64 label.
class ImageFolder : public Dataset {
 public:
  explicit ImageFolder(const std::string& root, ImageFolderOptions opts = {});
  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }
  Example get(int64_t i) const override;

  const std::vector<std::string>& classes() const { return classes_; }
  const std::vector<std::pair<std::string, int64_t>>& samples() const { return samples_; }  // path, label
  int64_t skipped() const { return static_cast<int64_t>(skipped_.size()); }
  const std::vector<std::string>& skipped_files() const { return skipped_; }

  // The file at `path` decoded to `channels` channels as f32 [C, H, W] in [0, 1]; xg::Error naming the
  // file and stb_image's reason when it cannot be read or decoded.
  static Tensor load_image(const std::string& path, int64_t channels = 3);

 private:
  ImageFolderOptions opts_;
  std::vector<std::string> classes_;
  std::vector<std::pair<std::string, int64_t>> samples_;
  std::vector<std::string> skipped_;
};

}  // namespace xg::data

// create_directories and write_text_file with errors that name the path.
#include "train/files.hpp"

#include <filesystem>
#include <fstream>

#include "autograd/error.hpp"

namespace xg::train {

void create_directories(const std::string& dir, const char* who) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  check(!ec, "{}: cannot create the directory '{}': {}", who, dir, ec.message());  // also when it is a file
}

void write_text_file(const std::string& path, const std::string& text, const char* who) {
  std::ofstream f(path, std::ios::binary);
  check(static_cast<bool>(f), "{}: cannot open '{}' for writing", who, path);
  f << text;
  f.flush();
  check(static_cast<bool>(f), "{}: writing '{}' failed", who, path);
}

}  // namespace xg::train

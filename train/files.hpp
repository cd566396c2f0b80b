// A run directory's plain files: creating the directory and writing text, each failure an xg::Error
// naming the path (std::filesystem and streams would throw their own exceptions or fail silently).
#pragma once

#include <string>

namespace xg::train {

void create_directories(const std::string& dir, const char* who);
void write_text_file(const std::string& path, const std::string& text, const char* who);

}  // namespace xg::train

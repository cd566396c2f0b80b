// Writing a file all at once or not at all: checkpoints and ONNX exports share this writer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace xg::detail {

// Writes the pieces, in order, to path + ".tmp", fsyncs it, renames it over `path` and fsyncs the
// directory: a crash or an error mid-write leaves the previous file intact and no .tmp behind.
// Errors are xg::Error starting with `who` ("save_safetensors: writing 'a.tmp' failed: ...").
void write_file_atomically(const std::string& path, const std::vector<std::string_view>& pieces, const char* who);

}  // namespace xg::detail

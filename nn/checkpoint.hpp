// .safetensors checkpoints: named f32/f64/i64 tensors plus string metadata, written atomically.
//
// The format (Hugging Face safetensors): an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {"epoch": "3"}, "fc.weight": {"dtype": "F32", "shape": [3, 4],
//    "data_offsets": [0, 48]}, ...}
// then the raw little-endian data, offsets relative to the end of the header. The reader validates
// everything and throws xg::Error naming the file and the problem; it never returns a partial result.
#pragma once

#include <string>
#include <string_view>

#include "nn/module.hpp"

namespace xg::nn {

struct Safetensors {
  NamedTensors tensors;  // in header order
  Metadata metadata;
  // The entries whose name starts with `prefix`, with the prefix removed ("model." -> "fc.weight").
  NamedTensors with_prefix(const std::string& prefix) const;
};

// Writes path + ".tmp", flushes and fsyncs it, then renames it over `path`: a crash mid-write leaves
// the previous checkpoint intact. Names must be non-empty, unique and not "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});
Safetensors load_safetensors(const std::string& path);
// The same reader on a file's contents already in memory; `name` stands for the file in errors.
// load_safetensors reads the file and calls this; it is also the fuzzing entry point.
Safetensors parse_safetensors(std::string_view bytes, const std::string& name = "<memory>");

// Prepends `prefix` to every name: to put a model and its optimizer in one file,
//   concat(prefixed("model.", model.state_dict()), prefixed("optimizer.", opt.state_dict())).
NamedTensors prefixed(const std::string& prefix, const NamedTensors& tensors);
NamedTensors concat(NamedTensors a, const NamedTensors& b);

}  // namespace xg::nn

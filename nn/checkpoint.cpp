// Reading and writing .safetensors files: the atomic writer and the validating reader.
#include "nn/checkpoint.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "nn/atomic_file.hpp"

namespace xg::nn {

// Raw data is written in host order; the format is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using Json = nlohmann::ordered_json;
constexpr uint64_t max_header_bytes = 100'000'000;  // the reference library's limit

const char* format_name(Dtype d) {
  switch (d) {
    case Dtype::f32: return "F32";
    case Dtype::f64: return "F64";
    case Dtype::i64: return "I64";
  }
  return "?";
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& [n, t] : tensors) {
    check(!n.empty() && n != "__metadata__", "save_safetensors: '{}': invalid tensor name '{}'", path, n);
    check(!header.contains(n), "save_safetensors: '{}': tensor name '{}' appears twice", path, n);
    check(t.defined(), "save_safetensors: '{}': tensor '{}' is undefined", path, n);
    uint64_t bytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    header[n] = {{"dtype", format_name(t.dtype())},
                 {"shape", std::vector<int64_t>(t.shape().begin(), t.shape().end())},
                 {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // as the reference writer: data starts 8-aligned
  uint64_t n = text.size();
  char len[8];
  std::memcpy(len, &n, 8);

  std::vector<std::string_view> pieces{{len, 8}, text};
  for (const auto& [name, t] : tensors)
    pieces.emplace_back(static_cast<const char*>(t.impl().storage->data()), t.numel() * dtype_size(t.dtype()));
  xg::detail::write_file_atomically(path, pieces, "save_safetensors");
}

namespace {

struct Entry {
  std::string name;
  Dtype dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& name, const Json& j) {
  auto bad = [&](const std::string& what) { fail("load_safetensors: '{}': tensor '{}': {}", path, name, what); };
  if (!j.is_object()) bad("entry is not a JSON object");
  for (const auto& [k, v] : j.items())
    if (k != "dtype" && k != "shape" && k != "data_offsets") bad(fmt::format("unknown field '{}'", k));
  if (!j.contains("dtype") || !j["dtype"].is_string()) bad("missing or non-string 'dtype'");
  if (!j.contains("shape") || !j["shape"].is_array()) bad("missing or non-array 'shape'");
  if (!j.contains("data_offsets") || !j["data_offsets"].is_array() || j["data_offsets"].size() != 2)
    bad("'data_offsets' must be an array of two integers");
  Entry e{name, Dtype::f32, {}, 0, 0};
  const std::string dt = j["dtype"].get<std::string>();
  if (dt == "F32") e.dtype = Dtype::f32;
  else if (dt == "F64") e.dtype = Dtype::f64;
  else if (dt == "I64") e.dtype = Dtype::i64;
  else bad(fmt::format("unsupported dtype '{}' (xgrad reads F32, F64 and I64)", dt));
  uint64_t numel = 1;
  for (const Json& d : j["shape"]) {
    if (!d.is_number_unsigned()) bad(fmt::format("shape entry {} is not a non-negative integer", d.dump()));
    uint64_t s = d.get<uint64_t>();
    if (s > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (s != 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / s))
      bad(fmt::format("shape {} is too large", j["shape"].dump()));
    numel *= s;
    e.shape.push_back(static_cast<int64_t>(s));
  }
  for (const Json& o : j["data_offsets"])
    if (!o.is_number_unsigned()) bad(fmt::format("data_offsets {} are not non-negative integers", j["data_offsets"].dump()));
  e.begin = j["data_offsets"][0].get<uint64_t>();
  e.end = j["data_offsets"][1].get<uint64_t>();
  if (e.begin > e.end) bad(fmt::format("data_offsets [{}, {}] are reversed", e.begin, e.end));
  if (e.end - e.begin != numel * dtype_size(e.dtype))
    bad(fmt::format("data_offsets [{}, {}] span {} bytes, but {} {} of shape {} need {}", e.begin, e.end,
                    e.end - e.begin, dt, numel == 1 ? "element" : "elements", e.shape, numel * dtype_size(e.dtype)));
  return e;
}

// The tensors must tile the data section exactly: no overlaps, no gaps, nothing past the end.
void check_layout(const std::string& path, std::vector<Entry> entries, uint64_t data_bytes) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t at = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    check(e.end <= data_bytes, "load_safetensors: '{}': tensor '{}': data_offsets [{}, {}] run past the {} data bytes "
          "(truncated file?)", path, e.name, e.begin, e.end, data_bytes);
    check(e.begin >= at, "load_safetensors: '{}': tensor '{}' (bytes [{}, {}]) overlaps '{}' (bytes [{}, {}])", path,
          e.name, e.begin, e.end, prev ? prev->name : "", prev ? prev->begin : 0, at);
    check(e.begin == at, "load_safetensors: '{}': bytes [{}, {}] of the data belong to no tensor", path, at, e.begin);
    at = e.end;
    prev = &e;
  }
  check(at == data_bytes, "load_safetensors: '{}': the data section has {} bytes but the tensors cover {}", path,
        data_bytes, at);
}

}  // namespace

Safetensors load_safetensors(const std::string& path) {
  std::error_code ec;
  check(std::filesystem::is_regular_file(path, ec), "load_safetensors: cannot open '{}': not a regular file{}", path,
        ec ? fmt::format(" ({})", ec.message()) : "");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  check(in.is_open(), "load_safetensors: cannot open '{}': {}", path, std::strerror(errno));
  const std::streamoff end = in.tellg();
  check(end >= 0, "load_safetensors: cannot read the size of '{}'", path);
  std::string bytes(static_cast<size_t>(end), '\0');
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  check(in.good() || bytes.empty(), "load_safetensors: reading '{}' failed", path);
  return parse_safetensors(bytes, path);
}

Safetensors parse_safetensors(std::string_view bytes, const std::string& path) {
  const uint64_t size = bytes.size();
  check(size >= 8, "load_safetensors: '{}': {} bytes is too short for the 8-byte header length", path, size);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  check(n <= size - 8, "load_safetensors: '{}': header length {} exceeds the {} bytes that follow (truncated file?)",
        path, n, size - 8);
  check(n <= max_header_bytes, "load_safetensors: '{}': header length {} exceeds the {}-byte limit", path, n,
        max_header_bytes);
  check(n > 0 && bytes[8] == '{', "load_safetensors: '{}': the header does not start with '{{'", path);

  // Duplicate top-level keys would otherwise be merged silently by the parser.
  std::set<std::string> keys;
  std::string duplicate;
  Json::parser_callback_t on_key = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && !keys.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  Json header;
  try {
    header = Json::parse(bytes.substr(8, n), on_key);
  } catch (const Json::exception& e) {
    fail("load_safetensors: '{}': the header is not valid JSON: {}", path, e.what());
  }
  check(header.is_object(), "load_safetensors: '{}': the header is not a JSON object", path);
  check(duplicate.empty(), "load_safetensors: '{}': the header names '{}' twice", path, duplicate);

  Safetensors out;
  std::vector<Entry> entries;
  for (const auto& [k, v] : header.items()) {
    if (k == "__metadata__") {
      check(v.is_object(), "load_safetensors: '{}': __metadata__ is not a JSON object", path);
      for (const auto& [mk, mv] : v.items()) {
        check(mv.is_string(), "load_safetensors: '{}': __metadata__ value of '{}' is not a string", path, mk);
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, k, v));
  }
  const uint64_t data_bytes = size - 8 - n;
  check_layout(path, entries, data_bytes);

  const char* data = bytes.data() + 8 + n;
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.impl().storage->data(), data + e.begin, e.end - e.begin);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

NamedTensors Safetensors::with_prefix(const std::string& prefix) const {
  NamedTensors out;
  for (const auto& [n, t] : tensors)
    if (n.size() > prefix.size() && n.compare(0, prefix.size(), prefix) == 0) out.emplace_back(n.substr(prefix.size()), t);
  return out;
}

NamedTensors prefixed(const std::string& prefix, const NamedTensors& tensors) {
  NamedTensors out;
  for (const auto& [n, t] : tensors) out.emplace_back(prefix + n, t);
  return out;
}

NamedTensors concat(NamedTensors a, const NamedTensors& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace xg::nn

// The protobuf wire-format writer.
#include "onnx/proto.hpp"

#include <bit>
#include <cstring>

namespace xg::onnx::proto {

static_assert(std::endian::native == std::endian::little, "fixed32 fields are written in host order");

void Writer::varint(uint64_t v) {
  while (v >= 0x80) {
    buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  buf_.push_back(static_cast<char>(v));
}

void Writer::varint_field(int field, int64_t v) {
  key(field, 0);
  varint(static_cast<uint64_t>(v));
}

void Writer::bytes_field(int field, std::string_view s) {
  key(field, 2);
  varint(s.size());
  buf_.append(s);
}

void Writer::float_field(int field, float v) {
  key(field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  buf_.append(b, 4);
}

}  // namespace xg::onnx::proto

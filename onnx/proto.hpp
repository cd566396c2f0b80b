// The protobuf wire format, write side only: enough to encode ONNX's messages (onnx.proto, proto2).
//
// A message is a sequence of fields, each a key (field number << 3 | wire type) as a varint, then
// the value: varint (int32/int64/enum, negative numbers as 10-byte two's complement), fixed32
// (float), or length-delimited (string, bytes, nested message). Repeated fields repeat the key
// (proto2's unpacked encoding, which every parser accepts).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace xg::onnx::proto {

class Writer {
 public:
  void varint_field(int field, int64_t v);           // int32, int64, enum
  void bytes_field(int field, std::string_view s);   // string, bytes
  void float_field(int field, float v);               // fixed32
  void message_field(int field, const Writer& m) { bytes_field(field, m.bytes()); }
  const std::string& bytes() const { return buf_; }

 private:
  void key(int field, int wire_type) { varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire_type)); }
  void varint(uint64_t v);
  std::string buf_;
};

}  // namespace xg::onnx::proto

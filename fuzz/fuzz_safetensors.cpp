// libFuzzer target for the .safetensors reader: any bytes either load or throw xg::Error, and what
// loads is consistent with its header (anything else escaping, or a sanitizer report, is a finding).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "nn/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  xg::nn::Safetensors st;
  try {
    st = xg::nn::parse_safetensors(bytes, "fuzz.safetensors");
  } catch (const xg::Error&) {
    return 0;
  }
  // Accepted: the tensors tile the data section exactly, so their bytes add up to what follows
  // the header, and every value can be read back.
  uint64_t header = 0;
  __builtin_memcpy(&header, data, 8);
  uint64_t total = 0;
  uint64_t checksum = 0;
  for (const auto& [name, t] : st.tensors) {
    if (name.empty() || name == "__metadata__") std::abort();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * xg::dtype_size(t.dtype());
    total += bytes;
    const auto* p = static_cast<const uint8_t*>(t.impl().storage->data());
    for (uint64_t i = 0; i < bytes; ++i) checksum += p[i];  // every byte readable (ASan checks)
  }
  if (total != size - 8 - header) std::abort();
  __asm__ volatile("" : : "r"(checksum));  // keeps the reads
  return 0;
}

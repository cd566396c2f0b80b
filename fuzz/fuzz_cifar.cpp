// libFuzzer target for the CIFAR-10 record decoder: any bytes either decode into whole records
// with labels 0..9 or throw xg::Error; decoded records read back as batches.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "data/cifar10.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xg::data;
  std::vector<int64_t> all;
  try {
    CIFAR10 d = CIFAR10::from_bytes(std::span<const uint8_t>(data, size), "fuzz.bin");
    if (static_cast<size_t>(d.size()) * kRecordBytes != size) std::abort();
    for (int64_t i = 0; i < d.size(); ++i) {
      if (d.label(i) != data[i * kRecordBytes] || d.label(i) >= kClasses) std::abort();
      if (d.image(i)[kImageBytes - 1] != data[(i + 1) * kRecordBytes - 1]) std::abort();
      all.push_back(i);
    }
    Batch b = d.get_batch(all);
    if (b.images.numel() != d.size() * kImageBytes) std::abort();
  } catch (const xg::Error&) {
  }
  return 0;
}

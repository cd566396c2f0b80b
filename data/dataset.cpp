// ImageDataset's get(i): bytes to f32 in [0, 1] and a 0-d label.
#include "data/dataset.hpp"

namespace xg::data {

void check_index(const char* op, int64_t i, int64_t size) {
  check(i >= 0 && i < size, "{}: index {} out of range for {} examples", op, i, size);
}

Example ImageDataset::get(int64_t i) const {
  check_index("ImageDataset::get", i, size());
  const Shape shape = image_shape();
  Tensor x = Tensor::empty(shape, Dtype::f32);
  const uint8_t* src = image(i);
  float* dst = x.data<float>();
  for (int64_t k = 0; k < x.numel(); ++k) dst[k] = static_cast<float>(src[k]) / 255.0f;
  return {x, scalar_tensor(static_cast<double>(label(i)), Dtype::i64)};
}

}  // namespace xg::data

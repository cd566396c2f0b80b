// Test-time augmentation: a model's logits averaged over mirrored and translated views of a batch.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "nn/module.hpp"

namespace xg::train {

struct TTAOptions {
  bool flip = true;                                   // each view averaged with its mirror image
  std::vector<std::pair<int64_t, int64_t>> shifts{};  // (dy, dx) translations, reflect-padded
  double shift_weight = 0.25;                         // each shifted view's weight; the image's is the rest
};

// images [N, C, H, W] shifted by (dy, dx): out[.., y, x] = images[.., r(y - dy), r(x - dx)] with the
// border filled by reflection (PyTorch's "reflect": the edge pixel is not repeated); |dy| < H, |dx| < W.
Tensor translate_reflect(const Tensor& images, int64_t dy, int64_t dx);

// The weighted mean of model(view) over the views (the images, then each shift), each view's
// logits averaged with those of its mirror image when `flip`. airbench's evaluation is
// {.flip = true, .shifts = {{-1, -1}, {1, 1}}, .shift_weight = 0.25}. Runs the model as it is (call
// eval() first); recording follows the caller's NoGradGuard.
Tensor tta_logits(nn::Module& model, const Tensor& images, const TTAOptions& options = {});

}  // namespace xg::train

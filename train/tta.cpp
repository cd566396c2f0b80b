// translate_reflect and tta_logits, composed of index_select, flip and the model's forward.
#include "train/tta.hpp"

#include "ops/ops.hpp"

namespace xg::train {

Tensor translate_reflect(const Tensor& images, int64_t dy, int64_t dx) {
  check(images.defined() && images.dim() == 4, "translate_reflect: images must be [N, C, H, W], got shape {}",
        images.defined() ? images.shape() : Shape{});
  const int64_t H = images.shape()[2], W = images.shape()[3];
  check(std::abs(dy) < H && std::abs(dx) < W, "translate_reflect: shift ({}, {}) needs images larger than it, got {}x{}",
        dy, dx, H, W);
  auto source = [](int64_t n, int64_t d) {
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      int64_t r = i - d;
      if (r < 0) r = -r;
      if (r >= n) r = 2 * (n - 1) - r;
      idx[static_cast<size_t>(i)] = r;
    }
    return from_vector(idx);
  };
  Tensor out = dy == 0 ? images : index_select(images, 2, source(H, dy));
  return dx == 0 ? out : index_select(out, 3, source(W, dx));
}

Tensor tta_logits(nn::Module& model, const Tensor& images, const TTAOptions& o) {
  const double rest = 1.0 - static_cast<double>(o.shifts.size()) * o.shift_weight;
  check(o.shift_weight >= 0 && rest >= 0, "tta_logits: {} shifts of weight {} leave the image a negative weight {}",
        o.shifts.size(), o.shift_weight, rest);
  auto view = [&](const Tensor& x) {
    Tensor y = model.forward(x);
    return o.flip ? (y + model.forward(flip(x, {3}))) * 0.5 : y;
  };
  Tensor logits = view(images);
  if (o.shifts.empty()) return logits;
  logits = logits * rest;
  for (const auto& [dy, dx] : o.shifts) logits = logits + view(translate_reflect(images, dy, dx)) * o.shift_weight;
  return logits;
}

}  // namespace xg::train

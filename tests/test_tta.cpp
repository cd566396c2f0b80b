// Test-time augmentation: reflect-padded translation by hand, and the weighted view average.
#include "helpers.hpp"
#include "train/tta.hpp"

using namespace xg;

namespace {
// A "model" that returns its input's pixels flattened, so the averaged views can be read back.
struct Pixels : nn::Module {
  Tensor forward(const Tensor& x) override { return flatten(x, 1); }
};
}  // namespace

TEST_CASE("translate_reflect: shifts with the border reflected, edge pixel not repeated") {
  Tensor x = reshape(arange(9, Dtype::f64), {1, 1, 3, 3});  // rows 0 1 2 / 3 4 5 / 6 7 8
  CHECK(train::translate_reflect(x, 1, 0).to_vector<double>() == std::vector<double>{3, 4, 5, 0, 1, 2, 3, 4, 5});
  CHECK(train::translate_reflect(x, 0, -1).to_vector<double>() == std::vector<double>{1, 2, 1, 4, 5, 4, 7, 8, 7});
  CHECK(train::translate_reflect(x, -1, 1).to_vector<double>() == std::vector<double>{4, 3, 4, 7, 6, 7, 4, 3, 4});
  CHECK(train::translate_reflect(x, 0, 0).same(x));
  CHECK_ERROR(train::translate_reflect(x, 3, 0), "translate_reflect: shift (3, 0) needs images larger than it, got 3x3");
  CHECK_ERROR(train::translate_reflect(zeros({3, 3}), 1, 0), "translate_reflect: images must be [N, C, H, W]");
}

TEST_CASE("tta_logits: the mirror average and airbench's weighted shifts, worked by hand") {
  Pixels m;
  Tensor x = reshape(arange(9, Dtype::f64), {1, 1, 3, 3});
  // flip only: each pixel averaged with its mirror: row (0 1 2) -> (1 1 1)
  CHECK(train::tta_logits(m, x).to_vector<double>() == std::vector<double>{1, 1, 1, 4, 4, 4, 7, 7, 7});
  // no flip, shifts (1, 0) and (-1, 0) at 0.25 each: 0.5 x + 0.25 up + 0.25 down
  Tensor t = train::tta_logits(m, x, {.flip = false, .shifts = {{1, 0}, {-1, 0}}});
  // first row: 0.5 (0 1 2) + 0.25 (3 4 5) + 0.25 (3 4 5)
  CHECK(allclose(slice(t, 1, 0, 3), from_vector<double>({1.5, 2.5, 3.5}, {1, 3})));
  CHECK_ERROR(train::tta_logits(m, x, {.shifts = {{1, 0}, {0, 1}, {1, 1}}, .shift_weight = 0.5}),
              "tta_logits: 3 shifts of weight 0.5 leave the image a negative weight -0.5");
  // a real model: the logits keep their shape, and flip + shifts stay differentiable
  nn::Linear lin(9, 4);
  Tensor xi = randn({2, 1, 3, 3});
  xi.requires_grad_();
  struct Head : nn::Module {
    nn::Linear* l;
    explicit Head(nn::Linear* p) : l(p) {}
    Tensor forward(const Tensor& v) override { return l->forward(flatten(v, 1)); }
  } head(&lin);
  Tensor out = train::tta_logits(head, xi, {.shifts = {{-1, -1}, {1, 1}}});
  CHECK(out.shape() == Shape{2, 4});
  sum(out).backward();
  CHECK(xi.grad().defined());
}

// Adaptive pooling, interpolate, embedding and their modules: values against direct loops and
// known results, gradcheck, errors.
#include <cmath>

#include "helpers.hpp"

using namespace xg;
using test::f64;
using test::leaf;

namespace {
// Adaptive pooling by its definition, one window at a time.
std::vector<double> adaptive_loop(const Tensor& x, int64_t OH, int64_t OW, bool is_max) {
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  auto v = x.to_vector<double>();
  std::vector<double> out;
  for (int64_t n = 0; n < N * C; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
        const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
        double acc = is_max ? -INFINITY : 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) {
            const double e = v[(n * H + h) * W + w];
            acc = is_max ? std::max(acc, e) : acc + e;
          }
        out.push_back(is_max ? acc : acc / static_cast<double>((h1 - h0) * (w1 - w0)));
      }
  return out;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-14));
}
}  // namespace

TEST_CASE("adaptive pooling: windows as PyTorch's, gradients") {
  Tensor x = leaf({2, 3, 5, 7}, 81);
  for (Pair2 s : {Pair2(3), Pair2(1), Pair2(5, 7), Pair2(2, 4), Pair2(7, 9)}) {
    check_close(adaptive_avg_pool2d(x, s).to_vector<double>(), adaptive_loop(x, s.h, s.w, false));
    check_close(adaptive_max_pool2d(x, s).to_vector<double>(), adaptive_loop(x, s.h, s.w, true));
  }
  CHECK(adaptive_avg_pool2d(x, {2, 4}).shape() == Shape{2, 3, 2, 4});
  // Sizes that divide evenly are plain average pooling.
  Tensor y = leaf({1, 2, 6, 4}, 82);
  CHECK(allclose(adaptive_avg_pool2d(y, {3, 2}), avg_pool2d(y, {.kernel = 2}), 1e-14, 0));
  CHECK(allclose(adaptive_max_pool2d(y, {3, 2}), max_pool2d(y, {.kernel = 2}), 0, 0));
  // An infinity stays in its own window.
  Tensor inf = f64({INFINITY, 1, 2, 3}, {1, 1, 1, 4});
  auto r = adaptive_avg_pool2d(inf, {1, 2}).to_vector<double>();
  CHECK(r[0] == INFINITY);
  CHECK(r[1] == 2.5);
  // Ties: the whole gradient to the first maximum in row-major window order.
  Tensor tie = f64({0, 5, 5, 0}, {1, 1, 2, 2});
  tie.requires_grad_();
  adaptive_max_pool2d(tie, 1).backward(ones({1, 1, 1, 1}, Dtype::f64));
  CHECK(tie.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 0});
  CHECK_GRADCHECK([](auto& v) { return adaptive_avg_pool2d(v[0], {3, 4}); }, {x});
  CHECK_GRADCHECK([](auto& v) { return adaptive_max_pool2d(v[0], {3, 4}); }, {x});
  CHECK_GRADCHECK([](auto& v) { return adaptive_avg_pool2d(v[0], {7, 9}); }, {x});
}

TEST_CASE("interpolate: nearest and bilinear as PyTorch") {
  Tensor x = f64({1, 2, 3, 4}, {1, 1, 2, 2});
  CHECK(interpolate(x, {.scale_factor = 2.0}).to_vector<double>() ==
        std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  CHECK(interpolate(x, {.size = Pair2{1, 3}}).to_vector<double>() == std::vector<double>{1, 1, 2});  // floor(o * 2/3)
  // F.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), scale_factor=2, mode="bilinear") (PyTorch's
  // documented behaviour: half-pixel centres, clamped at the border).
  check_close(interpolate(x, {.scale_factor = 2.0, .mode = "bilinear"}).to_vector<double>(),
              {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4});
  check_close(interpolate(x, {.size = 3, .mode = "bilinear", .align_corners = true}).to_vector<double>(),
              {1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4});
  // Down-sampling by a factor: output floor(5 * 0.5) = 2, sampled at (o + 0.5) * 2 - 0.5.
  Tensor row = f64({0, 10, 20, 30, 40}, {1, 1, 1, 5});
  check_close(interpolate(row, {.scale_factor = Scale2(1.0, 0.5), .mode = "bilinear"}).to_vector<double>(), {5, 25});
  Tensor g = leaf({2, 2, 3, 4}, 83);
  CHECK_GRADCHECK([](auto& v) { return interpolate(v[0], {.size = Pair2{5, 7}, .mode = "bilinear"}); }, {g});
  CHECK_GRADCHECK([](auto& v) { return interpolate(v[0], {.size = Pair2{2, 3}, .mode = "bilinear", .align_corners = true}); }, {g});
  CHECK_GRADCHECK([](auto& v) { return interpolate(v[0], {.scale_factor = Scale2(2.0, 1.5)}); }, {g});
  nn::Upsample up({.scale_factor = 2.0, .mode = "bilinear", .align_corners = false});
  CHECK(up(x).shape() == Shape{1, 1, 4, 4});
  CHECK(fmt::format("{}", up) == "Upsample(scale_factor=[2, 2], mode=bilinear, align_corners=false)");
}

TEST_CASE("embedding: lookup, padding_idx gets no gradient") {
  manual_seed(4);
  nn::Embedding emb(5, 3, -1);  // padding row 4
  CHECK(emb.padding_idx() == 4);
  CHECK(emb.weight().to_vector<float>()[12] == 0.0f);
  Tensor idx = from_vector<int64_t>({4, 0, 2, 0, 4, 1}, {2, 3});
  Tensor out = emb(idx);
  CHECK(out.shape() == Shape{2, 3, 3});
  CHECK(slice(flatten(out), 0, 3, 6).to_vector<float>() == slice(flatten(emb.weight()), 0, 0, 3).to_vector<float>());
  sum(mul(out, out)).backward();
  auto gw = emb.weight().grad().to_vector<float>();
  CHECK(std::vector<float>(gw.begin() + 12, gw.end()) == std::vector<float>{0, 0, 0});
  CHECK(gw[0] == 2 * 2 * emb.weight().to_vector<float>()[0]);  // row 0 used twice
  CHECK(fmt::format("{}", emb) == "Embedding(5, 3, padding_idx=4)");
  Tensor w = leaf({6, 4}, 84);
  Tensor ids = from_vector<int64_t>({1, 5, 1, 3});
  CHECK_GRADCHECK([ids](auto& v) { return embedding(ids, v[0]); }, {w});
  // With a padding index among the ids, the tape's gradient is 0 there on purpose (central
  // differences are not); away from it, the masked path is checked.
  CHECK_GRADCHECK([ids](auto& v) { return embedding(ids, v[0], 0); }, {w});
}

TEST_CASE("resize errors") {
  Tensor x = zeros({1, 1, 4, 4});
  CHECK_ERROR(adaptive_avg_pool2d(zeros({4, 4}), 2), "adaptive_avg_pool2d: input must be 4-D (N,C,H,W), got shape [4,4]");
  CHECK_ERROR(adaptive_max_pool2d(x, {0, 2}), "adaptive_max_pool2d: output size must be positive, got (0, 2)");
  CHECK_ERROR(adaptive_avg_pool2d(zeros({1, 1, 0, 4}), 2), "adaptive_avg_pool2d: input shape [1,1,0,4] has an empty spatial dim");
  CHECK_ERROR(adaptive_avg_pool2d(zeros({1, 1, 4, 4}, Dtype::i64), 2), "adaptive_avg_pool2d: input must be f32 or f64, got i64");
  CHECK_ERROR(interpolate(x, {.size = 2, .mode = "bicubic"}), "interpolate: mode must be \"nearest\" or \"bilinear\", got \"bicubic\"");
  CHECK_ERROR(interpolate(x, {}), "interpolate: give exactly one of size and scale_factor");
  CHECK_ERROR(interpolate(x, {.size = 2, .scale_factor = 2.0}), "interpolate: give exactly one of size and scale_factor");
  CHECK_ERROR(interpolate(x, {.size = 2, .align_corners = true}), "interpolate: align_corners can only be set with mode \"bilinear\", got mode \"nearest\"");
  CHECK_ERROR(interpolate(x, {.size = Pair2{2, -1}}), "interpolate: size must be positive, got (2, -1)");
  CHECK_ERROR(interpolate(x, {.scale_factor = 0.1}), "interpolate: scale_factor (0.1, 0.1) gives an empty output for input shape [1,1,4,4]");
  CHECK_ERROR(interpolate(x, {.scale_factor = -2.0}), "interpolate: scale_factor must be positive, got (-2, -2)");
  CHECK_ERROR(nn::Upsample({.scale_factor = 2.0, .mode = "linear"}), "Upsample: mode must be \"nearest\" or \"bilinear\", got \"linear\"");
  CHECK_ERROR(nn::Upsample({.size = 0}), "Upsample: output_size must be positive, got (0, 0)");
  CHECK_ERROR(nn::AdaptiveAvgPool2d(0), "AdaptiveAvgPool2d: output_size must be positive, got (0, 0)");
  CHECK_ERROR(embedding(from_vector<int64_t>({0, 6}), zeros({6, 2})), "embedding: index 6 at position 1 is out of range for 6 embeddings");
  CHECK_ERROR(embedding(zeros({2}), zeros({6, 2})), "embedding: input must be an i64 tensor");
  CHECK_ERROR(embedding(from_vector<int64_t>({0}), zeros({6})), "embedding: weight must be 2-D [num_embeddings, dim], got shape [6]");
  CHECK_ERROR(nn::Embedding(5, 3, 5), "Embedding: padding_idx 5 is out of range for 5 embeddings");
  CHECK_ERROR(nn::Embedding(0, 3), "Embedding: num_embeddings and embedding_dim must be positive, got 0 and 3");
}

// patch_whitening: the filters decorrelate the patches they were computed from, come in +/- pairs,
// are ordered by eigenvalue, and bad input is refused.
#include "helpers.hpp"

using namespace xg;

TEST_CASE("patch_whitening: the whitened patches have second moments lambda / (lambda + eps)") {
  // Correlated channels: channel 1 = channel 0 + small noise, channel 2 independent and larger.
  manual_seed(3);
  Tensor base = randn({40, 1, 6, 6}, Dtype::f64);
  Tensor images = cat({base, base + randn({40, 1, 6, 6}, Dtype::f64) * 0.1, randn({40, 1, 6, 6}, Dtype::f64) * 3.0}, 1);
  const double eps = 1e-9;  // far below the smallest eigenvalue (about 0.005): outputs have unit moments
  Tensor w = data::patch_whitening(images, 2, eps);
  REQUIRE(w.shape() == Shape{24, 3, 2, 2});
  // the second half is the first negated
  CHECK(allclose(slice(w, 0, 12, 24), neg(slice(w, 0, 0, 12)), 0, 0));
  // the whitened outputs of the first 12 filters: second-moment matrix ~ identity
  Tensor y = conv2d(images, slice(w, 0, 0, 12));               // [40, 12, 5, 5]
  Tensor flat = reshape(permute(y, {0, 2, 3, 1}), {-1, 12});  // one row per patch
  Tensor M = matmul(transpose(flat, 0, 1), flat) / static_cast<double>(flat.shape()[0]);
  Tensor identity = zeros({12, 12}, Dtype::f64);
  for (int64_t k = 0; k < 12; ++k) identity.data<double>()[k * 13] = 1.0;
  CHECK(allclose(M, identity, 1e-6, 1e-4));
  // filters ordered from the largest eigenvalue: the first filter has the smallest norm
  std::vector<double> norms;
  for (int64_t k = 0; k < 12; ++k) norms.push_back(sum(slice(w, 0, k, k + 1) * slice(w, 0, k, k + 1)).item<double>());
  for (size_t k = 1; k < norms.size(); ++k) CHECK(norms[k - 1] <= norms[k] * (1 + 1e-9));
  // f32 images give f32 filters equal to the f64 ones to rounding
  Tensor w32 = data::patch_whitening(images.to(Dtype::f32), 2, eps);
  CHECK(w32.dtype() == Dtype::f32);
}

TEST_CASE("patch_whitening: bad input") {
  CHECK_ERROR(data::patch_whitening(zeros({2, 3, 4})), "patch_whitening: images must be [N, C, H, W], got shape [2,3,4]");
  CHECK_ERROR(data::patch_whitening(zeros({2, 3, 4, 4}, Dtype::i64)), "patch_whitening: images must be f32 or f64");
  CHECK_ERROR(data::patch_whitening(zeros({2, 3, 4, 4}), 5), "patch_whitening: patch 5 does not fit images of 4x4");
  CHECK_ERROR(data::patch_whitening(zeros({2, 3, 4, 4}), 2, 0.0), "patch_whitening: eps must be positive");
  CHECK_ERROR(data::patch_whitening(zeros({1, 3, 2, 2}), 2), "patch_whitening: 1 patches cannot estimate a 12x12");
  Tensor bad = zeros({2, 1, 3, 3});
  bad.data<float>()[4] = NAN;
  CHECK_ERROR(data::patch_whitening(bad), "patch_whitening: the images hold non-finite values");
}

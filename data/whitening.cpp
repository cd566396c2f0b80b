// patch_whitening: the patches' second moments summed per block of images (fixed order), then one
// symmetric eigendecomposition.
#include "data/whitening.hpp"

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xarray.hpp>

#include <cmath>
#include <vector>

#include "autograd/parallel.hpp"

namespace xg::data {

Tensor patch_whitening(const Tensor& images, int64_t patch, double eps) {
  check(images.defined() && images.dim() == 4, "patch_whitening: images must be [N, C, H, W], got shape {}",
        images.defined() ? images.shape() : Shape{});
  check(is_floating(images.dtype()), "patch_whitening: images must be f32 or f64, got {}", dtype_name(images.dtype()));
  const int64_t N = images.shape()[0], C = images.shape()[1], H = images.shape()[2], W = images.shape()[3];
  check(patch >= 1 && patch <= H && patch <= W, "patch_whitening: patch {} does not fit images of {}x{}", patch, H, W);
  check(eps > 0 && std::isfinite(eps), "patch_whitening: eps must be positive, got {}", eps);
  const int64_t D = C * patch * patch, HO = H - patch + 1, WO = W - patch + 1, count = N * HO * WO;
  check(count >= D, "patch_whitening: {} patches cannot estimate a {}x{} second-moment matrix", count, D, D);

  // Per block of images, the upper triangle of sum(patch patch^T); blocks summed in order after.
  const int64_t blocks = std::min<int64_t>(N, 64);
  std::vector<double> partial(static_cast<size_t>(blocks * D * D), 0.0);
  Tensor x = images.to(Dtype::f64);
  const double* px = x.data<double>();
  parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<double> v(static_cast<size_t>(D));
    for (int64_t b = lo; b < hi; ++b) {
      double* S = partial.data() + b * D * D;
      for (int64_t n = N * b / blocks; n < N * (b + 1) / blocks; ++n)
        for (int64_t y = 0; y < HO; ++y)
          for (int64_t z = 0; z < WO; ++z) {
            int64_t k = 0;
            for (int64_t c = 0; c < C; ++c)
              for (int64_t i = 0; i < patch; ++i)
                for (int64_t j = 0; j < patch; ++j) v[k++] = px[((n * C + c) * H + y + i) * W + z + j];
            for (int64_t a = 0; a < D; ++a)
              for (int64_t b2 = a; b2 < D; ++b2) S[a * D + b2] += v[a] * v[b2];
          }
    }
  });
  xt::xarray<double> S = xt::zeros<double>({static_cast<size_t>(D), static_cast<size_t>(D)});
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t a = 0; a < D; ++a)
      for (int64_t c = a; c < D; ++c) S(a, c) += partial[b * D * D + a * D + c];
  for (int64_t a = 0; a < D; ++a)
    for (int64_t c = a; c < D; ++c) S(c, a) = S(a, c) /= static_cast<double>(count);
  check(xt::all(xt::isfinite(S)), "patch_whitening: the images hold non-finite values");

  auto [lambda, vectors] = xt::linalg::eigh(S);  // ascending; eigenvectors in the columns
  std::vector<double> w(static_cast<size_t>(2 * D * D));
  for (int64_t k = 0; k < D; ++k) {
    const int64_t col = D - 1 - k;  // largest eigenvalue first
    const double scale = 1.0 / std::sqrt(std::max(lambda(col), 0.0) + eps);
    for (int64_t d = 0; d < D; ++d) {
      w[k * D + d] = vectors(d, col) * scale;
      w[(D + k) * D + d] = -vectors(d, col) * scale;
    }
  }
  return from_vector(w, {2 * D, C, patch, patch}).to(images.dtype());
}

}  // namespace xg::data

// Patch whitening: the filters of a convolution that decorrelates an image set's p x p patches (the
// first layer of the fastest CIFAR-10 recipes, frozen there).
#pragma once

#include <cstdint>

#include "autograd/tensor.hpp"

namespace xg::data {

// From images [N, C, H, W] (f32 or f64, usually normalised per channel): the second-moment matrix
// S = mean over every p x p patch (stride 1, no padding) of patch patch^T, D = C p p, its
// eigendecomposition (LAPACK's symmetric solver through xtensor-blas), and the filters
// v_k / sqrt(lambda_k + eps) for the eigenvalues from the largest down, followed by their negations:
// weights [2 D, C, p, p] in the images' dtype, each filter laid out as the conv weight's [C, p, p].
// Applied without padding, the first D output channels have second moments lambda_k / (lambda_k + eps).
Tensor patch_whitening(const Tensor& images, int64_t patch = 2, double eps = 5e-4);

}  // namespace xg::data

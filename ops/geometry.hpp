// Argument checks and output sizes shared by the fused layer kernels and their references, so both
// reject the same inputs with the same messages. N, C, H, W: batch, channels, height, width;
// F: filters; KH, KW: kernel; HO, WO: output size.
#pragma once

#include "ops/ops.hpp"

namespace xg::detail {

// A convolution in conv2d's terms: input [N,C,H,W], weight [F,C/G,KH,KW], output [N,F,HO,WO];
// D: dilation, G: groups.
struct ConvGeometry {
  int64_t N, C, H, W, F, KH, KW, HO, WO, SH, SW, PH, PW;
  int64_t DH = 1, DW = 1, G = 1;
};
ConvGeometry conv_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o,
                           const char* op);
// conv_transpose2d(x, weight) is the input gradient of the convolution returned here: its output
// [N,F,HO,WO] has x's shape (F = C_in) and its input [N,C,H,W] the transposed convolution's output.
ConvGeometry conv_transpose_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                     const ConvTranspose2dOptions& o, const char* op);

// HO, WO follow PyTorch's rule with ceil_mode; a window may then reach past the bottom/right padding.
struct PoolGeometry {
  int64_t N, C, H, W, KH, KW, HO, WO, SH, SW, PH, PW;
  int64_t DH = 1, DW = 1;
  bool ceil_mode = false, count_include_pad = true;
};
PoolGeometry pool_geometry(const Tensor& x, const Pool2dOptions& o, const char* op);
// The same checks for an input of this shape (its dtype checked elsewhere).
PoolGeometry pool_geometry(const Shape& shape, const Pool2dOptions& o, const char* op);
// The common 2x2 window at stride 2, no padding or dilation: windows never overlap, and every
// input outside the last row or column (odd sizes) belongs to exactly one of them.
inline bool pairs(const PoolGeometry& g) {
  return g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && g.PH == 0 && g.PW == 0 && g.DH == 1 && g.DW == 1 &&
         2 * g.HO <= g.H && 2 * g.WO <= g.W;
}

// Checks batch_norm's arguments; returns C.
int64_t check_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                         const Tensor& running_var, bool training, double momentum, double eps, const char* op);
// An xg::Error unless act is one of PostActivation's values (a cast from an integer may not be).
void check_post_activation(PostActivation act, const char* op);
// act(y) with the library's relu and gelu ops: what batch_norm_activation computes after the norm.
Tensor apply_post_activation(const Tensor& y, PostActivation act);

}  // namespace xg::detail

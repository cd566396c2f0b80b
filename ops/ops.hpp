// The op index: every functional op of xgrad, differentiable where it makes sense.
// Dims may be negative (counted from the end). Families live in ops/<family>.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autograd/tensor.hpp"
#include "autograd/trace.hpp"

namespace xg {

using Dims = std::vector<int64_t>;

// elementwise.cpp: binary ops broadcast as NumPy and promote dtypes as PyTorch (i64 < f32 < f64).
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties split the gradient evenly
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond != 0 picks a
Tensor where(const Tensor& cond, const Tensor& a, double b);
// Comparisons give i64 0/1 tensors (xgrad's stand-in for bool); never differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor eq(const Tensor& a, double b);

// unary.cpp
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, double p);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);  // not differentiable (zero gradient)
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);  // gradient passes where lo <= x <= hi
Tensor clamp_min(const Tensor& x, double lo);

// activation.cpp: compositions of primitives, with PyTorch's definitions and gradients.
Tensor erf(const Tensor& x);  // the one custom op here; its backward differentiates again
// x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); "tanh": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor silu(const Tensor& x);                          // x sigmoid(x)
Tensor elu(const Tensor& x, double alpha = 1.0);       // x > 0 ? x : alpha (exp(x) - 1)
// beta x > threshold ? x : log(1 + exp(beta x)) / beta, stable for any x.
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
Tensor hardswish(const Tensor& x);                     // x relu6(x + 3) / 6
Tensor mish(const Tensor& x);                          // x tanh(softplus(x))

// reduce.cpp
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const Dims& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Dims& dims, bool keepdim = false);
Tensor var(const Tensor& x, const Dims& dims, bool unbiased = true, bool keepdim = false);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);  // values; gradient to the argmax
Tensor min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);  // over all elements
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // i64; ties to the first
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// Sums `g` down to `shape` over the dims broadcasting expanded (the backward of broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);

// shape.cpp
Tensor reshape(const Tensor& x, const Shape& shape);  // one -1 allowed; shares storage
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor permute(const Tensor& x, const Dims& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor flip(const Tensor& x, const Dims& dims);  // reverses the order along each of dims (copies)
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor pad(const Tensor& x, const Dims& pads, double value = 0.0);  // F.pad order: last dim first
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x);  // every size-1 dim
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast to shape (copies)

// index.cpp: PyTorch's gather/scatter_add/index_select, enough to express windows and im2col.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor one_hot(const Tensor& labels, int64_t num_classes, Dtype dtype = Dtype::f32);

// linalg.cpp
Tensor matmul(const Tensor& a, const Tensor& b);  // 1-D, 2-D and batched (broadcast batch dims)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());  // weight [out, in]
// Euclidean distances between the rows of x1 [N, D] and x2 [M, D]: [N, M] (torch.cdist with p = 2).
// Not differentiable where a distance is 0.
Tensor cdist(const Tensor& x1, const Tensor& x2);
// How f32 matrix products (matmul, linear, and the convolutions' GEMMs) compute, as
// torch.set_float32_matmul_precision: "highest" (the default) and "high" keep f32 throughout (a CPU
// has no TF32); "medium" rounds both inputs of each product to bfloat16 and sums in f32, on Intel AMX
// through oneDNN (bf16_matmul_available(); elsewhere "medium" computes as "highest"). f64 never
// changes. Process-wide; set it while no op runs.
void set_float32_matmul_precision(const std::string& precision);
std::string get_float32_matmul_precision();
bool bf16_matmul_available();

// loss.cpp
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Losses take PyTorch's options. reduction: "mean" (the default), "sum", or "none" (per element).
struct NLLLossOptions {
  Tensor weight{};                 // [C] per-class weights, or undefined (all 1)
  int64_t ignore_index = -100;     // targets equal to it add nothing, to the loss or to the mean's divisor
  std::string reduction = "mean";  // "mean": the sum of w[y_i] * loss_i over the sum of w[y_i]
};
struct CrossEntropyOptions {
  Tensor weight{};
  int64_t ignore_index = -100;
  std::string reduction = "mean";
  // e in [0, 1]: the target puts 1 - e on the label and e / C on every class; with weights, the
  // smoothing term weighs class c by weight[c] and "mean" divides it by the same sum as nll_loss.
  double label_smoothing = 0.0;
};
// log_probs / logits [N, C] or [N, C, d1, ...] (classes on dim 1), labels i64 [N] or [N, d1, ...]
// in [0, C) unless equal to ignore_index; "none" gives the loss per label.
Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, const NLLLossOptions& opts = {});
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyOptions& opts = {});
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing);  // {.label_smoothing}
// weight multiplies each element's loss (broadcast to the input); pos_weight the positive term (broadcast, e.g.
// [C] over [N, C]): loss = -w (pos_weight y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), computed stably.
struct BCEWithLogitsOptions {
  Tensor weight{};
  std::string reduction = "mean";
  Tensor pos_weight{};
};
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const BCEWithLogitsOptions& opts = {});
// d = input - target: |d| < beta ? 0.5 d^2 / beta : |d| - 0.5 beta (beta = 0: |d|).
struct SmoothL1LossOptions {
  std::string reduction = "mean";
  double beta = 1.0;
};
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossOptions& opts = {});
// |d| < delta ? 0.5 d^2 : delta (|d| - 0.5 delta), i.e. delta * smooth_l1 with beta = delta.
struct HuberLossOptions {
  std::string reduction = "mean";
  double delta = 1.0;
};
Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberLossOptions& opts = {});
// input holds log-probabilities; target probabilities (log-probabilities with log_target):
// target (log target - input) per element, 0 where target is 0. "batchmean" divides the sum by N,
// the true KL divergence per sample; "mean" divides by the element count, as PyTorch.
struct KLDivOptions {
  std::string reduction = "mean";
  bool log_target = false;
};
Tensor kl_div(const Tensor& input, const Tensor& target, const KLDivOptions& opts = {});
Tensor multi_margin_loss(const Tensor& scores, const Tensor& labels);  // margin 1, / C, mean over N
Tensor mse_loss(const Tensor& input, const Tensor& target);

// random.cpp
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);  // inverted; p drops

// Layers (layers.hpp for the options). conv2d, conv_transpose2d, max_pool2d, avg_pool2d and batch_norm are
// fused ops with hand-written kernels (ops/fused/); xg::ref:: holds their compositions from primitives.
struct Pair2 {  // a size for H and W: 3 or {3, 1}
  int64_t h, w;
  Pair2(int64_t v) : h(v), w(v) {}  // NOLINT: implicit on purpose
  Pair2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  bool operator==(const Pair2&) const = default;
};
struct Conv2dOptions {
  Pair2 stride = 1;
  Pair2 padding = 0;   // zeros
  Pair2 dilation = 1;  // spacing between kernel taps: the kernel spans dilation * (K - 1) + 1
  int64_t groups = 1;  // channels split into groups convolved separately; groups = C is depthwise
};
struct ConvTranspose2dOptions {
  Pair2 stride = 1;
  Pair2 padding = 0;         // removed from each side of the full output
  Pair2 output_padding = 0;  // added to the bottom/right; smaller than stride or dilation
  int64_t groups = 1;
  Pair2 dilation = 1;
};
struct Pool2dOptions {
  Pair2 kernel = 2;
  Pair2 stride = 0;   // 0: the kernel size, as PyTorch's default
  Pair2 padding = 0;  // max: -inf padding; avg: zeros, counted in the average unless !count_include_pad
  Pair2 dilation = 1;  // max_pool2d only
  // Output size rounded up, as PyTorch: the last window must start inside the input or the left
  // padding; windows reaching past the right padding are cut there.
  bool ceil_mode = false;
  // avg_pool2d only: the divisor is the window's size within the padded input (true) or the number
  // of its positions inside the input (false).
  bool count_include_pad = true;
};
// x [N,C,H,W], weight [F,C/groups,KH,KW], bias [F] or undefined. Output size along H:
// (H + 2 PH - DH (KH - 1) - 1) / SH + 1.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dOptions& opts = {});
// The adjoint of conv2d in its input (PyTorch's ConvTranspose2d): x [N,C_in,H,W], weight
// [C_in,C_out/groups,KH,KW], bias [C_out]. Output size along H: (H - 1) SH - 2 PH + DH (KH - 1) + OPH + 1.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        const ConvTranspose2dOptions& opts = {});
// When several positions of a window tie for the maximum, the whole gradient goes to the first of
// them in row-major window order (one position, as in PyTorch), in both the fused and the ref op.
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts = {});
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts = {});
// x [N,C] or [N,C,H,W]; gamma/beta [C] or undefined. In training, normalises with the biased batch
// variance and updates the running stats in place (when defined) with the unbiased one:
// running = (1 - momentum) * running + momentum * batch. In eval, uses the running stats.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);
// The activation batch_norm_activation applies to the normalised values.
enum class PostActivation { none, relu, gelu };  // gelu: the exact (erf) form
const char* post_activation_name(PostActivation act);  // "none", "relu", "gelu"
// act(batch_norm(...)) as one fused op: the same values and gradients as the two ops (to float
// rounding), with one pass less over the tensor each way and no normalised tensor in between kept
// for the backward. While tracing (ONNX export) it records batch_norm and then the activation.
Tensor batch_norm_activation(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             PostActivation act);
// Compositions of primitives only (layers.cpp).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& gamma = Tensor(),
                  const Tensor& beta = Tensor(), double eps = 1e-5);
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& gamma = Tensor(), const Tensor& beta = Tensor(),
                  double eps = 1e-5);

// resize.cpp: compositions of index_select, max, sum, where and matmul.
// PyTorch's adaptive windows: output o along a dim of size L covers [floor(o L / out), ceil((o + 1) L / out)).
Tensor adaptive_avg_pool2d(const Tensor& x, Pair2 output_size);
Tensor adaptive_max_pool2d(const Tensor& x, Pair2 output_size);  // the values; ties: the first, row-major
struct Scale2 {  // a scale factor for H and W: 2.0 or {2.0, 1.5}
  double h, w;
  Scale2(double v) : h(v), w(v) {}  // NOLINT: implicit on purpose
  Scale2(double h_, double w_) : h(h_), w(w_) {}
};
struct InterpolateOptions {
  std::optional<Pair2> size{};          // exactly one of size and scale_factor
  std::optional<Scale2> scale_factor{};  // output = floor(input * factor); sampling uses 1 / factor
  std::string mode = "nearest";         // or "bilinear"
  std::optional<bool> align_corners{};  // bilinear only (default false), as PyTorch
};
// x [N, C, H, W]; PyTorch's sampling: nearest takes floor(o * scale), bilinear samples
// (o + 0.5) * scale - 0.5 (or o (in - 1) / (out - 1) with align_corners).
Tensor interpolate(const Tensor& x, const InterpolateOptions& opts);
// Rows of weight [num_embeddings, dim] picked by the i64 input: input.shape + [dim]. The row of
// padding_idx gets no gradient.
Tensor embedding(const Tensor& input, const Tensor& weight, std::optional<int64_t> padding_idx = std::nullopt);

namespace ref {  // the executable specifications of the fused ops, from primitives (ops/ref/)
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dOptions& opts = {});
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        const ConvTranspose2dOptions& opts = {});
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts = {});
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts = {});
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);
Tensor gelu(const Tensor& x);  // the exact form, 0.5 x (1 + erf(x / sqrt 2))
Tensor batch_norm_activation(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             PostActivation act);
}  // namespace ref

// Operators.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

}  // namespace xg

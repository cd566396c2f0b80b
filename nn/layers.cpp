// Linear, Conv2d, ConvTranspose2d, pooling, Flatten, Dropout and the activations: checks, initialisation, forward.
#include "nn/layers.hpp"

#include <cmath>

#include "autograd/grad_mode.hpp"
#include "autograd/trace.hpp"
#include "nn/init.hpp"
#include "nn/reference_ops.hpp"
#include "ops/fused/inference.hpp"
#include "ops/fused/pooled.hpp"

namespace xg::nn {

namespace {
// torch's reset_parameters for Linear and Conv2d: weight kaiming_uniform(a = sqrt(5)), bias
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void reset_weight_and_bias(const Tensor& weight, const Tensor& bias) {
  NoGradGuard no_grad;
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).first;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

// Checks a pooling module's options and turns them into the functional op's.
template <class O>
Pool2dOptions pool_options(const O& o, const char* module) {
  check(o.kernel_size.h > 0 && o.kernel_size.w > 0, "{}: kernel_size must be positive, got ({}, {})", module,
        o.kernel_size.h, o.kernel_size.w);
  Pair2 stride = o.stride.value_or(o.kernel_size);
  check(stride.h > 0 && stride.w > 0, "{}: stride must be positive, got ({}, {})", module, stride.h, stride.w);
  check(o.padding.h >= 0 && o.padding.w >= 0 && 2 * o.padding.h <= o.kernel_size.h &&
            2 * o.padding.w <= o.kernel_size.w,
        "{}: padding ({}, {}) must be non-negative and at most half of kernel_size ({}, {})", module, o.padding.h,
        o.padding.w, o.kernel_size.h, o.kernel_size.w);
  Pool2dOptions p{.kernel = o.kernel_size, .stride = stride, .padding = o.padding, .ceil_mode = o.ceil_mode};
  if constexpr (requires { o.dilation; }) {
    check(o.dilation.h > 0 && o.dilation.w > 0, "{}: dilation must be positive, got ({}, {})", module, o.dilation.h,
          o.dilation.w);
    p.dilation = o.dilation;
  }
  if constexpr (requires { o.count_include_pad; }) p.count_include_pad = o.count_include_pad;
  return p;
}

// Checks the options conv modules share.
template <class O>
void check_conv_options(const O& o, const char* module) {
  check(o.in_channels > 0 && o.out_channels > 0, "{}: in_channels and out_channels must be positive, got {} and {}",
        module, o.in_channels, o.out_channels);
  check(o.kernel_size.h > 0 && o.kernel_size.w > 0, "{}: kernel_size must be positive, got ({}, {})", module,
        o.kernel_size.h, o.kernel_size.w);
  check(o.stride.h > 0 && o.stride.w > 0, "{}: stride must be positive, got ({}, {})", module, o.stride.h, o.stride.w);
  check(o.padding.h >= 0 && o.padding.w >= 0, "{}: padding must be non-negative, got ({}, {})", module, o.padding.h,
        o.padding.w);
  check(o.dilation.h > 0 && o.dilation.w > 0, "{}: dilation must be positive, got ({}, {})", module, o.dilation.h,
        o.dilation.w);
  check(o.groups > 0 && o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0,
        "{}: groups {} must be positive and divide in_channels {} and out_channels {}", module, o.groups,
        o.in_channels, o.out_channels);
}

void check_image(const Tensor& x, const char* module) {
  check(x.defined(), "{}: undefined input", module);
  check(x.dim() == 4, "{}: input must be 4-D (N,C,H,W), got shape {}", module, x.shape());
}

// A convolution module's input: an image batch with in_channels channels, in the weight's dtype.
void check_conv_input(const Tensor& x, int64_t in_channels, const Tensor& weight, const char* module) {
  check_image(x, module);
  check(x.shape()[1] == in_channels, "{}: input shape {} has {} channels, but in_channels is {}", module, x.shape(),
        x.shape()[1], in_channels);
  check(x.dtype() == weight.dtype(), "{}: input dtype {} does not match weight dtype {}", module,
        dtype_name(x.dtype()), dtype_name(weight.dtype()));
}

// A fused layer's ReLU goes into its output pass when nothing needs to see the two ops apart: no
// gradient to record, no ONNX tracer, no switch to the reference ops.
bool epilogue_applies(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const bool grad = GradMode::is_enabled() &&
                    (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  return !grad && !trace::enabled() && !use_reference_ops();
}
}  // namespace

Linear::Linear(const LinearOptions& o) : options_(o) {
  check(o.in_features > 0 && o.out_features > 0, "Linear: in_features and out_features must be positive, got {} and {}",
        o.in_features, o.out_features);
  weight_ = register_parameter("weight", Tensor::empty({o.out_features, o.in_features}));
  if (o.bias) bias_ = register_parameter("bias", Tensor::empty({o.out_features}));
  reset_parameters();
}

void Linear::reset_parameters() { reset_weight_and_bias(weight_, bias_); }

Tensor Linear::forward(const Tensor& x) {
  check(x.defined(), "Linear: undefined input");
  check(x.dim() >= 1 && x.shape().back() == options_.in_features,
        "Linear: input shape {} does not match in_features {}", x.shape(), options_.in_features);
  check(x.dtype() == weight_.dtype(), "Linear: input dtype {} does not match weight dtype {}", dtype_name(x.dtype()),
        dtype_name(weight_.dtype()));
  if (fused_.any()) detail::check_fused_eval(*this);
  if (!epilogue_applies(x, weight_, bias_)) return fused_.relu ? relu(linear(x, weight_, bias_)) : linear(x, weight_, bias_);
  const bool packed = packed_weight_.defined() && packed_version_ == weight_.version();
  if (!packed && !fused_.relu) return linear(x, weight_, bias_);
  return xg::detail::linear_inference(x, weight_, bias_, packed ? packed_weight_ : Tensor(), fused_.relu);
}

Conv2d::Conv2d(const Conv2dOptions& o) : options_(o) {
  check_conv_options(o, "Conv2d");
  weight_ = register_parameter(
      "weight", Tensor::empty({o.out_channels, o.in_channels / o.groups, o.kernel_size.h, o.kernel_size.w}));
  if (o.bias) bias_ = register_parameter("bias", Tensor::empty({o.out_channels}));
  reset_parameters();
}

void Conv2d::reset_parameters() { reset_weight_and_bias(weight_, bias_); }

Tensor Conv2d::forward(const Tensor& x) {
  check_conv_input(x, options_.in_channels, weight_, "Conv2d");
  const Conv2dOptions& o = options_;
  const xg::Conv2dOptions opts{.stride = o.stride, .padding = o.padding, .dilation = o.dilation, .groups = o.groups};
  if (fused_.any()) detail::check_fused_eval(*this);
  if (!fused_.relu) return detail::conv2d(x, weight_, bias_, opts);
  return epilogue_applies(x, weight_, bias_) ? xg::detail::conv2d_relu_inference(x, weight_, bias_, opts)
                                             : relu(detail::conv2d(x, weight_, bias_, opts));
}

Tensor Conv2d::forward_pooled(const Tensor& x, bool relu, const MaxPool2d& pool) {
  check_conv_input(x, options_.in_channels, weight_, "Conv2d");
  const Conv2dOptions& o = options_;
  const xg::Conv2dOptions opts{.stride = o.stride, .padding = o.padding, .dilation = o.dilation, .groups = o.groups};
  if (!epilogue_applies(x, weight_, bias_)) {
    // Recording: the conv and the pool as one op where a kernel takes both. max(relu(v)) = relu(max(v)),
    // NaN and the gradient's path included (as nn::Sequential's relu_after_pool).
    if (!fused_.any() && !use_reference_ops() && !trace::enabled()) {
      const Tensor y = xg::detail::conv2d_max_pool2d(x, weight_, bias_, opts, pool.options());
      return relu ? xg::relu(y) : y;
    }
    const Tensor y = forward(x);
    return detail::max_pool2d(relu ? xg::relu(y) : y, pool.options());
  }
  if (fused_.any()) detail::check_fused_eval(*this);
  return xg::detail::conv2d_pool_inference(x, weight_, bias_, opts, relu || fused_.relu, pool.options());
}

ConvTranspose2d::ConvTranspose2d(const ConvTranspose2dOptions& o) : options_(o) {
  check_conv_options(o, "ConvTranspose2d");
  check(o.output_padding.h >= 0 && o.output_padding.w >= 0 &&
            (o.output_padding.h < o.stride.h || o.output_padding.h < o.dilation.h) &&
            (o.output_padding.w < o.stride.w || o.output_padding.w < o.dilation.w),
        "ConvTranspose2d: output_padding ({}, {}) must be non-negative and smaller than stride ({}, {}) or dilation "
        "({}, {})",
        o.output_padding.h, o.output_padding.w, o.stride.h, o.stride.w, o.dilation.h, o.dilation.w);
  weight_ = register_parameter(
      "weight", Tensor::empty({o.in_channels, o.out_channels / o.groups, o.kernel_size.h, o.kernel_size.w}));
  if (o.bias) bias_ = register_parameter("bias", Tensor::empty({o.out_channels}));
  reset_parameters();
}

void ConvTranspose2d::reset_parameters() { reset_weight_and_bias(weight_, bias_); }

Tensor ConvTranspose2d::forward(const Tensor& x) {
  check_conv_input(x, options_.in_channels, weight_, "ConvTranspose2d");
  const ConvTranspose2dOptions& o = options_;
  return detail::conv_transpose2d(x, weight_, bias_, {.stride = o.stride, .padding = o.padding,
                                                      .output_padding = o.output_padding, .groups = o.groups,
                                                      .dilation = o.dilation});
}

MaxPool2d::MaxPool2d(const MaxPool2dOptions& o) : opts_(pool_options(o, "MaxPool2d")) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_image(x, "MaxPool2d");
  return detail::max_pool2d(x, opts_);
}

AvgPool2d::AvgPool2d(const AvgPool2dOptions& o) : opts_(pool_options(o, "AvgPool2d")) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_image(x, "AvgPool2d");
  return detail::avg_pool2d(x, opts_);
}

Tensor Flatten::forward(const Tensor& x) {
  check(x.defined(), "Flatten: undefined input");
  check(x.dim() > 0, "Flatten: cannot flatten a 0-d tensor");
  auto wrap = [&](int64_t d) { return d < 0 ? d + x.dim() : d; };
  check(wrap(start_dim_) >= 0 && wrap(start_dim_) < x.dim() && wrap(end_dim_) >= wrap(start_dim_) &&
            wrap(end_dim_) < x.dim(),
        "Flatten: dims {}..{} are not a valid range for input shape {}", start_dim_, end_dim_, x.shape());
  return flatten(x, start_dim_, end_dim_);
}

Dropout::Dropout(double p) : p_(p) {
  check(p >= 0.0 && p <= 1.0, "Dropout: probability must be in [0, 1], got {}", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training()); }

Tensor ReLU::forward(const Tensor& x) {
  if (!fused_) return relu(x);
  detail::check_fused_eval(*this);
  return x;  // the layer before applied it
}
Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope_); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }

// Printing, in libtorch's style.
namespace {
std::string pair(Pair2 p) { return fmt::format("[{}, {}]", p.h, p.w); }
std::string pool_repr(const Pool2dOptions& o, bool max) {
  std::string s =
      fmt::format("kernel_size={}, stride={}, padding={}", pair(o.kernel), pair(o.stride), pair(o.padding));
  if (max && o.dilation != Pair2(1)) s += ", dilation=" + pair(o.dilation);
  if (o.ceil_mode) s += ", ceil_mode=true";
  if (!max && !o.count_include_pad) s += ", count_include_pad=false";
  return s;
}
// The options PyTorch prints only when they differ from the default.
std::string conv_extras(Pair2 dilation, int64_t groups, bool bias) {
  std::string s;
  if (dilation != Pair2(1)) s += ", dilation=" + pair(dilation);
  if (groups != 1) s += fmt::format(", groups={}", groups);
  if (!bias) s += ", bias=false";
  return s;
}
std::string fused_repr(const Fused& f) {
  if (!f.any()) return "";
  return fmt::format(", fused={}{}{}", f.batch_norm ? "batch_norm" : "", f.batch_norm && f.relu ? "+" : "",
                     f.relu ? "relu" : "");
}
}  // namespace

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}{}", options_.in_features, options_.out_features,
                     options_.bias, fused_repr(fused_));
}
std::string Conv2d::extra_repr() const {
  const Conv2dOptions& o = options_;
  return fmt::format("{}, {}, kernel_size={}, stride={}, padding={}{}{}", o.in_channels, o.out_channels,
                     pair(o.kernel_size), pair(o.stride), pair(o.padding), conv_extras(o.dilation, o.groups, o.bias),
                     fused_repr(fused_));
}
std::string ConvTranspose2d::extra_repr() const {
  const ConvTranspose2dOptions& o = options_;
  return fmt::format("{}, {}, kernel_size={}, stride={}, padding={}{}{}", o.in_channels, o.out_channels,
                     pair(o.kernel_size), pair(o.stride), pair(o.padding),
                     o.output_padding != Pair2(0) ? ", output_padding=" + pair(o.output_padding) : "",
                     conv_extras(o.dilation, o.groups, o.bias));
}
std::string MaxPool2d::extra_repr() const { return pool_repr(opts_, true); }
std::string AvgPool2d::extra_repr() const { return pool_repr(opts_, false); }
std::string Flatten::extra_repr() const { return fmt::format("start_dim={}, end_dim={}", start_dim_, end_dim_); }
std::string Dropout::extra_repr() const { return fmt::format("p={}", p_); }
std::string ReLU::extra_repr() const { return fused_ ? "fused into the layer before" : ""; }
std::string LeakyReLU::extra_repr() const { return fmt::format("negative_slope={}", negative_slope_); }

}  // namespace xg::nn

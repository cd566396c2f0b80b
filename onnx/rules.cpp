// The ONNX lowering of every traced op kind, for opsets 13 to 17. Ops ONNX 13 lacks (GELU, Mish,
// HardSwish) are written with the primitives it has; options ONNX cannot express are refused.
#include "onnx/rules.hpp"

#include <cmath>
#include <numbers>
#include <unordered_map>
#include <variant>

namespace xg::onnx::detail {

namespace {

const trace::Attr* find(const trace::Attrs& attrs, std::string_view name) {
  for (const auto& [k, v] : attrs)
    if (k == name) return &v;
  return nullptr;
}

int64_t wrap(int64_t d, int64_t rank) { return d < 0 ? d + rank : d; }

// A Reshape to the output's shape. With a dynamic batch, dim 0 is copied from the input (0) when it
// kept its size, or inferred (-1) when it did not; the other dims are literal. Assumes the batch is
// dim 0 of every value, as in xgrad's models.
std::string reshape_to_output(const Op& op) {
  std::vector<int64_t> shape(op.out.shape().begin(), op.out.shape().end());
  if (op.b.dynamic_batch() && !shape.empty() && op.in[0].dim() > 0)
    shape[0] = shape[0] == op.in[0].shape()[0] ? 0 : -1;
  return op.b.node("Reshape", {op.input(0), op.ints(shape)});
}

std::string unary(const Op& op, const char* onnx_op) { return op.b.node(onnx_op, {op.input(0)}); }

std::string binary(const Op& op, const char* onnx_op) {
  if (op.in[0].dtype() != op.in[1].dtype())
    op.refuse(fmt::format("operands of dtypes {} and {} (ONNX needs one dtype)", dtype_name(op.in[0].dtype()),
                          dtype_name(op.in[1].dtype())));
  return op.b.node(onnx_op, {op.input(0), op.input(1)});
}

std::vector<int64_t> pads(const std::vector<int64_t>& hw) { return {hw[0], hw[1], hw[0], hw[1]}; }

std::string conv(const Op& op) {
  const Shape& w = op.in[1].shape();
  Attrs a{{"kernel_shape", std::vector<int64_t>{w[2], w[3]}}, {"strides", op.ints_attr("stride")},
          {"pads", pads(op.ints_attr("padding"))}};
  if (op.has("dilation")) a.emplace_back("dilations", op.ints_attr("dilation"));
  if (op.has("groups")) a.emplace_back("group", op.i("groups"));
  std::vector<std::string> ins{op.input(0), op.input(1)};
  if (op.in[2].defined()) ins.push_back(op.input(2));
  return op.b.node("Conv", ins, a);
}

std::string pool(const Op& op, bool is_max) {
  std::vector<int64_t> kernel = op.ints_attr("kernel"), stride = op.ints_attr("stride");
  if (stride == std::vector<int64_t>{0, 0}) stride = kernel;  // xgrad's default: the kernel size
  Attrs a{{"kernel_shape", kernel}, {"strides", stride}, {"pads", pads(op.ints_attr("padding"))}};
  if (op.has("ceil_mode")) a.emplace_back("ceil_mode", op.i("ceil_mode"));
  if (is_max && op.has("dilation") && op.ints_attr("dilation") != std::vector<int64_t>{1, 1})
    a.emplace_back("dilations", op.ints_attr("dilation"));
  if (!is_max) a.emplace_back("count_include_pad", op.has("count_include_pad") ? op.i("count_include_pad") : 1);
  return op.b.node(is_max ? "MaxPool" : "AveragePool", {op.input(0)}, a);
}

// Adaptive pooling is a plain pooling when the output size divides the input size.
std::string adaptive_pool(const Op& op, bool is_max) {
  const std::vector<int64_t>& o = op.ints_attr("output_size");
  const int64_t H = op.in[0].shape()[2], W = op.in[0].shape()[3];
  if (o[0] == 1 && o[1] == 1) return op.b.node(is_max ? "GlobalMaxPool" : "GlobalAveragePool", {op.input(0)});
  if (H % o[0] != 0 || W % o[1] != 0)
    op.refuse(fmt::format("output size ({}, {}) does not divide the input size ({}, {}): its windows overlap or "
                          "differ in size, which ONNX's pooling cannot express", o[0], o[1], H, W));
  std::vector<int64_t> k{H / o[0], W / o[1]};
  Attrs a{{"kernel_shape", k}, {"strides", k}};
  return op.b.node(is_max ? "MaxPool" : "AveragePool", {op.input(0)}, a);
}

std::string batch_norm(const Op& op) {
  if (op.i("training")) op.refuse("training mode (batch statistics) cannot be exported; call eval() first");
  if (!op.in[3].defined()) op.refuse("no running statistics (track_running_stats = false) cannot be exported");
  const Tensor& x = op.in[0];
  const int64_t C = x.shape()[1];
  std::string scale = op.in[1].defined() ? op.input(1) : op.b.constant(ones({C}, x.dtype()));
  std::string bias = op.in[2].defined() ? op.input(2) : op.b.constant(zeros({C}, x.dtype()));
  return op.b.node("BatchNormalization", {op.input(0), scale, bias, op.input(3), op.input(4)},
                   {{"epsilon", op.f("eps")}});
}

std::string linear(const Op& op) {
  if (op.in[0].dim() == 2) {  // Gemm: x [N, in] times weight [out, in] transposed, plus bias
    std::vector<std::string> ins{op.input(0), op.input(1)};
    if (op.in[2].defined()) ins.push_back(op.input(2));
    return op.b.node("Gemm", ins, {{"transB", int64_t{1}}});
  }
  std::string wt = op.b.node("Transpose", {op.input(1)}, {{"perm", std::vector<int64_t>{1, 0}}});
  std::string y = op.b.node("MatMul", {op.input(0), wt});
  return op.in[2].defined() ? op.b.node("Add", {y, op.input(2)}) : y;
}

std::string reduce(const Op& op, const char* onnx_op) {
  std::vector<int64_t> axes = op.ints_attr("dims");
  for (int64_t& d : axes) d = wrap(d, op.in[0].dim());
  Attrs a{{"keepdims", op.i("keepdim")}};
  std::vector<std::string> ins{op.input(0)};
  if (!axes.empty()) {  // no axes: every dim
    if (std::string_view(onnx_op) == "ReduceSum") ins.push_back(op.ints(axes));  // an input since opset 13
    else a.emplace_back("axes", axes);  // an attribute until opset 18
  }
  return op.b.node(onnx_op, ins, a);
}

std::string gelu(const Op& op) {
  std::string x = op.input(0), inner;
  if (op.s("approximate") == "none") {  // 0.5 x (1 + erf(x / sqrt 2))
    inner = op.b.node("Erf", {op.b.node("Mul", {x, op.scalar(std::numbers::sqrt2 / 2)})});
  } else {  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    std::string cube = op.b.node("Mul", {op.b.node("Mul", {x, x}), x});
    std::string sum = op.b.node("Add", {x, op.b.node("Mul", {cube, op.scalar(0.044715)})});
    inner = op.b.node("Tanh", {op.b.node("Mul", {sum, op.scalar(std::sqrt(2.0 / std::numbers::pi))})});
  }
  std::string half_x = op.b.node("Mul", {x, op.scalar(0.5)});
  return op.b.node("Mul", {half_x, op.b.node("Add", {inner, op.scalar(1.0)})});
}

// beta x > threshold ? x : log(1 + exp(beta x)) / beta, as xgrad and PyTorch define it.
std::string softplus(const Op& op) {
  const double beta = op.f("beta");
  std::string x = op.input(0), bx = beta == 1.0 ? x : op.b.node("Mul", {x, op.scalar(beta)});
  std::string sp = op.b.node("Softplus", {bx});
  if (beta != 1.0) sp = op.b.node("Div", {sp, op.scalar(beta)});
  std::string above = op.b.node("Greater", {bx, op.scalar(op.f("threshold"))});
  return op.b.node("Where", {above, x, sp});
}

std::string cat(const Op& op) {
  std::vector<std::string> ins;
  for (size_t i = 0; i < op.in.size(); ++i) ins.push_back(op.input(i));
  return op.b.node("Concat", ins, {{"axis", wrap(op.i("dim"), op.out.dim())}});
}

std::string flatten(const Op& op) {
  const int64_t r = op.in[0].dim();
  if (r >= 2 && wrap(op.i("start_dim"), r) == 1 && wrap(op.i("end_dim"), r) == r - 1)
    return op.b.node("Flatten", {op.input(0)}, {{"axis", int64_t{1}}});  // [N, rest], as ONNX's Flatten
  return reshape_to_output(op);
}

std::string permute(const Op& op) {
  const int64_t r = op.in[0].dim();
  std::vector<int64_t> perm = op.ints_attr("dims");
  if (op.kind == "transpose") {
    std::vector<int64_t> p(r);
    for (int64_t i = 0; i < r; ++i) p[i] = i;
    std::swap(p[wrap(perm[0], r)], p[wrap(perm[1], r)]);
    perm = p;
  }
  for (int64_t& d : perm) d = wrap(d, r);
  return op.b.node("Transpose", {op.input(0)}, {{"perm", perm}});
}

std::string clamp(const Op& op) {
  std::vector<std::string> ins{op.input(0), op.scalar(op.f("min"))};
  if (op.has("max")) ins.push_back(op.scalar(op.f("max")));
  return op.b.node("Clip", ins);
}

const std::unordered_map<std::string_view, Rule>& rules() {
  static const std::unordered_map<std::string_view, Rule> table{
      {"add", [](const Op& op) { return binary(op, "Add"); }},
      {"sub", [](const Op& op) { return binary(op, "Sub"); }},
      {"mul", [](const Op& op) { return binary(op, "Mul"); }},
      {"div", [](const Op& op) { return binary(op, "Div"); }},
      {"matmul", [](const Op& op) { return binary(op, "MatMul"); }},
      {"neg", [](const Op& op) { return unary(op, "Neg"); }},
      {"exp", [](const Op& op) { return unary(op, "Exp"); }},
      {"log", [](const Op& op) { return unary(op, "Log"); }},
      {"sqrt", [](const Op& op) { return unary(op, "Sqrt"); }},
      {"abs", [](const Op& op) { return unary(op, "Abs"); }},
      {"erf", [](const Op& op) { return unary(op, "Erf"); }},
      {"relu", [](const Op& op) { return unary(op, "Relu"); }},
      {"sigmoid", [](const Op& op) { return unary(op, "Sigmoid"); }},
      {"tanh", [](const Op& op) { return unary(op, "Tanh"); }},
      {"pow", [](const Op& op) { return op.b.node("Pow", {op.input(0), op.scalar(op.f("exponent"))}); }},
      {"leaky_relu",
       [](const Op& op) { return op.b.node("LeakyRelu", {op.input(0)}, {{"alpha", op.f("negative_slope")}}); }},
      {"elu", [](const Op& op) { return op.b.node("Elu", {op.input(0)}, {{"alpha", op.f("alpha")}}); }},
      {"clamp", clamp},
      {"gelu", gelu},
      {"silu", [](const Op& op) { return op.b.node("Mul", {op.input(0), op.b.node("Sigmoid", {op.input(0)})}); }},
      {"softplus", softplus},
      {"hardswish",  // x hardsigmoid(x) with alpha 1/6, beta 1/2 is x relu6(x + 3) / 6
       [](const Op& op) {
         std::string hs = op.b.node("HardSigmoid", {op.input(0)}, {{"alpha", 1.0 / 6}, {"beta", 0.5}});
         return op.b.node("Mul", {op.input(0), hs});
       }},
      {"mish",
       [](const Op& op) {
         return op.b.node("Mul", {op.input(0), op.b.node("Tanh", {op.b.node("Softplus", {op.input(0)})})});
       }},
      {"sum", [](const Op& op) { return reduce(op, "ReduceSum"); }},
      {"mean", [](const Op& op) { return reduce(op, "ReduceMean"); }},
      {"reshape", reshape_to_output},
      {"flatten", flatten},
      {"permute", permute},
      {"transpose", permute},
      {"cat", cat},
      {"linear", linear},
      {"softmax",
       [](const Op& op) { return op.b.node("Softmax", {op.input(0)}, {{"axis", wrap(op.i("dim"), op.out.dim())}}); }},
      {"log_softmax",
       [](const Op& op) {
         return op.b.node("LogSoftmax", {op.input(0)}, {{"axis", wrap(op.i("dim"), op.out.dim())}});
       }},
      {"dropout",
       [](const Op& op) {
         if (op.i("training") && op.f("p") > 0) op.refuse("training mode (random masks) cannot be exported");
         return op.input(0);  // the identity in eval
       }},
      {"conv2d", conv},
      {"max_pool2d", [](const Op& op) { return pool(op, true); }},
      {"avg_pool2d", [](const Op& op) { return pool(op, false); }},
      {"adaptive_avg_pool2d", [](const Op& op) { return adaptive_pool(op, false); }},
      {"adaptive_max_pool2d", [](const Op& op) { return adaptive_pool(op, true); }},
      {"batch_norm", batch_norm},
  };
  return table;
}

}  // namespace

std::string Op::scalar(double v) const { return b.constant(full({}, v, out.dtype())); }
std::string Op::ints(const std::vector<int64_t>& v) const {
  return b.constant(from_vector(v, Shape{static_cast<int64_t>(v.size())}));
}
bool Op::has(std::string_view name) const { return find(attrs, name) != nullptr; }

namespace {
template <class T>
const T& get(const Op& op, std::string_view name) {
  const trace::Attr* a = find(op.attrs, name);
  const T* v = a ? std::get_if<T>(a) : nullptr;
  if (!v) op.refuse(fmt::format("internal: attribute '{}' is missing or of another type", name));
  return *v;
}
}  // namespace

int64_t Op::i(std::string_view name) const { return get<int64_t>(*this, name); }
double Op::f(std::string_view name) const { return get<double>(*this, name); }
const std::vector<int64_t>& Op::ints_attr(std::string_view name) const { return get<std::vector<int64_t>>(*this, name); }
const std::string& Op::s(std::string_view name) const { return get<std::string>(*this, name); }

void Op::refuse(const std::string& why) const { fail("onnx::export_model: {}{}: {}", kind, b.where(), why); }

const Rule* find_rule(std::string_view kind) {
  auto it = rules().find(kind);
  return it == rules().end() ? nullptr : &it->second;
}

}  // namespace xg::onnx::detail

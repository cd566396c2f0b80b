// cs231n gradcheck: CS231n's sparse gradient check (random coordinates, centred differences against
// the tape) on every layer and every model of the assignments, in f64, printed as a table.
#include <cmath>
#include <random>

#include "common.hpp"
#include "train/models.hpp"

namespace cs231n {

using namespace xg;

namespace {

constexpr double kH = 1e-5;           // CS231n's grad_check_sparse step
constexpr double kTolerance = 1e-5;   // the course expects 1e-7 or smaller; fail loudly well above it

double rel_error(double a, double b) { return std::abs(a - b) / std::max(1e-8, std::abs(a) + std::abs(b)); }

struct Named {
  std::string name;
  Tensor t;
};

struct Row {
  std::string layer, input;
  Shape shape;
  double max_rel = 0, max_abs = 0, max_grad = 0;
  // A gradient that is exactly zero (a bias followed by batchnorm, which subtracts it out again) leaves
  // only the differences' rounding noise (~1e-11): the relative error then says nothing, the absolute does.
  bool zero_gradient() const { return max_grad < 1e-9 && max_abs < 1e-9; }
};

// The worst relative error over `checks` random coordinates of each input: the tape's gradient of
// the scalar `loss()` against (f(x + h) - f(x - h)) / 2h with the coordinate moved in place.
void sparse_check(const std::string& layer, const std::function<Tensor()>& loss, const std::vector<Named>& inputs,
                  int64_t checks, std::mt19937_64& rng, std::vector<Row>& rows) {
  for (Named in : inputs) in.t.zero_grad();  // a handle: the copy drops the shared gradient
  loss().backward();
  for (const Named& in : inputs) {
    const std::vector<double> analytic = in.t.grad().to_vector<double>();
    double* p = in.t.data<double>();
    Row row{layer, in.name, in.t.shape()};
    std::uniform_int_distribution<int64_t> pick(0, in.t.numel() - 1);
    for (int64_t c = 0; c < checks; ++c) {
      const int64_t j = pick(rng);
      const double old = p[j];
      NoGradGuard no_grad;
      p[j] = old + kH;
      const double fp = loss().item<double>();
      p[j] = old - kH;
      const double fm = loss().item<double>();
      p[j] = old;
      const double numeric = (fp - fm) / (2 * kH), a = analytic[static_cast<size_t>(j)];
      row.max_rel = std::max(row.max_rel, rel_error(numeric, a));
      row.max_abs = std::max(row.max_abs, std::abs(numeric - a));
      row.max_grad = std::max({row.max_grad, std::abs(numeric), std::abs(a)});
    }
    rows.push_back(row);
  }
}

Tensor input(const Shape& shape, double scale = 1.0) {
  Tensor t = mul(randn(shape, Dtype::f64), scale).detach();
  t.requires_grad_();
  return t;
}

// A layer's check: loss = sum(layer(inputs) * dout) for a fixed random upstream gradient dout.
void check_layer(const std::string& layer, std::function<Tensor(const std::vector<Tensor>&)> fn,
                 std::vector<Named> inputs, int64_t checks, std::mt19937_64& rng, std::vector<Row>& rows) {
  std::vector<Tensor> ts;
  for (const Named& n : inputs) ts.push_back(n.t);
  Tensor dout = randn(fn(ts).shape(), Dtype::f64);
  sparse_check(layer, [=] { return sum(mul(fn(ts), dout)); }, inputs, checks, rng, rows);
}

// A model's check: the Solver's loss (data loss + l2 * sum W^2) against every parameter, in f64.
void check_model(const std::string& layer, nn::Module& model, const Tensor& x, const Tensor& y, double l2,
                 int64_t checks, std::mt19937_64& rng, std::vector<Row>& rows) {
  model.to(Dtype::f64);
  std::vector<Named> params;
  for (auto& [name, p] : model.named_parameters()) params.push_back({name, p});
  sparse_check(layer, [&] { return regularized_loss(model, model.forward(x), y, "softmax", l2); }, params, checks, rng,
               rows);
}

Tensor labels(int64_t n, int64_t classes) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back((i * 7 + 3) % classes);
  return from_vector(v);
}

}  // namespace

int run_gradcheck(const Common& c, const GradcheckDemoOptions& o) {
  const Timer timer;
  const std::string dir = out_dir(c, "gradcheck");
  manual_seed(c.seed + 231);
  std::mt19937_64 rng(c.seed + 1);
  std::vector<Row> rows;
  const int64_t n = o.checks;
  using V = const std::vector<Tensor>&;

  check_layer("affine", [](V v) { return linear(v[0], v[1], v[2]); },
              {{"x", input({10, 6})}, {"w", input({5, 6})}, {"b", input({5})}}, n, rng, rows);
  check_layer("relu", [](V v) { return relu(v[0]); }, {{"x", input({10, 10})}}, n, rng, rows);
  check_layer("affine-relu", [](V v) { return relu(linear(v[0], v[1], v[2])); },
              {{"x", input({2, 12})}, {"w", input({10, 12})}, {"b", input({10})}}, n, rng, rows);
  const Tensor y50 = labels(50, 10);
  check_layer("softmax loss", [y50](V v) { return cross_entropy(v[0], y50); }, {{"x", input({50, 10}, 0.001)}}, n, rng,
              rows);
  check_layer("svm loss", [y50](V v) { return mul(multi_margin_loss(v[0], y50), 10.0); }, {{"x", input({50, 10})}}, n,
              rng, rows);
  check_layer("batchnorm (fused)", [](V v) { return batch_norm(v[0], v[1], v[2], {}, {}, true); },
              {{"x", input({4, 5}, 5.0)}, {"gamma", input({5})}, {"beta", input({5})}}, n, rng, rows);
  check_layer("batchnorm (ref)", [](V v) { return ref::batch_norm(v[0], v[1], v[2], {}, {}, true); },
              {{"x", input({4, 5}, 5.0)}, {"gamma", input({5})}, {"beta", input({5})}}, n, rng, rows);
  check_layer("layernorm", [](V v) { return layer_norm(v[0], {5}, v[1], v[2]); },
              {{"x", input({4, 5}, 5.0)}, {"gamma", input({5})}, {"beta", input({5})}}, n, rng, rows);
  check_layer("dropout p=0.2", [](V v) { manual_seed(123); return dropout(v[0], 0.2, true); },
              {{"x", input({10, 10})}}, n, rng, rows);
  check_layer("conv (fused)", [](V v) { return conv2d(v[0], v[1], v[2], {.stride = 2, .padding = 1}); },
              {{"x", input({4, 3, 5, 5})}, {"w", input({2, 3, 3, 3})}, {"b", input({2})}}, n, rng, rows);
  check_layer("conv (ref)", [](V v) { return ref::conv2d(v[0], v[1], v[2], {.stride = 2, .padding = 1}); },
              {{"x", input({4, 3, 5, 5})}, {"w", input({2, 3, 3, 3})}, {"b", input({2})}}, n, rng, rows);
  check_layer("max pool (fused)", [](V v) { return max_pool2d(v[0], {.kernel = 2}); }, {{"x", input({3, 2, 8, 8})}}, n,
              rng, rows);
  check_layer("conv-relu-pool", [](V v) { return max_pool2d(relu(conv2d(v[0], v[1], v[2], {.padding = 1})), {.kernel = 2}); },
              {{"x", input({2, 3, 8, 8})}, {"w", input({3, 3, 3, 3})}, {"b", input({3})}}, n, rng, rows);
  check_layer("spatial batchnorm", [](V v) { return batch_norm(v[0], v[1], v[2], {}, {}, true); },
              {{"x", input({2, 3, 4, 5}, 4.0)}, {"gamma", input({3})}, {"beta", input({3})}}, n, rng, rows);
  check_layer("spatial groupnorm", [](V v) { return group_norm(v[0], 2, v[1], v[2]); },
              {{"x", input({2, 6, 4, 5}, 4.0)}, {"gamma", input({6})}, {"beta", input({6})}}, n, rng, rows);

  const Tensor x3 = randn({3, 5}, Dtype::f64), y3 = labels(3, 7);
  models::TwoLayerNet two(5, 50, 7);
  check_model("TwoLayerNet reg=0.7", two, x3, y3, 0.5 * 0.7, n, rng, rows);
  const Tensor x2 = randn({2, 15}, Dtype::f64), y2 = labels(2, 10);
  models::FullyConnectedNet fc({20, 30}, 15, 10);
  check_model("FullyConnectedNet reg=3.14", fc, x2, y2, 0.5 * 3.14, n, rng, rows);
  const Tensor x4 = mul(randn({4, 15}, Dtype::f64), 3.0), y4 = labels(4, 10);
  models::FullyConnectedNet fc_bn({20, 30}, 15, 10, models::Norm::batch);
  check_model("FullyConnectedNet batchnorm", fc_bn, x4, y4, 0.0, n, rng, rows);
  models::FullyConnectedNet fc_ln({20, 30}, 15, 10, models::Norm::layer);
  check_model("FullyConnectedNet layernorm", fc_ln, x4, y4, 0.0, n, rng, rows);
  const Tensor ximg = randn({2, 3, 32, 32}, Dtype::f64), yimg = labels(2, 10);
  models::ThreeLayerConvNet conv(3, 3, 7, 10);
  check_model("ThreeLayerConvNet", conv, ximg, yimg, 0.0, n, rng, rows);
  models::ThreeLayerConvNet conv_bn(3, 3, 7, 10, true);
  check_model("ThreeLayerConvNet batchnorm", conv_bn, ximg, yimg, 0.0, n, rng, rows);

  fmt::print("{:<28} {:<20} {:<12} {:>13} {:>13}\n", "layer", "input", "shape", "max rel error", "max abs error");
  double worst = 0;
  nlohmann::json table = nlohmann::json::array();
  for (const Row& r : rows) {
    fmt::print("{:<28} {:<20} {:<12} {:>13.2e} {:>13.2e}{}\n", r.layer, r.input, fmt::format("{}", r.shape), r.max_rel,
               r.max_abs, r.zero_gradient() ? "  (gradient 0: batchnorm cancels this bias)" : "");
    if (!r.zero_gradient()) worst = std::max(worst, r.max_rel);
    table.push_back({{"layer", r.layer}, {"input", r.input}, {"max_rel_error", r.max_rel}, {"max_abs_error", r.max_abs}});
  }
  fmt::print("{} coordinates per input, relative error |a-b| / max(1e-8, |a|+|b|); worst over nonzero gradients {:.2e} ({})\n", n, worst,
             worst < kTolerance ? "ok" : "TOO LARGE");
  write_summary(dir, {{"command", "gradcheck"}, {"checks_per_input", n}, {"worst_rel_error", worst},
                      {"rows", table}, {"seconds", timer.seconds()}});
  return worst < kTolerance ? 0 : 1;
}

}  // namespace cs231n

// batch_norm_activation, a batch norm and the ReLU or GELU after it in one fused op: against its
// composition from primitives, through gradcheck in f64, against the two fused ops it replaces, in
// nn::Sequential (which runs it for BatchNorm + ReLU/GELU) and with bad input; and Sequential's other
// rewrite, a ReLU run after the max-pool that follows it.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "ops/fused/pooled.hpp"

using namespace xg;
using test::input;

namespace {
constexpr PostActivation kActs[] = {PostActivation::none, PostActivation::relu, PostActivation::gelu};

Tensor activated(const Tensor& y, PostActivation act) {
  return act == PostActivation::relu ? relu(y) : act == PostActivation::gelu ? gelu(y) : y;
}
}  // namespace

TEST_CASE("batch_norm_activation: fused equals reference for none, relu and gelu, training and eval") {
  struct Case {
    Shape x;
    bool training, affine, x_grad;
  };
  const std::vector<Case> cases = {
      {{8, 3}, true, true, true},          {{8, 3}, false, true, true},      {{4, 3, 5, 5}, true, true, true},
      {{4, 3, 5, 5}, false, true, true},   {{2, 4, 3, 7}, true, false, true}, {{3, 2, 1, 1}, true, true, true},
      {{4, 9000}, true, true, true},       // [N, C] split over threads
      {{2, 3, 19, 21}, true, true, true},  // runs longer than the sums' lanes, with a ragged tail
      {{4, 3, 5, 5}, true, true, false},   // dgamma and dbeta only: dz is staged in a scratch run
      {{8, 3}, true, true, false},
  };
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (PostActivation act : kActs)
      for (size_t i = 0; i < cases.size(); ++i) {
        const Case& c = cases[i];
        CAPTURE(i);
        CAPTURE(dtype_name(d));
        CAPTURE(post_activation_name(act));
        const int64_t C = c.x[1];
        Tensor x = (input(c.x, d, 60 + i) * 3.0 + 1.0).detach();
        if (c.x_grad) x.requires_grad_();
        Tensor gamma = c.affine ? input({C}, d, 70 + i) : Tensor(), beta = c.affine ? input({C}, d, 80 + i) : Tensor();
        manual_seed(90 + i);
        Tensor rm = randn({C}, d), rv = add(abs(randn({C}, d)), 0.5);
        Tensor rm2 = rm.clone(), rv2 = rv.clone();
        const bool tr = c.training;
        CHECK_MATCHES_REFERENCE(
            [&](auto& v) { return batch_norm_activation(v[0], v[1], v[2], rm, rv, tr, 0.1, 1e-5, act); },
            [&](auto& v) { return ref::batch_norm_activation(v[0], v[1], v[2], rm2, rv2, tr, 0.1, 1e-5, act); },
            {x, gamma, beta});
        const double tol = d == Dtype::f32 ? 1e-5 : 1e-12;
        CHECK(allclose(rm, rm2, tol, tol));
        CHECK(allclose(rv, rv2, tol, tol));
      }
}

TEST_CASE("batch_norm_activation: gradcheck in f64, training and eval, 4-D and 2-D") {
  Tensor x = input({3, 4, 2, 3}, Dtype::f64, 100), g = input({4}, Dtype::f64, 101), b = input({4}, Dtype::f64, 102);
  Tensor x2 = input({6, 3}, Dtype::f64, 103), g2 = input({3}, Dtype::f64, 104), b2 = input({3}, Dtype::f64, 105);
  for (PostActivation act : {PostActivation::relu, PostActivation::gelu})
    for (bool training : {true, false}) {
      CAPTURE(post_activation_name(act));
      CAPTURE(training);
      Tensor rm = full({4}, 0.2, Dtype::f64), rv = full({4}, 1.5, Dtype::f64);
      CHECK_GRADCHECK([&](auto& v) { return batch_norm_activation(v[0], v[1], v[2], rm, rv, training, 0.1, 1e-5, act); },
                      {x, g, b});
      CHECK_GRADCHECK(
          [&](auto& v) { return batch_norm_activation(v[0], v[1], v[2], Tensor(), Tensor(), true, 0.1, 1e-5, act); },
          {x2, g2, b2});
    }
}

TEST_CASE("batch_norm_activation: the same values and gradients as batch_norm then relu or gelu, in f32") {
  for (PostActivation act : {PostActivation::relu, PostActivation::gelu}) {
    CAPTURE(post_activation_name(act));
    Tensor x = input({16, 8, 7, 7}, Dtype::f32, 7), g = input({8}, Dtype::f32, 8), b = input({8}, Dtype::f32, 9);
    Tensor rm = zeros({8}), rv = ones({8}), rm2 = zeros({8}), rv2 = ones({8});
    Tensor u = input({16, 8, 7, 7}, Dtype::f32, 10).detach();
    Tensor fused = batch_norm_activation(x, g, b, rm, rv, true, 0.1, 1e-5, act);
    REQUIRE(fused.grad_fn() != nullptr);
    CHECK(std::string(fused.grad_fn()->name) == "batch_norm");  // one node on the tape
    std::vector<Tensor> d1 = grad({fused}, {x, g, b}, {u});
    Tensor two = activated(batch_norm(x, g, b, rm2, rv2, true, 0.1, 1e-5), act);
    std::vector<Tensor> d2 = grad({two}, {x, g, b}, {u});
    CHECK(allclose(fused, two, 1e-6, 1e-6));
    for (size_t k = 0; k < 3; ++k) {
      CAPTURE(k);
      CHECK(allclose(d1[k], d2[k], 1e-4, 1e-5));
    }
    CHECK(allclose(rm, rm2, 0, 0));
    CHECK(allclose(rv, rv2, 0, 0));
  }
}

TEST_CASE("batch_norm_activation: in f32, the same bits as batch_norm then relu or gelu, values and gradients") {
  // What keeps a model's training bit for bit the same when Sequential fuses its batch norms.
  for (PostActivation act : {PostActivation::relu, PostActivation::gelu})
    for (const Shape& shape : {Shape{16, 8, 7, 7}, Shape{32, 8, 32, 32}, Shape{64, 10}}) {
      CAPTURE(post_activation_name(act));
      CAPTURE(shape);
      const int64_t C = shape[1];
      Tensor x = input(shape, Dtype::f32, 7), g = input({C}, Dtype::f32, 8), b = input({C}, Dtype::f32, 9);
      Tensor u = input(shape, Dtype::f32, 10).detach();
      Tensor rm = zeros({C}), rv = ones({C}), rm2 = zeros({C}), rv2 = ones({C});
      Tensor one = batch_norm_activation(x, g, b, rm, rv, true, 0.1, 1e-5, act);
      Tensor two = activated(batch_norm(x, g, b, rm2, rv2, true, 0.1, 1e-5), act);
      CHECK(allclose(one, two, 0, 0));
      std::vector<Tensor> d1 = grad({one}, {x, g, b}, {u}), d2 = grad({two}, {x, g, b}, {u});
      for (size_t k = 0; k < 3; ++k) {
        CAPTURE(k);
        CHECK(allclose(d1[k], d2[k], 0, 0));
      }
    }
}

TEST_CASE("batch_norm_activation: an infinite gradient where the ReLU is off passes nothing, as relu's backward") {
  for (const Shape& shape : {Shape{4, 3, 2, 2}, Shape{6, 3}}) {
    CAPTURE(shape);
    Tensor x = input(shape, Dtype::f32, 21);
    Tensor rm = zeros({3}), rv = ones({3});
    Tensor y = batch_norm_activation(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5, PostActivation::relu);
    Tensor two = relu(batch_norm(x, Tensor(), Tensor(), rm.clone(), rv.clone(), true, 0.1, 1e-5));
    Tensor u = where(gt(y, zeros_like(y)), ones_like(y), full_like(y, std::numeric_limits<double>::infinity()));
    Tensor g1 = grad({y}, {x}, {u})[0], g2 = grad({two}, {x}, {u})[0];
    for (float v : g1.to_vector<float>()) CHECK(std::isfinite(v));
    CHECK(allclose(g1, g2, 1e-5, 1e-6));
  }
}

TEST_CASE("nn::Sequential runs a batch norm and the ReLU or exact GELU after it as one fused op") {
  auto make = [] {
    manual_seed(3);
    return nn::Sequential(nn::Conv2d({.in_channels = 2, .out_channels = 4, .kernel_size = 3, .padding = 1}),
                          nn::BatchNorm2d(4), nn::ReLU(),
                          nn::Conv2d({.in_channels = 4, .out_channels = 4, .kernel_size = 3, .padding = 1}),
                          nn::BatchNorm2d(4), nn::GELU(), nn::Flatten(), nn::Linear(4 * 5 * 5, 6),
                          nn::BatchNorm1d(6), nn::ReLU());
  };
  nn::Sequential fused = make(), plain = make();
  Tensor x = input({3, 2, 5, 5}, Dtype::f32, 4).detach();
  for (int step = 0; step < 2; ++step) {  // twice: the running statistics move in both the same way
    Tensor y1 = fused(x);
    // The same modules called one by one, as before the fusion.
    Tensor y2 = x;
    for (const auto& m : plain) y2 = (*m)(y2);
    CHECK(std::string(y1.grad_fn()->name) == "batch_norm");
    CHECK(std::string(y2.grad_fn()->name) != "batch_norm");
    CHECK(allclose(y1, y2, 1e-5, 1e-6));
    sum(y1 * y1).backward();
    sum(y2 * y2).backward();
  }
  auto p1 = fused.named_parameters(), p2 = plain.named_parameters();
  REQUIRE(p1.size() == p2.size());
  for (size_t k = 0; k < p1.size(); ++k) {
    CAPTURE(p1[k].first);
    CHECK(allclose(p1[k].second.grad(), p2[k].second.grad(), 1e-4, 1e-5));
  }
  auto b1 = fused.named_buffers(), b2 = plain.named_buffers();
  for (size_t k = 0; k < b1.size(); ++k) {
    CAPTURE(b1[k].first);
    CHECK(allclose(b1[k].second.to(Dtype::f64), b2[k].second.to(Dtype::f64), 1e-5, 1e-6));
  }
  // Eval mode fuses too, with the running statistics.
  fused.eval(), plain.eval();
  Tensor e2 = x;
  for (const auto& m : plain) e2 = (*m)(e2);
  CHECK(allclose(fused(x), e2, 1e-5, 1e-6));
  // nn::summary still sees every module, the ReLUs included.
  nn::ModelSummary s = nn::summary(fused, {3, 2, 5, 5});
  int relus_seen = 0;
  for (const auto& row : s.rows)
    if (row.type == "ReLU" && row.output_shape) ++relus_seen;
  CHECK(relus_seen == 2);
}

TEST_CASE("nn::Sequential leaves a tanh GELU and a lone batch norm unfused") {
  manual_seed(5);
  nn::Sequential tanh_gelu(nn::BatchNorm2d(3), nn::GELU("tanh"));
  Tensor x = input({2, 3, 4, 4}, Dtype::f32, 6);
  CHECK(std::string(tanh_gelu(x).grad_fn()->name) != "batch_norm");
  nn::Sequential relu_first(nn::ReLU(), nn::BatchNorm2d(3));
  CHECK(std::string(relu_first(x).grad_fn()->name) == "batch_norm");
}

TEST_CASE("batch_norm_activation: bad input is an xg::Error naming the op, changing no state") {
  Tensor x = input({4, 3, 2, 2}, Dtype::f32, 1);
  Tensor rm = zeros({3}), rv = ones({3});
  const auto bogus = static_cast<PostActivation>(7);
  CHECK_ERROR(batch_norm_activation(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5, bogus),
              "batch_norm_activation: unknown activation 7 (none, relu or gelu)");
  CHECK_ERROR(batch_norm_activation(x, zeros({4}), Tensor(), rm, rv, true, 0.1, 1e-5, PostActivation::relu),
              "batch_norm_activation: weight has shape [4], expected [3] for input shape [4,3,2,2]");
  CHECK_ERROR(batch_norm_activation(x, Tensor(), Tensor(), rm, rv, true, 0.1, -1.0, PostActivation::gelu),
              "batch_norm_activation: eps must be positive, got -1");
  CHECK_ERROR(ref::batch_norm_activation(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5, bogus),
              "batch_norm_activation: unknown activation 7");
  CHECK_ERROR(post_activation_name(bogus), "post_activation_name: unknown activation 7");
  CHECK(allclose(rm, zeros({3}), 0, 0));
  CHECK(allclose(rv, ones({3}), 0, 0));
  nn::BatchNorm2d bn(3);
  CHECK_ERROR(bn.forward_activated(x, bogus), "BatchNorm2d: unknown activation 7");
  CHECK_ERROR(bn.forward_activated(zeros({4, 5, 2, 2}), PostActivation::relu),
              "BatchNorm2d: input shape [4,5,2,2] has 5 channels, but num_features is 3");
  CHECK(bn.num_batches_tracked().item<int64_t>() == 0);
  CHECK(allclose(bn.running_mean(), zeros({3}), 0, 0));
}

TEST_CASE("nn::Sequential runs a ReLU then an undilated MaxPool2d as the pool then the ReLU, same values and gradients") {
  struct Case {
    nn::MaxPool2dOptions o;
    bool rewritten;
  };
  const std::vector<Case> cases = {
      {{.kernel_size = 2}, true},
      {{.kernel_size = 3, .stride = 2, .padding = 1}, true},
      {{.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true}, true},
      {{.kernel_size = 2, .dilation = 2}, false},  // a dilated window may lie in the padding alone
  };
  for (const Case& c : cases)
    for (Dtype d : {Dtype::f32, Dtype::f64}) {
      CAPTURE(c.rewritten);
      CAPTURE(dtype_name(d));
      nn::Sequential net(nn::ReLU(), nn::MaxPool2d(c.o));
      // Whole windows at or below zero, ties at zero and above it, and a NaN.
      Tensor x = (input({2, 3, 9, 9}, d, 11) - 0.5).detach();
      x = where(gt(x, full_like(x, 0.8)), full_like(x, 0.8), x);  // ties among the positive maxima
      std::vector<double> v = x.to(Dtype::f64).to_vector<double>();
      v[40] = std::numeric_limits<double>::quiet_NaN();
      for (int k = 90; k < 99; ++k) v[k] = -1.0 - k;  // windows wholly negative
      x = from_vector(v, x.shape()).to(d);
      x.requires_grad_();
      Tensor y1 = net(x);
      Tensor y2 = (*net[1])((*net[0])(x));
      CHECK(std::string(y1.grad_fn()->name) == (c.rewritten ? "relu" : "max_pool2d"));
      REQUIRE(y1.shape() == y2.shape());
      const std::vector<double> a = y1.detach().to(Dtype::f64).to_vector<double>(),
                                b = y2.detach().to(Dtype::f64).to_vector<double>();
      for (size_t k = 0; k < a.size(); ++k) {
        CAPTURE(k);
        CHECK((a[k] == b[k] || (std::isnan(a[k]) && std::isnan(b[k]))));
      }
      Tensor u = input(y1.shape(), d, 12).detach();
      std::vector<Tensor> g1 = grad({y1}, {x}, {u}), g2 = grad({y2}, {x}, {u});
      CHECK(allclose(g1[0], g2[0], 0, 0));
    }
}

TEST_CASE("nn::Sequential runs a Conv2d, a ReLU and a MaxPool2d as one op when nothing is recorded") {
  const std::vector<nn::MaxPool2dOptions> pools = {
      {.kernel_size = 2}, {.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true}, {.kernel_size = 2, .dilation = 2}};
  for (const nn::MaxPool2dOptions& o : pools)
    for (bool with_relu : {true, false})
      for (Dtype d : {Dtype::f32, Dtype::f64}) {
        CAPTURE(with_relu);
        CAPTURE(dtype_name(d));
        nn::Sequential net(nn::Conv2d(nn::Conv2dOptions{.in_channels = 3, .out_channels = 5, .kernel_size = 5, .padding = 2}));
        if (with_relu) net.push_back(nn::ReLU());
        net.push_back(nn::MaxPool2d(o));
        net.to(d);
        net.eval();
        Tensor x = input({3, 3, 11, 11}, d, 13).detach();
        std::vector<double> v = x.to(Dtype::f64).to_vector<double>();
        v[7] = std::numeric_limits<double>::quiet_NaN();
        x = from_vector(v, x.shape()).to(d);
        NoGradGuard no_grad;
        Tensor y1 = net(x), y2 = x;
        for (size_t i = 0; i < net.size(); ++i) y2 = (*net[i])(y2);
        REQUIRE(y1.shape() == y2.shape());
        const std::vector<double> a = y1.to(Dtype::f64).to_vector<double>(), b = y2.to(Dtype::f64).to_vector<double>();
        size_t nans = 0;
        for (size_t k = 0; k < a.size(); ++k) {
          CAPTURE(k);
          nans += std::isnan(a[k]);
          CHECK((std::abs(a[k] - b[k]) <= 1e-5 * (1 + std::abs(b[k])) || (std::isnan(a[k]) && std::isnan(b[k]))));
        }
        CHECK(nans > 0);
      }
}

TEST_CASE("batch_norm: values, running statistics and gradients do not depend on the thread count") {
  // The [N, C, H, W] sums run over fixed blocks of images, added in block order.
  for (const Shape& shape : {Shape{33, 5, 9, 9}, Shape{4, 3, 64, 64}, Shape{64, 10}}) {
    CAPTURE(shape);
    const int64_t C = shape[1];
    auto run = [&](int threads) {
      const int before = get_num_threads();
      set_num_threads(threads);
      Tensor x = input(shape, Dtype::f32, 21), g = input({C}, Dtype::f32, 22), b = input({C}, Dtype::f32, 23);
      Tensor rm = zeros({C}), rv = ones({C});
      Tensor y = batch_norm_activation(x, g, b, rm, rv, true, 0.1, 1e-5, PostActivation::relu);
      std::vector<Tensor> d = grad({y}, {x, g, b}, {input(shape, Dtype::f32, 24).detach()});
      set_num_threads(before);
      return std::vector<Tensor>{y, rm, rv, d[0], d[1], d[2]};
    };
    const std::vector<Tensor> one = run(1), two = run(2);
    for (size_t k = 0; k < one.size(); ++k) {
      CAPTURE(k);
      CHECK(allclose(one[k], two[k], 0, 0));
    }
  }
}

TEST_CASE("batch_norm_activation_pool: the batch norm, activation and 2x2 max-pool as one op, bit for bit the three") {
  struct Case {
    Shape x;
    bool training;
    Pool2dOptions pool;
    bool fused;
  };
  const std::vector<Case> cases = {
      {{4, 3, 8, 8}, true, {.kernel = 2}, true},
      {{3, 2, 7, 9}, true, {.kernel = 2}, true},    // odd planes: the last row and column left out
      {{2, 3, 6, 38}, false, {.kernel = 2}, true},  // eval, rows of 19 windows (the f32 vectors and a tail)
      {{2, 3, 6, 6}, true, {.kernel = 3, .stride = 2, .padding = 1}, false},  // other windows: the two ops
      {{2, 3, 5, 5}, true, {.kernel = 2, .ceil_mode = true}, false},
  };
  for (Dtype d : {Dtype::f32, Dtype::f64})
    for (PostActivation act : kActs)
      for (const Case& c : cases) {
        CAPTURE(c.x);
        CAPTURE(dtype_name(d));
        CAPTURE(post_activation_name(act));
        // Rounded inputs: ties inside windows (and after the ReLU, windows of zeros); one NaN.
        std::vector<double> v = input(c.x, Dtype::f64, 21).to_vector<double>();
        for (double& e : v) e = std::round(e * 4) / 4;
        v[7] = std::numeric_limits<double>::quiet_NaN();
        auto run = [&](bool one_op) {
          Tensor x = from_vector(v, c.x).to(d), g = input({c.x[1]}, d, 22), b = input({c.x[1]}, d, 23);
          Tensor rm = zeros({c.x[1]}, d), rv = ones({c.x[1]}, d);
          for (Tensor* t : {&x, &g, &b}) t->requires_grad_();
          const Tensor y = one_op
                               ? detail::batch_norm_activation_pool(x, g, b, rm, rv, c.training, 0.1, 1e-5, act, c.pool)
                               : max_pool2d(batch_norm_activation(x, g, b, rm, rv, c.training, 0.1, 1e-5, act), c.pool);
          const Tensor u = input(y.shape(), d, 24);
          y.backward(u);
          return std::vector<Tensor>{y, x.grad(), g.grad(), b.grad(), rm, rv};
        };
        const std::vector<Tensor> one = run(true), two = run(false);
        CHECK(std::string(one[0].grad_fn()->name) == (c.fused ? "batch_norm" : "max_pool2d"));
        for (size_t k = 0; k < one.size(); ++k) {
          CAPTURE(k);
          REQUIRE(one[k].shape() == two[k].shape());
          const std::vector<double> a = one[k].detach().to(Dtype::f64).to_vector<double>(),
                                    e = two[k].detach().to(Dtype::f64).to_vector<double>();
          int64_t differ = 0;
          for (size_t i = 0; i < a.size(); ++i) differ += !(a[i] == e[i] || (std::isnan(a[i]) && std::isnan(e[i])));
          CHECK(differ == 0);
        }
      }
  // gradcheck in f64 (no NaN, no ties), training and eval, and the gradients of the gradients through
  // the composition (create_graph) against the three ops'.
  for (PostActivation act : kActs)
    for (bool training : {true, false}) {
      CAPTURE(post_activation_name(act));
      CAPTURE(training);
      const Tensor rm = input({3}, Dtype::f64, 25), rv = input({3}, Dtype::f64, 26) + 1.0;
      const TensorFn f = [&](const std::vector<Tensor>& v) {
        return detail::batch_norm_activation_pool(v[0], v[1], v[2], rm.detach(), rv.detach(), training, 0.1, 1e-5, act,
                                                  {.kernel = 2});
      };
      std::vector<Tensor> in{input({2, 3, 4, 6}, Dtype::f64, 27), input({3}, Dtype::f64, 28),
                             input({3}, Dtype::f64, 29)};
      for (Tensor& t : in) t.requires_grad_();
      CHECK_GRADCHECK(f, in);
      const Tensor u = input({2, 3, 2, 3}, Dtype::f64, 30);
      auto second = [&](bool one_op) {
        const Tensor y = one_op ? f(in)
                                : max_pool2d(batch_norm_activation(in[0], in[1], in[2], rm.detach(), rv.detach(),
                                                                   training, 0.1, 1e-5, act),
                                             {.kernel = 2});
        const std::vector<Tensor> g = grad({y}, in, {u}, {.create_graph = true});
        return grad({sum(g[0] * g[0]) + sum(g[1] * g[2])}, {in[0], in[1]});
      };
      const std::vector<Tensor> a = second(true), b = second(false);
      CHECK(allclose(a[0], b[0], 1e-9, 1e-9));
      CHECK(allclose(a[1], b[1], 1e-9, 1e-9));
    }
  CHECK_ERROR(detail::batch_norm_activation_pool(zeros({2, 3, 4, 4}), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1,
                                                 1e-5, PostActivation::relu, {.kernel = 0}),
              "max_pool2d: kernel must be positive");
  CHECK_ERROR(detail::batch_norm_activation_pool(zeros({2, 3, 4, 4}), ones({4}), Tensor(), Tensor(), Tensor(), true,
                                                 0.1, 1e-5, PostActivation::relu, {.kernel = 2}),
              "batch_norm_activation: ");
}

TEST_CASE("nn::Sequential runs BatchNorm2d, ReLU or GELU, MaxPool2d(2) as one op, as the modules one by one") {
  for (bool gelu_act : {false, true}) {
    CAPTURE(gelu_act);
    manual_seed(5);
    auto make = [&] {
      auto net = std::make_shared<nn::Sequential>(nn::BatchNorm2d(4));
      if (gelu_act)
        net->push_back(nn::GELU());
      else
        net->push_back(nn::ReLU());
      net->push_back(nn::MaxPool2d(2));
      return net;
    };
    auto fused = make(), plain = make();
    const Tensor x = randn({6, 4, 10, 10});
    const Tensor y = fused->forward(x);
    CHECK(std::string(y.grad_fn()->name) == "batch_norm");
    const Tensor z = (*(*plain)[2])((*(*plain)[1])((*(*plain)[0])(x)));  // through operator(), one by one
    CHECK(std::string(z.grad_fn()->name) == "max_pool2d");
    CHECK(allclose(y, z, 0, 0));
    sum(y * y).backward();
    sum(z * z).backward();
    const nn::NamedTensors a = fused->named_parameters(), b = plain->named_parameters();
    for (size_t k = 0; k < a.size(); ++k) CHECK(allclose(a[k].second.grad(), b[k].second.grad(), 0, 0));
    CHECK(allclose(fused->at<nn::BatchNorm2d>(0).running_var(), plain->at<nn::BatchNorm2d>(0).running_var(), 0, 0));
  }
}

// Double backward through the fused kernels: gradgradcheck in f64, and second derivatives equal to
// those of the xg::ref compositions; a gradient penalty through a small CNN.
#include <optional>

#include "autograd/allocator.hpp"
#include "helpers.hpp"

using namespace xg;

namespace {
// (inputs..., u) -> the flattened vector-Jacobian products of f for upstream u, kept on the tape.
TensorFn first_derivatives(TensorFn f) {
  return [f](const std::vector<Tensor>& xs) {
    std::vector<Tensor> ins(xs.begin(), xs.end() - 1), targets;
    for (const Tensor& t : ins)
      if (t.defined() && t.requires_grad()) targets.push_back(t);
    std::vector<Tensor> gs = grad({f(ins)}, targets, {xs.back()}, {.create_graph = true});
    std::vector<Tensor> flat;
    for (size_t k = 0; k < gs.size(); ++k) flat.push_back(reshape(gs[k].defined() ? gs[k] : zeros_like(targets[k]), {-1}));
    return cat(flat, 0);
  };
}

// gradgradcheck of the fused op, and its second derivatives against the reference's.
void check_second_order(const TensorFn& fused, const TensorFn& reference, std::vector<Tensor> inputs) {
  auto gg = gradgradcheck(fused, inputs, {{.eps = 1e-6, .atol = 1e-6, .rtol = 1e-5}});
  INFO(gg.message);
  CHECK(gg.ok);
  Tensor y = [&] {
    NoGradGuard ng;
    return fused(inputs);
  }();
  manual_seed(99);
  Tensor u = randn(y.shape(), Dtype::f64);
  u.requires_grad_();
  inputs.push_back(u);
  auto r = check_against_reference(first_derivatives(fused), first_derivatives(reference), inputs,
                                   {.rtol = 1e-10});
  INFO(r.message);
  CHECK(r.ok);
}
}  // namespace

TEST_CASE("double backward: conv2d (im2col and Winograd paths) with bias, stride and padding") {
  Tensor x = test::leaf({2, 2, 5, 5}, 1), w = test::leaf({3, 2, 3, 3}, 2), b = test::leaf({3}, 3);
  check_second_order([](auto& v) { return conv2d(v[0], v[1], v[2], {.stride = 2, .padding = 1}); },
                     [](auto& v) { return ref::conv2d(v[0], v[1], v[2], {.stride = 2, .padding = 1}); }, {x, w, b});
  // 16 channels: the Winograd kernel runs the first-order pass; compared on the second order only.
  Tensor xw = test::leaf({1, 16, 4, 4}, 4), ww = test::leaf({16, 16, 3, 3}, 5);
  auto fused = [](auto& v) { return conv2d(v[0], v[1], Tensor(), {.padding = 1}); };
  auto reference = [](auto& v) { return ref::conv2d(v[0], v[1], Tensor(), {.padding = 1}); };
  manual_seed(6);
  Tensor u = randn({1, 16, 4, 4}, Dtype::f64);
  u.requires_grad_();
  auto r = check_against_reference(first_derivatives(fused), first_derivatives(reference), {xw, ww, u},
                                   {.rtol = 1e-10});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("double backward: max and average pooling") {
  Tensor x = test::leaf({2, 2, 6, 6}, 7);
  check_second_order([](auto& v) { return max_pool2d(v[0], {.kernel = 3, .stride = 2, .padding = 1}); },
                     [](auto& v) { return ref::max_pool2d(v[0], {.kernel = 3, .stride = 2, .padding = 1}); }, {x});
  check_second_order([](auto& v) { return avg_pool2d(v[0], {.kernel = 3, .stride = 2, .padding = 1}); },
                     [](auto& v) { return ref::avg_pool2d(v[0], {.kernel = 3, .stride = 2, .padding = 1}); }, {x});
}

TEST_CASE("pooling keeps no reference to its input, for gradients of any order") {
  // 2x2 windows at stride 2: rows of 8 windows or more take the vectorised scatter, shorter ones the loop.
  for (int64_t w : {17, 6}) {
    CAPTURE(w);
    Tensor x = test::leaf({2, 3, 5, w}, 41);
    check_second_order([](auto& v) { return max_pool2d(v[0], {.kernel = 2}); },
                       [](auto& v) { return ref::max_pool2d(v[0], {.kernel = 2}); }, {x});
  }
  // A pooled activation's block goes back to the allocator's cache as soon as the caller drops it,
  // before backward, and the gradient is still right.
  for (bool max : {true, false}) {
    CAPTURE(max);
    Tensor x = test::leaf({4, 16, 32, 64}, 42);  // f64, 1 MiB and more: a cached block
    Tensor y;
    std::size_t held = 0;
    {
      Tensor a = x * 2.0;
      y = max ? max_pool2d(a, {.kernel = 2}) : avg_pool2d(a, {.kernel = 2});
      held = cache_stats().cached_bytes;
    }
    CHECK(cache_stats().cached_bytes >= held + static_cast<std::size_t>(x.numel()) * sizeof(double));
    sum(y).backward();
    // Each window passes 2 to one input (max) or 2 x 1/4 to each of its four (average).
    CHECK(sum(x.grad()).item<double>() == doctest::Approx(2.0 * static_cast<double>(y.numel())));
    CHECK(xg::max(x.grad()).item<double>() == (max ? 2.0 : 0.5));
  }
}

TEST_CASE("double backward: conv2d with dilation and groups, conv_transpose2d") {
  Tensor x = test::leaf({2, 4, 6, 5}, 31), w = test::leaf({6, 2, 3, 2}, 32), b = test::leaf({6}, 33);
  const Conv2dOptions o{.stride = {1, 2}, .padding = 1, .dilation = {2, 1}, .groups = 2};
  check_second_order([o](auto& v) { return conv2d(v[0], v[1], v[2], o); },
                     [o](auto& v) { return ref::conv2d(v[0], v[1], v[2], o); }, {x, w, b});
  Tensor xt = test::leaf({2, 4, 3, 3}, 34), wt = test::leaf({4, 3, 3, 2}, 35), bt = test::leaf({6}, 36);
  const ConvTranspose2dOptions t{.stride = 2, .padding = {1, 0}, .output_padding = 1, .groups = 2, .dilation = {1, 2}};
  check_second_order([t](auto& v) { return conv_transpose2d(v[0], v[1], v[2], t); },
                     [t](auto& v) { return ref::conv_transpose2d(v[0], v[1], v[2], t); }, {xt, wt, bt});
}

TEST_CASE("double backward: pooling with ceil_mode, dilation and count_include_pad") {
  Tensor x = test::leaf({2, 2, 7, 6}, 37);
  const Pool2dOptions m{.kernel = 2, .stride = 2, .padding = 1, .dilation = {2, 1}, .ceil_mode = true};
  check_second_order([m](auto& v) { return max_pool2d(v[0], m); }, [m](auto& v) { return ref::max_pool2d(v[0], m); },
                     {x});
  const Pool2dOptions a{.kernel = 3, .stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false};
  check_second_order([a](auto& v) { return avg_pool2d(v[0], a); }, [a](auto& v) { return ref::avg_pool2d(v[0], a); },
                     {x});
}

TEST_CASE("double backward: batch_norm in training and eval, 4-D and 2-D") {
  Tensor x = test::leaf({4, 3, 2, 2}, 8), gamma = test::leaf({3}, 9), beta = test::leaf({3}, 10);
  for (bool training : {true, false}) {
    CAPTURE(training);
    Tensor rm = test::leaf({3}, 11).detach() * 0.1, rv = exp(test::leaf({3}, 12).detach());
    auto fused = [&](auto& v) { return batch_norm(v[0], v[1], v[2], rm.clone(), rv.clone(), training, 0.1, 1e-5); };
    auto reference = [&](auto& v) {
      return ref::batch_norm(v[0], v[1], v[2], rm.clone(), rv.clone(), training, 0.1, 1e-5);
    };
    check_second_order(fused, reference, {x, gamma, beta});
    Tensor x2 = test::leaf({5, 3}, 13);
    check_second_order(fused, reference, {x2, gamma, beta});
  }
  // without affine parameters
  check_second_order([](auto& v) { return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
                     [](auto& v) { return ref::batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true); }, {x});
}

TEST_CASE("double backward: batch_norm_activation with relu and gelu, training and eval") {
  Tensor x = test::leaf({4, 3, 2, 2}, 14), gamma = test::leaf({3}, 15), beta = test::leaf({3}, 16);
  for (PostActivation act : {PostActivation::relu, PostActivation::gelu})
    for (bool training : {true, false}) {
      CAPTURE(post_activation_name(act));
      CAPTURE(training);
      Tensor rm = test::leaf({3}, 17).detach() * 0.1, rv = exp(test::leaf({3}, 18).detach());
      check_second_order(
          [&](auto& v) { return batch_norm_activation(v[0], v[1], v[2], rm.clone(), rv.clone(), training, 0.1, 1e-5, act); },
          [&](auto& v) {
            return ref::batch_norm_activation(v[0], v[1], v[2], rm.clone(), rv.clone(), training, 0.1, 1e-5, act);
          },
          {x, gamma, beta});
    }
}

TEST_CASE("double backward: a gradient penalty through a small CNN trains, fused equal to reference") {
  auto run = [](bool reference) {
    manual_seed(21);
    nn::Sequential net(nn::Conv2d({.in_channels = 2, .out_channels = 4, .kernel_size = 3, .padding = 1}),
                       nn::BatchNorm2d(4), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(), nn::Linear(4 * 2 * 2, 3));
    std::optional<nn::ReferenceOpsGuard> guard;
    if (reference) guard.emplace();
    Tensor x = randn({3, 2, 4, 4});
    x.requires_grad_();
    Tensor labels = from_vector<int64_t>({0, 1, 2}, {3});
    Tensor loss = cross_entropy(net.forward(x), labels);
    Tensor gx = grad({loss}, {x}, {}, {.create_graph = true})[0];
    Tensor penalty = sum(gx * gx);
    (loss + penalty).backward();
    std::vector<float> grads;
    for (const Tensor& p : net.parameters()) {
      std::vector<float> g = p.grad().to_vector<float>();
      grads.insert(grads.end(), g.begin(), g.end());
    }
    return grads;
  };
  std::vector<float> fused = run(false), reference = run(true);
  REQUIRE(fused.size() == reference.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < fused.size(); ++i) {
    worst = std::max(worst, std::abs(double(fused[i]) - reference[i]));
    scale = std::max(scale, std::abs(double(reference[i])));
  }
  CHECK(scale > 0);
  CHECK(worst <= 1e-4 * scale);
}

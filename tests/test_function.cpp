// The custom-op API: Function<Derived>, Context, needs_input_grad, once_differentiable.
#include "helpers.hpp"

using namespace xg;
using test::leaf;

namespace {
struct Square : Function<Square> {
  static Tensor forward(Context& ctx, const Tensor& x) {
    ctx.save_for_backward({x});
    CHECK_FALSE(GradMode::is_enabled());  // forward runs with recording off
    return x * x;
  }
  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    Tensor x = ctx.saved()[0];
    return {grads[0] * 2.0 * x};
  }
};

// A scaled product with non-tensor saved data; skips gradients nobody needs.
int scaled_mul_grads = 0;
struct ScaledMul : Function<ScaledMul> {
  static constexpr const char* name = "scaled_mul";
  static Tensor forward(Context& ctx, const Tensor& a, const Tensor& b, double scale) {
    ctx.save_for_backward({a, b});
    ctx.save("scale", scale);
    return a * b * scale;
  }
  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& g) {
    const auto& s = ctx.saved();
    double scale = ctx.get<double>("scale");
    Tensor da, db;
    if (ctx.needs_input_grad(0)) da = g[0] * s[1] * scale, ++scaled_mul_grads;
    if (ctx.needs_input_grad(1)) db = g[0] * s[0] * scale, ++scaled_mul_grads;
    return {da, db};
  }
};

struct RawTwice : Function<RawTwice> {
  static constexpr const char* name = "raw_twice";
  static constexpr bool once_differentiable = true;
  static Tensor forward(Context&, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(Context&, const std::vector<Tensor>& g) { return {g[0] * 2.0}; }
};
}  // namespace

TEST_CASE("custom op: a Function joins the tape as one node") {
  Tensor x = leaf({3}, 61);
  Tensor y = Square::apply(x);
  // One node, whose one edge leads straight to the leaf: the x * x inside forward was not recorded.
  REQUIRE(y.grad_fn() != nullptr);
  REQUIRE(y.grad_fn()->next.size() == 1);
  CHECK(y.grad_fn()->next[0].node == nullptr);
  CHECK(y.grad_fn()->next[0].leaf.lock().get() == &x.impl());
  // The fused ops register the same way: conv2d is one node with one edge per input.
  Tensor cx = leaf({1, 2, 4, 4}, 65), cw = leaf({3, 2, 3, 3}, 66);
  Tensor h = cx * 2.0;
  Tensor out = conv2d(h, cw);
  CHECK(std::string(out.grad_fn()->name) == "conv2d");
  REQUIRE(out.grad_fn()->next.size() == 3);
  CHECK(out.grad_fn()->next[0].node == h.grad_fn());
  CHECK(out.grad_fn()->next[1].leaf.lock().get() == &cw.impl());
  CHECK_FALSE(out.grad_fn()->next[2].needed());  // no bias
  CHECK(allclose(y, x.detach() * x.detach()));
  CHECK_GRADCHECK([](auto& v) { return Square::apply(v[0]); }, {x});
  // It composes with second order, since its backward is written with xgrad ops.
  Tensor g = grad({sum(Square::apply(x))}, {x}, {}, {.create_graph = true})[0];
  CHECK(allclose(grad({sum(g)}, {x})[0], full({3}, 2.0, Dtype::f64)));
}

TEST_CASE("custom op: non-tensor arguments, saved data and needs_input_grad") {
  Tensor a = leaf({2, 3}, 62);
  Tensor b = randn({2, 3}, Dtype::f64);  // needs no gradient
  scaled_mul_grads = 0;
  sum(ScaledMul::apply(a, b, 3.0)).backward();
  CHECK(scaled_mul_grads == 1);
  CHECK(allclose(a.grad(), b * 3.0));
  Tensor b2 = leaf({2, 3}, 63);
  CHECK_GRADCHECK([](auto& v) { return ScaledMul::apply(v[0], v[1], 0.5); }, {a, b2});
  CHECK(fmt::format("{}", ScaledMul::apply(a, b, 1.0)).find("grad_fn=scaled_mul") != std::string::npos);
}

TEST_CASE("custom op: once_differentiable refuses create_graph with a clear error") {
  Tensor x = leaf({2}, 64);
  CHECK_GRADCHECK([](auto& v) { return RawTwice::apply(v[0]); }, {x});
  CHECK_ERROR(grad({sum(RawTwice::apply(x))}, {x}, {}, {.create_graph = true}),
              "raw_twice: double backward (create_graph) is not implemented");
}

TEST_CASE("custom op: Context errors") {
  Context ctx;
  ctx.save("k", 1);
  CHECK_ERROR(ctx.get<int>("missing"), "Context: nothing saved under 'missing'");
  CHECK_ERROR(ctx.get<double>("k"), "Context: 'k' was saved with another type");
}

TEST_CASE("gradcheck reports where it failed") {
  struct Wrong : Function<Wrong> {
    static Tensor forward(Context&, const Tensor& x) { return x * 3.0; }
    static std::vector<Tensor> backward(Context&, const std::vector<Tensor>& g) { return {g[0] * 2.0}; }
  };
  auto r = gradcheck([](auto& v) { return Wrong::apply(v[0]); }, {leaf({2}, 65)});
  CHECK_FALSE(r.ok);
  CHECK(r.input == 0);
  CHECK(r.numeric == doctest::Approx(3.0));
  CHECK(r.analytic == doctest::Approx(2.0));
  CHECK(fmt::format("{}", r).find("gradcheck failed: input 0") != std::string::npos);
  auto c = check_against_reference([](auto& v) { return Wrong::apply(v[0]); }, [](auto& v) { return v[0] * 3.0; },
                                   {leaf({2}, 66)});
  CHECK(c.output_err == 0);
  CHECK_FALSE(c.ok);
  CHECK(c.message.find("gradient of input 0 differs") != std::string::npos);
}

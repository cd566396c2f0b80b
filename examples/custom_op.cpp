// Writing a custom op: Swish as an xg::Function, checked against its composition and by gradcheck,
// then used in a small training step.
#include <xgrad.hpp>

#include "swish.hpp"

int main() {
  using namespace xg;
  manual_seed(0);
  Tensor x = randn({4, 8}, Dtype::f64);
  x.requires_grad_();

  // 1. The fused op against the composition of primitives: outputs and input gradients.
  auto same = check_against_reference([](auto& v) { return Swish::apply(v[0]); },
                                      [](auto& v) { return swish_reference(v[0]); }, {x});
  fmt::print("fused vs reference: {} (output rel. err {:.2g}, gradient rel. err {:.2g})\n", same.ok ? "agree" : "DIFFER",
             same.output_err, same.grad_errs.at(0));

  // 2. The hand-written backward against central differences.
  GradcheckResult gc = gradcheck([](auto& v) { return Swish::apply(v[0]); }, {x});
  fmt::print("{}\n", gc);

  // 3. It joins the tape like any op: one node, named after the op.
  Tensor w = randn({8, 3}) * 0.1;
  w.requires_grad_();
  Tensor loss = mean(Swish::apply(matmul(randn({16, 8}), w)));
  loss.backward();
  fmt::print("loss {:.5f}, |dloss/dw| = {:.5f}\n", loss.item<float>(), std::sqrt(sum(w.grad() * w.grad()).item<float>()));
  return same.ok && gc.ok ? 0 : 1;
}

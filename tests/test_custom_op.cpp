// The README's custom-op example (examples/swish.hpp): gradcheck and agreement with its composition.
#include "../examples/swish.hpp"
#include "helpers.hpp"

using namespace xg;

TEST_CASE("custom op example: Swish matches its composition and passes gradcheck") {
  for (Dtype d : {Dtype::f32, Dtype::f64}) {
    manual_seed(5);
    Tensor x = randn({3, 7}, d) * 3.0;
    x = x.detach();
    x.requires_grad_();
    auto r = check_against_reference([](auto& v) { return Swish::apply(v[0]); },
                                     [](auto& v) { return swish_reference(v[0]); }, {x});
    INFO(r.message);
    CHECK(r.ok);
  }
  CHECK_GRADCHECK([](auto& v) { return Swish::apply(v[0]); }, {test::leaf({3, 4}, 6)});
  Tensor x = test::leaf({2}, 7);
  CHECK_ERROR(grad({sum(Swish::apply(x))}, {x}, {}, {.create_graph = true}), "swish: double backward");
}

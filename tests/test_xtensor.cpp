// xtensor interop: from_xarray without copies, zero-copy views, round trips.
#include <xtensor/xarray.hpp>

#include "helpers.hpp"
#include "xgrad_xtensor.hpp"

using namespace xg;

TEST_CASE("xtensor interop") {
  xt::xarray<double> a = {{1, 2, 3}, {4, 5, 6}};
  const double* buf = a.data();
  Tensor t = from_xarray(std::move(a));
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.data<double>() == buf);  // moved in, not copied
  auto view = as_xtensor<double>(t);
  view(1, 2) = 60;
  CHECK(t.to_vector<double>()[5] == 60);
  xt::xarray<double> back = to_xarray<double>(sum(t, {0}));
  CHECK(back.shape()[0] == 3);
  CHECK(back(2) == 63);
}

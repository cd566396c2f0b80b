// Gradient checking: the tape's gradients against central differences, and two implementations
// of one op (fused kernel vs its composition of primitives) against each other.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <string>
#include <vector>

#include "autograd/tensor.hpp"

namespace xg {

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  int64_t max_outputs = 64;  // full Jacobian up to this many outputs, random projections beyond
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_err = 0, max_rel_err = 0;
  // Where the worst error (by rtol-scaled excess) occurred.
  int64_t input = -1, element = -1, projection = -1;
  double analytic = 0, numeric = 0;
  std::string message;  // empty when ok
};

// Central differences in f64 (f32 inputs are promoted) for every input that requires grad, against
// the tape's vector-Jacobian products: one-hot upstream gradients (the full Jacobian) for outputs up
// to max_outputs elements, three random upstream gradients beyond.
GradcheckResult gradcheck(const TensorFn& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opts = {});

// Elements are compared as allclose does, with atol = rtol * max |reference|: |a - b| <= rtol (|ref| +
// max |ref|), an infinity only equal to the same infinity, NaN only to NaN.
// Second derivatives: gradcheck of the map (inputs, v) -> v^T J(inputs), the vector-Jacobian product
// the tape computes with create_graph, for a random upstream gradient v (drawn from `seed`, without
// disturbing the global generator). Checks the double backward of every op fn uses, as
// torch.autograd.gradgradcheck does.
struct GradgradcheckOptions : GradcheckOptions {
  uint64_t seed = 4321;
};
GradcheckResult gradgradcheck(const TensorFn& fn, const std::vector<Tensor>& inputs,
                              const GradgradcheckOptions& opts = {});

struct ReferenceCheckOptions {
  double rtol = 0;  // 0: 1e-5 for f32, 1e-12 for f64
  uint64_t seed = 1234;
};

struct ReferenceCheckResult {
  bool ok = true;
  double output_err = 0;           // max |a-b| / max |reference| over finite elements; inf for a non-finite mismatch
  std::vector<double> grad_errs;   // per input that requires grad
  std::string message;             // names the first element at fault
};

// Runs both implementations on the same inputs, compares outputs, then backpropagates one random
// upstream gradient through each and compares every input gradient.
ReferenceCheckResult check_against_reference(const TensorFn& fused, const TensorFn& reference,
                                             const std::vector<Tensor>& inputs,
                                             const ReferenceCheckOptions& opts = {});

}  // namespace xg

template <>
struct fmt::formatter<xg::GradcheckResult> : fmt::formatter<std::string> {
  auto format(const xg::GradcheckResult& r, format_context& ctx) const {
    return fmt::formatter<std::string>::format(
        r.ok ? fmt::format("gradcheck ok (max abs err {:.3g}, max rel err {:.3g})", r.max_abs_err, r.max_rel_err)
             : r.message,
        ctx);
  }
};

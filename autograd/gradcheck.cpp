// gradcheck (central differences vs the tape) and check_against_reference (fused vs composition).
#include "autograd/gradcheck.hpp"

#include <cmath>

#include "autograd/engine.hpp"
#include "autograd/random.hpp"
#include "ops/ops.hpp"

namespace xg {

GradcheckResult gradcheck(const TensorFn& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opts) {
  std::vector<Tensor> xs;
  std::vector<size_t> wrt;  // positions of inputs that require grad
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (in.defined() && in.requires_grad()) {
      Tensor x = in.detach().to(Dtype::f64).clone();
      x.requires_grad_();
      xs.push_back(x);
      wrt.push_back(i);
    } else {
      xs.push_back(in);
    }
  }
  check(!wrt.empty(), "gradcheck: no input requires grad");

  Tensor y = fn(xs);
  check(y.defined() && is_floating(y.dtype()), "gradcheck: the function must return a floating tensor");
  const int64_t nout = y.numel();
  std::vector<Tensor> projections;
  if (nout <= opts.max_outputs) {
    for (int64_t j = 0; j < nout; ++j) {
      Tensor v = zeros(y.shape(), y.dtype());
      v.data<double>()[j] = 1.0;
      projections.push_back(v);
    }
  } else {
    for (int k = 0; k < 3; ++k) projections.push_back(randn(y.shape(), Dtype::f64));
  }

  std::vector<Tensor> targets;
  for (size_t i : wrt) targets.push_back(xs[i]);
  // analytic[p][t]: vector-Jacobian product of projection p for target t.
  std::vector<std::vector<Tensor>> analytic;
  for (const Tensor& v : projections) {
    if (!y.requires_grad()) {
      analytic.emplace_back(targets.size());
      continue;
    }
    analytic.push_back(grad({y}, targets, {v}, {.retain_graph = true}));
  }

  GradcheckResult r;
  double worst_excess = 0;
  NoGradGuard no_grad;
  for (size_t t = 0; t < targets.size(); ++t) {
    double* px = targets[t].data<double>();
    for (int64_t e = 0; e < targets[t].numel(); ++e) {
      const double orig = px[e];
      px[e] = orig + opts.eps;
      std::vector<double> plus = fn(xs).to_vector<double>();
      px[e] = orig - opts.eps;
      std::vector<double> minus = fn(xs).to_vector<double>();
      px[e] = orig;
      for (size_t p = 0; p < projections.size(); ++p) {
        const double* pv = projections[p].data<double>();
        double num = 0;
        for (int64_t j = 0; j < nout; ++j) num += pv[j] * (plus[j] - minus[j]) / (2 * opts.eps);
        const Tensor& ga = analytic[p][t];
        const double ana = ga.defined() ? ga.to(Dtype::f64).data<double>()[e] : 0.0;
        const double abs_err = std::abs(ana - num);
        const double rel_err = abs_err / std::max({std::abs(ana), std::abs(num), 1e-12});
        r.max_abs_err = std::max(r.max_abs_err, abs_err);
        if (abs_err > 1e-12) r.max_rel_err = std::max(r.max_rel_err, rel_err);
        // A non-finite value on either side is a failure (NaN compares false against any tolerance,
        // so it must be caught before the comparison, not by it).
        const bool finite = std::isfinite(ana) && std::isfinite(num);
        const double excess = finite ? abs_err - (opts.atol + opts.rtol * std::abs(num)) : INFINITY;
        if (excess > worst_excess || (!finite && r.ok)) {
          worst_excess = excess;
          r.ok = false;
          r.input = static_cast<int64_t>(wrt[t]);
          r.element = e;
          r.projection = static_cast<int64_t>(p);
          r.analytic = ana;
          r.numeric = num;
        }
      }
    }
  }
  if (!r.ok)
    r.message = fmt::format("gradcheck failed: input {} element {} (upstream gradient {}): analytic {:.10g} vs "
                            "numeric {:.10g}{}; max abs err {:.3g}, max rel err {:.3g}",
                            r.input, r.element, r.projection, r.analytic, r.numeric,
                            std::isfinite(r.analytic) && std::isfinite(r.numeric) ? "" : " (not finite)",
                            r.max_abs_err, r.max_rel_err);
  return r;
}

GradcheckResult gradgradcheck(const TensorFn& fn, const std::vector<Tensor>& inputs, const GradgradcheckOptions& opts) {
  std::vector<size_t> wrt;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) wrt.push_back(i);
  check(!wrt.empty(), "gradgradcheck: no input requires grad");
  Shape out_shape;
  {
    NoGradGuard no_grad;
    std::vector<Tensor> probe;
    for (const Tensor& in : inputs) probe.push_back(in.defined() && in.requires_grad() ? in.detach().to(Dtype::f64) : in);
    Tensor y = fn(probe);
    check(y.defined() && is_floating(y.dtype()), "gradgradcheck: the function must return a floating tensor");
    out_shape = y.shape();
  }
  std::mt19937_64 saved = generator();
  manual_seed(opts.seed);
  Tensor v = randn(out_shape, Dtype::f64);
  generator() = saved;
  v.requires_grad_();

  // The first derivatives, flattened into one vector; gradcheck differentiates them once more.
  TensorFn first = [&fn, &wrt](const std::vector<Tensor>& xs) {
    GradModeGuard record(true);  // gradcheck's central differences run with recording off
    std::vector<Tensor> ins(xs.begin(), xs.end() - 1), targets;
    for (size_t i : wrt) targets.push_back(ins[i]);
    Tensor y = fn(ins);
    std::vector<Tensor> gs = y.requires_grad() ? grad({y}, targets, {xs.back()}, {.create_graph = true})
                                               : std::vector<Tensor>(targets.size());
    std::vector<Tensor> flat;
    for (size_t k = 0; k < gs.size(); ++k)
      flat.push_back(reshape(gs[k].defined() ? gs[k] : zeros_like(targets[k]), {-1}));
    return cat(flat, 0);
  };
  std::vector<Tensor> all = inputs;
  all.push_back(v);
  GradcheckResult r = gradcheck(first, all, opts);
  if (!r.ok) r.message = "gradgradcheck: " + r.message + " (input " + std::to_string(inputs.size()) +
                         " is the upstream gradient)";
  return r;
}

namespace {
// Elementwise, with allclose's rules for non-finite values: an infinity matches only the same
// infinity, NaN only NaN (the two implementations agree that the value is undefined). Finite
// elements may differ by rtol * (|reference| + max |reference|): relative where values are large,
// normwise where cancellation leaves them small. Returns the normwise error max |a-b| / max |ref|
// over the finite elements, and the first element at fault.
struct Comparison {
  double err = 0;
  int64_t bad = -1;
  double a = 0, b = 0;
};
Comparison compare(const Tensor& ta, const Tensor& tb, double rtol) {
  std::vector<double> x = ta.to_vector<double>(), y = tb.to_vector<double>();
  double diff = 0, scale = 0;
  for (double v : y)
    if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
  Comparison c;
  for (size_t i = 0; i < x.size(); ++i) {
    bool ok;
    if (std::isnan(x[i]) || std::isnan(y[i])) ok = std::isnan(x[i]) && std::isnan(y[i]);
    else if (std::isinf(x[i]) || std::isinf(y[i])) ok = x[i] == y[i];
    else {
      const double d = std::abs(x[i] - y[i]);
      diff = std::max(diff, d);
      ok = d <= rtol * (std::abs(y[i]) + scale);
    }
    if (!ok && c.bad < 0) c.bad = static_cast<int64_t>(i), c.a = x[i], c.b = y[i];
  }
  c.err = diff == 0 ? 0 : diff / std::max(scale, 1e-300);
  if (c.bad >= 0 && c.err <= rtol) c.err = INFINITY;  // the fault is a non-finite mismatch
  return c;
}

std::string describe(const Comparison& c, double rtol) {
  return fmt::format("relative error {:.3g} > {:.3g}, first at element {} ({:.9g} vs reference {:.9g})", c.err, rtol,
                     c.bad, c.a, c.b);
}

std::vector<Tensor> fresh_leaves(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> xs;
  for (const Tensor& in : inputs) {
    if (in.defined() && in.requires_grad()) {
      Tensor x = in.detach().clone();
      x.requires_grad_();
      xs.push_back(x);
    } else {
      xs.push_back(in);
    }
  }
  return xs;
}
}  // namespace

ReferenceCheckResult check_against_reference(const TensorFn& fused, const TensorFn& reference,
                                             const std::vector<Tensor>& inputs, const ReferenceCheckOptions& opts) {
  std::vector<Tensor> xa = fresh_leaves(inputs), xb = fresh_leaves(inputs);
  Tensor ya = fused(xa), yb = reference(xb);
  check(ya.shape() == yb.shape(), "check_against_reference: output shapes differ: {} (fused) vs {} (reference)",
        ya.shape(), yb.shape());
  ReferenceCheckResult r;
  const double rtol = opts.rtol > 0 ? opts.rtol : (yb.dtype() == Dtype::f64 ? 1e-12 : 1e-5);
  Comparison out = compare(ya, yb, rtol);
  r.output_err = out.err;
  if (out.bad >= 0) r.message += fmt::format("output differs: {}; ", describe(out, rtol));

  std::mt19937_64 saved = generator();  // the upstream gradient must not disturb the caller's stream
  manual_seed(opts.seed);
  Tensor up = randn(yb.shape(), yb.dtype());
  generator() = saved;
  std::vector<Tensor> ta, tb;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (xa[i].defined() && xa[i].requires_grad()) ta.push_back(xa[i]), tb.push_back(xb[i]);
  if (!ta.empty()) {
    std::vector<Tensor> ga = ya.requires_grad() ? grad({ya}, ta, {up}) : std::vector<Tensor>(ta.size());
    std::vector<Tensor> gb = yb.requires_grad() ? grad({yb}, tb, {up}) : std::vector<Tensor>(tb.size());
    for (size_t i = 0; i < ta.size(); ++i) {
      Tensor a = ga[i].defined() ? ga[i] : zeros_like(ta[i]);
      Tensor b = gb[i].defined() ? gb[i] : zeros_like(tb[i]);
      Comparison e = compare(a, b, rtol);
      r.grad_errs.push_back(e.err);
      if (e.bad >= 0) r.message += fmt::format("gradient of input {} differs: {}; ", i, describe(e, rtol));
    }
  }
  r.ok = r.message.empty();
  return r;
}

}  // namespace xg

// softmax, log_softmax and the losses, each a composition of primitives: cross_entropy, nll_loss,
// multi_margin_loss, binary_cross_entropy_with_logits, mse_loss, smooth_l1_loss, huber_loss, kl_div.
#include <cmath>
#include <optional>

#include "ops/kernels.hpp"

namespace xg {

using detail::Grads;

namespace {

// Softmax or log-softmax along dim d, stable (the row max is subtracted first).
Tensor softmax_kernel(const Tensor& x, int64_t d, bool log) {
  int64_t outer = 1, D = x.dim() == 0 ? 1 : x.shape()[d], inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.shape()[i];
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.shape()[i];
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), [&]<class T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* row = px + o * D * inner + i;
        T* dst = po + o * D * inner + i;
        T m = -INFINITY;
        for (int64_t k = 0; k < D; ++k) m = std::max(m, row[k * inner]);
        if (std::isinf(m) && m < 0) m = 0;  // an all -inf row: keep exp finite
        double s = 0;
        for (int64_t k = 0; k < D; ++k) s += std::exp(static_cast<double>(row[k * inner] - m));
        const double ls = std::log(s);
        for (int64_t k = 0; k < D; ++k) {
          const double v = static_cast<double>(row[k * inner] - m);
          dst[k * inner] = static_cast<T>(log ? v - ls : std::exp(v) / s);
        }
      }
  });
  return out;
}

void check_floating(const Tensor& x, const char* op) {
  check(x.defined(), "{}: undefined tensor", op);
  check(is_floating(x.dtype()), "{}: needs a floating tensor, got {}", op, dtype_name(x.dtype()));
}

// Checks [N, C] scores (or [N, C, d1, ...] when spatial) against i64 labels [N] ([N, d1, ...]) with
// values in [0, C), other than ignore_index.
void check_labels(const Tensor& scores, const Tensor& labels, const char* op, bool spatial = false,
                  std::optional<int64_t> ignore_index = {}) {
  check_floating(scores, op);
  if (spatial)
    check(scores.dim() >= 2, "{}: input must be [N, C] or [N, C, d1, ...], got shape {}", op, scores.shape());
  else
    check(scores.dim() == 2, "{}: input must be 2-D [N, C], got shape {}", op, scores.shape());
  check(labels.defined() && labels.dtype() == Dtype::i64, "{}: labels must be an i64 tensor", op);
  Shape want{scores.shape()[0]};
  for (int64_t d = 2; d < scores.dim(); ++d) want.push_back(scores.shape()[d]);
  check(labels.shape() == want, "{}: labels shape {} does not match input shape {} (expected {})", op,
        labels.shape(), scores.shape(), want);
  const int64_t C = scores.shape()[1];
  const int64_t* p = labels.data<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i)
    check((p[i] >= 0 && p[i] < C) || (ignore_index && p[i] == *ignore_index),
          "{}: label {} at position {} is out of range for {} classes", op, p[i], i, C);
}

void check_reduction(const std::string& reduction, const char* op, bool batchmean = false) {
  check(reduction == "mean" || reduction == "sum" || reduction == "none" || (batchmean && reduction == "batchmean"),
        "{}: reduction must be {}\"mean\", \"sum\" or \"none\", got \"{}\"", op, batchmean ? "\"batchmean\", " : "",
        reduction);
}

Tensor reduce(const Tensor& loss, const std::string& reduction) {
  if (reduction == "none") return loss;
  if (reduction == "sum") return sum(loss);
  return mean(loss);
}

// Shape checks of the elementwise losses: target as input; a weight that broadcasts to it.
void check_pair(const Tensor& input, const Tensor& target, const char* op) {
  check_floating(input, op);
  check(target.defined() && target.shape() == input.shape(), "{}: target shape {} does not match input shape {}", op,
        target.defined() ? target.shape() : Shape{}, input.shape());
  check(is_floating(target.dtype()), "{}: target must be floating, got {}", op, dtype_name(target.dtype()));
}
void check_broadcasts(const Tensor& w, const Shape& shape, const char* op, const char* what) {
  if (!w.defined()) return;
  bool fits = w.dim() <= static_cast<int64_t>(shape.size()) && is_floating(w.dtype());
  for (int64_t i = 1; fits && i <= w.dim(); ++i) {
    const int64_t a = w.shape()[w.dim() - i], b = shape[shape.size() - i];
    fits = a == b || a == 1;
  }
  check(fits, "{}: {} (shape {}, {}) must be floating and broadcast to the input shape {}", op, what, w.shape(),
        dtype_name(w.dtype()), shape);
}

// Per label, with classes moved last and flattened: -weight[y] log_probs[y] and weight[y] (both 0
// where y is ignore_index), as [M] where M is the number of labels.
struct Picked {
  Tensor loss, weight;
  Tensor kept;  // i64 0 where the label is ignore_index, else 1; undefined when none is
};
Picked pick(const Tensor& logp, const Tensor& labels, const Tensor& weight, int64_t ignore_index) {
  const int64_t M = labels.numel();
  const int64_t* p = labels.data<int64_t>();
  std::vector<int64_t> safe(p, p + M), keep(M, 1);
  bool any_ignored = false;
  for (int64_t i = 0; i < M; ++i)
    if (p[i] == ignore_index) safe[i] = 0, keep[i] = 0, any_ignored = true;
  Tensor idx = from_vector(safe, {M}), kept = from_vector(keep, {M});
  Tensor w = weight.defined() ? index_select(weight.to(logp.dtype()), 0, idx) : ones({M}, logp.dtype());
  if (any_ignored) w = where(kept, w, 0.0);
  Tensor loss = neg(mul(reshape(gather(logp, 1, unsqueeze(idx, 1)), {M}), w));
  if (any_ignored) loss = where(kept, loss, 0.0);  // 0, even where log_probs[0] is -inf
  return {loss, w, any_ignored ? kept : Tensor()};
}

// [N, C, d1, ...] -> [N * d1 * ..., C]
Tensor classes_last(const Tensor& x) {
  if (x.dim() == 2) return x;
  Dims perm{0};
  for (int64_t d = 2; d < x.dim(); ++d) perm.push_back(d);
  perm.push_back(1);
  return reshape(permute(x, perm), {-1, x.shape()[1]});
}

void check_weight(const Tensor& weight, int64_t C, const char* op) {
  if (!weight.defined()) return;
  check(weight.dim() == 1 && weight.shape()[0] == C && is_floating(weight.dtype()),
        "{}: weight must be a floating 1-D tensor with one element per class ({}), got shape {} ({})", op, C,
        weight.shape(), dtype_name(weight.dtype()));
}

// nll_loss and cross_entropy's common part; logp_rows is [M, C].
Tensor nll_reduced(const Tensor& logp_rows, const Tensor& labels, const Tensor& weight, int64_t ignore_index,
                   const std::string& reduction, Picked* picked = nullptr) {
  Picked pk = pick(logp_rows, labels, weight, ignore_index);
  if (picked) *picked = pk;
  if (reduction == "none") return reshape(pk.loss, labels.shape());
  if (reduction == "sum") return sum(pk.loss);
  return div(sum(pk.loss), sum(pk.weight));  // 0 / 0 = NaN when every label is ignored, as PyTorch
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  if (trace::enabled()) return trace::op("softmax", {x}, {{"dim", dim}}, [&] { return softmax(x, dim); });
  check_floating(x, "softmax");
  int64_t d = wrap_dim(dim, x.dim(), "softmax");
  return record("softmax", softmax_kernel(x, d, false), {x}, [d](const GradArgs& g) {
    const Tensor& y = g.out;
    return Grads{mul(y, sub(g.grad, sum(mul(g.grad, y), {d}, true)))};
  }, {.output = true});
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  if (trace::enabled()) return trace::op("log_softmax", {x}, {{"dim", dim}}, [&] { return log_softmax(x, dim); });
  check_floating(x, "log_softmax");
  int64_t d = wrap_dim(dim, x.dim(), "log_softmax");
  return record("log_softmax", softmax_kernel(x, d, true), {x}, [d](const GradArgs& g) {
    return Grads{sub(g.grad, mul(exp(g.out), sum(g.grad, {d}, true)))};
  }, {.output = true});
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, const NLLLossOptions& opts) {
  check_labels(log_probs, labels, "nll_loss", true, opts.ignore_index);
  check_weight(opts.weight, log_probs.shape()[1], "nll_loss");
  check_reduction(opts.reduction, "nll_loss");
  return nll_reduced(classes_last(log_probs), labels, opts.weight, opts.ignore_index, opts.reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyOptions& opts) {
  check_labels(logits, labels, "cross_entropy", true, opts.ignore_index);
  const int64_t C = logits.shape()[1];
  check_weight(opts.weight, C, "cross_entropy");
  check_reduction(opts.reduction, "cross_entropy");
  const double e = opts.label_smoothing;
  check(e >= 0 && e <= 1, "cross_entropy: label_smoothing must be in [0, 1], got {}", e);
  Tensor logp = log_softmax(classes_last(logits), 1);
  Picked pk;
  Tensor loss = nll_reduced(logp, labels, opts.weight, opts.ignore_index, opts.reduction, &pk);
  if (e == 0) return loss;
  // PyTorch's smoothing term: per label -sum_c weight[c] log p_c (0 where ignored), reduced as the
  // nll term ("mean" divides by the same sum of weight[y]), scaled by e / C.
  Tensor wlogp = opts.weight.defined() ? mul(logp, opts.weight.to(logp.dtype())) : logp;
  Tensor smooth = neg(sum(wlogp, {1}));
  if (pk.kept.defined()) smooth = where(pk.kept, smooth, 0.0);
  Tensor reduced = opts.reduction == "none" ? reshape(smooth, labels.shape())
                   : opts.reduction == "sum" ? sum(smooth)
                                             : div(sum(smooth), sum(pk.weight));
  return add(mul(loss, 1 - e), mul(reduced, e / static_cast<double>(C)));
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
  return cross_entropy(logits, labels, CrossEntropyOptions{.label_smoothing = label_smoothing});
}

Tensor multi_margin_loss(const Tensor& scores, const Tensor& labels) {
  check_labels(scores, labels, "multi_margin_loss");
  const double N = static_cast<double>(scores.shape()[0]), C = static_cast<double>(scores.shape()[1]);
  Tensor correct = gather(scores, 1, unsqueeze(labels, 1));  // [N, 1]
  Tensor margins = relu(add(sub(scores, correct), 1.0));     // the true class contributes exactly 1
  return div(sub(div(sum(margins), N), 1.0), C);
}

Tensor mse_loss(const Tensor& input, const Tensor& target) {
  check_floating(input, "mse_loss");
  check(target.defined() && target.shape() == input.shape(), "mse_loss: target shape {} does not match input shape {}",
        target.defined() ? target.shape() : Shape{}, input.shape());
  Tensor d = sub(input, target);
  return mean(mul(d, d));
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const BCEWithLogitsOptions& opts) {
  const char* op = "binary_cross_entropy_with_logits";
  check_pair(input, target, op);
  check_broadcasts(opts.weight, input.shape(), op, "weight");
  check_broadcasts(opts.pos_weight, input.shape(), op, "pos_weight");
  check_reduction(opts.reduction, op);
  // -log(1 - sigmoid(x)) = softplus(x) and -log sigmoid(x) = softplus(-x), so the loss is
  // (1 - y) x + (1 + (pos_weight - 1) y) softplus(-x); softplus never overflows.
  Tensor y = target.to(input.dtype());
  Tensor sp = softplus(neg(input), 1.0, INFINITY);
  Tensor pos = opts.pos_weight.defined() ? add(mul(sub(opts.pos_weight.to(input.dtype()), 1.0), y), 1.0) : Tensor();
  Tensor loss = add(mul(neg(sub(y, 1.0)), input), pos.defined() ? mul(pos, sp) : sp);
  if (opts.weight.defined()) loss = mul(loss, opts.weight.to(input.dtype()));
  return reduce(loss, opts.reduction);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossOptions& opts) {
  check_pair(input, target, "smooth_l1_loss");
  check(opts.beta >= 0 && std::isfinite(opts.beta), "smooth_l1_loss: beta must be finite and >= 0, got {}", opts.beta);
  check_reduction(opts.reduction, "smooth_l1_loss");
  Tensor d = sub(input, target.to(input.dtype())), ad = abs(d);
  if (opts.beta == 0) return reduce(ad, opts.reduction);  // the l1 loss (the quadratic branch would divide by 0)
  return reduce(where(lt(ad, opts.beta), mul(mul(d, d), 0.5 / opts.beta), sub(ad, 0.5 * opts.beta)), opts.reduction);
}

Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberLossOptions& opts) {
  check_pair(input, target, "huber_loss");
  check(opts.delta > 0 && std::isfinite(opts.delta), "huber_loss: delta must be finite and > 0, got {}", opts.delta);
  check_reduction(opts.reduction, "huber_loss");
  Tensor d = sub(input, target.to(input.dtype())), ad = abs(d);
  Tensor loss = where(lt(ad, opts.delta), mul(mul(d, d), 0.5), mul(sub(ad, 0.5 * opts.delta), opts.delta));
  return reduce(loss, opts.reduction);
}

Tensor kl_div(const Tensor& input, const Tensor& target, const KLDivOptions& opts) {
  check_pair(input, target, "kl_div");
  check_reduction(opts.reduction, "kl_div", true);
  Tensor t = target.to(input.dtype()), loss;
  if (opts.log_target) {
    loss = mul(exp(t), sub(t, input));
  } else {
    // t log t is 0 at t = 0 (xlogy); log sees 1 there, so the discarded branch stays finite.
    Tensor nonzero = ne(t, zeros_like(t));
    Tensor tlogt = where(nonzero, mul(t, log(where(nonzero, t, 1.0))), 0.0);
    loss = sub(tlogt, mul(t, input));
  }
  if (opts.reduction == "batchmean") return input.dim() == 0 ? sum(loss) : div(sum(loss), static_cast<double>(input.shape()[0]));
  return reduce(loss, opts.reduction);
}

}  // namespace xg

// softmax, log_softmax and the losses (cross_entropy, nll_loss, multi_margin_loss, mse_loss).
#include <cmath>

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

// Checks [N, C] scores against i64 labels [N] with values in [0, C).
void check_labels(const Tensor& scores, const Tensor& labels, const char* op) {
  check_floating(scores, op);
  check(scores.dim() == 2, "{}: input must be 2-D [N, C], got shape {}", op, scores.shape());
  check(labels.defined() && labels.dtype() == Dtype::i64, "{}: labels must be an i64 tensor", op);
  check(labels.dim() == 1 && labels.shape()[0] == scores.shape()[0],
        "{}: labels shape {} does not match input shape {} (expected [{}])", op, labels.shape(), scores.shape(),
        scores.shape()[0]);
  const int64_t C = scores.shape()[1];
  const int64_t* p = labels.data<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i)
    check(p[i] >= 0 && p[i] < C, "{}: label {} at position {} is out of range for {} classes", op, p[i], i, C);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  check_floating(x, "softmax");
  int64_t d = wrap_dim(dim, x.dim(), "softmax");
  return record("softmax", softmax_kernel(x, d, false), {x}, [d](const GradArgs& g) {
    const Tensor& y = g.out;
    return Grads{mul(y, sub(g.grad, sum(mul(g.grad, y), {d}, true)))};
  }, {.output = true});
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  check_floating(x, "log_softmax");
  int64_t d = wrap_dim(dim, x.dim(), "log_softmax");
  return record("log_softmax", softmax_kernel(x, d, true), {x}, [d](const GradArgs& g) {
    return Grads{sub(g.grad, mul(exp(g.out), sum(g.grad, {d}, true)))};
  }, {.output = true});
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& labels) {
  check_labels(log_probs, labels, "nll_loss");
  return neg(mean(gather(log_probs, 1, unsqueeze(labels, 1))));
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
  check_labels(logits, labels, "cross_entropy");
  check(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy: label_smoothing must be in [0, 1], got {}",
        label_smoothing);
  Tensor logp = log_softmax(logits, 1), loss = nll_loss(logp, labels);
  if (label_smoothing == 0) return loss;
  // (1 - e) * nll + e * (the mean over samples of the mean over classes of -log p)
  return add(mul(loss, 1 - label_smoothing), mul(mean(logp), -label_smoothing));
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

}  // namespace xg

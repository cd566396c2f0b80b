// In-place writes against the tape: version counters on storages, saved tensors checked before
// backward, in-place ops on tensors that require grad refused.
#include "helpers.hpp"

using namespace xg;
using test::f64;

TEST_CASE("every in-place write bumps the storage's version, shared by views") {
  Tensor t = zeros({2, 3}, Dtype::f64);
  const uint32_t v0 = t.version();
  t.fill_(1.0);
  CHECK(t.version() == v0 + 1);
  t.add_(ones({2, 3}, Dtype::f64));
  t.mul_(2.0);
  t.copy_(zeros({2, 3}, Dtype::f32));
  CHECK(t.version() == v0 + 4);
  Tensor view = reshape(t, {6});  // same storage
  view.fill_(3.0);
  CHECK(t.version() == v0 + 5);
  CHECK(t.detach().version() == t.version());
  Tensor c = t.clone();
  CHECK(c.version() != t.version() + 100);  // a clone has its own counter
  c.fill_(0.0);
  CHECK(t.version() == v0 + 5);
}

TEST_CASE("backward refuses a saved input changed in place (the issue's case: y = sum(w * w))") {
  Tensor w = f64({1.0, 2.0, 3.0}, {3});
  w.requires_grad_();
  Tensor y = sum(w * w);
  {
    NoGradGuard g;
    w.add_(ones({3}, Dtype::f64));
  }
  CHECK_ERROR(y.backward(), "backward of 'mul': a tensor of shape [3] needed for its gradient was modified by an "
                            "in-place operation (version 1, saved at 0)");
  CHECK_FALSE(w.grad().defined());  // nothing was delivered
}

TEST_CASE("backward refuses an op's saved output changed in place") {
  Tensor x = test::leaf({4});
  Tensor h = exp(x);
  Tensor y = sum(h * 3.0);  // mul by a scalar saves h
  {
    NoGradGuard g;
    h.mul_(2.0);
  }
  CHECK_ERROR(y.backward(), "modified by an in-place operation");
  // exp's own output: changed after exp ran, read by exp's backward.
  Tensor x2 = test::leaf({4});
  Tensor h2 = exp(x2);
  Tensor y2 = sum(h2 + 1.0);  // add saves nothing
  {
    NoGradGuard g;
    h2.fill_(0.0);
  }
  CHECK_ERROR(y2.backward(), "backward of 'exp': its output of shape [4] needed for its gradient was modified");
}

TEST_CASE("ops that do not read a tensor in backward do not mind it changing") {
  Tensor x = test::leaf({3});
  Tensor y = sum(x + 1.0);
  {
    NoGradGuard g;
    x.fill_(5.0);
  }
  y.backward();  // add's gradient does not depend on x
  CHECK(allclose(x.grad(), ones({3}, Dtype::f64)));
}

TEST_CASE("a changed index or condition is caught; a changed non-saved data tensor is not") {
  Tensor x = test::leaf({2, 3});
  Tensor idx = from_vector<int64_t>({0, 2}, {2, 1});
  Tensor y = sum(gather(x, 1, idx));
  idx.fill_(1);
  CHECK_ERROR(y.backward(), "backward of 'gather'");

  Tensor cond = from_vector<int64_t>({1, 0, 1, 0, 1, 0}, {2, 3});
  Tensor z = sum(where(cond, x, 0.0));
  cond.fill_(1);
  CHECK_ERROR(z.backward(), "backward of 'where'");
}

TEST_CASE("optimizer steps, initialisers and loading bump versions, so a stale graph is refused") {
  nn::Linear lin(3, 2);
  optim::SGD opt(lin.parameters(), {.lr = 0.1});
  Tensor x = randn({4, 3});
  Tensor loss = sum(lin.forward(x));
  loss.backward({.retain_graph = true});
  opt.step();  // the weights matmul saved have moved
  CHECK_ERROR(loss.backward(), "modified by an in-place operation");

  Tensor loss2 = sum(lin.forward(x));
  lin.load_state_dict(lin.state_dict());
  CHECK_ERROR(loss2.backward(), "modified by an in-place operation");

  Tensor loss3 = sum(lin.forward(x));
  nn::init::uniform_(lin.weight(), -1, 1);
  CHECK_ERROR(loss3.backward(), "modified by an in-place operation");
}

TEST_CASE("batch norm's running statistics are versioned as they update") {
  nn::BatchNorm1d bn(3);
  Tensor rm = bn.named_buffers()[0].second;
  const uint32_t v = rm.version();
  bn.forward(randn({5, 3}));
  CHECK(rm.version() > v);
}

TEST_CASE("custom Functions: saved tensors are checked too") {
  Tensor img = test::leaf({1, 2, 5, 5}), k = test::leaf({3, 2, 3, 3});
  Tensor y = sum(conv2d(img, k, Tensor(), {.padding = 1}));
  {
    NoGradGuard g;
    k.mul_(2.0);
  }
  CHECK_ERROR(y.backward(), "backward of 'conv2d'");
}

TEST_CASE("in-place ops refuse tensors that require grad while recording") {
  Tensor w = test::leaf({3});
  CHECK_ERROR(w.add_(ones({3}, Dtype::f64)), "add_: a leaf tensor that requires grad (shape [3]) is being used in "
                                             "an in-place operation");
  CHECK_ERROR(w.fill_(0.0), "fill_: a leaf tensor that requires grad");
  CHECK_ERROR(w.mul_(2.0), "mul_: a leaf tensor that requires grad");
  CHECK_ERROR(w.copy_(zeros({3}, Dtype::f64)), "copy_: a leaf tensor that requires grad");
  const uint32_t v = w.version();
  CHECK(w.to_vector<double>() == test::leaf({3}).to_vector<double>());  // unchanged
  Tensor h = exp(w);
  CHECK_ERROR(h.mul_(2.0), "mul_: in-place operation on a tensor that requires grad (shape [3], output of 'exp')");
  CHECK(w.version() == v);
  {
    NoGradGuard g;
    w.mul_(2.0);  // allowed off the tape
  }
  CHECK(w.version() == v + 1);
}

TEST_CASE("a backward whose graph was retained works again once nothing changed") {
  Tensor w = test::leaf({3});
  Tensor y = sum(w * w);
  y.backward({.retain_graph = true});
  y.backward();
  CHECK(allclose(w.grad(), 4.0 * w.detach(), 1e-12));
}

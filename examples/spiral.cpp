// A two-layer net learns CS231n's three-armed spiral with the tape; prints its falling loss.
#include <cmath>
#include <numbers>

#include <xgrad.hpp>

int main() {
  using namespace xg;
  configure_process();  // malloc and OpenBLAS settings for speed; xgrad changes neither by itself
  constexpr int64_t per_class = 100, classes = 3, hidden = 100;
  manual_seed(0);

  // The spiral: class k winds from the centre along angle 4k..4(k+1) with Gaussian jitter.
  std::vector<float> pts;
  std::vector<int64_t> labels;
  Tensor jitter = randn({classes * per_class}) * 0.2;
  auto jv = jitter.to_vector<float>();
  for (int64_t k = 0; k < classes; ++k)
    for (int64_t i = 0; i < per_class; ++i) {
      float r = static_cast<float>(i) / (per_class - 1);
      float t = 4.0f * k + 4.0f * r + jv[k * per_class + i];
      pts.push_back(r * std::sin(t));
      pts.push_back(r * std::cos(t));
      labels.push_back(k);
    }
  Tensor x = from_vector(pts, {classes * per_class, 2});
  Tensor y = from_vector(labels);

  Tensor w1 = randn({hidden, 2}) * 0.5, b1 = zeros({hidden});
  Tensor w2 = randn({classes, hidden}) * 0.1, b2 = zeros({classes});
  std::vector<Tensor> params{w1, b1, w2, b2};
  for (Tensor& p : params) p.requires_grad_();

  const double lr = 1.0, reg = 1e-3;
  for (int step = 0; step <= 2000; ++step) {
    Tensor scores = linear(relu(linear(x, w1, b1)), w2, b2);
    Tensor loss = cross_entropy(scores, y) + 0.5 * reg * (sum(w1 * w1) + sum(w2 * w2));
    for (Tensor& p : params) p.zero_grad();
    loss.backward();
    {
      NoGradGuard no_grad;
      for (Tensor& p : params) p.add_(p.grad(), -lr);
    }
    if (step % 200 == 0) {
      double acc = mean(eq(argmax(scores, 1), y).to(Dtype::f32)).item<float>();
      fmt::print("step {:5d}  loss {:.4f}  train accuracy {:.1f}%\n", step, loss.item<float>(), 100 * acc);
    }
  }
  return 0;
}

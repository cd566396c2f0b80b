// Fused batch norm for [N,C] and [N,C,H,W]: per-channel statistics on raw buffers (parallel over
// channels) and the compact three-term backward:
//   dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)),  M = N*H*W.
#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>
#include <vector>

#include "autograd/function.hpp"
#include "autograd/parallel.hpp"
#include "ops/geometry.hpp"
#include "ops/lanes.hpp"

namespace xg {

namespace {

// Channels per piece for [N, C] input, so that each piece has some 32K values to work on.
int64_t columns_grain(int64_t N) { return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(N, 1)); }

struct BatchNormFn : Function<BatchNormFn> {
  static constexpr const char* name = "batch_norm";

  struct Stats {
    int64_t N, C, HW;
    bool training;
    std::vector<double> mean, invstd;  // the statistics used to normalise, per channel
  };

  // Visits channel c's M values of x as (pointer to a contiguous run of HW values) per sample.
  template <class T, class F>
  static void runs(T* base, const Stats& s, int64_t c, F&& f) {
    for (int64_t n = 0; n < s.N; ++n) f(base + (n * s.C + c) * s.HW);
  }

  static Tensor forward(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        const Tensor& running_mean, const Tensor& running_var, bool training, double momentum,
                        double eps) {
    auto st = std::make_shared<Stats>();
    Stats& s = *st;
    s.N = x.shape()[0], s.C = x.shape()[1], s.HW = x.numel() / std::max<int64_t>(s.N * s.C, 1);
    s.training = training || !running_mean.defined();
    s.mean.resize(s.C), s.invstd.resize(s.C);
    const double M = static_cast<double>(s.N * s.HW);
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), [&]<class T>() {
      const T* px = x.data<T>();
      T* py = out.data<T>();
      const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
      const T* pb = beta.defined() ? beta.data<T>() : nullptr;
      T* rm = running_mean.defined() ? running_mean.data<T>() : nullptr;
      T* rv = running_var.defined() ? running_var.data<T>() : nullptr;
      // Channel c's statistics from the sums of (x - k) and (x - k)^2 over its M values (training), or
      // the running ones (eval); updates the running statistics and returns the affine map x*scale+shift.
      auto finish = [&](int64_t c, double k, double sum, double sq) {
        double mu, var;
        if (s.training) {
          mu = k + sum / M;
          var = std::max(0.0, sq / M - (sum / M) * (sum / M));  // biased: used to normalise
          if (training && rm) {
            rm[c] = static_cast<T>((1 - momentum) * rm[c] + momentum * mu);
            rv[c] = static_cast<T>((1 - momentum) * rv[c] + momentum * var * M / (M - 1));  // unbiased
          }
        } else {
          mu = rm[c], var = rv[c];
        }
        const double invstd = 1.0 / std::sqrt(var + eps);
        s.mean[c] = mu, s.invstd[c] = invstd;
        const double scale = (pg ? pg[c] : 1.0) * invstd;
        return std::pair<T, T>(static_cast<T>(scale), static_cast<T>((pb ? pb[c] : 0.0) - mu * scale));
      };
      // The sums are shifted by each channel's first value, so that sum of squares minus squared sum
      // stays exact.
      if (s.HW == 1) {  // [N, C]: rows of C values; the loops run along the channels
        parallel_for(0, s.C, columns_grain(s.N), [&](int64_t lo, int64_t hi) {
          const int64_t w = hi - lo;
          std::vector<double> k(w, 0.0), sum(w, 0.0), sq(w, 0.0);
          std::vector<T> scale(w), shift(w);
          if (s.training && s.N > 0) std::copy(px + lo, px + hi, k.begin());
          if (s.training)
            for (int64_t n = 0; n < s.N; ++n) {
              const T* r = px + n * s.C + lo;
              for (int64_t j = 0; j < w; ++j) {
                const double v = r[j] - k[j];
                sum[j] += v, sq[j] += v * v;
              }
            }
          for (int64_t j = 0; j < w; ++j) std::tie(scale[j], shift[j]) = finish(lo + j, k[j], sum[j], sq[j]);
          for (int64_t n = 0; n < s.N; ++n) {
            const T* r = px + n * s.C + lo;
            T* y = py + n * s.C + lo;
            for (int64_t j = 0; j < w; ++j) y[j] = r[j] * scale[j] + shift[j];
          }
        });
        return;
      }
      parallel_for(0, s.C, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t c = lo; c < hi; ++c) {
          const T k = s.training && s.N * s.HW > 0 ? px[c * s.HW] : T(0);
          double sum = 0, sq = 0;
          if (s.training)
            runs(px, s, c, [&](const T* r) {
              auto [a, b] = detail::lane_sums<T>(s.HW, [&](int64_t i) { return r[i] - k; },
                                         [&](int64_t i) { return (r[i] - k) * (r[i] - k); });
              sum += a, sq += b;
            });
          const auto [scale, shift] = finish(c, k, sum, sq);
          for (int64_t n = 0; n < s.N; ++n) {
            const T* r = px + (n * s.C + c) * s.HW;
            T* y = py + (n * s.C + c) * s.HW;
            for (int64_t i = 0; i < s.HW; ++i) y[i] = r[i] * scale + shift;
          }
        }
      });
    });
    if (training && running_mean.defined()) {  // written in place above
      running_mean.bump_version();
      running_var.bump_version();
    }
    ctx.save_for_backward({x, gamma});
    ctx.save("stats", st);
    ctx.save("eps", eps);
    return out;
  }

  // With create_graph on: gradients through the primitive composition (batch statistics in
  // training, the frozen ones in eval), which the tape can differentiate again.
  static std::vector<Tensor> differentiable_backward(Context& ctx, const Stats& s, const Tensor& dy) {
    const Tensor& x = ctx.saved()[0];
    const Dims dims = x.dim() == 2 ? Dims{0} : Dims{0, 2, 3};
    Shape bshape(x.dim(), 1);
    bshape[1] = s.C;
    const double eps = ctx.get<double>("eps");
    Tensor mu = from_vector(s.mean, bshape).to(x.dtype()), invstd = from_vector(s.invstd, bshape).to(x.dtype());
    auto composition = [&](const std::vector<Tensor>& v) {
      Tensor xhat = s.training ? ref::batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, eps)
                               : (v[0] - mu) * invstd;
      return v[1].defined() ? xhat * reshape(v[1], bshape) : xhat;
    };
    std::vector<Tensor> d = composite_backward(composition, ctx.saved(), dy,
                                               {ctx.needs_input_grad(0), ctx.needs_input_grad(1)});
    Tensor dbeta = ctx.needs_input_grad(2) ? sum(dy, dims) : Tensor();
    return {d[0], d[1], dbeta, Tensor(), Tensor()};
  }

  static std::vector<Tensor> backward(Context& ctx, const std::vector<Tensor>& grads) {
    const Tensor &x = ctx.saved()[0], &gamma = ctx.saved()[1];
    const Stats& s = *ctx.get<std::shared_ptr<Stats>>("stats");
    const Tensor& dy = grads[0];
    if (GradMode::is_enabled()) return differentiable_backward(ctx, s, dy);
    const bool want_x = ctx.needs_input_grad(0);
    Tensor dx = want_x ? Tensor::empty(x.shape(), x.dtype()) : Tensor();
    Tensor dgamma = ctx.needs_input_grad(1) && gamma.defined() ? Tensor::empty({s.C}, x.dtype()) : Tensor();
    Tensor dbeta = ctx.needs_input_grad(2) ? Tensor::empty({s.C}, x.dtype()) : Tensor();
    const double M = static_cast<double>(s.N * s.HW);
    dispatch_floating(x.dtype(), [&]<class T>() {
      const T* px = x.data<T>();
      const T* pdy = dy.data<T>();
      const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
      T* out = want_x ? dx.data<T>() : nullptr;
      // Channel c's sums of dy and dy * xhat give dgamma and dbeta; dx = k * (dy - a - (x - mu) * b). In
      // training the statistics depend on x, giving the two correction terms a and b; in eval mode
      // the map is a fixed affine one.
      struct Coef {
        T mu, k, a, b;
      };
      auto finish = [&](int64_t c, double sum_dy, double sum_dy_xhat) {
        if (dgamma.defined()) dgamma.data<T>()[c] = static_cast<T>(sum_dy_xhat);
        if (dbeta.defined()) dbeta.data<T>()[c] = static_cast<T>(sum_dy);
        const double invstd = s.invstd[c], a = s.training ? sum_dy / M : 0.0,
                     b = s.training ? sum_dy_xhat / M : 0.0;
        return Coef{static_cast<T>(s.mean[c]), static_cast<T>((pg ? pg[c] : 1.0) * invstd), static_cast<T>(a),
                    static_cast<T>(b * invstd)};
      };
      if (s.HW == 1) {  // [N, C]: rows of C values; the loops run along the channels
        parallel_for(0, s.C, columns_grain(s.N), [&](int64_t lo, int64_t hi) {
          const int64_t w = hi - lo;
          std::vector<double> sum_dy(w, 0.0), sum_dy_xhat(w, 0.0);
          std::vector<Coef> co(w);
          for (int64_t n = 0; n < s.N; ++n) {
            const T* r = px + n * s.C + lo;
            const T* d = pdy + n * s.C + lo;
            for (int64_t j = 0; j < w; ++j) {
              sum_dy[j] += d[j];
              sum_dy_xhat[j] += d[j] * ((r[j] - s.mean[lo + j]) * s.invstd[lo + j]);
            }
          }
          for (int64_t j = 0; j < w; ++j) co[j] = finish(lo + j, sum_dy[j], sum_dy_xhat[j]);
          if (!want_x) return;
          for (int64_t n = 0; n < s.N; ++n) {
            const T* r = px + n * s.C + lo;
            const T* d = pdy + n * s.C + lo;
            T* o = out + n * s.C + lo;
            for (int64_t j = 0; j < w; ++j) o[j] = co[j].k * (d[j] - co[j].a - (r[j] - co[j].mu) * co[j].b);
          }
        });
        return;
      }
      parallel_for(0, s.C, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t c = lo; c < hi; ++c) {
          const T tmu = static_cast<T>(s.mean[c]), tinv = static_cast<T>(s.invstd[c]);
          double sum_dy = 0, sum_dy_xhat = 0;
          runs(px, s, c, [&](const T* r) {
            const T* d = pdy + (r - px);
            auto [a, b] = detail::lane_sums<T>(s.HW, [&](int64_t i) { return d[i]; },
                                       [&](int64_t i) { return d[i] * (r[i] - tmu) * tinv; });
            sum_dy += a, sum_dy_xhat += b;
          });
          const Coef co = finish(c, sum_dy, sum_dy_xhat);
          if (!want_x) continue;
          for (int64_t n = 0; n < s.N; ++n) {
            const int64_t at = (n * s.C + c) * s.HW;
            const T *r = px + at, *d = pdy + at;
            T* o = out + at;
            for (int64_t i = 0; i < s.HW; ++i) o[i] = co.k * (d[i] - co.a - (r[i] - co.mu) * co.b);
          }
        }
      });
    });
    return {dx, dgamma, dbeta, Tensor(), Tensor()};
  }
};

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  if (trace::enabled())
    return trace::op("batch_norm", {x, gamma, beta, running_mean, running_var},
                     {{"training", int64_t{training}}, {"eps", eps}},
                     [&] { return batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps); });
  detail::check_batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps, "batch_norm");
  return BatchNormFn::apply(x, gamma, beta, running_mean, running_var, training, momentum, eps);
}

}  // namespace xg

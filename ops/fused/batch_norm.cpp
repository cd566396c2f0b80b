// Fused batch norm for [N,C] and [N,C,H,W]: per-channel statistics on raw buffers (parallel over
// channels) and the compact three-term backward:
//   dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)),  M = N*H*W.
// batch_norm_activation applies a ReLU or GELU in the same output pass, y = act(z), z = x scale + shift.
// Its backward recomputes z from x (nothing but x is kept), takes dz = dy act'(z) in the pass that sums,
// staged in dx's buffer, and runs the batch-norm backward on dz. batch_norm_activation_pool also takes
// a 2x2 max-pool at stride 2 in the output pass, plane by plane from a buffer in cache, keeping each
// window's winning tap; its backward rebuilds each plane's dy from the pooled gradient in that pass.
#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>
#include <vector>

#include "autograd/allocator.hpp"
#include "autograd/function.hpp"
#include "autograd/parallel.hpp"
#include "autograd/trace.hpp"
#include "ops/fused/conv_kernels.hpp"
#include "ops/fused/pooled.hpp"
#include "ops/geometry.hpp"
#include "ops/lanes.hpp"
#include "ops/normal.hpp"

namespace xg {

namespace {

// Channels per piece for [N, C] input, so that each piece has some 32K values to work on.
int64_t columns_grain(int64_t N) { return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(N, 1)); }

// The normalised value, the same arithmetic in the forward and in the backward's recomputation.
template <class T>
inline T affine(T x, T scale, T shift) {
  return x * scale + shift;
}
// act(z), and gelu'(z).
template <PostActivation A, class T>
inline T activate(T z) {
  if constexpr (A == PostActivation::relu) return z < 0 ? T(0) : z;
  else if constexpr (A == PostActivation::gelu) return z * detail::normal_cdf(z);
  else return z;
}
template <PostActivation A, class T>
inline T activation_grad(T z) {
  static_assert(A == PostActivation::gelu, "relu's derivative is a select (dz_of in the backward)");
  return detail::normal_cdf(z) + z * detail::normal_pdf(z);
}

// Adds a run's dz and dz (x - mu) invstd to the lanes. One function, not inlined into each
// activation's backward: the compiler may contract these products into FMAs differently in
// different inlined contexts, and batch_norm_activation must sum the same bits as batch_norm's
// backward after relu's.
template <class T>
[[gnu::noinline]] void add_dz_sums(detail::LanePairs<T>& acc, const T* d, const T* r, T mu, T inv, int64_t n) {
  acc.add(n, [&](int64_t i) { return d[i]; }, [&](int64_t i) { return d[i] * (r[i] - mu) * inv; });
}

// Calls f.template operator()<A>() with act as a template argument.
template <class F>
void with_activation(PostActivation act, F&& f) {
  switch (act) {
    case PostActivation::relu: return f.template operator()<PostActivation::relu>();
    case PostActivation::gelu: return f.template operator()<PostActivation::gelu>();
    default: return f.template operator()<PostActivation::none>();
  }
}

struct BatchNormFn : Function<BatchNormFn> {
  static constexpr const char* name = "batch_norm";

  struct Stats {
    int64_t N, C, HW;
    bool training;
    PostActivation act;
    bool pooled;                       // a 2x2/2 max-pool after the activation
    detail::PoolGeometry pool{};       // its geometry (pooled only)
    std::vector<double> mean, invstd;  // the statistics used to normalise, per channel
    std::vector<double> scale, shift;  // z = x scale + shift, per channel (with an activation)
  };

  // [N, C, H, W]: per channel c, the two sums that add(acc, n, c, scratch) accumulates in acc over
  // image n's run of c (scratch: HW values of the thread's own), for every image. They are taken over
  // fixed blocks of whole images (some 32K values each) into partials per block, added in block order,
  // so their bits do not depend on how many threads ran the blocks; a block's runs of one channel
  // share one set of lanes, reduced once. Blocks walk the tensor in memory order. (Channel by channel,
  // one channel's runs lie a power of two apart and share a few cache sets, so a second pass missed
  // the data a first had just read.)
  template <class T, class Add>
  static std::vector<std::pair<double, double>> channel_sums(const Stats& s, Add add, int64_t scratch_runs = 1) {
    const int64_t size = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, s.C * s.HW)),
                  blocks = (s.N + size - 1) / size;
    std::vector<std::pair<double, double>> part(blocks * s.C), total(s.C, {0.0, 0.0});
    parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) {
      std::vector<T> scratch(s.HW * scratch_runs);
      for (int64_t b = lo; b < hi; ++b)
        for (int64_t c = 0; c < s.C; ++c) {
          detail::LanePairs<T> acc;
          for (int64_t n = b * size; n < std::min(s.N, (b + 1) * size); ++n) add(acc, n, c, scratch.data());
          part[b * s.C + c] = acc.totals();
        }
    });
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t b = 0; b < blocks; ++b) total[c].first += part[b * s.C + c].first, total[c].second += part[b * s.C + c].second;
    return total;
  }

  static Tensor forward(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        const Tensor& running_mean, const Tensor& running_var, bool training, double momentum,
                        double eps, PostActivation act, bool pooled) {
    auto st = std::make_shared<Stats>();
    Stats& s = *st;
    s.N = x.shape()[0], s.C = x.shape()[1], s.HW = x.numel() / std::max<int64_t>(s.N * s.C, 1);
    s.training = training || !running_mean.defined();
    s.act = act;
    s.pooled = pooled;
    std::shared_ptr<uint8_t> taps;  // each pooled window's winning tap
    if (pooled) {
      s.pool = detail::pool_geometry(x.shape(), {.kernel = 2}, "max_pool2d");
      const auto bytes = static_cast<std::size_t>(std::max<int64_t>(s.N * s.C * s.pool.HO * s.pool.WO, 1));
      taps = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(detail::alloc_bytes(bytes)),
                                      [bytes](uint8_t* p) { detail::free_bytes(p, bytes); });
    }
    s.mean.resize(s.C), s.invstd.resize(s.C);
    if (act != PostActivation::none) s.scale.resize(s.C), s.shift.resize(s.C);
    const double M = static_cast<double>(s.N * s.HW);
    Tensor out = Tensor::empty(pooled ? Shape{s.N, s.C, s.pool.HO, s.pool.WO} : x.shape(), x.dtype());
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
        const auto affine_map = std::pair<T, T>(static_cast<T>(scale), static_cast<T>((pb ? pb[c] : 0.0) - mu * scale));
        if (!s.scale.empty()) s.scale[c] = affine_map.first, s.shift[c] = affine_map.second;
        return affine_map;
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
          with_activation(act, [&]<PostActivation A>() {
            for (int64_t n = 0; n < s.N; ++n) {
              const T* r = px + n * s.C + lo;
              T* y = py + n * s.C + lo;
              for (int64_t j = 0; j < w; ++j) y[j] = activate<A>(affine(r[j], scale[j], shift[j]));
            }
          });
        });
        return;
      }
      // [N, C, H, W]: the sums (channel_sums), then the output pass in memory order.
      std::vector<T> k(s.C, T(0));
      if (s.training && s.N * s.HW > 0)
        for (int64_t c = 0; c < s.C; ++c) k[c] = px[c * s.HW];
      std::vector<std::pair<double, double>> sums(s.C, {0.0, 0.0});
      if (s.training)
        sums = channel_sums<T>(s, [&](detail::LanePairs<T>& acc, int64_t n, int64_t c, T*) {
          const T* r = px + (n * s.C + c) * s.HW;
          const T kc = k[c];
          acc.add(s.HW, [&](int64_t i) { return r[i] - kc; }, [&](int64_t i) { return (r[i] - kc) * (r[i] - kc); });
        });
      std::vector<T> scale(s.C), shift(s.C);
      for (int64_t c = 0; c < s.C; ++c) std::tie(scale[c], shift[c]) = finish(c, k[c], sums[c].first, sums[c].second);
      with_activation(act, [&]<PostActivation A>() {
        parallel_for(0, s.N * s.C, std::max<int64_t>(1, (int64_t{1} << 14) / s.HW), [&](int64_t lo, int64_t hi) {
          std::vector<T> plane_out(pooled ? s.HW : 0);  // a pooled plane's values before the pool
          const int64_t per = pooled ? s.pool.HO * s.pool.WO : s.HW;
          for (int64_t plane = lo; plane < hi; ++plane) {
            const int64_t c = plane % s.C;
            const T* r = px + plane * s.HW;
            T* y = pooled ? plane_out.data() : py + plane * s.HW;
            const T sc = scale[c], sh = shift[c];
            for (int64_t i = 0; i < s.HW; ++i) y[i] = activate<A>(affine(r[i], sc, sh));
            if (pooled) detail::max_pool_pairs_planes(y, s.pool, py + plane * per, taps.get() + plane * per, 0, 1);
          }
        });
      });
    });
    if (training && running_mean.defined()) {  // written in place above
      running_mean.bump_version();
      running_var.bump_version();
    }
    ctx.save_for_backward({x, gamma, beta});
    ctx.save("stats", st);
    ctx.save("eps", eps);
    if (pooled) ctx.save("taps", taps);
    return out;
  }

  // With create_graph on: gradients through the primitive composition (batch statistics in
  // training, the frozen ones in eval), which the tape can differentiate again.
  static std::vector<Tensor> differentiable_backward(Context& ctx, const Stats& s, const Tensor& dy) {
    const Tensor& x = ctx.saved()[0];
    Shape bshape(x.dim(), 1);
    bshape[1] = s.C;
    const double eps = ctx.get<double>("eps");
    Tensor mu = from_vector(s.mean, bshape).to(x.dtype()), invstd = from_vector(s.invstd, bshape).to(x.dtype());
    auto composition = [&](const std::vector<Tensor>& v) {
      Tensor xhat = s.training ? ref::batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, eps)
                               : (v[0] - mu) * invstd;
      Tensor z = v[1].defined() ? xhat * reshape(v[1], bshape) : xhat;
      if (v[2].defined()) z = z + reshape(v[2], bshape);
      z = s.act == PostActivation::relu ? relu(z) : s.act == PostActivation::gelu ? ref::gelu(z) : z;
      return s.pooled ? ref::max_pool2d(z, {.kernel = 2}) : z;
    };
    std::vector<Tensor> d = composite_backward(
        composition, ctx.saved(), dy, {ctx.needs_input_grad(0), ctx.needs_input_grad(1), ctx.needs_input_grad(2)});
    return {d[0], d[1], d[2], Tensor(), Tensor()};
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
      // Channel c's sums of dz and dz * xhat give dgamma and dbeta; dx = k * (dz - a - (x - mu) * b). In
      // training the statistics depend on x, giving the two correction terms a and b; in eval mode
      // the map is a fixed affine one.
      struct Coef {
        T mu, k, a, b;
      };
      auto finish = [&](int64_t c, double sum_dz, double sum_dz_xhat) {
        if (dgamma.defined()) dgamma.data<T>()[c] = static_cast<T>(sum_dz_xhat);
        if (dbeta.defined()) dbeta.data<T>()[c] = static_cast<T>(sum_dz);
        const double invstd = s.invstd[c], a = s.training ? sum_dz / M : 0.0,
                     b = s.training ? sum_dz_xhat / M : 0.0;
        return Coef{static_cast<T>(s.mean[c]), static_cast<T>((pg ? pg[c] : 1.0) * invstd), static_cast<T>(a),
                    static_cast<T>(b * invstd)};
      };
      with_activation(s.act, [&]<PostActivation A>() {
        // dz = dy act'(z) is computed once, in the first pass, and kept in dx's buffer (or a scratch
        // run) for the second. (Recomputing ReLU's mask in the second pass instead measured 4.8% faster
        // on VGG, but its gradients then differed from relu(batch_norm(...))'s in the last bits.)
        constexpr bool act_stage = A != PostActivation::none;  // without an activation, dz is dy
        // A select for ReLU, as relu's backward: an infinite dy where z <= 0 passes 0, not 0 * inf.
        auto dz_of = [](const T* d, const T* r, T scale, T shift, int64_t i) {
          if constexpr (A == PostActivation::relu) return affine(r[i], scale, shift) > T(0) ? d[i] : T(0);
          else if constexpr (A == PostActivation::gelu) return d[i] * activation_grad<A>(affine(r[i], scale, shift));
          else return d[i];
        };
        if (s.HW == 1) {  // [N, C]: rows of C values; the loops run along the channels
          parallel_for(0, s.C, columns_grain(s.N), [&](int64_t lo, int64_t hi) {
            const int64_t w = hi - lo;
            std::vector<double> sum_dz(w, 0.0), sum_dz_xhat(w, 0.0);
            std::vector<Coef> co(w);
            std::vector<T> scale(w, T(1)), shift(w, T(0));
            if constexpr (act_stage)
              for (int64_t j = 0; j < w; ++j)
                scale[j] = static_cast<T>(s.scale[lo + j]), shift[j] = static_cast<T>(s.shift[lo + j]);
            std::vector<T> staged(act_stage && !want_x ? w : 0);  // dz of one row when dx is not wanted
            for (int64_t n = 0; n < s.N; ++n) {
              const T* r = px + n * s.C + lo;
              const T* d = pdy + n * s.C + lo;
              if constexpr (act_stage) {  // dz into dx's buffer (or the scratch row), summed from there
                T* z = want_x ? out + n * s.C + lo : staged.data();
                for (int64_t j = 0; j < w; ++j) z[j] = dz_of(d, r, scale[j], shift[j], j);
                d = z;
              }
              for (int64_t j = 0; j < w; ++j) {
                sum_dz[j] += d[j];
                sum_dz_xhat[j] += d[j] * ((r[j] - s.mean[lo + j]) * s.invstd[lo + j]);
              }
            }
            for (int64_t j = 0; j < w; ++j) co[j] = finish(lo + j, sum_dz[j], sum_dz_xhat[j]);
            if (!want_x) return;
            for (int64_t n = 0; n < s.N; ++n) {
              const T* r = px + n * s.C + lo;
              T* o = out + n * s.C + lo;
              const T* dz = act_stage ? o : pdy + n * s.C + lo;
              for (int64_t j = 0; j < w; ++j) o[j] = co[j].k * (dz[j] - co[j].a - (r[j] - co[j].mu) * co[j].b);
            }
          });
          return;
        }
        // [N, C, H, W]: the sums (channel_sums), then dx in memory order. After a pool, each plane's dy
        // is rebuilt from the pooled gradient (into the second scratch run) and dz staged as with an
        // activation: the second pass has no dy to read.
        const bool stage = act_stage || s.pooled;
        std::vector<T> tmu(s.C), tinv(s.C), scale(s.C, T(1)), shift(s.C, T(0));
        for (int64_t c = 0; c < s.C; ++c) {
          tmu[c] = static_cast<T>(s.mean[c]), tinv[c] = static_cast<T>(s.invstd[c]);
          if constexpr (act_stage) scale[c] = static_cast<T>(s.scale[c]), shift[c] = static_cast<T>(s.shift[c]);
        }
        const uint8_t* taps = s.pooled ? ctx.get<std::shared_ptr<uint8_t>>("taps").get() : nullptr;
        const int64_t per = s.pooled ? s.pool.HO * s.pool.WO : 0;
        const auto sums = channel_sums<T>(
            s,
            [&](detail::LanePairs<T>& acc, int64_t n, int64_t c, T* scratch) {
              const int64_t plane = n * s.C + c, at = plane * s.HW;
              const T* r = px + at;
              const T* d = pdy + (s.pooled ? plane * per : at);
              if (s.pooled) {
                detail::max_unpool_pairs_planes(d, taps + plane * per, s.pool, scratch + s.HW, 0, 1);
                d = scratch + s.HW;
              }
              if (stage) {  // dz into dx's buffer (or the scratch run), summed from there
                T* z = want_x ? out + at : scratch;
                for (int64_t i = 0; i < s.HW; ++i) z[i] = dz_of(d, r, scale[c], shift[c], i);
                d = z;
              }
              add_dz_sums(acc, d, r, tmu[c], tinv[c], s.HW);
            },
            s.pooled ? 2 : 1);
        std::vector<Coef> co(s.C);
        for (int64_t c = 0; c < s.C; ++c) co[c] = finish(c, sums[c].first, sums[c].second);
        if (!want_x) return;
        parallel_for(0, s.N * s.C, std::max<int64_t>(1, (int64_t{1} << 14) / s.HW), [&](int64_t lo, int64_t hi) {
          for (int64_t plane = lo; plane < hi; ++plane) {
            const Coef k = co[plane % s.C];
            const T* r = px + plane * s.HW;
            T* o = out + plane * s.HW;
            const T* dz = stage ? o : pdy + plane * s.HW;
            for (int64_t i = 0; i < s.HW; ++i) o[i] = k.k * (dz[i] - k.a - (r[i] - k.mu) * k.b);
          }
        });
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
  return BatchNormFn::apply(x, gamma, beta, running_mean, running_var, training, momentum, eps, PostActivation::none,
                            false);
}

Tensor batch_norm_activation(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             PostActivation act) {
  detail::check_post_activation(act, "batch_norm_activation");
  if (trace::enabled()) {  // recorded as the two ops an exporter knows
    return detail::apply_post_activation(batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps),
                                         act);
  }
  detail::check_batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                           "batch_norm_activation");
  return BatchNormFn::apply(x, gamma, beta, running_mean, running_var, training, momentum, eps, act, false);
}

namespace detail {

Tensor batch_norm_activation_pool(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                                  const Tensor& running_var, bool training, double momentum, double eps,
                                  PostActivation act, const Pool2dOptions& pool) {
  check_post_activation(act, "batch_norm_activation");
  if (!trace::enabled() && x.defined() && x.dim() == 4) {
    check_batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps, "batch_norm_activation");
    if (pairs(pool_geometry(x.shape(), pool, "max_pool2d")))
      return BatchNormFn::apply(x, gamma, beta, running_mean, running_var, training, momentum, eps, act, true);
  }
  return max_pool2d(batch_norm_activation(x, gamma, beta, running_mean, running_var, training, momentum, eps, act),
                    pool);
}

}  // namespace detail

}  // namespace xg

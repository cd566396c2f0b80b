// matmul (1-D, 2-D and batched), linear and cdist, on BLAS GEMM over contiguous buffers.
#include "ops/blas.hpp"
#include "ops/kernels.hpp"

namespace xg {

using detail::Grads;

namespace {

// C[b] = op(A[b]) op(B[b]) for 3-D operands of one dtype; op transposes the last two dims when set.
// The batch of A or B may be 1 (broadcast). Backward uses the same op with flipped flags, so no
// transpose is ever materialised and double backward comes for free.
Tensor gemm(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const int64_t batch = a.shape()[0] == 0 || b.shape()[0] == 0 ? 0 : std::max(a.shape()[0], b.shape()[0]);
  const int64_t M = ta ? a.shape()[2] : a.shape()[1], K = ta ? a.shape()[1] : a.shape()[2];
  const int64_t N = tb ? b.shape()[1] : b.shape()[2];
  Tensor out = Tensor::empty({batch, M, N}, a.dtype());
  const int64_t sa = a.shape()[0] == 1 ? 0 : M * K, sb = b.shape()[0] == 1 ? 0 : K * N;
  dispatch(a.dtype(), [&]<class T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = out.data<T>();
    if (K == 0 || M == 0 || N == 0) {
      std::fill(pc, pc + out.numel(), T(0));
      return;
    }
    const int64_t lda = ta ? M : K, ldb = tb ? K : N;
    for (int64_t i = 0; i < batch; ++i) {
      const T* A = pa + i * sa;
      const T* B = pb + i * sb;
      T* C = pc + i * M * N;
      if constexpr (!std::is_same_v<T, int64_t>) {
        detail::gemm<T>(ta, tb, M, N, K, T(1), A, lda, B, ldb, T(0), C, N);
      } else {
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            T s = 0;
            for (int64_t k = 0; k < K; ++k) s += A[ta ? k * M + m : m * K + k] * B[tb ? n * K + k : k * N + n];
            C[m * N + n] = s;
          }
      }
    }
  });
  return record("matmul", out, {a, b}, [a, b, ta, tb](const GradArgs& g) {
    Tensor da, db;
    if (g.needs[0]) da = ta ? gemm(b, g.grad, tb, true) : gemm(g.grad, b, false, !tb);
    if (g.needs[1]) db = tb ? gemm(g.grad, a, true, ta) : gemm(a, g.grad, !ta, false);
    // A broadcast batch of 1 receives the sum over the batch.
    if (da.defined() && a.shape()[0] == 1 && da.shape()[0] != 1) da = sum(da, {0}, true);
    if (db.defined() && b.shape()[0] == 1 && db.shape()[0] != 1) db = sum(db, {0}, true);
    return Grads{da, db};
  });
}

Tensor as3d(const Tensor& x) { return x.dim() == 2 ? unsqueeze(x, 0) : x; }

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (trace::enabled()) return trace::op("matmul", {a, b}, {}, [&] { return matmul(a, b); });
  check(a.defined() && b.defined(), "matmul: undefined tensor");
  check(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dim, got shapes {} and {}", a.shape(),
        b.shape());
  if (a.dtype() != b.dtype()) {
    Dtype d = promote(a.dtype(), b.dtype());
    return matmul(a.to(d), b.to(d));
  }
  const int64_t ka = a.shape().back(), kb = b.dim() == 1 ? b.shape()[0] : b.shape()[b.dim() - 2];
  check(ka == kb, "matmul: shapes {} and {} cannot be multiplied ({} vs {})", a.shape(), b.shape(), ka, kb);
  if (a.dim() == 1 && b.dim() == 1) return reshape(matmul(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  if (a.dim() == 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);

  const int64_t M = a.shape()[a.dim() - 2], N = b.shape().back();
  if (a.dim() <= 2 && b.dim() <= 2) return reshape(gemm(as3d(a), as3d(b), false, false), {M, N});
  if (b.dim() == 2) {  // [..., M, K] x [K, N]: one GEMM over the folded batch
    Shape out(a.shape().begin(), a.shape().end() - 1);
    out.push_back(N);
    return reshape(gemm(reshape(a, {1, -1, ka}), as3d(b), false, false), out);
  }
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  auto fold = [&](const Tensor& x, const Shape& xb) {
    if (checked_numel(xb, "matmul") == 1) return reshape(x, {1, x.shape()[x.dim() - 2], x.shape().back()});
    Shape full = batch;
    full.push_back(x.shape()[x.dim() - 2]);
    full.push_back(x.shape().back());
    return reshape(expand(x, full), {-1, x.shape()[x.dim() - 2], x.shape().back()});
  };
  Shape out = batch;
  out.push_back(M);
  out.push_back(N);
  return reshape(gemm(fold(a, ba), fold(b, bb), false, false), out);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (trace::enabled()) return trace::op("linear", {x, weight, bias}, {}, [&] { return linear(x, weight, bias); });
  check(x.defined() && weight.defined(), "linear: undefined input or weight");
  check(weight.dim() == 2, "linear: weight must be 2-D [out, in], got shape {}", weight.shape());
  check(x.dim() >= 1 && x.shape().back() == weight.shape()[1],
        "linear: input shape {} does not match weight shape {} (in_features {})", x.shape(), weight.shape(),
        weight.shape()[1]);
  check(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == weight.shape()[0]),
        "linear: bias shape {} does not match out_features {}", bias.defined() ? bias.shape() : Shape{},
        weight.shape()[0]);
  Dtype d = promote(x.dtype(), weight.dtype());
  Shape out_shape = x.shape();
  out_shape.back() = weight.shape()[0];
  Tensor y = reshape(gemm(reshape(x.to(d), {1, -1, weight.shape()[1]}), unsqueeze(weight.to(d), 0), false, true),
                     out_shape);
  return bias.defined() ? add(y, bias) : y;
}

Tensor cdist(const Tensor& x1, const Tensor& x2) {
  check(x1.defined() && x2.defined(), "cdist: undefined input");
  check(is_floating(x1.dtype()) && is_floating(x2.dtype()), "cdist: needs floating tensors, got {} and {}",
        dtype_name(x1.dtype()), dtype_name(x2.dtype()));
  check(x1.dim() == 2 && x2.dim() == 2, "cdist: inputs must be 2-D [N, D] and [M, D], got shapes {} and {}",
        x1.shape(), x2.shape());
  check(x1.shape()[1] == x2.shape()[1], "cdist: feature sizes differ: shapes {} and {} ({} vs {})", x1.shape(),
        x2.shape(), x1.shape()[1], x2.shape()[1]);
  // ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b: one GEMM and two broadcast sums. Rounding can leave a
  // tiny negative where a == b, hence the clamp before the square root.
  Tensor sq1 = sum(mul(x1, x1), {1}, true);                  // [N, 1]
  Tensor sq2 = reshape(sum(mul(x2, x2), {1}), {1, -1});      // [1, M]
  Tensor cross = matmul(x1, transpose(x2, 0, 1));            // [N, M]
  return sqrt(clamp_min(sub(add(sq1, sq2), mul(cross, 2.0)), 0.0));
}

}  // namespace xg

// set_float32_matmul_precision("medium"): f32 GEMMs and convolutions with their inputs rounded to
// bfloat16 and their products summed in f32 (Intel AMX through oneDNN). Each result is checked against
// the f64 computation on the same inputs rounded to bfloat16, which it must match to f32 rounding, and
// against the f32 result, from which it must differ (so the bf16 path really ran). On a CPU without
// AMX "medium" must give the f32 results bit for bit.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "helpers.hpp"
#include "ops/blas.hpp"
#include "ops/fused/conv_kernels.hpp"
#include "ops/lanes.hpp"

using namespace xg;

namespace {

// Sets a precision for one test and restores "highest" after it, whatever happens.
struct Precision {
  explicit Precision(const std::string& p) { set_float32_matmul_precision(p); }
  ~Precision() { set_float32_matmul_precision("highest"); }
};

float round_bf16(float v) { return detail::from_bfloat16(detail::to_bfloat16(v)); }

// t's values rounded to bfloat16, as an f64 tensor.
Tensor rounded(const Tensor& t) {
  std::vector<float> v = t.to_vector<float>();
  for (float& e : v) e = round_bf16(e);
  return from_vector(v, t.shape()).to(Dtype::f64);
}

// max |a - b| / max |b|.
double rel_diff(const Tensor& a, const Tensor& b) {
  const Tensor d = a.to(Dtype::f64) - b.to(Dtype::f64);
  return max(abs(d)).item<double>() / std::max(1e-30, max(abs(b.to(Dtype::f64))).item<double>());
}

}  // namespace

TEST_CASE("float32 matmul precision: names, errors, and the state left alone by a bad one") {
  CHECK(get_float32_matmul_precision() == "highest");
  {
    Precision p("medium");
    CHECK(get_float32_matmul_precision() == "medium");
    CHECK_ERROR(set_float32_matmul_precision("low"), "set_float32_matmul_precision: unknown precision 'low'");
    CHECK(get_float32_matmul_precision() == "medium");
    set_float32_matmul_precision("high");
    CHECK(get_float32_matmul_precision() == "high");
  }
  CHECK(get_float32_matmul_precision() == "highest");
  CHECK_ERROR(set_float32_matmul_precision(""), "unknown precision ''");
}

TEST_CASE("bfloat16 rounding: nearest, ties to even, inf and NaN kept, 8 lanes as one") {
  CHECK(detail::to_bfloat16(1.0f) == 0x3f80);
  CHECK(detail::to_bfloat16(-2.0f) == 0xc000);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1); 1 + 3 * 2^-8 goes up.
  CHECK(detail::to_bfloat16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);
  CHECK(detail::to_bfloat16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82);
  CHECK(detail::to_bfloat16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 0x3f81);
  CHECK(detail::to_bfloat16(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(detail::to_bfloat16(std::numeric_limits<float>::max()) == 0x7f80);  // overflows to inf
  CHECK(std::isnan(round_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(round_bf16(-std::numeric_limits<float>::quiet_NaN())));
  float payload;  // a NaN whose payload sits in the low bits only: must not round to inf
  const uint32_t bits = 0x7f800001u;
  std::memcpy(&payload, &bits, sizeof payload);
  CHECK(std::isnan(round_bf16(payload)));
  std::mt19937 gen(3);
  std::normal_distribution<float> nd(0.f, 100.f);
  for (int rep = 0; rep < 100; ++rep) {
    detail::f32x8 v;
    for (int i = 0; i < 8; ++i) v[i] = rep == 0 && i == 3 ? payload : nd(gen);
    uint16_t out[8];
    detail::store_bfloat16(v, out);
    for (int i = 0; i < 8; ++i) CHECK(out[i] == detail::to_bfloat16(v[i]));
  }
  for (float v : {0.1f, -3.7f, 1e-30f, 65504.f}) CHECK(std::abs(round_bf16(v) - v) <= std::abs(v) * 0x1p-9f);
}

TEST_CASE("medium precision GEMM: the f64 product of bf16-rounded inputs, every transpose, alpha, beta, strides") {
  struct Case {
    int64_t M, N, K;
    float alpha, beta;
  };
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (Case c : {Case{64, 96, 128, 1, 0}, Case{50, 70, 300, 0.5f, 1}, Case{200, 130, 64, -1.5f, 0.25f}}) {
        const int64_t pad = 3, ar = ta ? c.K : c.M, ac = ta ? c.M : c.K, br = tb ? c.N : c.K, bc = tb ? c.K : c.N;
        const int64_t lda = ac + pad, ldb = bc + pad;
        std::mt19937 gen(11);
        std::normal_distribution<float> nd;
        std::vector<float> A(ar * lda), B(br * ldb), C0(c.M * (c.N + pad));
        for (std::vector<float>* v : {&A, &B, &C0})
          for (float& e : *v) e = nd(gen);
        for (int64_t ldc : {c.N, c.N + pad}) {  // a dense C, and one with padding (computed apart, then added)
          std::vector<float> C = C0, F = C0;
          {
            Precision p("medium");
            detail::gemm<float>(ta, tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
          }
          detail::gemm<float>(ta, tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, F.data(), ldc);
          double worst = 0, from_f32 = 0;
          for (int64_t i = 0; i < c.M; ++i)
            for (int64_t j = 0; j < c.N; ++j) {
              double ref = 0;
              for (int64_t k = 0; k < c.K; ++k)
                ref += double(round_bf16(ta ? A[k * lda + i] : A[i * lda + k])) *
                       round_bf16(tb ? B[j * ldb + k] : B[k * ldb + j]);
              ref = c.alpha * ref + c.beta * C0[i * ldc + j];
              worst = std::max(worst, std::abs(C[i * ldc + j] - ref) / std::max(1.0, std::abs(ref)));
              from_f32 = std::max(from_f32, double(std::abs(C[i * ldc + j] - F[i * ldc + j])));
            }
          for (int64_t i = 0; i < c.M; ++i)  // C's padding is never written
            for (int64_t j = c.N; j < ldc; ++j) CHECK(C[i * ldc + j] == C0[i * ldc + j]);
          INFO("M " << c.M << " N " << c.N << " K " << c.K << " ta " << ta << " tb " << tb << " ldc " << ldc);
          if (bf16_matmul_available()) {
            CHECK(worst < 1e-5);
            CHECK(from_f32 > 1e-3);  // the inputs were rounded: not the f32 product
          } else {
            CHECK(from_f32 == 0);
          }
        }
      }
}

TEST_CASE("medium precision: matmul and linear through the public ops, f64 untouched") {
  Tensor a = test::input({96, 200}, Dtype::f32, 1), b = test::input({200, 80}, Dtype::f32, 2);
  const Tensor highest = matmul(a, b);
  Tensor medium;
  {
    Precision p("medium");
    medium = matmul(a, b);
    // f64 products never change: a gradcheck of matmul in f64 still passes at 1e-6.
    CHECK_GRADCHECK([](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); },
                    {test::leaf({6, 40}, 3), test::leaf({40, 5}, 4)});
  }
  const Tensor ref = matmul(rounded(a), rounded(b));
  if (bf16_matmul_available()) {
    CHECK(rel_diff(medium, ref) < 1e-5);
    CHECK(rel_diff(medium, highest) > 1e-4);
  } else {
    CHECK(rel_diff(medium, highest) == 0);
  }
}

TEST_CASE("medium precision conv2d: forward and both gradients against f64 on bf16-rounded inputs") {
  struct Case {
    Shape x, w;
    Conv2dOptions o;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{4, 32, 9, 9}, {48, 32, 3, 3}, {.padding = 1}, true},                   // airbench-like, odd size
      {{3, 24, 31, 31}, {64, 24, 3, 3}, {.padding = 1}, false},                // airbench's first 3x3 conv
      {{2, 64, 12, 10}, {32, 64, 3, 3}, {.stride = 2, .padding = 1}, true},    // stride, not square
      {{2, 32, 11, 11}, {32, 32, 3, 3}, {.padding = 2, .dilation = 2}, false}, // dilation
      {{3, 64, 8, 8}, {64, 64, 1, 1}, {}, true},                               // 1x1
      // More than one chunk of 32 images per worker, the last one shorter: the weight gradient summed
      // over chunks, by the GEMM (5x5 planes) and by oneDNN's kernel (9x9).
      {{70, 32, 5, 5}, {32, 32, 3, 3}, {.padding = 1}, false},
      {{70, 16, 9, 9}, {16, 16, 3, 3}, {.padding = 1}, true},
  };
  for (const Case& c : cases) {
    INFO("x " << c.x << " w " << c.w);
    Tensor x = test::input(c.x, Dtype::f32, 5), w = test::input(c.w, Dtype::f32, 6) * 0.1;
    Tensor b = c.bias ? test::input({c.w[0]}, Dtype::f32, 7) : Tensor();
    w = w.detach();
    w.requires_grad_();
    auto run = [&](const std::string& precision) {
      Precision p(precision);
      Tensor xx = x.detach(), ww = w.detach(), bb = c.bias ? b.detach() : Tensor();
      xx.requires_grad_();
      ww.requires_grad_();
      if (c.bias) bb.requires_grad_();
      Tensor y = conv2d(xx, ww, bb, c.o);
      manual_seed(8);
      Tensor dy = randn(y.shape());
      y.backward(dy);
      return std::vector<Tensor>{y, xx.grad(), ww.grad(), dy, c.bias ? bb.grad() : Tensor()};
    };
    const std::vector<Tensor> med = run("medium"), hi = run("highest");
    // The reference: f64 on the rounded operands each kernel reads (forward x and w; input gradient
    // dy and w; weight gradient x and dy).
    Tensor xr = rounded(x), wr = rounded(w);
    xr.requires_grad_();
    wr.requires_grad_();
    Tensor yr = conv2d(xr, wr, c.bias ? b.detach().to(Dtype::f64) : Tensor(), c.o);
    yr.backward(rounded(med[3]));
    if (bf16_matmul_available()) {
      CHECK(rel_diff(med[0], yr) < 1e-5);
      CHECK(rel_diff(med[1], xr.grad()) < 1e-5);
      CHECK(rel_diff(med[2], wr.grad()) < 1e-5);
      for (int i = 0; i < 3; ++i) CHECK(rel_diff(med[i], hi[i]) > 1e-4);
    } else {
      for (int i = 0; i < 3; ++i) CHECK(rel_diff(med[i], hi[i]) == 0);
    }
    if (c.bias) CHECK(rel_diff(med[4], hi[4]) < 1e-6);  // the bias gradient is a sum, in f32 either way
  }
}

TEST_CASE("medium precision conv2d: relu epilogue, conv_transpose2d, and a model's outputs") {
  Tensor x = test::input({4, 32, 8, 8}, Dtype::f32, 9), w = test::input({32, 32, 3, 3}, Dtype::f32, 10) * 0.1;
  w = w.detach();
  Tensor b = test::input({32}, Dtype::f32, 11).detach();
  // relu(conv(x) + b) in the kernel's own output pass (the inference epilogue) equals relu of the op.
  const detail::ConvGeometry g{4, 32, 8, 8, 32, 3, 3, 8, 8, 1, 1, 1, 1};
  Tensor fused = Tensor::empty({4, 32, 8, 8}), plain;
  {
    Precision p("medium");
    detail::conv_forward<float>(x.data<float>(), w.data<float>(), b.data<float>(), g, fused.data<float>(), true);
    plain = relu(conv2d(x.detach(), w, b, {.padding = 1}));
  }
  CHECK(rel_diff(fused, plain) < 1e-6);
  // conv_transpose2d runs the convolution's input gradient: the f64 result on rounded inputs.
  Tensor t;
  {
    Precision p("medium");
    t = conv_transpose2d(x.detach(), w, Tensor(), {.stride = 2, .padding = 1, .output_padding = 1});
  }
  // Without AMX, "medium" computes as "highest": the same result, to the bit, as on unrounded inputs.
  const bool bf16 = bf16_matmul_available();
  const Tensor tr = conv_transpose2d(bf16 ? rounded(x) : x.detach(), bf16 ? rounded(w) : w, Tensor(),
                                     {.stride = 2, .padding = 1, .output_padding = 1});
  if (bf16) CHECK(rel_diff(t, tr) < 1e-5);
  else CHECK(rel_diff(t, tr) == 0);
  // A whole network: the outputs stay within bf16's rounding of the f32 model's.
  manual_seed(0);
  auto net = std::make_shared<nn::Sequential>(
      nn::Conv2d({.in_channels = 3, .out_channels = 32, .kernel_size = 3, .padding = 1}), nn::ReLU(), nn::MaxPool2d(2),
      nn::Conv2d({.in_channels = 32, .out_channels = 64, .kernel_size = 3, .padding = 1}), nn::ReLU(), nn::Flatten(),
      nn::Linear(64 * 8 * 8, 10));
  Tensor images = test::input({8, 3, 16, 16}, Dtype::f32, 12).detach();
  const Tensor out32 = net->forward(images);
  Tensor out16;
  {
    Precision p("medium");
    out16 = net->forward(images);
  }
  CHECK(rel_diff(out16, out32) < (bf16_matmul_available() ? 2e-2 : 1e-7));
}

// Muon: its Newton-Schulz iteration and its update against a numpy restatement of torch.optim.Muon
// (tests/muon_reference.py prints every expected row), its SGD groups against SGD, state, and errors.
#include <cmath>
#include <memory>

#include "helpers.hpp"

using namespace xg;
using namespace xg::optim;

namespace {
using Rows = std::vector<std::vector<double>>;

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": " << got[i] << " against " << want[i]);
    CHECK(std::abs(got[i] - want[i]) < tol);
  }
}

// muon_reference.py's G: (1..15)^1.5 / 10 as 3x5, the columns' signs alternating.
Tensor reference_g() {
  std::vector<double> v(15);
  for (int i = 0; i < 15; ++i) v[i] = std::pow(i + 1.0, 1.5) / 10 * ((i % 5) % 2 ? -1 : 1);
  return from_vector<double>(v, {3, 5});
}

// loss = 0.5 * sum(a * w^2) (g = a * w), `expected.size()` steps of the optimizer `make` builds.
template <class Make>
void check_steps(const Shape& shape, std::vector<double> w0, std::vector<double> a0, Make make, const Rows& expected) {
  Tensor w = from_vector<double>(w0, shape);
  w.requires_grad_();
  Tensor a = from_vector<double>(a0, shape);
  std::unique_ptr<Optimizer> opt = make(std::vector<Tensor>{w});
  for (size_t s = 0; s < expected.size(); ++s) {
    INFO("step " << s + 1);
    opt->zero_grad();
    (sum(a * w * w) * 0.5).backward();
    opt->step();
    check_close(w.to_vector<double>(), expected[s], 1e-12);
  }
}

// The sum of a square matrix's diagonal.
double trace_of(const Tensor& m) {
  const auto v = m.to(Dtype::f64).to_vector<double>();
  const auto n = static_cast<size_t>(m.shape()[0]);
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += v[i * n + i];
  return s;
}

const std::vector<double> kW = {1, -2, 3, 0.5, 1.5, -1}, kA = {1, 2, 0.5, 3, 0.25, 1};
// kW and kA as the 3x2 transposes.
const std::vector<double> kWt = {1, 0.5, -2, 1.5, 3, -1}, kAt = {1, 3, 2, 0.25, 0.5, 1};
}  // namespace

TEST_CASE("newton_schulz: the quintic iteration, both orientations, and the polar factor") {
  Tensor g = reference_g();
  check_close(newton_schulz(g).to_vector<double>(),
              {-0.12549845431728601, 0.47107616848510792, -0.36606090796139684, -0.067436717395587487,
               0.7643238814949751, -0.66536197633409833, -0.091313190543369949, 0.40988843258256291,
               -0.41864837460567428, 0.18487681461899785, 0.60162887539363008, -0.31413795590276128,
               0.187322768532455, -0.17340193310785867, 0.24741263499653865},
              1e-13);
  // A tall matrix is iterated as its transpose: the result is the transpose's result, transposed.
  Tensor tall = newton_schulz(transpose(g, 0, 1), 3);
  check_close(tall.to_vector<double>(),
              {-0.50997968264850257, -0.31576182777508527, 0.48609575871704691, 0.36221361025135751,
               0.10981241673372957, -0.40820003523575377, -0.11547858618116413, 0.090655776785823705,
               0.32269034779891337, -0.20858267468431857, -0.29162272081507212, -0.22923913947067076,
               0.59783355527042314, 0.49576241933542176, 0.12796625045345666},
              1e-13);
  CHECK(tall.to_vector<double>() == transpose(newton_schulz(g, 3), 0, 1).to_vector<double>());

  // The cubic (1.5, -0.5, 0) converges to the polar factor Q of g = P Q: Q Q^T = I and g Q^T = P is
  // symmetric positive definite.
  Tensor q = newton_schulz(g, 60, {1.5, -0.5, 0});
  check_close(matmul(q, transpose(q, 0, 1)).to_vector<double>(), {1, 0, 0, 0, 1, 0, 0, 0, 1}, 1e-12);
  auto p = matmul(g, transpose(q, 0, 1)).to_vector<double>();
  for (int i = 0; i < 3; ++i) {
    CHECK(p[i * 3 + i] > 0);
    for (int j = 0; j < 3; ++j) CHECK(std::abs(p[i * 3 + j] - p[j * 3 + i]) < 1e-12);
  }

  // f32 runs in f32 (through the f32 GEMM) and agrees to its rounding; a zero matrix stays zero.
  Tensor g32 = g.to(Dtype::f32);
  Tensor q32 = newton_schulz(g32);
  CHECK(q32.dtype() == Dtype::f32);
  check_close(q32.to(Dtype::f64).to_vector<double>(), newton_schulz(g).to_vector<double>(), 1e-5);
  CHECK(newton_schulz(zeros({2, 4})).to_vector<float>() == std::vector<float>(8, 0.0f));
  CHECK(newton_schulz(zeros({2, 4}), 5, {3.4445, -4.775, 2.0315}, 0).to_vector<float>() == std::vector<float>(8, 0.0f));

  // A matrix large enough for the threaded GEMMs: Muon's coefficients put every singular value in
  // about [0.7, 1.2]; the eigenvalues of Q Q^T are their squares, bounded here through the trace
  // of Q Q^T and of (Q Q^T)^2 (mean and spread of the squares).
  manual_seed(7);
  Tensor big = randn({64, 300});
  Tensor qb = newton_schulz(big);
  Tensor s2 = matmul(qb, transpose(qb, 0, 1));
  const double mean = trace_of(s2) / 64, mean_sq = trace_of(matmul(s2, s2)) / 64;
  CHECK(mean > 0.5);
  CHECK(mean < 1.44);
  CHECK(mean_sq - mean * mean < 0.1);

  CHECK_ERROR(newton_schulz(zeros({4})), "newton_schulz: needs a 2-D f32 or f64 matrix, got [4] f32");
  CHECK_ERROR(newton_schulz(zeros({2, 2}, Dtype::i64)), "newton_schulz: needs a 2-D f32 or f64 matrix, got [2,2] i64");
  CHECK_ERROR(newton_schulz(g, -1), "newton_schulz: steps must be non-negative, got -1");
}

TEST_CASE("Muon: torch.optim.Muon's update, Nesterov or not, its lr adjustments, airbench's normalisation") {
  // Wide [2, 3]: nesterov, decoupled weight decay, "original" (1 for a wide matrix).
  check_steps({2, 3}, kW, kA,
              [](auto p) { return std::make_unique<Muon>(p, MuonOptions{.lr = 0.1, .weight_decay = 0.1, .momentum = 0.9}); },
              {{0.96735054418245581, -1.9141352925514559, 2.9486348557121627, 0.40434575918244275, 1.4788251836766988,
                -0.93796986574728136},
               {0.93374198398070396, -1.8274702509478242, 2.8974088046705324, 0.30931757345623279, 1.4587234571376826,
                -0.8725401101566006},
               {0.89912161780434985, -1.7410096336934464, 2.8470191070934776, 0.21218185116660004, 1.4401152464991946,
                -0.80159645710490302}});
  // Tall [3, 2]: heavy ball, "original" sqrt(3/2), weights rescaled to norm sqrt(3) first. As a
  // [3, 1, 1, 2] conv filter the same numbers: trailing dimensions are flattened.
  const Rows tall = {{0.4001694331792387, 0.15150550954710562, -0.78774493988416905, 0.61727771609624471,
                      1.2290345813697026, -0.382177515563496},
                     {0.39680203233503625, 0.10047765582656105, -0.76833553545387945, 0.63085219828860306,
                      1.2495982713855058, -0.35940159709695113},
                     {0.39199494789265127, 0.045679179560588763, -0.74705717998873944, 0.64501469760055585,
                      1.2696833892599393, -0.33144805384695442}};
  auto heavy_ball = [](auto p) {
    return std::make_unique<Muon>(
        p, MuonOptions{.lr = 0.05, .weight_decay = 0, .momentum = 0.8, .nesterov = false, .normalize_weights = true});
  };
  check_steps({3, 2}, kWt, kAt, heavy_ball, tall);
  check_steps({3, 1, 1, 2}, kWt, kAt, heavy_ball, tall);
  // match_rms_adamw: 0.2 sqrt(max(rows, cols)).
  check_steps({2, 3}, kW, kA,
              [](auto p) {
                return std::make_unique<Muon>(
                    p, MuonOptions{.lr = 0.02, .weight_decay = 0, .adjust_lr_fn = "match_rms_adamw"});
              },
              {{0.99843079967040904, -1.9954367592109385, 2.9985197793832969, 0.49371928995929626, 1.4995721961760256,
                -0.9963952465579865},
               {0.9968569279678412, -1.9908639869518949, 2.9970359940990878, 0.48745332481414938, 1.4991475642989318,
                -0.99278241836613967}});
  // torch.optim.Muon's defaults.
  Tensor w = ones({2, 2});
  Muon d({w});
  CHECK(d.lr() == 1e-3);
  CHECK(d.momentum() == 0.95);
  CHECK(d.options().weight_decay == 0.1);
  CHECK(d.options().nesterov);
  CHECK(d.options().ns_steps == 5);
}

TEST_CASE("Muon: groups without use_muon are SGD's, bit for bit, beside Muon groups") {
  auto make = [](uint64_t seed, const Shape& s) {
    manual_seed(seed);
    Tensor t = randn(s, Dtype::f32);
    t.requires_grad_();
    return t;
  };
  Tensor m1 = make(1, {8, 3, 3, 3}), b1 = make(2, {8}), m2 = make(1, {8, 3, 3, 3}), b2 = make(2, {8});
  const MuonOptions filters{.lr = 0.02, .weight_decay = 0, .momentum = 0.6, .normalize_weights = true};
  Muon muon({{{m1}, filters}, {{b1}, {.lr = 0.05, .weight_decay = 0.08, .momentum = 0.85, .use_muon = false}}});
  Muon alone({m2}, filters);
  SGD sgd({b2}, {.lr = 0.05, .momentum = 0.85, .weight_decay = 0.08, .nesterov = true});
  for (int s = 0; s < 4; ++s) {
    muon.zero_grad(), alone.zero_grad(), sgd.zero_grad();
    (sum(m1 * m1 * m1) + sum(b1 * b1 * 3.0)).backward();
    (sum(m2 * m2 * m2) + sum(b2 * b2 * 3.0)).backward();
    muon.step(), alone.step(), sgd.step();
  }
  CHECK(b1.to_vector<float>() == b2.to_vector<float>());
  CHECK(m1.to_vector<float>() == m2.to_vector<float>());
  // normalize_weights: every update starts from norm sqrt(8), and the step moves it by at most lr
  // times the update's norm (sqrt(8) times about 1).
  const double norm = std::sqrt(sum(m1.to(Dtype::f64) * m1.to(Dtype::f64)).item<double>());
  CHECK(std::abs(norm - std::sqrt(8.0)) < 0.02 * std::sqrt(8.0) * 1.3);
}

TEST_CASE("Muon: state saved and restored continues exactly; schedules scale its groups") {
  auto run = [](Muon& opt, Tensor& w, int steps) {
    for (int s = 0; s < steps; ++s) {
      opt.zero_grad();
      (sum(w * w * w) + sum(w)).backward();
      opt.step();
    }
  };
  manual_seed(3);
  Tensor w = randn({4, 6}, Dtype::f64);
  w.requires_grad_();
  Tensor v = from_vector<double>(w.to_vector<double>(), {4, 6});
  v.requires_grad_();
  Muon a({w}, {.lr = 0.01}), b({v}, {.lr = 0.01});
  run(a, w, 3), run(b, v, 3);
  const auto saved = a.state_dict();
  CHECK(std::any_of(saved.begin(), saved.end(), [](const auto& e) { return e.first == "state.0.momentum_buffer"; }));
  Tensor u = from_vector<double>(w.to_vector<double>(), {4, 6});
  u.requires_grad_();
  Muon c({u}, {.lr = 0.5});
  c.load_state_dict(saved);
  CHECK(c.lr() == 0.01);
  run(a, w, 2), run(c, u, 2);
  CHECK(w.to_vector<double>() == u.to_vector<double>());

  LambdaLR sched(b, [](int64_t e) { return 1.0 / double(e + 1); });
  sched.step();
  CHECK(b.lr() == doctest::Approx(0.005));
}

TEST_CASE("Muon: bad options and non-matrix parameters are refused, naming the problem") {
  Tensor w = ones({2, 3}), bias = ones({3});
  CHECK_ERROR(Muon({bias}), "Muon: parameter 0 (shape [3]) of group 0 is not a matrix");
  CHECK_ERROR(Muon({{{w}, {}}, {{bias}, {}}}), "Muon: parameter 1 (shape [3]) of group 1 is not a matrix");
  CHECK_ERROR(Muon({w}, {.lr = -1}), "Muon: learning rate must be non-negative, got -1");
  CHECK_ERROR(Muon({w}, {.weight_decay = -0.1}), "Muon: weight_decay must be non-negative");
  CHECK_ERROR(Muon({w}, {.momentum = 0}), "Muon: nesterov needs momentum > 0, got 0");
  CHECK_ERROR(Muon({w}, {.ns_steps = 0}), "Muon: ns_steps must be at least 1, got 0");
  CHECK_ERROR(Muon({w}, {.adjust_lr_fn = "spectral"}), "Muon: adjust_lr_fn must be \"original\", \"match_rms_adamw\" or \"none\", got \"spectral\"");
  CHECK_ERROR(Muon({w}, {.ns_coefficients = {1, NAN, 0}}), "Muon: ns_coefficients must be finite");
  // A refused group changes nothing: the optimizer keeps its one group.
  Muon ok({w});
  CHECK_ERROR(ok.add_param_group({{bias}, {}}), "Muon: parameter 1 (shape [3]) of group 1 is not a matrix");
  CHECK(ok.num_param_groups() == 1);
  ok.add_param_group({{bias}, {.use_muon = false}});
  CHECK(ok.num_param_groups() == 2);
  CHECK_ERROR(ok.set_momentum(-1), "Muon: momentum must be non-negative, got -1");
}

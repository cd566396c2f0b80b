// Shared test helpers: gradcheck and error-message assertions in one line each.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "xgrad.hpp"

namespace xg::test {

// A leaf of dtype d with values from randn (seeded), requiring grad.
inline Tensor input(const Shape& shape, Dtype d, uint64_t seed) {
  manual_seed(seed);
  Tensor t = randn(shape, d);
  t.requires_grad_();
  return t;
}

// f64 leaf with values from randn, requiring grad.
inline Tensor leaf(const Shape& shape, uint64_t seed = 1) { return input(shape, Dtype::f64, seed); }

inline Tensor f64(const std::vector<double>& v, const Shape& s) { return from_vector(v, s); }

// The suite's gradcheck tolerance: issue #2 asks for relative errors below 1e-6.
inline const GradcheckOptions strict{.eps = 1e-6, .atol = 1e-8, .rtol = 1e-6};

}  // namespace xg::test

// The tape's gradient of fn agrees with central differences (max relative error well under 1e-6
// where values are not tiny; atol covers cancellation near zero).
#define CHECK_GRADCHECK(fn, ...)                                                                  \
  do {                                                                                            \
    auto gc_result_ = xg::gradcheck(fn, __VA_ARGS__, xg::test::strict);                                             \
    INFO(fmt::format("{}", gc_result_));                                                          \
    CHECK(gc_result_.ok);                                                                         \
  } while (0)

// expr throws xg::Error whose message contains `text`.
#define CHECK_ERROR(expr, text)                                                                   \
  do {                                                                                            \
    std::string err_msg_;                                                                         \
    try {                                                                                         \
      (void)(expr);                                                                               \
    } catch (const xg::Error& e_) {                                                               \
      err_msg_ = e_.what();                                                                       \
    }                                                                                             \
    INFO("message: " << err_msg_);                                                                \
    CHECK_MESSAGE(err_msg_.find(text) != std::string::npos, "expected an xg::Error containing: " << text); \
  } while (0)

// Two implementations agree in value and in every input's gradient (xg::check_against_reference).
#define CHECK_MATCHES_REFERENCE(fused, reference, ...)                                   \
  do {                                                                                   \
    auto rc_ = xg::check_against_reference(fused, reference, __VA_ARGS__);               \
    INFO(rc_.message);                                                                   \
    CHECK(rc_.ok);                                                                       \
  } while (0)

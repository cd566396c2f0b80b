// Op tracing: while a Listener is installed on this thread, the public functional ops report
// themselves (kind, inputs, output, attributes) to it; the ONNX exporter is the listener.
//
// An op opts in with one line at the top of its public function:
//   if (trace::enabled()) return trace::op("relu", {x}, {}, [&] { return relu(x); });
// trace::op runs the op again with the depth raised, so the ops it is composed of (linear's matmul
// and add, gelu's erf and mul) do not report: a composite is one traced op. Without a listener the
// cost is one thread-local load and compare.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "autograd/tensor.hpp"

namespace xg::trace {

using Attr = std::variant<int64_t, double, std::string, std::vector<int64_t>>;
using Attrs = std::vector<std::pair<std::string, Attr>>;

class Listener {
 public:
  virtual ~Listener() = default;
  // inputs may hold undefined tensors (an absent bias). Throwing stops the traced forward.
  virtual void op(const char* kind, const std::vector<Tensor>& inputs, const Tensor& output, const Attrs& attrs) = 0;
};

struct State {
  Listener* listener = nullptr;
  int depth = 0;  // > 0 inside a traced op: inner ops stay silent
};
inline thread_local State state;

inline bool enabled() { return state.listener != nullptr && state.depth == 0; }

template <class F>
Tensor op(const char* kind, const std::vector<Tensor>& inputs, const Attrs& attrs, F&& run) {
  struct Depth {
    Depth() { ++state.depth; }
    ~Depth() { --state.depth; }
  };
  Tensor out;
  {
    Depth inside;
    out = run();
  }
  state.listener->op(kind, inputs, out, attrs);
  return out;
}

// Installs a listener on this thread for its lifetime (not nestable: a second one is refused).
class Scope {
 public:
  explicit Scope(Listener& l) {
    check(state.listener == nullptr, "trace: a listener is already installed on this thread");
    state = {&l, 0};
  }
  ~Scope() { state = {}; }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
};

// Attributes of option structs, read field by field: a field an option struct gains later (a
// conv's dilation and groups, a pool's ceil_mode) is reported as soon as it exists.
inline std::vector<int64_t> hw(const auto& pair) { return {pair.h, pair.w}; }

template <class O>
Attrs conv_attrs(const O& o) {
  Attrs a{{"stride", hw(o.stride)}, {"padding", hw(o.padding)}};
  if constexpr (requires { o.dilation.h; }) a.emplace_back("dilation", hw(o.dilation));
  if constexpr (requires { o.groups; }) a.emplace_back("groups", static_cast<int64_t>(o.groups));
  return a;
}

template <class O>
Attrs pool_attrs(const O& o) {
  Attrs a{{"kernel", hw(o.kernel)}, {"stride", hw(o.stride)}, {"padding", hw(o.padding)}};
  if constexpr (requires { o.dilation.h; }) a.emplace_back("dilation", hw(o.dilation));
  if constexpr (requires { o.ceil_mode; }) a.emplace_back("ceil_mode", static_cast<int64_t>(o.ceil_mode));
  if constexpr (requires { o.count_include_pad; })
    a.emplace_back("count_include_pad", static_cast<int64_t>(o.count_include_pad));
  return a;
}

}  // namespace xg::trace

// The tape: graph nodes, the one function that records an op, and reverse-mode differentiation.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "autograd/tensor.hpp"

namespace xg {

// What a backward closure receives.
struct GradArgs {
  Tensor grad;              // dLoss/dOut, shaped like the output
  Tensor out;               // the op's output (defined when recorded with keep_output)
  std::vector<bool> needs;  // needs[i]: input i wants a gradient; skip the others
};
// Returns one gradient per input (an undefined Tensor where none is needed), each shaped like its
// input. Written with xgrad ops, so that with create_graph the backward pass records itself.
using BackwardFn = std::function<std::vector<Tensor>(const GradArgs&)>;

// Where a node's gradient for one input goes: the node that produced it, or a leaf's .grad.
struct Edge {
  std::shared_ptr<Node> node;
  std::weak_ptr<TensorImpl> leaf;  // weak: a leaf's grad may itself hold a graph (create_graph)
  bool needed() const { return node != nullptr || !leaf.expired(); }
};

// A tensor a backward closure reads, as it was when the op ran: its storage's version then.
struct SavedVersion {
  std::weak_ptr<Storage> storage;  // weak: expired means nobody kept it, so nobody can read it
  uint32_t version = 0;
  Shape shape;
};

struct Node : std::enable_shared_from_this<Node> {
  const char* name = "";
  std::vector<Edge> next;  // one per input
  BackwardFn backward;
  std::shared_ptr<Storage> out_storage;  // kept only when the closure reads the output
  uint32_t out_version = 0;
  std::vector<SavedVersion> saved;       // checked before backward runs
  Shape out_shape;
  Dtype out_dtype = Dtype::f32;
  bool released = false;  // saved state freed by a backward without retain_graph
  std::shared_ptr<HookList> hooks;        // the output tensor's gradient hooks
  std::weak_ptr<TensorImpl> retained;     // the output tensor, when it called retain_grad()

  ~Node();  // iterative: a 100k-op chain must not recurse 100k frames deep
};

// What a backward closure reads besides the upstream gradient. The engine notes each such
// tensor's version when the op runs, and refuses to run the closure after an in-place write to one
// ("... was modified by an in-place operation").
struct Saved {
  std::vector<Tensor> tensors{};  // tensors the closure captured (inputs or others, such as an index)
  bool inputs = false;          // every input, as well as `tensors`
  bool output = false;          // the closure reads GradArgs::out: the node keeps the output
};

// The one way onto the tape. Returns `out`, made a non-leaf with a node whose inputs are `inputs`,
// when recording is on and some input requires grad; otherwise returns `out` untouched. Without a
// `saved`, every input counts as read by the closure (safe: an op that captures less says so).
Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn backward,
              const Saved& saved = {.inputs = true});

struct GradOptions {
  bool retain_graph = false;
  bool create_graph = false;
  bool allow_unused = true;  // an input the outputs do not depend on gets an undefined gradient
};

// Functional gradients: d(sum_i <outputs[i], grad_outputs[i]>)/d(inputs), without touching .grad.
// grad_outputs may be empty when every output is a scalar.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, const GradOptions& opts = {});

// Runs fn on this thread when the backward pass now running (the innermost one, if a hook started
// another) has stored every gradient, callbacks in the order queued. Called from a hook, for work
// the hook began that must be finished before anyone reads .grad (DistributedDataParallel waits
// for its allreduces here). Like PyTorch's Variable._execution_engine.queue_callback.
void queue_callback(std::function<void()> fn);

}  // namespace xg

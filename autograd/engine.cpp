// The engine: records nodes, sorts the graph iteratively and sweeps it in reverse.
#include "autograd/engine.hpp"

#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "autograd/function.hpp"
#include "ops/ops.hpp"

namespace xg {

namespace {
thread_local bool grad_enabled = true;
// The callbacks of the innermost backward pass running on this thread (null outside one).
thread_local std::vector<std::function<void()>>* pending_callbacks = nullptr;
}  // namespace

bool GradMode::is_enabled() { return grad_enabled; }
void GradMode::set_enabled(bool on) { grad_enabled = on; }

Node::~Node() {
  // Tear the chain down with an explicit stack. The closure goes first: its captured tensors drop
  // their references to earlier nodes, which the edges still hold, so nothing recurses; then every
  // earlier node only this one holds is moved onto the stack and emptied the same way.
  std::vector<std::shared_ptr<Node>> stack;
  auto drain = [&stack](Node& n) {
    n.backward = nullptr;
    for (Edge& e : n.next)
      if (e.node && e.node.use_count() == 1) stack.push_back(std::move(e.node));
    n.next.clear();
  };
  drain(*this);
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    drain(*n);
  }
}

Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn backward,
              const Saved& saved) {
  if (!GradMode::is_enabled()) return out;
  bool any = false;
  for (const Tensor& in : inputs) any = any || (in.defined() && in.requires_grad());
  if (!any) return out;

  auto node = std::make_shared<Node>();
  node->name = name;
  node->next.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.defined() || !in.requires_grad()) continue;
    if (in.grad_fn()) node->next[i].node = in.grad_fn();
    else node->next[i].leaf = in.impl_ptr();
  }
  auto note = [&node](const Tensor& t) {
    if (!t.defined()) return;
    const TensorImpl& ti = t.impl();
    node->saved.push_back({ti.storage, ti.storage->version(), ti.shape});
  };
  if (saved.inputs)
    for (const Tensor& in : inputs) note(in);
  for (const Tensor& t : saved.tensors) note(t);
  node->backward = std::move(backward);
  TensorImpl& o = out.impl();
  if (saved.output) {
    node->out_storage = o.storage;
    node->out_version = o.storage->version();
  }
  node->out_shape = o.shape;
  node->out_dtype = o.dtype;

  // The output gets an impl of its own (an op may hand back a tensor that shares one with an input).
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = o.storage;
  impl->shape = o.shape;
  impl->numel = o.numel;
  impl->dtype = o.dtype;
  impl->requires_grad = true;
  impl->grad_fn = std::move(node);
  return Tensor(std::move(impl));
}

namespace {

// Nodes reachable from the roots, inputs before their consumers (DFS post-order, no recursion).
std::vector<Node*> post_order(const std::vector<Node*>& roots) {
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack;
  for (Node* r : roots) {
    if (!r || !seen.insert(r).second) continue;
    stack.emplace_back(r, 0);
    while (!stack.empty()) {
      auto& [n, i] = stack.back();
      if (n->released)
        fail("backward: the graph through '{}' was freed by an earlier backward; pass "
             "retain_graph=true to the first backward to run through it twice", n->name);
      if (i < n->next.size()) {
        Node* child = n->next[i++].node.get();
        if (child && seen.insert(child).second) stack.emplace_back(child, 0);
      } else {
        order.push_back(n);
        stack.pop_back();
      }
    }
  }
  return order;
}

Tensor accumulate(const Tensor& acc, const Tensor& g) { return acc.defined() ? add(acc, g) : g; }

// PyTorch's rule: a backward must not read a tensor that an in-place write changed after the op ran.
void check_versions(const Node& n) {
  auto stale = [&n](const char* what, const Shape& shape, uint32_t now, uint32_t then) {
    fail("backward of '{}': {} of shape {} needed for its gradient was modified by an in-place "
         "operation (version {}, saved at {})", n.name, what, shape, now, then);
  };
  if (n.out_storage && n.out_storage->version() != n.out_version)
    stale("its output", n.out_shape, n.out_storage->version(), n.out_version);
  for (const SavedVersion& s : n.saved)
    if (auto st = s.storage.lock(); st && st->version() != s.version) stale("a tensor", s.shape, st->version(), s.version);
}

// A gradient from a backward closure or a hook, made to fit the tensor it is for: the shape must
// match; another dtype is cast, as PyTorch's engine does.
Tensor fit_gradient(Tensor g, const Shape& shape, Dtype dtype, const char* op, const char* what, size_t k) {
  check(g.shape() == shape, "{} of '{}': gradient {} has shape {}, expected {}", what, op, k, g.shape(), shape);
  if (g.dtype() != dtype) {
    check(is_floating(g.dtype()), "{} of '{}': gradient {} has dtype {}, expected {}", what, op, k,
          dtype_name(g.dtype()), dtype_name(dtype));
    g = g.to(dtype);
  }
  return g;
}

struct Sweep {
  // Non-empty in functional mode (xg::grad): only these receive gradients, and .grad is untouched.
  std::unordered_map<const TensorImpl*, Tensor> leaf_targets;
  std::unordered_map<const Node*, Tensor> node_targets;
  bool functional = false;
};

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads,
                  Sweep& sweep, const BackwardOptions& opts) {
  std::vector<Node*> root_nodes;
  for (const Tensor& r : roots) root_nodes.push_back(r.grad_fn().get());
  std::vector<Node*> order = post_order(root_nodes);  // throws before any state changes

  std::unordered_map<Node*, Tensor> acc;
  std::unordered_map<Node*, bool> reaches;
  auto edge_needed = [&](const Edge& e) {
    if (e.node) return reaches[e.node.get()];
    auto leaf = e.leaf.lock();
    if (!leaf || !leaf->requires_grad) return false;
    return !sweep.functional || sweep.leaf_targets.count(leaf.get()) > 0;
  };
  // A hooked leaf's gradient is complete once the last node with an edge to it has run (the first
  // such node in `order`): its hooks run right then, while the sweep goes on, so that a hook can
  // start work on it early (DistributedDataParallel's allreduce overlaps the rest of the backward).
  std::unordered_map<const TensorImpl*, const Node*> leaf_complete_after;
  for (Node* n : order) {
    bool r = sweep.node_targets.count(n) > 0;
    for (const Edge& e : n->next) {
      r = r || edge_needed(e);
      if (e.node) continue;
      if (auto leaf = e.leaf.lock(); leaf && leaf->hooks && !leaf->hooks->hooks.empty())
        leaf_complete_after.try_emplace(leaf.get(), n);
    }
    reaches[n] = r;
  }

  GradModeGuard mode(opts.create_graph);
  std::vector<std::function<void()>> callbacks;
  struct CallbackScope {  // restores the outer pass's list, also when the sweep throws
    std::vector<std::function<void()>>* outer;
    ~CallbackScope() { pending_callbacks = outer; }
  } scope{std::exchange(pending_callbacks, &callbacks)};
  // Stores a complete gradient into .grad (accumulating), or into the functional result.
  auto store = [&](const std::shared_ptr<TensorImpl>& t, const Tensor& g) {
    if (sweep.functional) {
      if (auto slot = sweep.leaf_targets.find(t.get()); slot != sweep.leaf_targets.end()) slot->second = g;
      return;
    }
    Tensor old = t->grad ? Tensor(t->grad) : Tensor();
    Tensor next = old.defined() ? add(old, g) : g;
    // A gradient stored for the first time may share storage with a tensor the caller holds;
    // .grad gets its own so that in-place updates (clipping, zeroing) touch nothing else.
    if (!old.defined() && !opts.create_graph && next.impl().storage.use_count() > 1) next = next.detach().clone();
    if (!opts.create_graph) next = next.detach();
    t->grad = next.impl_ptr();
  };
  // A leaf's gradient is summed over all its uses first, so that its hooks see the whole of it.
  // .grad is written only at the end, so that a failing backward leaves every .grad as it was.
  struct LeafGrad {
    std::shared_ptr<TensorImpl> leaf;
    Tensor grad;
    bool hooked = false;  // its hooks have run on `grad`
  };
  std::vector<LeafGrad> leaf_grads;
  std::unordered_map<const TensorImpl*, size_t> leaf_slot;
  auto deliver_leaf = [&](const std::shared_ptr<TensorImpl>& leaf, const Tensor& g) {
    auto [it, fresh] = leaf_slot.try_emplace(leaf.get(), leaf_grads.size());
    if (fresh) leaf_grads.push_back({leaf, g});
    else leaf_grads[it->second].grad = add(leaf_grads[it->second].grad, g);
  };
  auto run_leaf_hooks = [](LeafGrad& lg) {
    if (lg.hooked || !lg.leaf->hooks) return;
    lg.grad = fit_gradient(lg.leaf->hooks->run(lg.grad, "leaf"), lg.leaf->shape, lg.leaf->dtype, "leaf", "hook", 0);
    lg.hooked = true;
  };

  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    if (r.grad_fn()) acc[r.grad_fn().get()] = accumulate(acc[r.grad_fn().get()], root_grads[i]);
    else if (sweep.functional ? sweep.leaf_targets.count(r.impl_ptr().get()) > 0 : r.requires_grad())
      deliver_leaf(r.impl_ptr(), root_grads[i]);
  }

  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = *it;
    auto found = acc.find(n);
    Tensor g = found == acc.end() ? Tensor() : std::move(found->second);
    if (found != acc.end()) acc.erase(found);
    if (g.defined() && n->hooks) g = fit_gradient(n->hooks->run(g, n->name), n->out_shape, n->out_dtype, n->name, "hook", 0);
    if (auto t = n->retained.lock(); t && g.defined() && !sweep.functional) store(t, g);
    if (auto t = sweep.node_targets.find(n); t != sweep.node_targets.end()) t->second = accumulate(t->second, g);
    bool any_need = false;
    for (const Edge& e : n->next) any_need = any_need || edge_needed(e);
    if (any_need && g.defined() && n->backward) {
      check_versions(*n);
      GradArgs args;
      args.grad = g;
      if (n->out_storage) {
        auto impl = std::make_shared<TensorImpl>();
        impl->storage = n->out_storage;
        impl->shape = n->out_shape;
        impl->numel = g.numel();
        impl->dtype = n->out_dtype;
        impl->requires_grad = true;
        impl->grad_fn = n->shared_from_this();
        args.out = Tensor(std::move(impl));
      }
      args.needs.resize(n->next.size());
      for (size_t k = 0; k < n->next.size(); ++k) args.needs[k] = edge_needed(n->next[k]);
      std::vector<Tensor> grads = n->backward(args);
      check(grads.size() == n->next.size(), "backward of '{}': returned {} gradients for {} inputs",
            n->name, grads.size(), n->next.size());
      for (size_t k = 0; k < grads.size(); ++k) {
        if (!args.needs[k] || !grads[k].defined()) continue;
        const Edge& e = n->next[k];
        if (e.node) {
          Tensor gk = fit_gradient(grads[k], e.node->out_shape, e.node->out_dtype, n->name, "backward", k);
          acc[e.node.get()] = accumulate(acc[e.node.get()], gk);
        } else if (auto leaf = e.leaf.lock()) {
          deliver_leaf(leaf, fit_gradient(grads[k], leaf->shape, leaf->dtype, n->name, "backward", k));
        }
      }
    }
    if (!leaf_complete_after.empty())
      for (const Edge& e : n->next) {
        auto leaf = e.node ? nullptr : e.leaf.lock();
        auto done = leaf ? leaf_complete_after.find(leaf.get()) : leaf_complete_after.end();
        if (done == leaf_complete_after.end() || done->second != n) continue;
        if (auto slot = leaf_slot.find(leaf.get()); slot != leaf_slot.end()) run_leaf_hooks(leaf_grads[slot->second]);
      }
    if (!opts.retain_graph) {
      n->backward = nullptr;
      n->out_storage.reset();
      n->released = true;
    }
  }

  for (LeafGrad& lg : leaf_grads) run_leaf_hooks(lg);  // the leaves no node feeds (roots)
  for (LeafGrad& lg : leaf_grads) {
    Tensor g = std::move(lg.grad);  // hold no second copy while the other leaves are stored
    store(lg.leaf, g);
  }
  for (size_t i = 0; i < callbacks.size(); ++i) callbacks[i]();  // a callback may queue another
}

Tensor default_root_grad(const Tensor& out, const Tensor& given, const char* op) {
  if (given.defined()) {
    check(given.shape() == out.shape(), "{}: grad_output has shape {}, but the output has shape {}", op,
          given.shape(), out.shape());
    return given.dtype() == out.dtype() ? given : given.to(out.dtype());
  }
  check(out.numel() == 1, "{}: grad can be created implicitly only for scalar outputs, got shape {}; pass a "
        "grad_output", op, out.shape());
  return ones_like(out);
}

}  // namespace

void queue_callback(std::function<void()> fn) {
  check(pending_callbacks != nullptr, "queue_callback: no backward pass is running on this thread (call it from a hook)");
  pending_callbacks->push_back(std::move(fn));
}

void Tensor::backward(const BackwardOptions& opts) const { backward(Tensor(), opts); }

void Tensor::backward(const Tensor& grad_output, const BackwardOptions& opts) const {
  check(requires_grad(), "backward: the tensor (shape {}) does not require grad and has no grad_fn", shape());
  Tensor g = default_root_grad(*this, grad_output, "backward");
  BackwardOptions o = opts;
  o.retain_graph = opts.retain_graph || opts.create_graph;
  Sweep sweep;
  run_backward({*this}, {g}, sweep, o);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, const GradOptions& opts) {
  check(grad_outputs.empty() || grad_outputs.size() == outputs.size(),
        "grad: got {} grad_outputs for {} outputs", grad_outputs.size(), outputs.size());
  std::vector<Tensor> root_grads;
  for (size_t i = 0; i < outputs.size(); ++i) {
    check(outputs[i].requires_grad(), "grad: output {} (shape {}) does not require grad", i, outputs[i].shape());
    root_grads.push_back(default_root_grad(outputs[i], grad_outputs.empty() ? Tensor() : grad_outputs[i], "grad"));
  }
  Sweep sweep;
  sweep.functional = true;
  for (size_t i = 0; i < inputs.size(); ++i) {
    check(inputs[i].requires_grad(), "grad: input {} (shape {}) does not require grad", i, inputs[i].shape());
    if (inputs[i].grad_fn()) sweep.node_targets[inputs[i].grad_fn().get()] = Tensor();
    else sweep.leaf_targets[inputs[i].impl_ptr().get()] = Tensor();
  }
  BackwardOptions o{opts.retain_graph || opts.create_graph, opts.create_graph};
  run_backward(outputs, root_grads, sweep, o);

  std::vector<Tensor> result;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor g = inputs[i].grad_fn() ? sweep.node_targets[inputs[i].grad_fn().get()]
                                   : sweep.leaf_targets[inputs[i].impl_ptr().get()];
    check(g.defined() || opts.allow_unused, "grad: input {} is not used by the outputs", i);
    result.push_back(g);
  }
  return result;
}

std::vector<Tensor> composite_backward(const std::function<Tensor(const std::vector<Tensor>&)>& composition,
                                       const std::vector<Tensor>& inputs, const Tensor& grad,
                                       const std::vector<bool>& needs) {
  // The composition runs on identity aliases of the inputs, so the functional sweep below stops at
  // them: nothing upstream of the fused op is visited, and no hook of an input runs twice.
  std::vector<Tensor> alias, targets;
  std::vector<size_t> at;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.defined() || !in.requires_grad()) {
      alias.push_back(in);
      continue;
    }
    alias.push_back(record("alias", in.detach(), {in}, [](const GradArgs& g) { return std::vector<Tensor>{g.grad}; }, {}));
    if (i < needs.size() && needs[i]) targets.push_back(alias.back()), at.push_back(i);
  }
  std::vector<Tensor> result(inputs.size());
  Tensor y = composition(alias);
  if (targets.empty() || !y.requires_grad()) return result;
  std::vector<Tensor> gs = xg::grad({y}, targets, {grad}, {.create_graph = true});
  for (size_t k = 0; k < at.size(); ++k) result[at[k]] = gs[k];
  return result;
}

}  // namespace xg

// The tracer that turns one forward into an ONNX graph, and export_model.
#include "onnx/export.hpp"

#include <unordered_map>
#include <unordered_set>

#include "autograd/engine.hpp"
#include "nn/atomic_file.hpp"
#include "onnx/rules.hpp"

namespace xg::onnx {

namespace {

class Tracer final : public trace::Listener, public detail::Builder {
 public:
  Tracer(const nn::Module& root, const Tensor& input, const ExportOptions& o, Graph& g)
      : graph_(g), opts_(o), input_(input) {
    for (const auto& [name, m] : root.named_modules()) module_paths_[m.get()] = name;
    for (const auto& [name, t] : root.state_dict()) weight_names_.emplace(t.impl_ptr().get(), name);
    bind(input, g.inputs.at(0).name);
  }

  void op(const char* kind, const std::vector<Tensor>& inputs, const Tensor& output, const trace::Attrs& attrs) override {
    const detail::Rule* rule = detail::find_rule(kind);
    check(rule != nullptr, "onnx::export_model: no ONNX export rule for '{}'{}", kind, where());
    kind_ = kind;
    std::string name = (*rule)(detail::Op{kind, inputs, output, attrs, *this});
    if (!names_.contains(output.impl_ptr().get())) bind(output, name);  // else an input passed through
  }

  std::string value(const Tensor& t) override {
    if (!t.defined()) return "";
    if (auto it = names_.find(t.impl_ptr().get()); it != names_.end()) return it->second;
    if (t.grad_fn() && reaches_graph(t))
      fail("onnx::export_model: no ONNX export rule for '{}' (its result reaches {}{}); only ops that report to the "
           "tracer can be exported", t.grad_fn()->name, kind_, where());
    std::string name = constant(t);
    bind(t, name);
    return name;
  }

  std::string constant(const Tensor& t) override {
    auto w = weight_names_.find(t.impl_ptr().get());
    std::string name = w != weight_names_.end() ? w->second : fmt::format("const_{}", graph_.initializers.size());
    graph_.initializers.push_back({name, t.detach()});
    return name;
  }

  std::string node(const std::string& op_type, const std::vector<std::string>& inputs, Attrs attrs) override {
    std::string path = module_path();
    std::string name = fmt::format("{}{}{}_{}", path, path.empty() ? "" : "/", op_type, graph_.nodes.size());
    graph_.nodes.push_back({op_type, name, inputs, {name}, std::move(attrs)});
    return name;
  }

  bool dynamic_batch() const override { return opts_.dynamic_batch; }
  int64_t opset() const override { return opts_.opset; }

  std::string where() const override {
    const auto& calls = nn::detail::call_stack();
    if (calls.empty()) return "";
    auto it = module_paths_.find(calls.back());
    std::string path = it == module_paths_.end() ? "?" : it->second;
    return fmt::format(" in module '{}' ({})", path.empty() ? "<root>" : path, calls.back()->name());
  }

  // Names the graph output: `y` must be the input or a value computed from it by traced ops.
  void finish(const Tensor& y, const std::string& out_name) {
    kind_ = "the graph output";
    auto it = names_.find(y.impl_ptr().get());
    if (it == names_.end()) {
      check(y.grad_fn() && reaches_graph(y), "onnx::export_model: the output does not depend on the input");
      value(y);  // throws, naming the op that produced y
    }
    const std::string v = it->second;
    if (!graph_produces(v)) {
      check(v == graph_.inputs[0].name, "onnx::export_model: the output does not depend on the input");
      graph_.nodes.push_back({"Identity", "Identity_output", {v}, {out_name}, {}});
      return;
    }
    for (Node& n : graph_.nodes) {  // rename the value everywhere
      for (std::string& i : n.inputs)
        if (i == v) i = out_name;
      for (std::string& o : n.outputs)
        if (o == v) o = out_name;
    }
  }

 private:
  void bind(const Tensor& t, const std::string& name) {
    names_[t.impl_ptr().get()] = name;
    kept_.push_back(t);  // alive until the export ends, so that no other tensor reuses its address
    if (t.grad_fn()) graph_nodes_.insert(t.grad_fn().get());
  }

  bool graph_produces(const std::string& v) const {
    for (const Node& n : graph_.nodes)
      for (const std::string& o : n.outputs)
        if (o == v) return true;
    return false;
  }

  // Whether the tape leads from t back to the graph input or to a traced op's output: then t was
  // computed from the input by an op the tracer did not see.
  bool reaches_graph(const Tensor& t) const {
    std::vector<const xg::Node*> todo{t.grad_fn().get()};
    std::unordered_set<const xg::Node*> seen{todo[0]};
    while (!todo.empty()) {
      const xg::Node* n = todo.back();
      todo.pop_back();
      for (const Edge& e : n->next) {
        if (!e.node) {
          if (e.leaf.lock() == input_.impl_ptr()) return true;
          continue;
        }
        if (graph_nodes_.contains(e.node.get())) return true;
        if (seen.insert(e.node.get()).second) todo.push_back(e.node.get());
      }
    }
    return false;
  }

  std::string module_path() const {
    const auto& calls = nn::detail::call_stack();
    if (calls.empty()) return "";
    auto it = module_paths_.find(calls.back());
    return it == module_paths_.end() ? "" : it->second;
  }

  Graph& graph_;
  const ExportOptions& opts_;
  Tensor input_;
  std::string kind_;
  std::unordered_map<const TensorImpl*, std::string> names_;
  std::unordered_map<const TensorImpl*, std::string> weight_names_;
  std::unordered_map<const nn::Module*, std::string> module_paths_;
  std::unordered_set<const xg::Node*> graph_nodes_;  // the tape's nodes of graph values
  std::vector<Tensor> kept_;
};

// Puts every module in eval mode for its lifetime, then restores each module's own mode.
class EvalScope {
 public:
  explicit EvalScope(nn::Module& root) : root_(root) {
    for (const auto& [name, m] : root.named_modules()) modes_.emplace_back(m.get(), m->is_training());
    root.eval();
  }
  ~EvalScope() {
    for (auto& [m, training] : modes_) m->train(training);  // pre-order: a child after its parent
  }

 private:
  nn::Module& root_;
  std::vector<std::pair<nn::Module*, bool>> modes_;
};

}  // namespace

Model trace_model(nn::Module& module, const Tensor& example_input, const ExportOptions& o) {
  check(o.opset >= 13 && o.opset <= 17, "onnx::export_model: opset {} is not supported (13 to 17)", o.opset);
  check(example_input.defined() && is_floating(example_input.dtype()),
        "onnx::export_model: the example input must be a defined f32 or f64 tensor");
  check(!o.dynamic_batch || example_input.dim() >= 1, "onnx::export_model: a dynamic batch needs an input with dims");
  check(o.input_names.size() <= 1 && o.output_names.size() <= 1,
        "onnx::export_model: one input and one output are supported, got {} input and {} output names",
        o.input_names.size(), o.output_names.size());
  Model model;
  model.opset = o.opset;
  model.ir_version = o.opset <= 14 ? 7 : 8;  // ONNX 1.9 (opset 14) was the last with IR version 7
  Graph& g = model.graph;
  const std::string in_name = o.input_names.empty() ? "input" : o.input_names[0];
  const std::string out_name = o.output_names.empty() ? "output" : o.output_names[0];
  check(!in_name.empty() && !out_name.empty() && in_name != out_name,
        "onnx::export_model: input and output names must be non-empty and differ");
  g.inputs.push_back({in_name, example_input.dtype(), example_input.shape(), o.dynamic_batch});

  // The input requires grad so that the tape links every value computed from it: an op that did
  // not report itself is then told from a weight by where its inputs come from.
  Tensor input = example_input.detach();
  input.requires_grad_(true);
  EvalScope eval(module);
  GradModeGuard recording(true);
  Tracer tracer(module, input, o, g);
  Tensor y;
  {
    trace::Scope listening(tracer);
    y = module(input);
  }
  tracer.finish(y, out_name);
  g.outputs.push_back({out_name, y.dtype(), y.shape(), o.dynamic_batch && y.dim() >= 1});
  return model;
}

void export_model(nn::Module& module, const Tensor& example_input, const std::string& path, const ExportOptions& o) {
  const std::string bytes = serialize(trace_model(module, example_input, o));
  xg::detail::write_file_atomically(path, {bytes}, "onnx::export_model");
}

}  // namespace xg::onnx

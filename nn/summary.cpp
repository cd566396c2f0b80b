// nn::summary: one forward on zeros with an observer on Module::operator(), then a table.
#include "nn/summary.hpp"

#include <algorithm>
#include <map>

#include "autograd/grad_mode.hpp"
#include "ops/ops.hpp"

namespace xg::nn {

namespace {

// "1,234,567"
std::string thousands(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') out += ',';
    out += digits[i];
  }
  return out;
}

// Puts the model in eval mode and no-grad, observing outputs, for one scope; restores all of it.
class SummaryScope {
 public:
  SummaryScope(Module& model, std::map<const Module*, Shape>& shapes)
      : modules_(model.named_modules()), previous_(detail::forward_observer()) {
    for (auto& [n, m] : modules_) modes_.push_back(m->is_training());
    observer_ = [&shapes](const Module& m, const Tensor& out) {
      if (out.defined()) shapes.emplace(&m, out.shape());  // the first call's shape
    };
    detail::forward_observer() = &observer_;
    model.eval();
  }
  ~SummaryScope() {
    detail::forward_observer() = previous_;
    // Pre-order: a parent's train() resets its subtree, then each child gets its own flag back.
    for (size_t i = 0; i < modules_.size(); ++i) modules_[i].second->train(modes_[i]);
  }
  SummaryScope(const SummaryScope&) = delete;
  SummaryScope& operator=(const SummaryScope&) = delete;

 private:
  NamedModules modules_;
  std::vector<bool> modes_;
  detail::ForwardObserver observer_;
  detail::ForwardObserver* previous_;
  NoGradGuard no_grad_;
};

}  // namespace

int64_t count_parameters(const Module& model, bool trainable_only) {
  int64_t n = 0;
  for (const Tensor& p : model.parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

ModelSummary summary(Module& model, const Shape& input_shape) {
  for (int64_t d : input_shape)
    check(d >= 0, "summary: input_shape {} has a negative size", input_shape);
  std::vector<Tensor> params = model.parameters();
  const Dtype dtype = params.empty() ? Dtype::f32 : params.front().dtype();
  std::map<const Module*, Shape> shapes;
  ModelSummary s;
  s.input_shape = input_shape;
  {
    SummaryScope scope(model, shapes);
    Tensor out = model(zeros(input_shape, dtype));
    check(out.defined(), "summary: {}'s forward returned an undefined tensor", model.name());
    s.output_shape = out.shape();
  }
  for (auto& [n, m] : model.named_modules()) {
    int64_t own = 0;
    for (const Tensor& p : m->parameters(false)) own += p.numel();
    const int depth = n.empty() ? 0 : static_cast<int>(std::count(n.begin(), n.end(), '.')) + 1;
    SummaryRow row{n, m->name(), depth, std::nullopt, own};
    if (auto it = shapes.find(m.get()); it != shapes.end()) row.output_shape = it->second;
    s.rows.push_back(std::move(row));
  }
  s.total_params = count_parameters(model);
  s.trainable_params = count_parameters(model, true);
  return s;
}

std::string to_string(const ModelSummary& s) {
  auto label = [](const SummaryRow& r) {
    if (r.depth == 0) return r.type;
    const std::string leaf = r.name.substr(r.name.rfind('.') == std::string::npos ? 0 : r.name.rfind('.') + 1);
    return std::string(2 * r.depth, ' ') + leaf + " (" + r.type + ")";
  };
  size_t w1 = std::string("Layer (type)").size(), w2 = std::string("Output Shape").size();
  for (const SummaryRow& r : s.rows) {
    w1 = std::max(w1, label(r).size());
    w2 = std::max(w2, r.output_shape ? fmt::format("{}", *r.output_shape).size() : 2);
  }
  w1 += 4, w2 += 4;
  const std::string rule(w1 + w2 + 12, '=');
  std::string out = fmt::format("{}\n{:<{}}{:<{}}{:>12}\n{}\n", rule, "Layer (type)", w1, "Output Shape", w2, "Param #", rule);
  for (const SummaryRow& r : s.rows)
    out += fmt::format("{:<{}}{:<{}}{:>12}\n", label(r), w1, r.output_shape ? fmt::format("{}", *r.output_shape) : "--",
                       w2, r.params ? thousands(r.params) : "--");
  out += fmt::format("{}\nInput shape: {}\nOutput shape: {}\nTotal params: {}\nTrainable params: {}\n"
                     "Non-trainable params: {}\n{}\n",
                     rule, s.input_shape, s.output_shape, thousands(s.total_params), thousands(s.trainable_params),
                     thousands(s.total_params - s.trainable_params), rule);
  return out;
}

}  // namespace xg::nn

// fuse_for_inference and fuse_modules: finding the groups, checking them, folding batch norm into
// Conv2d and Linear and marking the modules fused.
#include "nn/fuse.hpp"

#include <fmt/ranges.h>

#include <map>
#include <set>

#include "autograd/grad_mode.hpp"
#include "nn/layers.hpp"
#include "nn/norm.hpp"
#include "nn/sequential.hpp"

namespace xg::nn {

namespace detail {

void check_fused_eval(const Module& m) {
  check(!m.is_training(),
        "{}: fused for inference by nn::fuse_for_inference, it runs in eval mode only; to train, build the model "
        "again and load its unfused weights",
        m.name());
}

struct Fusion {
  // A group resolved to its modules: the layer (Conv2d or Linear) and what follows it (either may be null).
  struct Group {
    std::vector<std::string> names;
    Module* layer = nullptr;
    BatchNormBase* bn = nullptr;
    ReLU* relu = nullptr;
  };

  // The model's modules by dotted name, and how many places each is registered at.
  struct Index {
    std::map<std::string, Module*> by_name;
    std::map<const Module*, int> places;
    explicit Index(Module& model) {
      for (auto& [n, m] : model.named_modules()) by_name[n] = m.get();
      count(model);
    }
    void count(const Module& m) {
      for (const auto& [n, c] : m.named_children())
        if (++places[c.get()] == 1) count(*c);
    }
  };

  static bool fused(const Module* m) {
    if (auto* c = dynamic_cast<const Conv2d*>(m)) return c->fused_.any();
    if (auto* l = dynamic_cast<const Linear*>(m)) return l->fused_.any();
    if (auto* b = dynamic_cast<const BatchNormBase*>(m)) return b->folded_;
    if (auto* r = dynamic_cast<const ReLU*>(m)) return r->fused_;
    return false;
  }

  // The group's modules if it can be fused; otherwise the reason, in `why`.
  static Group resolve(const std::vector<std::string>& names, const Index& index, std::string& why) {
    Group g{.names = names};
    std::vector<Module*> ms;
    for (const std::string& n : names) {
      auto it = index.by_name.find(n);
      if (it == index.by_name.end() || n.empty()) {
        why = fmt::format("no module named '{}'", n);
        return g;
      }
      ms.push_back(it->second);
    }
    std::vector<std::string> types;
    for (Module* m : ms) types.push_back(m->name());
    const bool conv = !ms.empty() && dynamic_cast<Conv2d*>(ms[0]);
    const bool linear = !ms.empty() && dynamic_cast<Linear*>(ms[0]);
    size_t i = 1;
    if (conv || linear) {
      g.layer = ms[0];
      if (i < ms.size() &&
          (conv ? dynamic_cast<BatchNorm2d*>(ms[i]) != nullptr : dynamic_cast<BatchNorm1d*>(ms[i]) != nullptr))
        g.bn = static_cast<BatchNormBase*>(ms[i++]);
      if (i < ms.size() && (g.relu = dynamic_cast<ReLU*>(ms[i]))) ++i;
    }
    if (!g.layer || i != ms.size() || ms.size() < 2) {
      why = fmt::format(
          "cannot fuse {} ({}): a group is a Conv2d or Linear followed by a batch norm (BatchNorm2d "
          "after Conv2d, BatchNorm1d after Linear), a ReLU, or both in that order",
          names, fmt::join(types, ", "));
      return g;
    }
    for (size_t k = 0; k < ms.size(); ++k) {
      if (fused(ms[k]))
        why = fmt::format("'{}' ({}) is already fused", names[k], types[k]);
      else if (index.places.at(ms[k]) > 1)
        why = fmt::format("'{}' ({}) is registered at {} places in the model: fusing it would change each of them",
                          names[k], types[k], index.places.at(ms[k]));
      if (!why.empty()) return g;
    }
    if (g.bn) {
      const Tensor& w = conv ? static_cast<Conv2d*>(g.layer)->weight_ : static_cast<Linear*>(g.layer)->weight_;
      const BatchNormOptions& o = g.bn->options_;
      if (!o.track_running_stats)
        why = fmt::format(
            "'{}' has no running statistics (track_running_stats=false): it normalises with each "
            "batch's statistics even in eval mode, which no weight can fold",
            names[1]);
      else if (o.num_features != w.shape()[0])
        why = fmt::format("'{}' has {} features but '{}' has {} outputs", names[1], o.num_features, names[0],
                          w.shape()[0]);
      else if (g.bn->running_mean_.dtype() != w.dtype())
        why = fmt::format("'{}' is {} but '{}' is {}", names[1], dtype_name(g.bn->running_mean_.dtype()), names[0],
                          dtype_name(w.dtype()));
    }
    return g;
  }

  template <class L>
  static void fuse(L& layer, BatchNormBase* bn, ReLU* relu) {
    NoGradGuard no_grad;
    if (bn) {
      const BatchNormOptions& o = bn->options_;
      const int64_t F = layer.weight_.shape()[0];
      auto f64 = [](const Tensor& t) { return t.to(Dtype::f64); };
      // In f64, then rounded once to the layer's dtype.
      Tensor scale = div(o.affine ? f64(bn->weight_) : ones({F}, Dtype::f64), sqrt(add(f64(bn->running_var_), o.eps)));
      Shape per_filter(layer.weight_.dim(), 1);
      per_filter[0] = F;
      layer.weight_.copy_(mul(f64(layer.weight_), reshape(scale, per_filter)));
      Tensor b =
          mul(sub(layer.bias_.defined() ? f64(layer.bias_) : zeros({F}, Dtype::f64), f64(bn->running_mean_)), scale);
      if (o.affine) b = add(b, f64(bn->bias_));
      if (layer.bias_.defined()) {
        layer.bias_.copy_(b);
      } else {
        layer.bias_ = layer.register_parameter("bias", b.to(layer.weight_.dtype()));
        layer.options_.bias = true;
      }
      bn->running_mean_.fill_(0.0);
      bn->running_var_.fill_(1.0 - o.eps);
      if (o.affine) bn->weight_.fill_(1.0), bn->bias_.fill_(0.0);
      bn->requires_grad_(false);
      bn->folded_ = true;
      layer.fused_.batch_norm = true;
    }
    if (relu) relu->fused_ = layer.fused_.relu = true;
    layer.requires_grad_(false);
  }

  static void apply(const Group& g) {
    if (auto* c = dynamic_cast<Conv2d*>(g.layer))
      fuse(*c, g.bn, g.relu);
    else
      fuse(*static_cast<Linear*>(g.layer), g.bn, g.relu);
  }

  // Every Linear's weight written out transposed, for the inference GEMM (after the folding, which
  // changes the weights).
  static void pack_linears(Module& model) {
    NoGradGuard no_grad;
    for (auto& [n, m] : model.named_modules())
      if (auto* l = dynamic_cast<Linear*>(m.get())) {
        l->packed_weight_ = transpose(l->weight_.detach(), 0, 1);
        l->packed_version_ = l->weight_.version();
      }
  }

  static void check_eval(const Module& model, const char* op) {
    for (auto& [n, m] : model.named_modules())
      check(!m->is_training(),
            "{}: {} is in training mode ('{}' is training); call eval() first: fusion folds batch norm's running "
            "statistics and is for inference only",
            op, model.name(), n.empty() ? model.name() : n);
  }
};

}  // namespace detail

using detail::Fusion;

FusionGroups fuse_modules(Module& model, const FusionGroups& groups) {
  Fusion::check_eval(model, "fuse_modules");
  const Fusion::Index index(model);
  std::vector<Fusion::Group> resolved;
  std::set<std::string> taken;
  for (const auto& names : groups) {
    std::string why;
    resolved.push_back(Fusion::resolve(names, index, why));
    check(why.empty(), "fuse_modules: {}; nothing was fused", why);
    for (const std::string& n : names)
      check(taken.insert(n).second, "fuse_modules: '{}' is in two groups; nothing was fused", n);
  }
  for (const auto& g : resolved) Fusion::apply(g);
  Fusion::pack_linears(model);
  return groups;
}

FusionGroups fuse_for_inference(Module& model) {
  Fusion::check_eval(model, "fuse_for_inference");
  const Fusion::Index index(model);
  FusionGroups done;
  for (auto& [prefix, m] : model.named_modules()) {
    auto* seq = dynamic_cast<Sequential*>(m.get());
    if (!seq) continue;
    const auto& kids = seq->named_children();
    auto full = [&](size_t i) { return prefix.empty() ? kids[i].first : prefix + "." + kids[i].first; };
    for (size_t i = 0; i < kids.size(); ++i) {
      // The longest run from i that resolves: layer, batch norm, ReLU; then layer and either one.
      for (size_t len = std::min<size_t>(3, kids.size() - i); len >= 2; --len) {
        std::vector<std::string> names;
        for (size_t k = i; k < i + len; ++k) names.push_back(full(k));
        std::string why;
        Fusion::Group g = Fusion::resolve(names, index, why);
        if (!why.empty()) continue;
        Fusion::apply(g);
        done.push_back(names);
        i += len - 1;
        break;
      }
    }
  }
  Fusion::pack_linears(model);
  return done;
}

}  // namespace xg::nn

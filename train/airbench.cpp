// airbench94's recipe: its optimizer groups, schedule, lookahead and whitening, wired into TrainerOptions.
#include "train/airbench.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "data/pixels.hpp"
#include "nn/norm.hpp"

namespace xg::train {

namespace {
// airbench's "kilostep scale": with Nesterov momentum m and constant gradients a step is 1 + 1 / (1 - m)
// gradients long, and the recipe's lr and decay are per 1024 examples of that.
double kilostep_scale(const AirbenchRecipe& r) { return 1024 * (1 + 1 / (1 - r.momentum)); }

// Every batch norm's shift (bias) in the model, by identity: both recipes give them their own lr.
std::set<const TensorImpl*> norm_shifts(nn::Module& model) {
  std::set<const TensorImpl*> shifts;
  for (const auto& [name, m] : model.named_modules())
    if (const auto* bn = dynamic_cast<const nn::BatchNormBase*>(m.get()); bn != nullptr && bn->bias().defined())
      shifts.insert(&bn->bias().impl());
  return shifts;
}
}  // namespace

std::unique_ptr<optim::SGD> airbench_optimizer(nn::Module& model, const AirbenchRecipe& r) {
  check(r.momentum >= 0 && r.momentum < 1, "airbench: momentum must be in [0, 1), got {}", r.momentum);
  check(r.lr > 0 && r.bias_scaler > 0 && r.weight_decay >= 0,
        "airbench: lr ({}) and bias_scaler ({}) must be positive and weight_decay ({}) >= 0", r.lr, r.bias_scaler,
        r.weight_decay);
  const std::set<const TensorImpl*> shifts = norm_shifts(model);
  std::vector<Tensor> rest, norm_biases;
  for (const Tensor& p : model.parameters())
    if (p.requires_grad()) (shifts.contains(&p.impl()) ? norm_biases : rest).push_back(p);
  const double lr = r.lr / kilostep_scale(r), wd = r.weight_decay * static_cast<double>(r.batch_size) / kilostep_scale(r);
  const double lr_biases = lr * r.bias_scaler;
  std::vector<optim::ParamGroup<optim::SGDOptions>> groups;
  if (!rest.empty())
    groups.push_back({rest, {.lr = lr, .momentum = r.momentum, .weight_decay = wd / lr, .nesterov = r.momentum > 0}});
  if (!norm_biases.empty())
    groups.push_back({norm_biases, {.lr = lr_biases, .momentum = r.momentum, .weight_decay = wd / lr_biases,
                                    .nesterov = r.momentum > 0}});
  check(!groups.empty(), "airbench: the model has no parameter that requires grad");
  return std::make_unique<optim::SGD>(std::move(groups));
}

namespace {
// What both recipes share: whole batches for ceil(epochs x steps per epoch) steps, the summed
// label-smoothed loss, reflect translation and alternating flip, the test-time views, the run ending
// on its last weights, and the whitening bias learning in its first epochs only.
TrainerOptions shared_options(TrainerOptions o, int64_t batch_size, double epochs, double label_smoothing,
                              int64_t translate, int64_t whiten_bias_epochs, int64_t train_examples) {
  check(epochs > 0 && std::isfinite(epochs), "airbench: epochs must be positive, got {}", epochs);
  check(batch_size > 0, "airbench: batch_size must be positive, got {}", batch_size);
  o.batch_size = batch_size;
  o.epochs = static_cast<int64_t>(std::ceil(epochs));
  const int64_t per_epoch = steps_per_epoch(train_examples, o);
  check(per_epoch > 0, "airbench: {} training examples make no full batch of {}", train_examples, batch_size);
  const auto steps = static_cast<int64_t>(std::ceil(epochs * static_cast<double>(per_epoch)));
  o.max_iterations = o.max_iterations > 0 ? std::min(o.max_iterations, steps) : steps;
  o.schedule = "lambda";
  o.loss_reduction = "sum";
  o.label_smoothing = label_smoothing;
  o.augment_shift = translate;
  o.reflect_shift = true;
  o.alternating_flip = true;
  o.flip_tta = true;
  o.tta_shifts = {{-1, -1}, {1, 1}};
  o.tta_shift_weight = 0.25;
  o.keep_best = false;  // the run ends on its last weights, whatever the validation said on the way
  o.on_epoch_start = [n = whiten_bias_epochs](int64_t epoch, nn::Module& model) {
    auto* net = dynamic_cast<models::Airbench*>(&model);
    check(net != nullptr, "airbench: the model must be a models::Airbench");
    Tensor bias = net->whiten->bias();  // a handle to the parameter
    bias.requires_grad_(epoch < n);
  };
  return o;
}
}  // namespace

TrainerOptions airbench_options(TrainerOptions o, const AirbenchRecipe& r, int64_t train_examples) {
  check(r.warmup >= 0 && r.warmup <= 1, "airbench: warmup must be in [0, 1], got {}", r.warmup);
  check(r.lookahead_k >= 1 && r.lookahead_decay >= 0 && r.lookahead_decay <= 1,
        "airbench: lookahead_k ({}) must be >= 1 and lookahead_decay ({}) in [0, 1]", r.lookahead_k, r.lookahead_decay);
  o = shared_options(o, r.batch_size, r.epochs, r.label_smoothing, r.translate, r.whiten_bias_epochs, train_examples);
  o.optimizer = "sgd";  // recorded; the groups come from make_optimizer
  o.lr = r.lr / kilostep_scale(r);
  o.momentum = r.momentum;
  o.weight_decay = r.weight_decay * static_cast<double>(r.batch_size) / kilostep_scale(r) / o.lr;
  o.nesterov = true;
  o.make_optimizer = [r](nn::Module& model) -> std::unique_ptr<optim::Optimizer> { return airbench_optimizer(model, r); };
  o.lr_lambda = [r](int64_t step, int64_t total) {
    const auto warm = static_cast<int64_t>(std::floor(r.warmup * static_cast<double>(total)));
    std::vector<std::pair<double, double>> points;
    if (warm > 0) points.emplace_back(0.0, r.lr_start);
    points.emplace_back(static_cast<double>(warm), 1.0);
    if (total > warm) points.emplace_back(static_cast<double>(total), r.lr_end);
    return optim::piecewise_linear(std::move(points))(static_cast<double>(step));
  };
  o.lookahead_k = r.lookahead_k;
  o.lookahead_alpha = [d = r.lookahead_decay](int64_t step, int64_t total) {
    return 1 - d * std::pow(static_cast<double>(step) / static_cast<double>(total), 3);
  };
  return o;
}

std::unique_ptr<optim::Muon> airbench_muon_optimizer(models::Airbench& model, const AirbenchMuonRecipe& r) {
  check(r.momentum > 0 && r.momentum < 1 && r.filter_momentum > 0 && r.filter_momentum < 1,
        "airbench muon: momentum ({}) and filter_momentum ({}) must be in (0, 1)", r.momentum, r.filter_momentum);
  check(r.filter_lr > 0 && r.bias_lr > 0 && r.head_lr > 0 && r.weight_decay >= 0,
        "airbench muon: filter_lr ({}), bias_lr ({}) and head_lr ({}) must be positive and weight_decay ({}) >= 0",
        r.filter_lr, r.bias_lr, r.head_lr, r.weight_decay);
  const std::set<const TensorImpl*> shifts = norm_shifts(model);
  const Tensor whiten_bias = model.whiten->bias();
  std::vector<Tensor> whiten, norm_biases, rest, filters;
  for (const Tensor& p : model.parameters()) {
    if (!p.requires_grad() && &p.impl() != &whiten_bias.impl()) continue;  // the bias may be frozen for now
    if (&p.impl() == &whiten_bias.impl()) whiten.push_back(p);
    else if (shifts.contains(&p.impl())) norm_biases.push_back(p);
    else if (p.dim() == 4) filters.push_back(p);
    else rest.push_back(p);
  }
  const double wd = r.weight_decay * static_cast<double>(r.batch_size);
  auto sgd = [&](double lr) {
    return optim::MuonOptions{.lr = lr, .weight_decay = wd / lr, .momentum = r.momentum, .use_muon = false};
  };
  check(!filters.empty() && !whiten.empty() && !norm_biases.empty() && !rest.empty(),
        "airbench muon: expected conv filters, the whitening bias, batch-norm shifts and a head to train, got {}, "
        "{}, {} and {} tensors",
        filters.size(), whiten.size(), norm_biases.size(), rest.size());
  return std::make_unique<optim::Muon>(std::vector<optim::ParamGroup<optim::MuonOptions>>{
      {filters,
       {.lr = r.filter_lr, .weight_decay = 0, .momentum = r.filter_momentum, .ns_steps = r.ns_steps,
        .adjust_lr_fn = "none", .normalize_weights = true}},
      {whiten, sgd(r.bias_lr)},
      {norm_biases, sgd(r.bias_lr)},
      {rest, sgd(r.head_lr)}});
}

TrainerOptions airbench_muon_options(TrainerOptions o, const AirbenchMuonRecipe& r, int64_t train_examples) {
  check(r.whiten_bias_epochs >= 0, "airbench muon: whiten_bias_epochs must be >= 0, got {}", r.whiten_bias_epochs);
  o = shared_options(o, r.batch_size, r.epochs, r.label_smoothing, r.translate, r.whiten_bias_epochs, train_examples);
  o.optimizer = "muon";  // recorded; the groups come from make_optimizer
  o.lr = r.filter_lr;
  o.momentum = r.filter_momentum;
  o.weight_decay = 0;
  o.nesterov = true;
  o.lookahead_k = 0;
  o.make_optimizer = [r](nn::Module& model) -> std::unique_ptr<optim::Optimizer> {
    auto* net = dynamic_cast<models::Airbench*>(&model);
    check(net != nullptr, "airbench: the model must be a models::Airbench");
    return airbench_muon_optimizer(*net, r);
  };
  // Every lr falls linearly from its base to 0 over the run; the whitening bias's (group 1) over its
  // own steps, after which the bias is frozen anyway.
  auto linear = [](int64_t step, int64_t total) {
    return std::max(0.0, 1 - static_cast<double>(step) / static_cast<double>(total));
  };
  const int64_t whiten_steps = r.whiten_bias_epochs * steps_per_epoch(train_examples, o);
  o.lr_lambdas = {linear,
                  [linear, whiten_steps](int64_t step, int64_t) { return whiten_steps > 0 ? linear(step, whiten_steps) : 0.0; },
                  linear, linear};
  return o;
}

models::AirbenchOptions airbench_muon_model_options(std::vector<int64_t> widths) {
  check(widths.size() == 3 && widths[2] > 0, "airbench muon: widths must be three positive channel counts, got {}",
        fmt::join(widths, ","));
  const double last = static_cast<double>(widths[2]);
  return {.widths = std::move(widths), .scale = 1 / last, .head_std = 1};
}

void airbench_whitening(models::Airbench& model, const data::ImageDataset& train, int64_t images) {
  const Shape chw = train.image_shape();
  check(chw.size() == 3 && chw[0] == 3, "airbench: the training images must be RGB [3, H, W], got {}", chw);
  check(images > 0 && images <= train.size(), "airbench: {} whitening images asked for, the training set has {}",
        images, train.size());
  const data::PixelTable table(data::compute_mean_std(train), 3);  // the loader's normalised values
  const int64_t plane = chw[1] * chw[2];
  Tensor x = Tensor::empty({images, 3, chw[1], chw[2]});
  float* out = x.data<float>();
  for (int64_t i = 0; i < images; ++i) {
    const uint8_t* px = train.image(i);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < plane; ++p, ++out) *out = table.channel(c)[px[c * plane + p]];
  }
  model.set_whitening(x);
}

}  // namespace xg::train

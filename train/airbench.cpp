// airbench94's recipe: its optimizer groups, schedule, lookahead and whitening, wired into TrainerOptions.
#include "train/airbench.hpp"

#include <cmath>
#include <set>

#include "data/pixels.hpp"
#include "nn/norm.hpp"

namespace xg::train {

namespace {
// airbench's "kilostep scale": with Nesterov momentum m and constant gradients a step is 1 + 1 / (1 - m)
// gradients long, and the recipe's lr and decay are per 1024 examples of that.
double kilostep_scale(const AirbenchRecipe& r) { return 1024 * (1 + 1 / (1 - r.momentum)); }
}  // namespace

std::unique_ptr<optim::SGD> airbench_optimizer(nn::Module& model, const AirbenchRecipe& r) {
  check(r.momentum >= 0 && r.momentum < 1, "airbench: momentum must be in [0, 1), got {}", r.momentum);
  check(r.lr > 0 && r.bias_scaler > 0 && r.weight_decay >= 0,
        "airbench: lr ({}) and bias_scaler ({}) must be positive and weight_decay ({}) >= 0", r.lr, r.bias_scaler,
        r.weight_decay);
  std::set<const TensorImpl*> shifts;
  for (const auto& [name, m] : model.named_modules())
    if (const auto* bn = dynamic_cast<const nn::BatchNormBase*>(m.get()); bn != nullptr && bn->bias().defined())
      shifts.insert(&bn->bias().impl());
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

TrainerOptions airbench_options(TrainerOptions o, const AirbenchRecipe& r, int64_t train_examples) {
  check(r.epochs > 0 && std::isfinite(r.epochs), "airbench: epochs must be positive, got {}", r.epochs);
  check(r.batch_size > 0, "airbench: batch_size must be positive, got {}", r.batch_size);
  check(r.warmup >= 0 && r.warmup <= 1, "airbench: warmup must be in [0, 1], got {}", r.warmup);
  check(r.lookahead_k >= 1 && r.lookahead_decay >= 0 && r.lookahead_decay <= 1,
        "airbench: lookahead_k ({}) must be >= 1 and lookahead_decay ({}) in [0, 1]", r.lookahead_k, r.lookahead_decay);
  o.batch_size = r.batch_size;
  o.epochs = static_cast<int64_t>(std::ceil(r.epochs));
  const int64_t per_epoch = steps_per_epoch(train_examples, o);
  check(per_epoch > 0, "airbench: {} training examples make no full batch of {}", train_examples, r.batch_size);
  const auto steps = static_cast<int64_t>(std::ceil(r.epochs * static_cast<double>(per_epoch)));
  o.max_iterations = o.max_iterations > 0 ? std::min(o.max_iterations, steps) : steps;

  o.optimizer = "sgd";  // recorded; the groups come from make_optimizer
  o.lr = r.lr / kilostep_scale(r);
  o.momentum = r.momentum;
  o.weight_decay = r.weight_decay * static_cast<double>(r.batch_size) / kilostep_scale(r) / o.lr;
  o.nesterov = true;
  o.make_optimizer = [r](nn::Module& model) -> std::unique_ptr<optim::Optimizer> { return airbench_optimizer(model, r); };
  o.schedule = "lambda";
  o.lr_lambda = [r](int64_t step, int64_t total) {
    const auto warm = static_cast<int64_t>(std::floor(r.warmup * static_cast<double>(total)));
    std::vector<std::pair<double, double>> points;
    if (warm > 0) points.emplace_back(0.0, r.lr_start);
    points.emplace_back(static_cast<double>(warm), 1.0);
    if (total > warm) points.emplace_back(static_cast<double>(total), r.lr_end);
    return optim::piecewise_linear(std::move(points))(static_cast<double>(step));
  };
  o.loss_reduction = "sum";
  o.label_smoothing = r.label_smoothing;
  o.augment_shift = r.translate;
  o.reflect_shift = true;
  o.alternating_flip = true;
  o.flip_tta = true;
  o.tta_shifts = {{-1, -1}, {1, 1}};
  o.tta_shift_weight = 0.25;
  o.keep_best = false;  // the run ends on the average, whatever the validation said on the way
  o.lookahead_k = r.lookahead_k;
  o.lookahead_alpha = [d = r.lookahead_decay](int64_t step, int64_t total) {
    return 1 - d * std::pow(static_cast<double>(step) / static_cast<double>(total), 3);
  };
  o.on_epoch_start = [n = r.whiten_bias_epochs](int64_t epoch, nn::Module& model) {
    auto* net = dynamic_cast<models::Airbench*>(&model);
    check(net != nullptr, "airbench: the model must be a models::Airbench");
    Tensor bias = net->whiten->bias();  // a handle to the parameter
    bias.requires_grad_(epoch < n);
  };
  return o;
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

// The training loop, evaluation, checkpoints with exact resume, and progress output.
#include "train/trainer.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "autograd/grad_mode.hpp"
#include "autograd/random.hpp"
#include "train/files.hpp"
#include "train/models.hpp"
#include "train/tta.hpp"

namespace xg::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string clock_text(double s) {
  const int64_t t = static_cast<int64_t>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02d}:{:02d}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02d}", t / 60, t % 60);
}

std::string generator_state() {
  std::ostringstream s;
  s << generator();
  return s.str();
}

std::mt19937_64 parse_generator_state(const std::string& text) {
  std::mt19937_64 gen;
  std::istringstream s(text);
  s >> gen;
  check(!s.fail(), "Trainer: the checkpoint's random generator state is corrupt");
  return gen;
}

const std::string& meta(const nn::Metadata& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  check(it != m.end(), "Trainer: checkpoint {} lacks '{}' in its metadata", path, key);
  return it->second;
}

// A number in the metadata, whole and nothing else ("12", "0.8421"), or an error naming the key.
template <class T>
T meta_number(const nn::Metadata& m, const std::string& key, const std::string& path) {
  const std::string& text = meta(m, key, path);
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  check(ec == std::errc() && end == text.data() + text.size() && !text.empty(),
        "Trainer: checkpoint {} has '{}' = '{}' in its metadata, which is not a number", path, key, text);
  return value;
}

// Everything every rank of a data-parallel job must agree on, one item a line. Not the run directory:
// only rank 0 writes there, and the others read only the checkpoint to resume from (their own copy,
// without a shared file system).
std::string options_text(const TrainerOptions& o, const data::Dataset& train, const data::Dataset* val,
                         const data::Dataset* test) {
  return fmt::format("model={}\nepochs={}\nbatch_size={}\noptimizer={}\nlr={}\nmomentum={}\nweight_decay={}\nschedule={}\n"
                     "lr_decay={}\nstep_size={}\naugment={}\nlabel_smoothing={}\nflip_tta={}\ntrain_acc_samples={}\n"
                     "max_steps_per_epoch={}\nseed={}\nmax_iterations={}\nnesterov={}\nresume={}\n"
                     "train_images={}\nval_images={}\ntest_images={}\n",
                     o.model, o.epochs, o.batch_size, o.optimizer, o.lr, o.momentum, o.weight_decay, o.schedule,
                     o.lr_decay, o.step_size, o.augment, o.label_smoothing, o.flip_tta, o.train_acc_samples,
                     o.max_steps_per_epoch, o.seed, o.max_iterations, o.nesterov, o.resume, train.size(),
                     val ? val->size() : 0, test ? test->size() : 0);
}

// What a checkpoint records of the run's configuration, and what --resume insists matches.
nn::Metadata run_identity(const TrainerOptions& o) {
  return {{"model", o.model},         {"batch_size", std::to_string(o.batch_size)}, {"seed", std::to_string(o.seed)},
          {"optimizer", o.optimizer}, {"schedule", o.schedule}, {"label_smoothing", fmt::format("{}", o.label_smoothing)}};
}

}  // namespace

double accuracy(nn::Module& model, std::shared_ptr<const data::Dataset> examples,
                const data::transforms::AnyTransform& transform, int64_t batch_size, bool flip_tta,
                const std::function<void(data::Batch&)>& batch_transform) {
  // the mirror average (its argmax is that of the summed logits: halving is exact)
  return accuracy(model, std::move(examples), transform, batch_size, TTAOptions{.flip = flip_tta}, batch_transform);
}

double accuracy(nn::Module& model, std::shared_ptr<const data::Dataset> examples,
                const data::transforms::AnyTransform& transform, int64_t batch_size, const TTAOptions& tta,
                const std::function<void(data::Batch&)>& batch_transform) {
  if (examples == nullptr || examples->size() == 0) return 0.0;
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  data::DataLoader loader(examples, {.batch_size = batch_size, .shuffle = false, .transform = transform,
                                     .batch_transform = batch_transform});
  int64_t correct = 0;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const bool views = tta.flip || !tta.shifts.empty();
    Tensor logits = views && batch->images.dim() == 4 ? tta_logits(model, batch->images, tta)
                                                      : model.forward(batch->images);
    Tensor pred = argmax(logits, 1);
    correct += sum(eq(pred, batch->labels)).item<int64_t>();
  }
  model.train(was_training);
  return static_cast<double>(correct) / static_cast<double>(examples->size());
}

double accuracy(nn::Module& model, const data::Subset& images, const data::Normalization& norm, int64_t batch_size,
                bool flip_tta) {
  data::transforms::AnyTransform t;
  if (!norm.mean.empty()) t = data::transforms::Normalize(norm);
  return accuracy(model, std::make_shared<const data::Subset>(images), t, batch_size, flip_tta);
}

int64_t steps_per_epoch(int64_t examples, const TrainerOptions& o) {
  const int64_t full = examples / o.batch_size;  // drop_last
  return o.max_steps_per_epoch > 0 ? std::min(full, o.max_steps_per_epoch) : full;
}

namespace {
std::shared_ptr<const data::Dataset> shared(data::Subset s) {
  return s.empty() ? nullptr : std::make_shared<const data::Subset>(std::move(s));
}
}  // namespace

Trainer::Trainer(std::shared_ptr<nn::Module> model, data::Subset train, data::Subset val, data::Subset test,
                 TrainerOptions options)
    : Trainer(std::move(model), std::make_shared<const data::Subset>(std::move(train)), shared(std::move(val)),
              shared(std::move(test)), std::move(options)) {}

Trainer::Trainer(std::shared_ptr<nn::Module> model, std::shared_ptr<const data::Dataset> train,
                 std::shared_ptr<const data::Dataset> val, std::shared_ptr<const data::Dataset> test,
                 TrainerOptions options)
    : model_(std::move(model)), train_(std::move(train)), val_(std::move(val)), test_(std::move(test)),
      opts_(std::move(options)) {
  check(model_ != nullptr, "Trainer: no model");
  check(train_ != nullptr && train_->size() > 0, "Trainer: the training set is empty");
  check(opts_.epochs > 0 && opts_.batch_size > 0, "Trainer: epochs ({}) and batch_size ({}) must be positive",
        opts_.epochs, opts_.batch_size);
  check(opts_.lr > 0 && std::isfinite(opts_.lr), "Trainer: lr must be positive, got {}", opts_.lr);
  check(opts_.label_smoothing >= 0 && opts_.label_smoothing <= 1, "Trainer: label_smoothing must be in [0, 1], got {}",
        opts_.label_smoothing);
  check(opts_.max_iterations >= 0, "Trainer: max_iterations must be >= 0, got {}", opts_.max_iterations);
  std::vector<int64_t> first(static_cast<size_t>(std::min(opts_.train_acc_samples, train_->size())));
  std::iota(first.begin(), first.end(), int64_t{0});
  train_eval_ = std::make_shared<const data::Subset>(train_, std::move(first));
  check(train_->size() >= opts_.batch_size, "Trainer: {} training images make no full batch of {}", train_->size(),
        opts_.batch_size);
  steps_per_epoch_ = steps_per_epoch(train_->size(), opts_);
  total_steps_ = opts_.epochs * steps_per_epoch_;
  if (opts_.max_iterations > 0) total_steps_ = std::min(total_steps_, opts_.max_iterations);
  check(opts_.loss_reduction == "mean" || opts_.loss_reduction == "sum",
        "Trainer: loss_reduction must be \"mean\" or \"sum\", got \"{}\"", opts_.loss_reduction);
  check(opts_.augment_shift >= 0, "Trainer: augment_shift must be >= 0, got {}", opts_.augment_shift);
  check(opts_.lookahead_k >= 0 && (opts_.lookahead_k == 0 || opts_.lookahead_alpha),
        "Trainer: lookahead_k ({}) needs to be >= 0, and a lookahead_alpha when positive", opts_.lookahead_k);
  world_ = distributed::get_world_size();
  rank_ = distributed::get_rank();
  check(opts_.batch_size % world_ == 0, "Trainer: batch_size {} is the global batch and must divide over the {} ranks",
        opts_.batch_size, world_);
  if (world_ > 1) {  // collectives: every rank gets here, or the job has already failed
    distributed::detail::check_same_on_all_ranks(options_text(opts_, *train_, val_.get(), test_.get()), "Trainer",
                                                 "the options");
    ddp_ = std::make_shared<nn::DistributedDataParallel>(model_);
  }
  make_optimizer();
}

void Trainer::apply_image_recipe() {
  namespace T = data::transforms;
  if (const data::ImageDataset* img = train_->as_images();
      opts_.image_recipe && img != nullptr && !opts_.train_transform && !opts_.eval_transform) {
    const data::Normalization norm = data::compute_mean_std(*img);
    norm_ = norm;
    const Shape chw = img->image_shape();
    opts_.eval_transform = T::Normalize(norm);
    const int64_t pad = opts_.augment_shift;
    const T::AnyTransform shift = opts_.reflect_shift ? T::AnyTransform(T::RandomTranslate(pad))
                                                      : T::AnyTransform(T::RandomCrop(chw[1], chw[2], {.padding = pad}));
    const T::AnyTransform flip = opts_.alternating_flip ? T::AnyTransform(T::AlternatingFlip())
                                                        : T::AnyTransform(T::RandomHorizontalFlip());
    opts_.train_transform = opts_.augment ? T::AnyTransform(T::Compose({shift, flip, T::Normalize(norm)}))
                                          : T::AnyTransform(T::Normalize(norm));
  }
  opts_.image_recipe = false;  // once
}

double Trainer::evaluate(const std::shared_ptr<const data::Dataset>& d, bool tta) const {
  const TTAOptions views{.flip = tta && opts_.flip_tta,
                         .shifts = tta ? opts_.tta_shifts : std::vector<std::pair<int64_t, int64_t>>{},
                         .shift_weight = opts_.tta_shift_weight};
  if (!ddp_ || d == nullptr || d->size() == 0)
    return accuracy(*model_, d, opts_.eval_transform, 500, views, opts_.batch_transform);
  // Every rank classifies every world_-th example with rank 0's batch-norm statistics (the model's
  // parameters are the same everywhere); the counts are summed.
  {
    NoGradGuard no_grad;
    for (const Tensor& b : model_->buffers()) distributed::broadcast(b, 0);
  }
  std::vector<int64_t> mine;
  for (int64_t i = rank_; i < d->size(); i += world_) mine.push_back(i);
  auto shard = std::make_shared<const data::Subset>(d, std::move(mine));
  const double acc = accuracy(*model_, shard, opts_.eval_transform, 500, views, opts_.batch_transform);
  Tensor correct = from_vector<double>({std::round(acc * static_cast<double>(shard->size()))});
  distributed::all_reduce(correct);
  return correct.item<double>() / static_cast<double>(d->size());
}

Tensor Trainer::objective(const data::Batch& batch) const {
  Tensor out = ddp_ ? ddp_->forward(batch.images) : model_->forward(batch.images);
  Tensor loss = opts_.loss ? opts_.loss(out, batch.labels)
                           : cross_entropy(out, batch.labels,
                                           {.reduction = opts_.loss_reduction, .label_smoothing = opts_.label_smoothing});
  // Data-parallel gradients are averaged over the ranks: a loss summed over each rank's share of the
  // batch is scaled by the rank count, so that the average is the global batch's sum.
  if (world_ > 1 && !opts_.loss && opts_.loss_reduction == "sum") loss = mul(loss, static_cast<double>(world_));
  return opts_.regularizer ? add(loss, opts_.regularizer(*model_)) : loss;
}

void Trainer::make_optimizer() {
  std::vector<Tensor> params = model_->parameters();
  const std::string& o = opts_.optimizer;
  if (opts_.make_optimizer) {
    optimizer_ = opts_.make_optimizer(*model_);
    check(optimizer_ != nullptr, "Trainer: make_optimizer returned no optimizer");
  } else if (o == "sgd")
    optimizer_ = std::make_unique<optim::SGD>(params, optim::SGDOptions{.lr = opts_.lr, .momentum = opts_.momentum,
                                                                         .weight_decay = opts_.weight_decay,
                                                                         .nesterov = opts_.nesterov && opts_.momentum > 0});
  else if (o == "adam")
    optimizer_ = std::make_unique<optim::Adam>(params, optim::AdamOptions{.lr = opts_.lr, .weight_decay = opts_.weight_decay});
  else if (o == "adamw")
    optimizer_ = std::make_unique<optim::AdamW>(params, optim::AdamWOptions{.lr = opts_.lr, .weight_decay = opts_.weight_decay});
  else if (o == "rmsprop")
    optimizer_ = std::make_unique<optim::RMSprop>(
        params, optim::RMSpropOptions{.lr = opts_.lr, .weight_decay = opts_.weight_decay, .momentum = opts_.momentum});
  else if (o == "adagrad")
    optimizer_ = std::make_unique<optim::Adagrad>(params, optim::AdagradOptions{.lr = opts_.lr, .weight_decay = opts_.weight_decay});
  else
    fail("Trainer: unknown optimizer '{}'; choose sgd, adam, adamw, rmsprop or adagrad", o);

  const std::string& s = opts_.schedule;
  per_step_schedule_ = s == "onecycle" || s == "lambda";
  if (s == "lambda") {
    check(static_cast<bool>(opts_.lr_lambda) || !opts_.lr_lambdas.empty(),
          "Trainer: schedule \"lambda\" needs an lr_lambda or lr_lambdas");
    std::vector<std::function<double(int64_t)>> per_step;
    for (const auto& f : opts_.lr_lambdas.empty() ? std::vector{opts_.lr_lambda} : opts_.lr_lambdas) {
      check(static_cast<bool>(f), "Trainer: lr_lambdas has an empty function");
      per_step.push_back([f, total = total_steps_](int64_t step) { return f(step, total); });
    }
    scheduler_ = std::make_unique<optim::LambdaLR>(*optimizer_, std::move(per_step));
  } else if (s == "onecycle")
    scheduler_ = std::make_unique<optim::OneCycleLR>(
        *optimizer_, optim::OneCycleLROptions{.max_lr = opts_.lr, .epochs = opts_.epochs,
                                              .steps_per_epoch = steps_per_epoch_,
                                              .cycle_momentum = optimizer_->has_momentum() && opts_.momentum > 0});
  else if (s == "cosine")
    scheduler_ = std::make_unique<optim::CosineAnnealingLR>(*optimizer_, opts_.epochs);
  else if (s == "step")
    scheduler_ = std::make_unique<optim::StepLR>(*optimizer_, opts_.step_size, opts_.lr_decay);
  else if (s == "decay")
    scheduler_ = std::make_unique<optim::ExponentialLR>(*optimizer_, opts_.lr_decay);
  else
    check(s == "none", "Trainer: unknown schedule '{}'; choose none, step, cosine, onecycle, decay or lambda", s);

  if (opts_.lookahead_k > 0) {
    std::vector<Tensor> buffers;
    for (const Tensor& b : model_->buffers())
      if (is_floating(b.dtype())) buffers.push_back(b);
    lookahead_ = std::make_unique<optim::Lookahead>(*optimizer_, optim::LookaheadOptions{.k = opts_.lookahead_k}, buffers);
  }
}

TrainResult Trainer::fit() {
  const bool files = !opts_.run_dir.empty(), writer = files && rank_ == 0, speak = rank_ == 0;
  // Rank 0 writes; the others wait for its checkpoint so that no rank is an epoch ahead of it.
  const auto saved = [&] {
    if (ddp_ && files) distributed::barrier();
  };
  if (writer) create_directories(opts_.run_dir, "Trainer");
  const std::string ckpt = files ? (fs::path(opts_.run_dir) / "checkpoint.safetensors").string() : "(none)";
  int64_t first_epoch = 0;
  if (opts_.resume) {
    std::error_code ec;
    check(files && fs::exists(ckpt, ec), "Trainer: --resume asked for, but {} does not exist", ckpt);
    first_epoch = load_checkpoint(ckpt);
    if (speak) fmt::print("resumed from {} at epoch {}\n", ckpt, first_epoch + 1);
  } else {
    manual_seed(opts_.seed);
  }
  apply_image_recipe();  // after the run directory: its errors come first
  const bool bar = speak && (opts_.progress == -1 ? isatty(fileno(stdout)) != 0 : opts_.progress == 1);
  const bool step_lines = speak && !bar && opts_.progress <= 0, epoch_lines = speak && opts_.progress <= 2;
  data::DataLoader loader(train_, {.batch_size = opts_.batch_size, .shuffle = true, .drop_last = true,
                                   .transform = opts_.train_transform, .seed = opts_.seed,
                                   .batch_transform = opts_.batch_transform, .shard = {rank_, world_}});
  const auto out_of_steps = [&] {
    return opts_.max_iterations > 0 && static_cast<int64_t>(result_.losses.size()) >= opts_.max_iterations;
  };

  for (int64_t epoch = first_epoch; epoch < opts_.epochs && !result_.diverged && !out_of_steps(); ++epoch) {
    if (opts_.on_epoch_start) opts_.on_epoch_start(epoch, *model_);
    model_->train();
    loader.start_epoch(epoch);
    const auto start = Clock::now();
    double loss_sum = 0;
    int64_t step = 0;
    const double lr = optimizer_->lr();
    while (step < steps_per_epoch_ && !out_of_steps()) {
      std::optional<data::Batch> batch = loader.next();
      if (!batch) break;
      Tensor loss = objective(*batch);
      double value = loss.item<double>();
      if (ddp_) {  // the global batch's loss, the same on every rank (so a NaN stops every rank at once)
        Tensor mean = from_vector<double>({value});
        distributed::all_reduce(mean, distributed::ReduceOp::AVG);
        value = mean.item<double>();
      }
      if (!std::isfinite(value) && opts_.nonfinite_is_error)
        fail("Trainer: the loss is {} at epoch {}, step {} (iteration {}); stopping. The last good checkpoint "
             "(end of epoch {}) is {}",
             value, epoch + 1, step + 1, result_.losses.size() + 1, epoch, ckpt);
      result_.losses.push_back(value);
      loss_sum += value;
      ++step;
      if (!std::isfinite(value)) {  // diverged: the result says so, the caller moves on
        result_.diverged = true;
        break;
      }
      optimizer_->zero_grad();
      loss.backward();
      if (lookahead_) {
        lookahead_->set_alpha(opts_.lookahead_alpha(static_cast<int64_t>(result_.losses.size()), total_steps_));
        lookahead_->step();
        if (static_cast<int64_t>(result_.losses.size()) == total_steps_) lookahead_->finalize();
      } else {
        optimizer_->step();
      }
      if (scheduler_ && per_step_schedule_ && result_.losses.size() < static_cast<size_t>(opts_.epochs * steps_per_epoch_))
        scheduler_->step();
      const double elapsed = seconds_since(start), ips = step * opts_.batch_size / elapsed;
      const double eta = elapsed / step * (steps_per_epoch_ - step);
      if (bar) {
        const int width = 30, filled = static_cast<int>(width * step / steps_per_epoch_);
        fmt::print("\repoch {}/{} [{}{}] {}/{}  {:.0f} img/s  loss {:.4f}  ETA {}   ", epoch + 1, opts_.epochs,
                   std::string(filled, '='), std::string(width - filled, ' '), step, steps_per_epoch_, ips, value,
                   clock_text(eta));
        std::fflush(stdout);
      } else if (step_lines && (step % std::max<int64_t>(1, steps_per_epoch_ / 5) == 0 || step == steps_per_epoch_)) {
        fmt::print("epoch {}/{} step {}/{}  {:.0f} img/s  loss {:.4f}  ETA {}\n", epoch + 1, opts_.epochs, step,
                   steps_per_epoch_, ips, value, clock_text(eta));
        std::fflush(stdout);
      }
    }
    if (bar) fmt::print("\n");
    if (scheduler_ && !per_step_schedule_) scheduler_->step();

    EpochMetrics m;
    m.epoch = epoch + 1;
    m.seconds = seconds_since(start);
    m.images_per_second = step * opts_.batch_size / m.seconds;
    m.train_loss = loss_sum / std::max<int64_t>(step, 1);
    m.lr = lr;
    m.train_acc = evaluate(train_eval_, false);
    m.val_acc = evaluate(val_, opts_.flip_tta);
    result_.epochs.push_back(m);
    // Without validation every epoch counts as best.
    if (result_.best_epoch == 0 || m.val_acc > result_.best_val_acc || val_ == nullptr || val_->size() == 0) {
      result_.best_val_acc = m.val_acc;
      result_.best_epoch = m.epoch;
      best_state_.clear();
      if (opts_.keep_best)
        for (auto& [name, t] : model_->state_dict()) best_state_.emplace_back(name, t.detach().clone());
    }
    if (epoch_lines)
      fmt::print("epoch {}/{}: loss {:.4f}, train acc {:.1f}%, {}, lr {:.3g}, {:.0f} img/s, {:.0f} s\n", m.epoch,
                 opts_.epochs, m.train_loss, 100 * m.train_acc,
                 val_ == nullptr || val_->size() == 0
                     ? std::string("no validation set")
                     : fmt::format("val acc {:.1f}% (best {:.1f}%)", 100 * m.val_acc, 100 * result_.best_val_acc),
                 m.lr, m.images_per_second, m.seconds);
    std::fflush(stdout);
    if (writer) save_checkpoint(epoch + 1, ckpt);
    saved();
  }

  if (opts_.keep_best) model_->load_state_dict(best_state_);  // the best-validation weights, as CS231n's Solver keeps
  TrainResult r = result_;
  for (const EpochMetrics& m : r.epochs) r.train_seconds += m.seconds;
  const double images = static_cast<double>(r.losses.size() * opts_.batch_size);
  r.images_per_second = r.train_seconds > 0 ? images / r.train_seconds : 0;
  if (test_ != nullptr && test_->size() > 0) r.test_acc = evaluate(test_, opts_.flip_tta);
  if (writer) write_outputs(r);
  saved();
  return r;
}

void Trainer::save_checkpoint(int64_t epoch, const std::string& path) const {
  nn::NamedTensors t = nn::prefixed("model.", model_->state_dict());
  t = nn::concat(t, nn::prefixed("optim.", optimizer_->state_dict()));
  if (scheduler_) t = nn::concat(t, nn::prefixed("sched.", scheduler_->state_dict()));
  if (lookahead_) t = nn::concat(t, nn::prefixed("lookahead.", lookahead_->state_dict()));
  t = nn::concat(t, nn::prefixed("best.", best_state_));
  t.emplace_back("trainer.losses", from_vector(result_.losses));
  std::vector<double> rows;
  for (const EpochMetrics& m : result_.epochs)
    rows.insert(rows.end(), {double(m.epoch), m.train_loss, m.train_acc, m.val_acc, m.lr, m.seconds, m.images_per_second});
  t.emplace_back("trainer.epochs", from_vector(rows, {static_cast<int64_t>(result_.epochs.size()), 7}));
  nn::Metadata m = run_identity(opts_);
  m.insert({{"epoch", std::to_string(epoch)},
            {"best_val_acc", fmt::format("{:.17g}", result_.best_val_acc)},
            {"best_epoch", std::to_string(result_.best_epoch)},
            {"rng", generator_state()}});
  nn::save_safetensors(path, t, m);
}

int64_t Trainer::load_checkpoint(const std::string& path) {
  nn::Safetensors ck = nn::load_safetensors(path);
  for (const auto& [key, want] : run_identity(opts_))
    check(meta(ck.metadata, key, path) == want, "Trainer: checkpoint {} was written with {} = {}, this run has {}",
          path, key, meta(ck.metadata, key, path), want);
  // Everything that can be checked on its own is, before the model or the optimizer changes.
  const auto epoch = meta_number<int64_t>(ck.metadata, "epoch", path);
  const auto best_val_acc = meta_number<double>(ck.metadata, "best_val_acc", path);
  const auto best_epoch = meta_number<int64_t>(ck.metadata, "best_epoch", path);
  const std::mt19937_64 rng = parse_generator_state(meta(ck.metadata, "rng", path));
  nn::NamedTensors model_state = ck.with_prefix("model."), best = ck.with_prefix("best.");
  Tensor losses, epochs;
  for (auto& [name, t] : ck.tensors) {
    if (name == "trainer.losses") losses = t;
    if (name == "trainer.epochs") epochs = t;
  }
  check(losses.defined() && epochs.defined() && epochs.dim() == 2 && epochs.shape()[1] == 7 &&
            epochs.shape()[0] == epoch,
        "Trainer: checkpoint {} has no consistent training history", path);
  // The model, optimizer and schedule each validate their part before changing; if a later part
  // fails, the earlier ones go back to what they were.
  nn::NamedTensors model_before;
  for (const auto& [n, t] : model_->state_dict()) model_before.emplace_back(n, t.detach().clone());
  const nn::NamedTensors optim_before = optimizer_->state_dict();
  const nn::NamedTensors sched_before = scheduler_ ? scheduler_->state_dict() : nn::NamedTensors{};
  const nn::NamedTensors lookahead_before = lookahead_ ? lookahead_->state_dict() : nn::NamedTensors{};
  try {
    model_->load_state_dict(model_state);
    optimizer_->load_state_dict(ck.with_prefix("optim."));
    if (scheduler_) scheduler_->load_state_dict(ck.with_prefix("sched."));
    if (lookahead_) lookahead_->load_state_dict(ck.with_prefix("lookahead."));
  } catch (const Error&) {
    model_->load_state_dict(model_before);
    optimizer_->load_state_dict(optim_before);
    if (scheduler_) scheduler_->load_state_dict(sched_before);
    if (lookahead_) lookahead_->load_state_dict(lookahead_before);
    throw;
  }
  best_state_ = best;
  result_ = TrainResult();
  result_.losses = losses.to_vector<double>();
  std::vector<double> rows = epochs.to_vector<double>();
  for (size_t i = 0; i + 7 <= rows.size(); i += 7)
    result_.epochs.push_back({static_cast<int64_t>(rows[i]), rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4],
                              rows[i + 5], rows[i + 6]});
  result_.best_val_acc = best_val_acc;
  result_.best_epoch = best_epoch;
  generator() = rng;
  return epoch;
}

}  // namespace xg::train

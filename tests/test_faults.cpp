// Faults while training: kill -9 in the middle of checkpoint writes, a full disk, a NaN loss, and
// whole runs repeated bit for bit.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "data_fixtures.hpp"
#include "train/files.hpp"
#include "train/models.hpp"
#include "train/trainer.hpp"

using namespace xg;
using test::data_fixtures::TempDir;
namespace fs = std::filesystem;

namespace {

// A checkpoint whose every value is `v` (so a torn file is visible), 2 MiB of data.
nn::NamedTensors filled(double v) {
  return {{"a", full({256, 1024}, v)}, {"b", full({1024}, v, Dtype::f64)}};
}

// Which of the filled() checkpoints `path` holds; fails the test on a mix or a bad file.
double filled_value(const std::string& path) {
  nn::Safetensors s = nn::load_safetensors(path);
  REQUIRE(s.tensors.size() == 2);
  const std::vector<float> a = s.tensors[0].second.to_vector<float>();
  const std::vector<double> b = s.tensors[1].second.to_vector<double>();
  for (float x : a) REQUIRE(x == a[0]);
  for (double x : b) REQUIRE(x == static_cast<double>(a[0]));
  return a[0];
}

// Lowers RLIMIT_FSIZE (files cannot grow past `bytes`: a full disk as far as write() can tell,
// EFBIG instead of ENOSPC) with SIGXFSZ ignored, restoring both at scope exit.
struct FileSizeLimit {
  rlimit saved{};
  struct sigaction saved_action{};
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved);
    struct sigaction ignore{};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &ignore, &saved_action);
    rlimit lower{bytes, saved.rlim_max};
    setrlimit(RLIMIT_FSIZE, &lower);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved);
    sigaction(SIGXFSZ, &saved_action, nullptr);
  }
};

// Two easy classes (bright in channel 0 or 1) for short Trainer runs.
std::shared_ptr<const data::CIFAR10> easy_data(int64_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<uint8_t> images(static_cast<size_t>(n * data::kImageBytes));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % 2;
    for (int64_t p = 0; p < data::kImageBytes; ++p)
      images[i * data::kImageBytes + p] = static_cast<uint8_t>(gen() % 60 + (p / 1024 == labels[i] ? 150 : 20));
  }
  return std::make_shared<const data::CIFAR10>(data::CIFAR10::from_memory(std::move(images), std::move(labels)));
}

train::TrainerOptions small(const std::string& dir, int64_t epochs) {
  return {.model = "twolayer", .epochs = epochs, .batch_size = 16, .optimizer = "sgd", .lr = 0.01,
          .schedule = "decay", .train_acc_samples = 64, .max_steps_per_epoch = 4, .seed = 5, .run_dir = dir,
          .progress = 0};
}

// A model that turns its output into NaN from the `poison_at`-th training forward on.
struct Poisoned : nn::Module {
  std::shared_ptr<nn::Module> inner = register_module("inner", models::make_model("twolayer"));
  int64_t calls = 0, poison_at;
  explicit Poisoned(int64_t at) : poison_at(at) {}
  Tensor forward(const Tensor& x) override {
    Tensor y = inner->forward(x);
    if (is_training() && ++calls >= poison_at) y = y * std::numeric_limits<double>::quiet_NaN();
    return y;
  }
};

}  // namespace

TEST_CASE("faults: kill -9 at any moment of a checkpoint write leaves a whole checkpoint") {
  TempDir dir;
  const std::string path = (dir.path / "ck.safetensors").string();
  const nn::NamedTensors one = filled(1.0), two = filled(2.0);
  nn::save_safetensors(path, one);
  int mid_write = 0;  // kills that landed while a temporary file existed
  for (int round = 0; round < 24; ++round) {
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // writes the two checkpoints in turn until killed; touches nothing else
      for (int k = 0;; ++k) {
        try {
          nn::save_safetensors(path, k % 2 ? one : two);
        } catch (...) {
          _exit(1);
        }
      }
    }
    usleep(static_cast<useconds_t>(2000 + round * 1500));  // 2 to 37 ms: many points of a write
    mid_write += fs::exists(path + ".tmp");
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    const double v = filled_value(path);
    CHECK((v == 1.0 || v == 2.0));
  }
  INFO("kills during a write: " << mid_write);
  CHECK(mid_write > 0);
  // A leftover temporary from a killed writer does not get in the way of the next save.
  nn::save_safetensors(path, two);
  CHECK(filled_value(path) == 2.0);
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("faults: a full disk fails the write with a clear error and keeps the old checkpoint") {
  TempDir dir;
  const std::string path = (dir.path / "ck.safetensors").string();
  nn::save_safetensors(path, filled(1.0));
  {
    FileSizeLimit full(64 * 1024);  // the 2 MiB checkpoint cannot fit
    CHECK_ERROR(nn::save_safetensors(path, filled(2.0)), "save_safetensors: writing '" + path + ".tmp' failed: File too large");
  }
  CHECK(filled_value(path) == 1.0);
  CHECK_FALSE(fs::exists(path + ".tmp"));

  // The same through the Trainer: the run stops with the error, the previous epoch's checkpoint stays.
  auto data = easy_data(96, 1);
  data::Split split = data::train_val_split(data, 32);
  auto model = models::make_model("twolayer");
  train::Trainer first(model, split.train, split.val, data::Subset(), small(dir.str(), 1));
  first.fit();
  const std::string ck = (dir.path / "checkpoint.safetensors").string();
  const std::string before = nn::load_safetensors(ck).metadata.at("epoch");
  train::TrainerOptions o = small(dir.str(), 2);
  o.resume = true;
  train::Trainer second(model, split.train, split.val, data::Subset(), o);
  {
    FileSizeLimit full(4096);
    CHECK_ERROR(second.fit(), "save_safetensors: writing '" + ck + ".tmp' failed");
  }
  CHECK(before == "1");
  CHECK(nn::load_safetensors(ck).metadata.at("epoch") == "1");
  CHECK_FALSE(fs::exists(ck + ".tmp"));
}

TEST_CASE("faults: a NaN loss stops the run naming the step, and the last good checkpoint resumes") {
  TempDir dir;
  auto data = easy_data(96, 2);
  data::Split split = data::train_val_split(data, 32);
  auto model = std::make_shared<Poisoned>(7);  // epoch 2 (4 steps per epoch), step 3
  train::Trainer t(model, split.train, split.val, data::Subset(), small(dir.str(), 3));
  const std::string ck = (dir.path / "checkpoint.safetensors").string();
  CHECK_ERROR(t.fit(), "nan at epoch 2, step 3 (iteration 7); stopping. The last good checkpoint "
                       "(end of epoch 1) is " + ck);
  nn::Safetensors s = nn::load_safetensors(ck);
  CHECK(s.metadata.at("epoch") == "1");
  for (const auto& [name, v] : s.tensors)
    if (v.dtype() != Dtype::i64) CHECK_MESSAGE(std::isfinite(sum(v.to(Dtype::f64)).item<double>()), name);
  // The healed model resumes from it.
  model->poison_at = std::numeric_limits<int64_t>::max();
  train::TrainerOptions o = small(dir.str(), 3);
  o.resume = true;
  train::Trainer again(model, split.train, split.val, data::Subset(), o);
  CHECK(again.fit().losses.size() == 12);
}

namespace {
// The checkpoint at `ck` rewritten with `edit` applied to its tensors and metadata.
void rewrite(const std::string& ck, const std::function<void(nn::Safetensors&)>& edit) {
  nn::Safetensors s = nn::load_safetensors(ck);
  edit(s);
  nn::save_safetensors(ck, s.tensors, s.metadata);
}
}  // namespace

TEST_CASE("faults: --resume validates the whole checkpoint before anything changes") {
  TempDir dir;
  auto data = easy_data(96, 4);
  data::Split split = data::train_val_split(data, 32);
  auto model = models::make_model("twolayer");
  train::Trainer(model, split.train, split.val, data::Subset(), small(dir.str(), 1)).fit();
  const std::string ck = (dir.path / "checkpoint.safetensors").string();
  const nn::Safetensors good = nn::load_safetensors(ck);
  train::TrainerOptions o = small(dir.str(), 2);
  o.resume = true;
  auto weights = [&] {
    std::vector<float> w;
    for (const auto& [n, t] : model->state_dict()) {
      std::vector<float> v = t.to_vector<float>();
      w.insert(w.end(), v.begin(), v.end());
    }
    return w;
  };
  for (const char* key : {"epoch", "best_val_acc", "best_epoch"}) {
    CAPTURE(key);
    nn::save_safetensors(ck, good.tensors, good.metadata);
    rewrite(ck, [&](nn::Safetensors& s) { s.metadata[key] = "12abc"; });
    train::Trainer t(model, split.train, split.val, data::Subset(), o);
    CHECK_ERROR(t.fit(), fmt::format("has '{}' = '12abc' in its metadata, which is not a number", key));
  }
  nn::save_safetensors(ck, good.tensors, good.metadata);
  rewrite(ck, [](nn::Safetensors& s) { s.metadata["rng"] = "not a generator"; });
  CHECK_ERROR(train::Trainer(model, split.train, split.val, data::Subset(), o).fit(), "random generator state is corrupt");

  // A bad optimizer state, after a good model state: the model must not have moved.
  nn::save_safetensors(ck, good.tensors, good.metadata);
  rewrite(ck, [](nn::Safetensors& s) {
    for (auto& [name, t] : s.tensors)
      if (name == "optim.lr") t = scalar_tensor(-1.0, Dtype::f64);
    for (auto& [name, t] : s.tensors)
      if (name.rfind("model.", 0) == 0) t = zeros_like(t);
  });
  manual_seed(77);
  auto fresh = models::make_model("twolayer");
  model->load_state_dict(fresh->state_dict());
  const std::vector<float> before = weights();
  train::Trainer t(model, split.train, split.val, data::Subset(), o);
  CHECK_ERROR(t.fit(), "SGD: load_state_dict: 'lr' is negative (-1); the optimizer is unchanged");
  CHECK(weights() == before);
}

TEST_CASE("faults: a run directory that cannot be made, or a summary that cannot be written, is an xg::Error") {
  TempDir dir;
  auto data = easy_data(64, 5);
  data::Split split = data::train_val_split(data, 16);
  auto model = models::make_model("twolayer");
  test::data_fixtures::write_bytes(dir.path / "file", {1, 2, 3});
  const std::string under_file = (dir.path / "file" / "run").string();
  CHECK_ERROR(train::Trainer(model, split.train, split.val, data::Subset(), small(under_file, 1)).fit(),
              "Trainer: cannot create the directory '" + under_file + "'");
  CHECK_ERROR(train::create_directories((dir.path / "file").string(), "test"), "test: cannot create the directory '" + (dir.path / "file").string() + "'");
  fs::create_directories(dir.path / "run" / "summary.json");  // a directory where the file goes
  CHECK_ERROR(train::Trainer(model, split.train, split.val, data::Subset(), small((dir.path / "run").string(), 1)).fit(),
              "Trainer: cannot open '" + (dir.path / "run" / "summary.json").string() + "' for writing");
  optim::SGD opt(model->parameters(), {.lr = 0.1});
  CHECK_ERROR(opt.state(99), "SGD: state(99): there are");
}

TEST_CASE("determinism: a whole short training run repeats bit for bit (same seed, same threads)") {
  auto data = easy_data(160, 3);
  data::Split split = data::train_val_split(data, 32);
  auto run = [&](int threads) {
    TempDir dir;
    set_num_threads(threads);
    manual_seed(11);  // initialisation
    auto model = std::make_shared<models::FullyConnectedNet>(std::vector<int64_t>{64, 32}, 3072, 10,
                                                             models::Norm::batch, 0.3);
    train::TrainerOptions o = small(dir.str(), 2);
    o.model = "fc-test";
    o.optimizer = "adam";
    o.augment = true;
    train::Trainer t(model, split.train, split.val, data::Subset(), o);
    std::pair<std::vector<double>, std::vector<std::vector<uint8_t>>> out{t.fit().losses, {}};
    for (const auto& [name, v] : model->state_dict()) {
      const auto* p = static_cast<const uint8_t*>(v.impl().storage->data());
      out.second.emplace_back(p, p + v.numel() * dtype_size(v.dtype()));
    }
    return out;
  };
  const int threads = get_num_threads();
  auto a = run(2), b = run(2), c = run(1);
  set_num_threads(threads);
  REQUIRE(a.first.size() == 8);
  CHECK(a.first == b.first);    // losses, to the last bit
  CHECK(a.second == b.second);  // weights and running statistics, to the last bit
  CHECK(a.first == c.first);    // and xgrad's kernels make the thread count not matter either
  CHECK(a.second == c.second);
}

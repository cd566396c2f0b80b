// DistributedDataParallel: the signature check, the buckets filled by gradient hooks, and the
// communication thread that averages them in a fixed order while the backward pass goes on.
#include "distributed/ddp.hpp"

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "autograd/engine.hpp"
#include "ops/ops.hpp"

namespace xg::nn {

namespace {
namespace dist = xg::distributed;
constexpr const char* kOp = "DistributedDataParallel";
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One line per parameter and buffer, and the options every rank must share.
std::string signature(const Module& m, const DistributedDataParallelOptions& o) {
  std::string s = fmt::format("options bucket_cap_mb={} broadcast_buffers={}\n", o.bucket_cap_mb, o.broadcast_buffers);
  for (const auto& [name, p] : m.named_parameters())
    s += fmt::format("parameter '{}' {} {}{}\n", name, dtype_name(p.dtype()), p.shape(),
                     p.requires_grad() ? "" : " (requires_grad=false)");
  for (const auto& [name, b] : m.named_buffers())
    s += fmt::format("buffer '{}' {} {}\n", name, dtype_name(b.dtype()), b.shape());
  return s;
}

}  // namespace

struct DistributedDataParallel::Reducer {
  struct Slot {
    std::string name;
    Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;  // elements into the bucket
    bool ready = false;  // its gradient of this step is in the bucket
  };
  struct Bucket {
    Tensor flat;  // the gradients of its parameters, end to end
    std::vector<size_t> slots;
    size_t pending = 0;  // parameters whose gradient has not arrived this step
  };
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  std::vector<HookHandle> hooks;
  bool overlap = true;

  // Step state, on the training thread.
  bool armed = false;  // this backward's gradients are to be averaged
  bool callback_queued = false;
  size_t next_launch = 0;  // buckets launch in index order, whatever order they fill in

  // Shared with the communication thread, under mu.
  std::mutex mu;
  std::condition_variable work_cv, done_cv;
  std::deque<size_t> queue;
  size_t finished = 0;  // buckets of this step averaged
  std::exception_ptr error;
  bool stop = false;
  DistributedDataParallelStats stats;
  std::thread thread;

  ~Reducer() {
    for (HookHandle& h : hooks) h.remove();
    {
      std::lock_guard lk(mu);
      stop = true;
    }
    work_cv.notify_all();
    if (thread.joinable()) thread.join();
  }

  void comm_loop() {
    std::unique_lock lk(mu);
    while (true) {
      work_cv.wait(lk, [&] { return stop || !queue.empty(); });
      if (stop) return;
      const size_t b = queue.front();
      queue.pop_front();
      lk.unlock();
      const Tensor& flat = buckets[b].flat;
      const auto t0 = Clock::now();
      std::exception_ptr e;
      try {
        dist::detail::all_reduce(flat.impl().storage->data(), flat.numel(), flat.dtype(), dist::ReduceOp::AVG, kOp);
      } catch (...) {
        e = std::current_exception();  // handed to the training thread at the end of backward
      }
      lk.lock();
      stats.allreduce_seconds += seconds_since(t0);
      if (e && !error) error = e;
      ++finished;
      done_cv.notify_all();
    }
  }

  void launch(size_t b) {
    {
      std::lock_guard lk(mu);
      queue.push_back(b);
    }
    work_cv.notify_one();
  }

  // A parameter's gradient of this backward is complete (the tape's hook, on the training thread).
  void on_gradient(size_t i, const Tensor& g) {
    if (!armed) return;
    Slot& s = slots[i];
    check(!s.ready,
          "{}: parameter '{}' got a second gradient in one synchronised step; run forward again before each "
          "backward",
          kOp, s.name);
    Bucket& b = buckets[s.bucket];
    check(g.dtype() == b.flat.dtype() && g.numel() == s.param.numel(),
          "{}: parameter '{}' has a gradient of {} {}, but was wrapped as {} {}; convert dtypes before wrapping", kOp,
          s.name, dtype_name(g.dtype()), g.shape(), dtype_name(b.flat.dtype()), s.param.shape());
    NoGradGuard no_grad;
    // Gradients accumulated under no_sync() are averaged with this one: .grad will be their sum.
    const Tensor old = s.param.grad();
    const Tensor full = old.defined() ? add(old, g) : g;
    std::memcpy(static_cast<char*>(b.flat.impl().storage->data()) + s.offset * dtype_size(g.dtype()),
                full.impl().storage->data(), static_cast<size_t>(g.numel()) * dtype_size(g.dtype()));
    s.ready = true;
    --b.pending;
    if (overlap)
      while (next_launch < buckets.size() && buckets[next_launch].pending == 0) launch(next_launch++);
    if (!callback_queued) {
      callback_queued = true;
      queue_callback([this] { finish(); });
    }
  }

  // End of backward: the buckets not launched yet (with zeros for parameters that got no gradient),
  // then wait for all, then every .grad becomes its average.
  void finish() {
    for (; next_launch < buckets.size(); ++next_launch) {
      Bucket& b = buckets[next_launch];
      for (size_t i : b.slots)
        if (!slots[i].ready) {
          const Slot& s = slots[i];
          std::memset(static_cast<char*>(b.flat.impl().storage->data()) + s.offset * dtype_size(b.flat.dtype()), 0,
                      static_cast<size_t>(s.param.numel()) * dtype_size(b.flat.dtype()));
        }
      launch(next_launch);
    }
    const auto t0 = Clock::now();
    std::exception_ptr e;
    {
      std::unique_lock lk(mu);
      done_cv.wait(lk, [&] { return finished == buckets.size(); });
      stats.wait_seconds += seconds_since(t0);
      ++stats.steps;
      e = std::exchange(error, nullptr);
    }
    reset();
    if (e) std::rethrow_exception(e);
    NoGradGuard no_grad;
    for (Slot& s : slots) {
      const Tensor& flat = buckets[s.bucket].flat;
      Tensor g = s.param.grad();
      if (!g.defined()) {
        g = Tensor::empty(s.param.shape(), flat.dtype());
        s.param.set_grad(g);
      }
      std::memcpy(g.impl().storage->data(),
                  static_cast<const char*>(flat.impl().storage->data()) + s.offset * dtype_size(flat.dtype()),
                  static_cast<size_t>(s.param.numel()) * dtype_size(flat.dtype()));
      g.bump_version();
    }
  }

  // A new step: what a failed backward left behind is waited for and dropped.
  void reset() {
    {
      std::unique_lock lk(mu);
      done_cv.wait(lk, [&] { return finished == next_launch; });
      finished = 0;
      error = nullptr;
    }
    for (Slot& s : slots) s.ready = false;
    for (Bucket& b : buckets) b.pending = b.slots.size();
    next_launch = 0;
    armed = callback_queued = false;
  }
};

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<Module> module, DistributedDataParallelOptions options)
    : module_(std::move(module)), options_(options) {
  check(module_ != nullptr, "{}: null module", kOp);
  check(dist::is_initialized(), "{}: the process group is not initialized (call xg::distributed::init_process_group())",
        kOp);
  check(options_.bucket_cap_mb > 0, "{}: bucket_cap_mb must be positive, got {}", kOp, options_.bucket_cap_mb);
  check(dist::detail::threads_supported(),
        "{}: the MPI library does not provide MPI_THREAD_SERIALIZED, which the communication thread needs", kOp);
  register_module("module", module_);
  dist::detail::check_same_on_all_ranks(signature(*module_, options_), kOp, "the models or options");
  {
    NoGradGuard no_grad;
    for (const auto& [name, t] : module_->state_dict()) {
      dist::detail::broadcast(t.impl().storage->data(), t.numel(), t.dtype(), 0, kOp);
      t.bump_version();
    }
  }
  reducer_ = std::make_unique<Reducer>();
  Reducer& r = *reducer_;
  r.overlap = options_.overlap;
  // Buckets in reverse registration order, roughly the order backward completes the gradients.
  const NamedTensors params = module_->named_parameters();
  const auto cap = static_cast<int64_t>(options_.bucket_cap_mb * 1024 * 1024);
  std::vector<std::pair<Dtype, int64_t>> layout;  // per bucket: dtype and elements
  int64_t bytes = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const auto& [name, p] = *it;
    if (!p.requires_grad()) continue;
    const int64_t pb = p.numel() * static_cast<int64_t>(dtype_size(p.dtype()));
    if (layout.empty() || bytes + pb > cap || layout.back().first != p.dtype()) {
      layout.emplace_back(p.dtype(), 0);
      r.buckets.emplace_back();
      bytes = 0;
    }
    r.slots.push_back({name, p, r.buckets.size() - 1, layout.back().second, false});
    r.buckets.back().slots.push_back(r.slots.size() - 1);
    layout.back().second += p.numel();
    bytes += pb;
  }
  for (size_t b = 0; b < r.buckets.size(); ++b) r.buckets[b].flat = Tensor::empty({layout[b].second}, layout[b].first);
  for (size_t i = 0; i < r.slots.size(); ++i)
    r.hooks.push_back(r.slots[i].param.register_hook([&r, i](const Tensor& g) { r.on_gradient(i, g); }));
  r.reset();
  r.thread = std::thread([&r] { r.comm_loop(); });
  dist::detail::add_user(1);
}

DistributedDataParallel::~DistributedDataParallel() {
  if (reducer_) dist::detail::add_user(-1);
}

DistributedDataParallel::DistributedDataParallel(DistributedDataParallel&&) noexcept = default;

Tensor DistributedDataParallel::forward(const Tensor& x) {
  reducer_->reset();
  if (options_.broadcast_buffers && module_->is_training() && dist::get_world_size() > 1) {
    NoGradGuard no_grad;
    for (const Tensor& b : module_->buffers()) {
      dist::detail::broadcast(b.impl().storage->data(), b.numel(), b.dtype(), 0, kOp);
      b.bump_version();
    }
  }
  reducer_->armed = sync_ && GradMode::is_enabled();
  return (*module_)(x);
}

int64_t DistributedDataParallel::num_buckets() const { return static_cast<int64_t>(reducer_->buckets.size()); }
DistributedDataParallelStats DistributedDataParallel::stats() const {
  std::lock_guard lk(reducer_->mu);
  return reducer_->stats;
}
void DistributedDataParallel::reset_stats() {
  std::lock_guard lk(reducer_->mu);
  reducer_->stats = {};
}

DistributedDataParallel::NoSync::NoSync(DistributedDataParallel& ddp) : ddp_(ddp), previous_(ddp.sync_) {
  ddp.sync_ = false;
}
DistributedDataParallel::NoSync::~NoSync() { ddp_.sync_ = previous_; }

}  // namespace xg::nn

// The MPI process group: init/destroy, the fault path (MPI_Abort), and the collectives on buffers.
// The C API only: Open MPI's and MPICH's mpi.h otherwise pull in their deprecated C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>

#include "autograd/grad_mode.hpp"
#include "distributed/distributed.hpp"

namespace xg::distributed {

namespace {

struct Group {
  bool initialized = false;
  bool mpi = false;       // collectives go through MPI (launched by an MPI launcher)
  bool owns_mpi = false;  // we called MPI_Init_thread, so we call MPI_Finalize
  int thread_level = MPI_THREAD_SINGLE;
  int rank = 0, world = 1;
  std::terminate_handler previous_terminate = nullptr;
};
Group group;
std::atomic<int> users{0};
// MPI_THREAD_SERIALIZED: one MPI call at a time in the process, whichever thread makes it.
std::mutex mpi_mutex;

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

void mpi_check(int rc, const char* who, const char* call) {
  if (rc == MPI_SUCCESS) [[likely]]
    return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail("{}: {} failed on rank {} of {}: {}", who, call, group.rank, group.world,
       std::string(text, static_cast<size_t>(len)));
}

MPI_Datatype mpi_type(Dtype d) {
  switch (d) {
    case Dtype::f32:
      return MPI_FLOAT;
    case Dtype::f64:
      return MPI_DOUBLE;
    case Dtype::i64:
      return MPI_INT64_T;
  }
  return MPI_FLOAT;
}

// Prints what ended this rank and takes the whole job down with it.
[[noreturn]] void terminate_job() {
  std::string what = "unknown exception";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
  } else {
    what = "std::terminate called without an active exception";
  }
  std::fprintf(stderr, "error: rank %d of %d: %s\n", group.rank, group.world, what.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

void require_group(const char* who) {
  check(group.initialized, "{}: the process group is not initialized (call xg::distributed::init_process_group())",
        who);
}

// Refuses what Tensor::copy_ refuses: an in-place write into a tensor on the tape.
void check_writable(const Tensor& t, const char* who) {
  check(t.defined(), "{}: undefined tensor", who);
  check(!(GradMode::is_enabled() && t.requires_grad()),
        "{}: the tensor (shape {}) requires grad and recording is on: the tape does not record collectives; wrap the "
        "call in NoGradGuard or pass t.detach()",
        who, t.shape());
}

// MPI counts are int: a longer buffer goes in pieces.
constexpr int64_t kMaxChunk = INT_MAX / 8;

}  // namespace

void init_process_group() {
  check(!group.initialized,
        "init_process_group: already initialized (rank {} of {}); call destroy_process_group() first", group.rank,
        group.world);
  Group g;
  if (launched_by_mpi()) {
    int already = 0, finalized = 0;
    MPI_Initialized(&already);
    MPI_Finalized(&finalized);
    check(!finalized, "init_process_group: MPI was finalized in this process and cannot start again");
    if (already) {
      MPI_Query_thread(&g.thread_level);
    } else {
      int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &g.thread_level);
      check(rc == MPI_SUCCESS, "init_process_group: MPI_Init_thread failed (error code {})", rc);
      g.owns_mpi = true;
    }
    g.mpi = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g.world);
    g.previous_terminate = std::set_terminate(terminate_job);
  }
  g.initialized = true;
  group = g;
}

bool is_initialized() { return group.initialized; }
int get_rank() { return group.rank; }
int get_world_size() { return group.world; }

void destroy_process_group() {
  require_group("destroy_process_group");
  check(users.load() == 0,
        "destroy_process_group: {} DistributedDataParallel object(s) still exist; destroy them first", users.load());
  if (group.mpi) {
    std::set_terminate(group.previous_terminate);
    if (group.owns_mpi) {
      std::lock_guard lk(mpi_mutex);
      mpi_check(MPI_Finalize(), "destroy_process_group", "MPI_Finalize");
    }
  }
  group = Group{};
}

void abort_job(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (group.mpi) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::exit(exit_code);
}

void barrier() {
  require_group("barrier");
  if (!group.mpi) return;
  std::lock_guard lk(mpi_mutex);
  mpi_check(MPI_Barrier(MPI_COMM_WORLD), "barrier", "MPI_Barrier");
}

void all_reduce(const Tensor& t, ReduceOp op) {
  require_group("all_reduce");
  check_writable(t, "all_reduce");
  check(op != ReduceOp::AVG || is_floating(t.dtype()), "all_reduce: ReduceOp::AVG needs a floating tensor, got {}",
        dtype_name(t.dtype()));
  t.bump_version();
  detail::all_reduce(t.impl().storage->data(), t.numel(), t.dtype(), op, "all_reduce");
}

void broadcast(const Tensor& t, int src) {
  require_group("broadcast");
  check_writable(t, "broadcast");
  check(src >= 0 && src < group.world, "broadcast: src must be a rank in [0, {}), got {}", group.world, src);
  t.bump_version();
  detail::broadcast(t.impl().storage->data(), t.numel(), t.dtype(), src, "broadcast");
}

std::vector<Tensor> all_gather(const Tensor& t) {
  require_group("all_gather");
  check(t.defined(), "all_gather: undefined tensor");
  // Every rank's dtype and shape, as a string, so that a mismatch fails the same way on every rank.
  const std::string sig = fmt::format("{} {}", dtype_name(t.dtype()), t.shape());
  const std::vector<std::string> sigs = detail::all_gather(sig, "all_gather");
  for (size_t r = 1; r < sigs.size(); ++r)
    check(sigs[r] == sigs[0],
          "all_gather: rank {} has a tensor of {}, rank 0 of {}; every rank must give the same "
          "shape and dtype",
          r, sigs[r], sigs[0]);
  std::vector<Tensor> out;
  if (!group.mpi) {
    out.push_back(t.detach().clone());
    return out;
  }
  const int64_t n = t.numel();
  Shape shape = t.shape();
  shape.insert(shape.begin(), group.world);
  Tensor all = Tensor::empty(shape, t.dtype());
  check(n <= kMaxChunk, "all_gather: {} elements per rank is more than one MPI call takes ({})", n, kMaxChunk);
  {
    std::lock_guard lk(mpi_mutex);
    mpi_check(MPI_Allgather(t.impl().storage->data(), static_cast<int>(n), mpi_type(t.dtype()),
                            all.impl().storage->data(), static_cast<int>(n), mpi_type(t.dtype()), MPI_COMM_WORLD),
              "all_gather", "MPI_Allgather");
  }
  for (int r = 0; r < group.world; ++r) {
    Tensor piece = Tensor::empty(t.shape(), t.dtype());
    std::memcpy(piece.impl().storage->data(),
                static_cast<const char*>(all.impl().storage->data()) + r * n * dtype_size(t.dtype()),
                static_cast<size_t>(n) * dtype_size(t.dtype()));
    out.push_back(std::move(piece));
  }
  return out;
}

namespace detail {

void all_reduce(void* data, int64_t count, Dtype dtype, ReduceOp op, const char* who) {
  if (group.mpi && group.world > 1) {
    std::lock_guard lk(mpi_mutex);
    for (int64_t at = 0; at < count; at += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, count - at));
      mpi_check(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + at * dtype_size(dtype), n, mpi_type(dtype),
                              op == ReduceOp::MAX ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD),
                who, "MPI_Allreduce");
    }
  }
  if (op == ReduceOp::AVG && group.world > 1)
    dispatch_floating(dtype, [&]<class T>() {
      T* p = static_cast<T*>(data);
      const T w = static_cast<T>(group.world);
      for (int64_t i = 0; i < count; ++i) p[i] /= w;
    });
}

void broadcast(void* data, int64_t count, Dtype dtype, int src, const char* who) {
  if (!group.mpi || group.world == 1) return;
  std::lock_guard lk(mpi_mutex);
  for (int64_t at = 0; at < count; at += kMaxChunk) {
    const int n = static_cast<int>(std::min(kMaxChunk, count - at));
    mpi_check(MPI_Bcast(static_cast<char*>(data) + at * dtype_size(dtype), n, mpi_type(dtype), src, MPI_COMM_WORLD),
              who, "MPI_Bcast");
  }
}

std::vector<std::string> all_gather(const std::string& s, const char* who) {
  if (!group.mpi || group.world == 1) return {s};
  check(s.size() <= static_cast<size_t>(INT_MAX), "{}: a string of {} bytes is too long to gather", who, s.size());
  std::vector<int> sizes(static_cast<size_t>(group.world)), offsets(sizes.size());
  const int mine = static_cast<int>(s.size());
  std::lock_guard lk(mpi_mutex);
  mpi_check(MPI_Allgather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD), who, "MPI_Allgather");
  int64_t total = 0;
  for (size_t r = 0; r < sizes.size(); ++r) {
    offsets[r] = static_cast<int>(total);
    total += sizes[r];
  }
  check(total <= INT_MAX, "{}: {} bytes in all are too many to gather", who, total);
  std::string all(static_cast<size_t>(total), '\0');
  mpi_check(
      MPI_Allgatherv(s.data(), mine, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR, MPI_COMM_WORLD), who,
      "MPI_Allgatherv");
  std::vector<std::string> out;
  for (size_t r = 0; r < sizes.size(); ++r)
    out.push_back(all.substr(static_cast<size_t>(offsets[r]), static_cast<size_t>(sizes[r])));
  return out;
}

void check_same_on_all_ranks(const std::string& lines, const char* who, const char* what) {
  auto split = [](const std::string& text) {
    std::vector<std::string> out;
    for (size_t at = 0; at < text.size();) {
      const size_t end = std::min(text.find('\n', at), text.size());
      out.push_back(text.substr(at, end - at));
      at = end + 1;
    }
    return out;
  };
  std::vector<std::vector<std::string>> ranks;
  size_t longest = 0;
  for (const std::string& text : all_gather(lines, who)) {
    ranks.push_back(split(text));
    longest = std::max(longest, ranks.back().size());
  }
  auto line = [](const std::vector<std::string>& v, size_t k) { return k < v.size() ? v[k] : std::string("nothing"); };
  for (size_t k = 0; k < longest; ++k)
    for (size_t r = 1; r < ranks.size(); ++r)
      if (line(ranks[r], k) != line(ranks[0], k))
        fail("{}: {} differ across ranks: {} on rank 0 but {} on rank {}", who, what, line(ranks[0], k),
             line(ranks[r], k), r);
}

bool threads_supported() { return !group.mpi || group.thread_level >= MPI_THREAD_SERIALIZED; }

void add_user(int delta) { users += delta; }

}  // namespace detail

}  // namespace xg::distributed

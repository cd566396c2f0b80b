// xg::Tensor: a cheap-to-copy handle to n-d row-major storage, with the autograd state of the tape.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#include "autograd/dtype.hpp"
#include "autograd/error.hpp"
#include "autograd/shape.hpp"

namespace xg {

class Tensor;
struct Node;

// Contiguous elements of one dtype. The buffer is an xtensor container (see storage.cpp) or, for
// zero-copy interop, an xt::xarray moved in; shared by every tensor that views it.
class Storage {
 public:
  virtual ~Storage() = default;
  void* data() const { return data_; }
  int64_t size() const { return size_; }  // elements
  // Uninitialised storage for n elements of dtype d.
  static std::shared_ptr<Storage> allocate(Dtype d, int64_t n);

  // Bumped by every in-place write; the tape remembers it for the tensors a backward reads, and
  // refuses to run that backward if it moved (PyTorch's saved-tensor version check).
  uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 protected:
  void* data_ = nullptr;
  int64_t size_ = 0;

 private:
  std::atomic<uint32_t> version_{0};
};

// Gradient hooks: fn(grad) runs when the gradient with respect to a tensor is complete, and may
// return a replacement (an undefined tensor keeps the gradient as it is).
using GradHook = std::function<Tensor(const Tensor&)>;
struct HookList {
  std::vector<std::pair<uint64_t, GradHook>> hooks;  // in registration order
  uint64_t next_id = 0;
  Tensor run(Tensor grad, const char* what) const;   // each hook sees the previous one's result
};
// Returned by register_hook; remove() unregisters the hook (a no-op once the tensor is gone).
class HookHandle {
 public:
  HookHandle() = default;
  HookHandle(std::weak_ptr<HookList> list, uint64_t id) : list_(std::move(list)), id_(id) {}
  void remove();

 private:
  std::weak_ptr<HookList> list_;
  uint64_t id_ = 0;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  int64_t numel = 0;
  Dtype dtype = Dtype::f32;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves and for tensors outside the tape
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<HookList> hooks;  // a leaf's gradient hooks (a non-leaf's live on its grad_fn)
};

struct BackwardOptions {
  bool retain_graph = false;  // keep saved state so backward can run through the graph again
  bool create_graph = false;  // record the backward pass itself (implies retain_graph)
};

class Tensor {
 public:
  Tensor() = default;  // undefined
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  // An uninitialised contiguous tensor: the starting point of every kernel.
  static Tensor empty(const Shape& shape, Dtype dtype = Dtype::f32);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;
  int64_t numel() const { return impl().numel; }
  Dtype dtype() const { return impl().dtype; }

  // Raw contiguous elements; T must match dtype().
  template <class T>
  T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(impl().storage->data());
  }
  template <class T>
  std::vector<T> to_vector() const;
  template <class T>
  T item() const;
  Tensor to(Dtype d) const;  // differentiable between floating dtypes
  Tensor clone() const;      // a copy with its own storage, on the tape

  // Autograd.
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool on = true);
  Tensor grad() const;  // undefined until a gradient arrives
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the gradient
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  void backward(const BackwardOptions& opts = {}) const;  // scalar output
  void backward(const Tensor& grad_output, const BackwardOptions& opts = {}) const;
  Tensor detach() const;  // same storage, off the tape
  // fn(grad) runs when this tensor's gradient is complete (summed over its uses), before it reaches
  // .grad or the op that produced the tensor; hooks run in registration order, each may return a
  // replacement gradient of the same shape. Like torch.Tensor.register_hook.
  HookHandle register_hook(GradHook fn) const;
  template <class F>
    requires std::is_void_v<std::invoke_result_t<F, const Tensor&>>
  HookHandle register_hook(F fn) const {  // a hook that only observes
    return register_hook(GradHook([fn = std::move(fn)](const Tensor& g) { fn(g); return Tensor(); }));
  }
  // A non-leaf keeps its gradient in .grad after backward, as a leaf does (a no-op on leaves).
  void retain_grad() const;
  bool retains_grad() const;

  // In-place updates of the values, never recorded (optimizers, initialisers). Const like the
  // handle: they change the shared storage, not which storage the handle points to. Each bumps the
  // storage's version, so a backward that saved this tensor before the write refuses to run. With
  // recording on they refuse a tensor that requires grad (use NoGradGuard, or an out-of-place op).
  const Tensor& fill_(double value) const;
  const Tensor& zero_() const { return fill_(0.0); }
  const Tensor& copy_(const Tensor& src) const;                  // same shape; converts dtype
  const Tensor& add_(const Tensor& other, double alpha = 1.0) const;  // this += alpha * other
  const Tensor& mul_(double factor) const;
  // The storage's in-place write count. Code that writes a tensor's buffer through data<T>() after
  // the tensor may have been saved by the tape calls bump_version() (the methods above do).
  uint32_t version() const { return impl().storage->version(); }
  void bump_version() const { impl().storage->bump_version(); }

  bool same(const Tensor& o) const { return impl_ == o.impl_; }
  TensorImpl& impl() const {
    if (!impl_) [[unlikely]]
      fail("tensor: operation on an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  void check_dtype(Dtype want) const;
  void begin_inplace(const char* op) const;  // refuses a tensor on the tape, bumps the version
  std::shared_ptr<TensorImpl> impl_;
};

// Factories.
Tensor zeros(const Shape& shape, Dtype dtype = Dtype::f32);
Tensor ones(const Shape& shape, Dtype dtype = Dtype::f32);
Tensor full(const Shape& shape, double value, Dtype dtype = Dtype::f32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar_tensor(double value, Dtype dtype = Dtype::f32);  // 0-d
Tensor randn(const Shape& shape, Dtype dtype = Dtype::f32);  // N(0, 1)
Tensor rand(const Shape& shape, Dtype dtype = Dtype::f32);   // U[0, 1)
Tensor uniform(const Shape& shape, double lo, double hi, Dtype dtype = Dtype::f32);
Tensor randint(int64_t low, int64_t high, const Shape& shape);  // i64 in [low, high)
Tensor arange(int64_t n, Dtype dtype = Dtype::f32);
template <class T>
Tensor from_vector(const std::vector<T>& data, const Shape& shape);
template <class T>
Tensor from_vector(const std::vector<T>& data) {
  return from_vector(data, Shape{static_cast<int64_t>(data.size())});
}

// Randomness: one global generator, seeded by manual_seed (default seed 0 is fixed, so runs repeat).
void manual_seed(uint64_t seed);

// torch.allclose: |a - b| <= atol + rtol |b| elementwise; an infinity equals only the same infinity,
// NaN equals nothing unless equal_nan. Tensors of different shapes are not close.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8, bool equal_nan = false);

}  // namespace xg

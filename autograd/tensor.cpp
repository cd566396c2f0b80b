// Tensor handle methods, factories and the global random generator.
#include "autograd/tensor.hpp"

#include <cmath>
#include <cstring>
#include <new>

#include "autograd/engine.hpp"
#include "autograd/random.hpp"
#include "ops/ops.hpp"

namespace xg {

Tensor Tensor::empty(const Shape& shape, Dtype dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->numel = checked_numel(shape, "empty");
  try {
    impl->storage = Storage::allocate(dtype, impl->numel);
  } catch (const std::bad_alloc&) {  // an error that names the size, as for every other bad shape
    fail("empty: out of memory allocating {} bytes for a tensor of shape {} and dtype {}",
         impl->numel * static_cast<int64_t>(dtype_size(dtype)), shape, dtype_name(dtype));
  }
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const {
  if (dim() == 0) fail("size: a 0-d tensor has no dim {}", d);
  return shape()[wrap_dim(d, dim(), "size")];
}

void Tensor::check_dtype(Dtype want) const {
  check(dtype() == want, "data: tensor has dtype {}, accessed as {}", dtype_name(dtype()), dtype_name(want));
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> out(static_cast<size_t>(numel()));
  dispatch(dtype(), [&]<class S>() {
    const S* p = static_cast<const S*>(impl().storage->data());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(p[i]);
  });
  return out;
}

template <class T>
T Tensor::item() const {
  check(numel() == 1, "item: tensor with {} elements (shape {}) cannot be converted to a scalar", numel(), shape());
  return to_vector<T>()[0];
}

template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template int64_t Tensor::item<int64_t>() const;

namespace {
// Copies src's elements into a fresh tensor of dtype d (same shape).
Tensor convert(const Tensor& src, Dtype d) {
  Tensor out = Tensor::empty(src.shape(), d);
  dispatch(src.dtype(), [&]<class S>() {
    dispatch(d, [&]<class D>() {
      const S* p = src.data<S>();
      D* q = out.data<D>();
      for (int64_t i = 0, n = src.numel(); i < n; ++i) q[i] = static_cast<D>(p[i]);
    });
  });
  return out;
}
}  // namespace

Tensor Tensor::to(Dtype d) const {
  if (d == dtype()) return *this;
  check(!(requires_grad() && d == Dtype::i64), "to: cannot convert a tensor that requires grad to i64");
  Dtype from = dtype();
  return record("to", convert(*this, d), {*this}, [from](const GradArgs& g) -> std::vector<Tensor> {
    return {g.grad.to(from)};
  }, {});
}

Tensor Tensor::clone() const {
  return record("clone", convert(*this, dtype()), {*this}, [](const GradArgs& g) -> std::vector<Tensor> {
    return {g.grad};
  }, {});
}

Tensor& Tensor::requires_grad_(bool on) {
  check(!on || is_floating(dtype()), "requires_grad_: only floating tensors can require grad, got {}",
        dtype_name(dtype()));
  check(on || is_leaf(), "requires_grad_: cannot turn off requires_grad on a non-leaf tensor; use detach()");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  check(!g.defined() || g.shape() == shape(), "set_grad: gradient shape {} does not match tensor shape {}",
        g.defined() ? g.shape() : Shape{}, shape());
  impl().grad = g.impl_ptr();
}

void Tensor::zero_grad() { impl().grad.reset(); }

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  const TensorImpl& s = this->impl();
  impl->storage = s.storage;
  impl->shape = s.shape;
  impl->numel = s.numel;
  impl->dtype = s.dtype;
  return Tensor(std::move(impl));
}

HookHandle Tensor::register_hook(GradHook fn) const {
  check(requires_grad(), "register_hook: the tensor (shape {}) does not require grad, so no gradient will reach "
        "a hook", shape());
  check(static_cast<bool>(fn), "register_hook: empty function");
  std::shared_ptr<HookList>& list = is_leaf() ? impl().hooks : impl().grad_fn->hooks;
  if (!list) list = std::make_shared<HookList>();
  const uint64_t id = list->next_id++;
  list->hooks.emplace_back(id, std::move(fn));
  return HookHandle(list, id);
}

void HookHandle::remove() {
  if (auto list = list_.lock())
    std::erase_if(list->hooks, [this](const auto& h) { return h.first == id_; });
}

Tensor HookList::run(Tensor grad, const char* what) const {
  for (const auto& [id, fn] : std::vector(hooks)) {  // a copy: a hook may remove itself
    Tensor r = fn(grad);
    if (r.defined()) {
      check(r.shape() == grad.shape(), "hook on '{}': returned a gradient of shape {}, expected {}", what, r.shape(),
            grad.shape());
      grad = r;
    }
  }
  return grad;
}

void Tensor::retain_grad() const {
  check(requires_grad(), "retain_grad: the tensor (shape {}) does not require grad", shape());
  if (!is_leaf()) impl().grad_fn->retained = impl_;
}

bool Tensor::retains_grad() const { return !is_leaf() && impl().grad_fn->retained.lock() == impl_; }

void Tensor::begin_inplace(const char* op) const {
  if (GradMode::is_enabled() && requires_grad()) {
    if (is_leaf())
      fail("{}: a leaf tensor that requires grad (shape {}) is being used in an in-place operation; wrap the "
           "update in NoGradGuard", op, shape());
    fail("{}: in-place operation on a tensor that requires grad (shape {}, output of '{}'): the tape does not "
         "record in-place writes; use the out-of-place op", op, shape(), grad_fn()->name);
  }
  impl().storage->bump_version();
}

const Tensor& Tensor::fill_(double value) const {
  begin_inplace("fill_");
  dispatch(dtype(), [&]<class T>() {
    T* p = data<T>();
    std::fill(p, p + numel(), static_cast<T>(value));
  });
  return *this;
}

const Tensor& Tensor::copy_(const Tensor& src) const {
  check(src.shape() == shape(), "copy_: source shape {} does not match destination shape {}", src.shape(), shape());
  begin_inplace("copy_");
  if (src.dtype() == dtype()) {
    std::memcpy(impl().storage->data(), src.impl().storage->data(), numel() * dtype_size(dtype()));
  } else {
    Tensor c = convert(src, dtype());
    std::memcpy(impl().storage->data(), c.impl().storage->data(), numel() * dtype_size(dtype()));
  }
  return *this;
}

const Tensor& Tensor::add_(const Tensor& other, double alpha) const {
  check(other.shape() == shape(), "add_: shape {} does not match {}", other.shape(), shape());
  check(other.dtype() == dtype(), "add_: dtype {} does not match {}", dtype_name(other.dtype()), dtype_name(dtype()));
  begin_inplace("add_");
  dispatch(dtype(), [&]<class T>() {
    T* p = data<T>();
    const T* q = other.data<T>();
    const T a = static_cast<T>(alpha);
    for (int64_t i = 0, n = numel(); i < n; ++i) p[i] += a * q[i];
  });
  return *this;
}

const Tensor& Tensor::mul_(double factor) const {
  begin_inplace("mul_");
  dispatch(dtype(), [&]<class T>() {
    T* p = data<T>();
    const T f = static_cast<T>(factor);
    for (int64_t i = 0, n = numel(); i < n; ++i) p[i] *= f;
  });
  return *this;
}

// ---- factories ----

Tensor full(const Shape& shape, double value, Dtype dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& shape, Dtype dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, Dtype dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }
Tensor scalar_tensor(double value, Dtype dtype) { return full(Shape{}, value, dtype); }

namespace {
std::mt19937_64 global_gen{0};

template <class Dist>
Tensor sample(const Shape& shape, Dtype dtype, Dist dist, const char* op) {
  check(is_floating(dtype), "{}: dtype must be f32 or f64, got {}", op, dtype_name(dtype));
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_floating(dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(dist(global_gen));
  });
  return t;
}
}  // namespace

std::mt19937_64& generator() { return global_gen; }
void manual_seed(uint64_t seed) { global_gen.seed(seed); }

Tensor randn(const Shape& shape, Dtype dtype) {
  return sample(shape, dtype, std::normal_distribution<double>(0.0, 1.0), "randn");
}
Tensor rand(const Shape& shape, Dtype dtype) {
  return sample(shape, dtype, std::uniform_real_distribution<double>(0.0, 1.0), "rand");
}
Tensor uniform(const Shape& shape, double lo, double hi, Dtype dtype) {
  check(lo <= hi, "uniform: lo {} is greater than hi {}", lo, hi);
  return sample(shape, dtype, std::uniform_real_distribution<double>(lo, hi), "uniform");
}
Tensor randint(int64_t low, int64_t high, const Shape& shape) {
  check(low < high, "randint: empty range [{}, {})", low, high);
  Tensor t = Tensor::empty(shape, Dtype::i64);
  std::uniform_int_distribution<int64_t> dist(low, high - 1);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(global_gen);
  return t;
}

Tensor arange(int64_t n, Dtype dtype) {
  check(n >= 0, "arange: n must be non-negative, got {}", n);
  Tensor t = Tensor::empty({n}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(i);
  });
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& data, const Shape& shape) {
  int64_t n = checked_numel(shape, "from_vector");
  check(n == static_cast<int64_t>(data.size()), "from_vector: {} values do not fill shape {} ({} elements)",
        data.size(), shape, n);
  Tensor t = Tensor::empty(shape, dtype_of<T>());
  std::copy(data.begin(), data.end(), t.data<T>());
  return t;
}
template Tensor from_vector(const std::vector<float>&, const Shape&);
template Tensor from_vector(const std::vector<double>&, const Shape&);
template Tensor from_vector(const std::vector<int64_t>&, const Shape&);

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  if (a.shape() != b.shape()) return false;
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) {
      if (!(equal_nan && std::isnan(x[i]) && std::isnan(y[i]))) return false;
    } else if (std::isinf(x[i]) || std::isinf(y[i])) {
      if (x[i] != y[i]) return false;  // only the same infinity
    } else if (std::abs(x[i] - y[i]) > atol + rtol * std::abs(y[i])) {
      return false;
    }
  }
  return true;
}

}  // namespace xg

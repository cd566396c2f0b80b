// Tensor basics: factories, queries, dtypes, shared storage, formatting, in-place updates.
#include "helpers.hpp"

using namespace xg;

TEST_CASE("factories and queries") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dim() == 2);
  CHECK(z.numel() == 6);
  CHECK(z.dtype() == Dtype::f32);
  CHECK(z.size(-1) == 3);
  CHECK(z.to_vector<float>() == std::vector<float>(6, 0.f));
  CHECK(ones({2}, Dtype::f64).to_vector<double>() == std::vector<double>{1, 1});
  CHECK(full({2}, 7, Dtype::i64).to_vector<int64_t>() == std::vector<int64_t>{7, 7});
  CHECK(arange(4).to_vector<float>() == std::vector<float>{0, 1, 2, 3});
  Tensor v = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(v.dtype() == Dtype::f64);
  CHECK(from_vector<int64_t>({1, 2}).dtype() == Dtype::i64);
  CHECK(scalar_tensor(2.5).item<float>() == 2.5f);
  CHECK(scalar_tensor(2.5).dim() == 0);
  CHECK_FALSE(Tensor().defined());
}

TEST_CASE("random factories repeat under manual_seed") {
  manual_seed(42);
  Tensor a = randn({100});
  manual_seed(42);
  Tensor b = randn({100});
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  Tensor u = rand({1000}, Dtype::f64);
  auto uv = u.to_vector<double>();
  CHECK(*std::min_element(uv.begin(), uv.end()) >= 0.0);
  CHECK(*std::max_element(uv.begin(), uv.end()) < 1.0);
  double m = mean(randn({20000}, Dtype::f64)).item<double>();
  CHECK(std::abs(m) < 0.05);
  auto ri = randint(3, 5, {100}).to_vector<int64_t>();
  CHECK(*std::min_element(ri.begin(), ri.end()) >= 3);
  CHECK(*std::max_element(ri.begin(), ri.end()) <= 4);
}

TEST_CASE("copies share storage; clone and detach") {
  Tensor a = zeros({3});
  Tensor b = a;  // handle copy
  b.fill_(2);
  CHECK(a.to_vector<float>() == std::vector<float>{2, 2, 2});
  Tensor c = a.clone();
  c.fill_(5);
  CHECK(a.to_vector<float>() == std::vector<float>{2, 2, 2});
  Tensor r = reshape(a, {3, 1});  // reshape shares storage
  a.fill_(9);
  CHECK(r.to_vector<float>() == std::vector<float>{9, 9, 9});
  Tensor x = ones({2});
  x.requires_grad_();
  Tensor d = (x * 2.0).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
}

TEST_CASE("dtype conversion and promotion") {
  Tensor i = from_vector<int64_t>({1, 2, 3});
  Tensor f = i.to(Dtype::f32);
  CHECK(f.to_vector<float>() == std::vector<float>{1, 2, 3});
  CHECK((i + ones({3})).dtype() == Dtype::f32);
  CHECK((ones({3}) + ones({3}, Dtype::f64)).dtype() == Dtype::f64);
  CHECK((i + i).dtype() == Dtype::i64);
  CHECK((i / i).dtype() == Dtype::f32);  // true division, as PyTorch
  CHECK((i * 0.5).dtype() == Dtype::f32);
  CHECK((i * 2.0).dtype() == Dtype::i64);
}

TEST_CASE("in-place updates") {
  Tensor a = ones({3});
  a.add_(full({3}, 2.0), 0.5);
  CHECK(a.to_vector<float>() == std::vector<float>{2, 2, 2});
  a.mul_(3);
  CHECK(a.to_vector<float>() == std::vector<float>{6, 6, 6});
  a.copy_(from_vector<double>({1, 2, 3}));
  CHECK(a.to_vector<float>() == std::vector<float>{1, 2, 3});
  a.zero_();
  CHECK(a.to_vector<float>() == std::vector<float>{0, 0, 0});
}

TEST_CASE("formatting") {
  Tensor a = from_vector<float>({1, 2, 3, 4}, {2, 2});
  std::string s = fmt::format("{}", a);
  CHECK(s.find("1.0000") != std::string::npos);
  CHECK(s.find("shape=[2,2]") != std::string::npos);
  CHECK(s.find("dtype=f32") != std::string::npos);
  CHECK(fmt::format("{}", from_vector<int64_t>({3, 4})).find("[3, 4]") != std::string::npos);
  std::string big = fmt::format("{}", zeros({100, 100}));
  CHECK(big.find("...") != std::string::npos);
  CHECK(big.size() < 2000);
  Tensor x = ones({1});
  x.requires_grad_();
  CHECK(fmt::format("{}", x * 2.0).find("grad_fn=mul") != std::string::npos);
  CHECK(fmt::format("{}", Shape{1, 2}) == "[1,2]");
}

TEST_CASE("tensor errors") {
  CHECK_ERROR(from_vector<float>({1, 2, 3}, {2, 2}), "from_vector: 3 values do not fill shape [2,2]");
  CHECK_ERROR(zeros({2}).item<float>(), "item: tensor with 2 elements");
  CHECK_ERROR(zeros({2}).data<double>(), "data: tensor has dtype f32, accessed as f64");
  CHECK_ERROR(zeros({2}, Dtype::i64).requires_grad_(), "requires_grad_: only floating tensors");
  CHECK_ERROR(zeros({-1}), "negative size");
  CHECK_ERROR(zeros({int64_t(1) << 40, int64_t(1) << 40}), "more elements than can be addressed");
  CHECK_ERROR(Tensor().shape(), "undefined tensor");
  CHECK_ERROR(zeros({2}).copy_(zeros({3})), "copy_: source shape [3] does not match destination shape [2]");
  CHECK_ERROR(zeros({2}).size(3), "size: dim 3 out of range");
}

TEST_CASE("caching allocator: large blocks of every size class are valid, reused and released") {
  // Sizes in the 64 KiB-step classes above 4 MiB are not multiples of the 2 MiB huge-page alignment;
  // aligned_alloc must not be asked for that alignment there (AddressSanitizer aborts on it).
  for (std::size_t bytes : {std::size_t{1} << 20, (std::size_t{4} << 20) + 4, (std::size_t{6} << 20) + 65536 * 3,
                            (std::size_t{17} << 20) + 12}) {
    CAPTURE(bytes);
    void* p = detail::alloc_bytes(bytes);
    REQUIRE(p != nullptr);
    static_cast<unsigned char*>(p)[bytes - 1] = 1;  // the whole block is usable
    detail::free_bytes(p, bytes);
    const std::size_t hits = cache_stats().hits;
    void* q = detail::alloc_bytes(bytes);
    CHECK(cache_stats().hits == hits + 1);  // the freed block came back
    detail::free_bytes(q, bytes);
  }
  empty_cache();
  CHECK(cache_stats().cached_bytes == 0);
}

TEST_CASE("caching allocator: a request with no free block of its size borrows one up to twice as large") {
  empty_cache();
  constexpr std::size_t MiB = std::size_t{1} << 20;
  void* big = detail::alloc_bytes(4 * MiB);
  detail::free_bytes(big, 4 * MiB);
  REQUIRE(cache_stats().cached_bytes == 4 * MiB);
  // 1.5 MiB finds no 1.5 MiB block and 4 MiB is more than twice its size: a new block.
  void* small = detail::alloc_bytes(3 * MiB / 2);
  CHECK(small != big);
  CHECK(cache_stats().cached_bytes == 4 * MiB);
  // 3 MiB borrows the 4 MiB block, usable to its end, and gives it back to its own size.
  const std::size_t hits = cache_stats().hits;
  void* lent = detail::alloc_bytes(3 * MiB);
  CHECK(lent == big);
  CHECK(cache_stats().hits == hits + 1);
  CHECK(cache_stats().cached_bytes == 0);
  std::memset(lent, 1, 3 * MiB);
  detail::free_bytes(lent, 3 * MiB);
  CHECK(cache_stats().cached_bytes == 4 * MiB);
  void* again = detail::alloc_bytes(4 * MiB);  // an exact fit again, not a new block
  CHECK(again == big);
  // With 3.5 and 4 MiB both free, 3 MiB borrows the smaller.
  void* mid = detail::alloc_bytes(7 * MiB / 2);
  CHECK(mid != big);
  detail::free_bytes(mid, 7 * MiB / 2);
  detail::free_bytes(again, 4 * MiB);
  void* best = detail::alloc_bytes(3 * MiB);
  CHECK(best == mid);
  detail::free_bytes(best, 3 * MiB);
  detail::free_bytes(small, 3 * MiB / 2);
  CHECK(cache_stats().cached_bytes == 4 * MiB + 7 * MiB / 2 + 3 * MiB / 2);
  empty_cache();
  CHECK(cache_stats().cached_bytes == 0);
}

// Tests of xg::data's Dataset interface and transforms: values on tiny hand-made images, the batched
// path against the per-example one, any tensor pairs, several workers, and every bad input.
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "data_fixtures.hpp"

using namespace xg;
using namespace xg::data;
using namespace xg::test::data_fixtures;
namespace T = xg::data::transforms;

namespace {

Tensor image(std::vector<float> v, Shape s) { return from_vector(v, s); }

// A generator whose first two draws below(3) are both 0: a shift of (-1, -1) with max_shift 1.
std::mt19937_64 rng_for_shift_minus_one() {
  for (uint64_t seed = 0;; ++seed) {
    std::mt19937_64 r(seed), probe(seed);
    if (T::below(probe, 3) == 0 && T::below(probe, 3) == 0) return r;
  }
}

// Not images: example i is data [i, -i] (f32 [2]) with target 0.5 * i (f32 0-d).
struct Pairs : Dataset {
  int64_t n;
  explicit Pairs(int64_t n_) : n(n_) {}
  int64_t size() const override { return n; }
  Example get(int64_t i) const override {
    check_index("Pairs", i, n);
    return {from_vector(std::vector<float>{float(i), -float(i)}, {2}), scalar_tensor(0.5 * double(i))};
  }
};

// Examples of different sizes, as image files are before a Resize.
struct Ragged : Dataset {
  int64_t size() const override { return 4; }
  Example get(int64_t i) const override { return {zeros({1, 2 + i, 3}), scalar_tensor(double(i), Dtype::i64)}; }
};

std::vector<int64_t> firsts(const std::vector<Batch>& batches) {
  std::vector<int64_t> v;
  for (const Batch& b : batches) {
    const auto x = b.images.to_vector<float>();
    for (size_t i = 0; i < x.size(); i += 2) v.push_back(static_cast<int64_t>(x[i]));
  }
  return v;
}

}  // namespace

TEST_CASE("transforms: values on tiny hand-made images") {
  // 1 channel, 3x3: 0 1 2 / 3 4 5 / 6 7 8.
  const Tensor x = image({0, 1, 2, 3, 4, 5, 6, 7, 8}, {1, 3, 3});
  auto rng = rng_for_shift_minus_one();
  T::Context ctx{rng, 0, 0, 0};
  auto r2 = rng;
  T::Context ctx2{r2, 0, 0, 0};
  // Shifted by (-1, -1): reflection mirrors across the edge without repeating it; zero padding is black.
  CHECK(T::RandomTranslate(1)(x, ctx).to_vector<float>() == std::vector<float>{4, 3, 4, 1, 0, 1, 4, 3, 4});
  CHECK(T::RandomCrop(3, {.padding = 1})(x, ctx2).to_vector<float>() == std::vector<float>{0, 0, 0, 0, 0, 1, 0, 3, 4});
  std::mt19937_64 any(1);
  T::Context c{any, 0, 0, 0};
  CHECK(T::RandomHorizontalFlip(1.0)(x, c).to_vector<float>() == std::vector<float>{2, 1, 0, 5, 4, 3, 8, 7, 6});
  CHECK(T::RandomHorizontalFlip(0.0)(x, c).to_vector<float>() == x.to_vector<float>());
  CHECK(T::CenterCrop(1)(x, c).to_vector<float>() == std::vector<float>{4});
  CHECK(T::CenterCrop(2, 3)(x, c).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});  // round(0.5) = 0
  CHECK(T::CenterCrop(4, 3)(x, c).to_vector<float>() ==
        std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0});  // larger: zero padding, below (PyTorch's split)
  // A 3x3 window cut from 5x5 padding at every draw: each is one of the 9 positions.
  CHECK(T::RandomCrop(1, 1)(x, c).shape() == Shape{1, 1, 1});
  // Normalize: (x - mean) / std per channel.
  const Tensor rgb = image({0.5f, 1.0f, 0.2f, 0.4f}, {2, 1, 2});
  CHECK(T::Normalize({0.5f, 0.2f}, {0.25f, 0.1f})(rgb, c).to_vector<float>() == std::vector<float>{0, 2, 0, 2});
  // Bilinear, half-pixel centres (PyTorch's align_corners=False): 2x2 -> 4x4.
  const Tensor up = T::Resize(4, 4)(image({0, 1, 2, 3}, {1, 2, 2}), c);
  CHECK(up.to_vector<float>() == std::vector<float>{0, 0.25f, 0.75f, 1, 0.5f, 0.75f, 1.25f, 1.5f,
                                                    1.5f, 1.75f, 2.25f, 2.5f, 2, 2.25f, 2.75f, 3});
  CHECK(T::Resize(2)(zeros({3, 4, 8}), c).shape() == Shape{3, 2, 4});  // shorter side to 2
  CHECK(T::Resize(2)(zeros({3, 8, 4}), c).shape() == Shape{3, 4, 2});
  CHECK(T::Resize(1, 1)(image({0, 1, 2, 3}, {1, 2, 2}), c).to_vector<float>() == std::vector<float>{1.5f});
  // Compose runs in order: flip then crop the centre column.
  CHECK(T::Compose({T::RandomHorizontalFlip(1.0), T::CenterCrop(3, 1)})(x, c).to_vector<float>() ==
        std::vector<float>{1, 4, 7});
  // Alternating flip: the same half flips in even epochs, the other half in odd ones.
  int64_t flipped0 = 0;
  for (int64_t i = 0; i < 200; ++i) {
    CHECK(T::AlternatingFlip::flips(7, 0, i) != T::AlternatingFlip::flips(7, 1, i));
    CHECK(T::AlternatingFlip::flips(7, 0, i) == T::AlternatingFlip::flips(7, 2, i));
    flipped0 += T::AlternatingFlip::flips(7, 0, i);
  }
  CHECK(flipped0 > 70);
  CHECK(flipped0 < 130);
}

TEST_CASE("transforms: the batched uint8 path gives the per-example path's bits") {
  auto ds = synthetic(37);
  const Normalization norm = compute_mean_std(Subset(ds));
  const std::vector<T::AnyTransform> pipelines{
      T::AnyTransform(),
      T::Normalize(norm),
      T::Compose({T::RandomCrop(32, {.padding = 4}), T::RandomHorizontalFlip(), T::Normalize(norm)}),
      T::Compose({T::RandomTranslate(2), T::AlternatingFlip(), T::Normalize(norm)}),
      T::Compose({T::RandomCrop(32, {.padding = 3, .padding_mode = "reflect"}), T::RandomHorizontalFlip(0.3)}),
  };
  for (size_t k = 0; k < pipelines.size(); ++k) {
    CAPTURE(k);
    DataLoaderOptions o{.batch_size = 8, .transform = pipelines[k], .seed = 4, .num_workers = 0};
    DataLoader fused(Subset(ds), o);
    o.fused = false;
    DataLoader generic(Subset(ds), o);
    CHECK(fused.is_fused());
    CHECK(!generic.is_fused());
    for (int64_t e = 0; e < 2; ++e) CHECK(same_bits(whole_epoch(fused, e), whole_epoch(generic, e)));
  }
  // What the batched path cannot do exactly it leaves to the per-example path.
  DataLoader flip_first(Subset(ds), {.transform = T::Compose({T::RandomHorizontalFlip(), T::RandomCrop(32, 4)})});
  CHECK(!flip_first.is_fused());
  DataLoader smaller(Subset(ds), {.transform = T::RandomCrop(28)});
  CHECK(!smaller.is_fused());
  CHECK(whole_epoch(smaller, 0).at(0).images.shape() == Shape{37, 3, 28, 28});
}

TEST_CASE("loader: any tensor pairs, drop_last, shuffle coverage and seeds") {
  auto ds = std::make_shared<const Pairs>(23);
  DataLoader plain(ds, {.batch_size = 5, .shuffle = false});
  const auto b = whole_epoch(plain, 0);
  REQUIRE(b.size() == 5);
  CHECK(b[0].images.shape() == Shape{5, 2});
  CHECK(b[0].labels.shape() == Shape{5});
  CHECK(b[4].labels.to_vector<float>() == std::vector<float>{10, 10.5f, 11});
  CHECK(b[1].images.to_vector<float>() == std::vector<float>{5, -5, 6, -6, 7, -7, 8, -8, 9, -9});

  DataLoader drop(ds, {.batch_size = 5, .drop_last = true, .seed = 1});
  CHECK(drop.num_batches() == 4);
  CHECK(drop.size() == 20);
  std::set<int64_t> seen;
  for (int64_t e = 0; e < 6; ++e) {
    const auto v = firsts(whole_epoch(drop, e));
    CHECK(v.size() == 20);
    CHECK(std::set<int64_t>(v.begin(), v.end()).size() == 20);  // no repeats within an epoch
    seen.insert(v.begin(), v.end());
  }
  CHECK(seen.size() == 23);  // over epochs the dropped tail changes: every example is visited
  for (int64_t workers : {0, 1, 3}) {
    CAPTURE(workers);
    DataLoader a(ds, {.batch_size = 4, .seed = 9, .num_workers = workers}), again(ds, {.batch_size = 4, .seed = 9});
    DataLoader other(ds, {.batch_size = 4, .seed = 10, .num_workers = workers});
    CHECK(same_bits(whole_epoch(a, 3), whole_epoch(again, 3)));
    CHECK(!same_bits(whole_epoch(a, 3), whole_epoch(other, 3)));
    CHECK(!same_bits(whole_epoch(a, 3), whole_epoch(a, 4)));
  }
}

TEST_CASE("loader: several workers give the batches in order, errors included") {
  auto ds = synthetic(64);
  const Normalization norm = compute_mean_std(Subset(ds));
  DataLoaderOptions o{.batch_size = 4,
                      .transform = T::Compose({T::RandomTranslate(2), T::RandomHorizontalFlip(), T::Normalize(norm)}),
                      .seed = 8, .num_workers = 0, .fused = false};
  DataLoader one(Subset(ds), o);
  o.num_workers = 3;
  o.prefetch_depth = 1;
  DataLoader three(Subset(ds), o);
  for (int64_t e = 0; e < 3; ++e) {
    const auto want = whole_epoch(one, e);
    std::vector<Batch> got;
    three.start_epoch(e);
    while (auto b = three.next()) {
      if (got.size() % 5 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the workers run ahead
      got.push_back(*b);
    }
    CHECK(same_bits(got, want));
  }
  o.batch_transform = [](Batch& b) {
    if (b.labels.to_vector<int64_t>()[0] == label_of(8)) throw std::runtime_error("bad batch");
  };
  o.shuffle = false;
  DataLoader failing(Subset(ds), o);
  failing.start_epoch(0);
  CHECK(failing.next().has_value());  // batches 0 and 1 arrive although a worker failed batch 2 early
  CHECK(failing.next().has_value());
  CHECK_ERROR(failing.next(), "DataLoader: preparing batch 2 failed: bad batch");
  CHECK_ERROR(failing.next(), "DataLoader: preparing batch 2 failed: bad batch");
  for (int i = 0; i < 10; ++i) {
    DataLoader l(Subset(ds), o);
    l.start_epoch(i);
  }  // destroyed with three workers mid-epoch
}

TEST_CASE("transforms: bad input names the transform and the values") {
  std::mt19937_64 rng(0);
  T::Context c{rng, 0, 0, 0};
  const Tensor x = zeros({3, 8, 8});
  CHECK_ERROR(T::RandomCrop(10)(x, c), "RandomCrop: crop 10x10 is larger than the padded image 8x8");
  CHECK_ERROR(T::RandomCrop(8, {.padding = 8, .padding_mode = "reflect"})(x, c),
              "RandomCrop: reflect padding 8 needs an image larger than 8 pixels, got 8x8");
  CHECK_ERROR(T::RandomCrop(8, {.padding_mode = "edge"}), "RandomCrop: padding_mode must be 'constant' or 'reflect', got 'edge'");
  CHECK_ERROR(T::RandomCrop(0), "RandomCrop: size must be positive, got 0x0");
  CHECK_ERROR(T::RandomCrop(8, {.padding = -1}), "RandomCrop: padding must be >= 0, got -1");
  CHECK_ERROR(T::RandomTranslate(-1), "RandomTranslate: max_shift must be >= 0, got -1");
  CHECK_ERROR(T::RandomTranslate(8)(x, c), "RandomTranslate: max_shift 8 needs an image larger than 8 pixels, got 8x8");
  CHECK_ERROR(T::RandomHorizontalFlip(1.5), "RandomHorizontalFlip: p must be in [0, 1], got 1.5");
  CHECK_ERROR(T::Normalize({0.5f}, {0.2f, 0.2f}), "Normalize: needs one mean and one std per channel, got 1 means and 2 stds");
  CHECK_ERROR(T::Normalize({0.5f}, {0.0f}), "Normalize: channel 0 needs a finite mean and a positive std, got mean 0.5 std 0");
  CHECK_ERROR(T::Normalize({0.5f}, {0.2f})(x, c), "Normalize: 1 channel statistics for an image of shape [3,8,8]");
  CHECK_ERROR(T::Resize(0), "Resize: size must be positive, got 0");
  CHECK_ERROR(T::Resize(2, -1), "Resize: size must be positive, got 2x-1");
  CHECK_ERROR(T::CenterCrop(0), "CenterCrop: size must be positive, got 0x0");
  CHECK_ERROR(T::Resize(4)(zeros({8, 8}), c), "Resize: input must be an f32 image [C, H, W], got f32 [8,8]");
  CHECK_ERROR(T::RandomHorizontalFlip()(zeros({3, 4, 4}, Dtype::f64), c),
              "RandomHorizontalFlip: input must be an f32 image [C, H, W], got f64 [3,4,4]");
  CHECK_ERROR(T::AlternatingFlip()(Tensor(), c), "AlternatingFlip: input must be an f32 image [C, H, W], got undefined");
  // Examples of different shapes cannot be stacked without a Resize or CenterCrop.
  auto ragged = std::make_shared<const Ragged>();
  DataLoader l(ragged, {.batch_size = 4, .shuffle = false, .num_workers = 0});
  l.start_epoch(0);
  CHECK_ERROR(l.next(), "DataLoader: example 1 (index 1) has data f32 [1,3,3], the first example f32 [1,2,3]");
  DataLoader fixed(ragged, {.batch_size = 4, .transform = T::Resize(2, 2)});
  CHECK(whole_epoch(fixed, 0).at(0).images.shape() == Shape{4, 1, 2, 2});
  CHECK_ERROR(Subset(ragged).image(0), "Subset: the dataset holds no in-memory images");
  CHECK_ERROR(Subset(ragged).get(4), "Subset::get: index 4 out of range for 4 examples");
  CHECK_ERROR(synthetic(3)->get(3), "ImageDataset::get: index 3 out of range for 3 examples");
  CHECK_ERROR(PixelTable(Normalization{{0.5f}, {0.5f}}, 3), "Normalization: 1 means and 1 stds for images of 3 channels");
}

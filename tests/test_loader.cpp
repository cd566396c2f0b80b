// Tests of xg::data's transforms and DataLoader: crop/flip, normalisation, order, determinism, prefetch.
#include <atomic>
#include <chrono>
#include <numeric>
#include <set>
#include <thread>

#include "data_fixtures.hpp"

using namespace xg;
using namespace xg::data;
using namespace xg::test::data_fixtures;

namespace {
// RandomCrop(32, padding 4) then RandomHorizontalFlip, then normalisation when given: the CIFAR recipe.
transforms::AnyTransform crop_flip(const Normalization& norm = {}) {
  std::vector<transforms::AnyTransform> list{transforms::RandomCrop(32, {.padding = 4}),
                                             transforms::RandomHorizontalFlip()};
  if (!norm.mean.empty()) list.push_back(transforms::Normalize(norm));
  return transforms::Compose(list);
}
}  // namespace

TEST_CASE("loader: crop with zero padding and flip read the right source pixels") {
  // A gradient image: R grows along x, G along y, B is constant.
  std::vector<uint8_t> src(kImageBytes);
  for (int64_t y = 0; y < kH; ++y)
    for (int64_t x = 0; x < kW; ++x) {
      src[static_cast<size_t>(0 * 1024 + y * 32 + x)] = static_cast<uint8_t>(8 * x);
      src[static_cast<size_t>(1 * 1024 + y * 32 + x)] = static_cast<uint8_t>(8 * y);
      src[static_cast<size_t>(2 * 1024 + y * 32 + x)] = 100;
    }
  const PixelTable table;
  std::vector<float> dst(kImageBytes);
  auto at = [&](int64_t c, int64_t y, int64_t x) { return dst[static_cast<size_t>((c * 32 + y) * 32 + x)] * 255.0f; };

  transform_image(src.data(), dst.data(), {.flip = true}, table);
  CHECK(at(0, 0, 0) == doctest::Approx(248));  // the flipped gradient runs the other way
  CHECK(at(0, 7, 31) == doctest::Approx(0));
  CHECK(at(0, 3, 10) == doctest::Approx(8 * 21));
  CHECK(at(1, 5, 0) == doctest::Approx(40));  // rows are untouched

  transform_image(src.data(), dst.data(), {.dy = 4, .dx = -2}, table);
  CHECK(at(1, 0, 5) == doctest::Approx(32));  // output row 0 reads row 4
  CHECK(at(0, 9, 0) == 0.0f);                 // x - 2 < 0: padding
  CHECK(at(2, 9, 1) == 0.0f);
  CHECK(at(0, 9, 2) == doctest::Approx(0));  // reads column 0
  CHECK(at(0, 9, 31) == doctest::Approx(8 * 29));
  CHECK(at(2, 28, 5) == 0.0f);  // y + 4 > 31: padding
  CHECK(at(2, 27, 5) == doctest::Approx(100));

  // Every offset in [-4, 4]^2 with and without flip agrees with pad-then-crop-then-flip done naively.
  for (int64_t dy = -4; dy <= 4; ++dy)
    for (int64_t dx = -4; dx <= 4; ++dx)
      for (bool flip : {false, true}) {
        transform_image(src.data(), dst.data(), {.dy = dy, .dx = dx, .flip = flip}, table);
        int64_t wrong = 0;
        for (int64_t c = 0; c < kC; ++c)
          for (int64_t y = 0; y < kH; ++y)
            for (int64_t x = 0; x < kW; ++x) {
              const int64_t cx = flip ? kW - 1 - x : x;         // column of the cropped window
              const int64_t py = y + dy + 4, px = cx + dx + 4;  // position in the 40x40 padded image
              const bool inside = py >= 4 && py < 36 && px >= 4 && px < 36;
              const float want = inside ? src[static_cast<size_t>((c * 32 + py - 4) * 32 + px - 4)] : 0.0f;
              wrong += at(c, y, x) != doctest::Approx(want);
            }
        CHECK_MESSAGE(wrong == 0, "dy " << dy << " dx " << dx << " flip " << flip);
      }
}

TEST_CASE("loader: channel statistics and normalisation") {
  // R: image 0 all 0, image 1 all 255 -> mean 0.5, std 0.5. G: all 51 -> mean 0.2, std 0.
  // B: alternating 0 / 102 in both images -> mean 0.2, std 0.2.
  std::vector<uint8_t> images(2 * kImageBytes);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t p = 0; p < 1024; ++p) {
      images[static_cast<size_t>(i * kImageBytes + p)] = i == 0 ? 0 : 255;
      images[static_cast<size_t>(i * kImageBytes + 1024 + p)] = 51;
      images[static_cast<size_t>(i * kImageBytes + 2048 + p)] = p % 2 == 0 ? 0 : 102;
    }
  auto ds = std::make_shared<const CIFAR10>(CIFAR10::from_memory(images, {0, 1}));
  Normalization n = compute_mean_std(Subset(ds));
  CHECK(n.mean[0] == doctest::Approx(0.5));
  CHECK(n.std[0] == doctest::Approx(0.5));
  CHECK(n.mean[1] == doctest::Approx(0.2));
  CHECK(n.std[1] == doctest::Approx(0.0));
  CHECK(n.mean[2] == doctest::Approx(0.2));
  CHECK(n.std[2] == doctest::Approx(0.2));
  CHECK_ERROR(transforms::Normalize(n), "Normalize: channel 1 needs a finite mean and a positive std, got mean 0.2 std 0");
  CHECK_ERROR(PixelTable(n), "Normalization: channel 1 needs a finite mean and a positive std");
  CHECK_ERROR(compute_mean_std(Subset(ds).first(0)), "compute_mean_std: empty dataset");

  // Normalised with its own statistics, a dataset has mean 0 and std 1 per channel.
  auto syn = synthetic(30);
  const Normalization stats = compute_mean_std(Subset(syn));
  DataLoader loader(Subset(syn), {.batch_size = 30, .shuffle = false, .transform = transforms::Normalize(stats)});
  const auto v = whole_epoch(loader, 0).at(0).images.to_vector<float>();
  for (int64_t c = 0; c < kC; ++c) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < 30; ++i)
      for (int64_t p = 0; p < 1024; ++p) {
        const double x = v[static_cast<size_t>((i * 3 + c) * 1024 + p)];
        s += x;
        s2 += x * x;
      }
    CHECK(s / 30720 == doctest::Approx(0.0).epsilon(1e-5).scale(1));
    CHECK(s2 / 30720 == doctest::Approx(1.0).epsilon(1e-4));
  }
  CHECK(v[0] == doctest::Approx((0.0f - stats.mean[0]) / stats.std[0]));  // record 0, R, first pixel is 0
}

TEST_CASE("loader: batch counts with and without drop_last") {
  auto ds = synthetic(30);
  DataLoader keep(Subset(ds), {.batch_size = 8});
  CHECK(keep.num_batches() == 4);
  CHECK(keep.size() == 30);
  std::vector<int64_t> sizes;
  for (Batch& b : keep.epoch(0)) {
    CHECK(b.images.shape() == Shape{b.labels.numel(), 3, 32, 32});
    sizes.push_back(b.labels.numel());
  }
  CHECK(sizes == std::vector<int64_t>{8, 8, 8, 6});

  DataLoader drop(Subset(ds), {.batch_size = 8, .drop_last = true});
  CHECK(drop.num_batches() == 3);
  CHECK(drop.size() == 24);
  CHECK(whole_epoch(drop, 0).size() == 3);

  DataLoader exact(Subset(ds), {.batch_size = 10, .drop_last = true});
  CHECK(whole_epoch(exact, 0).size() == 3);
  DataLoader empty(Subset(ds).first(0), {.batch_size = 4});
  CHECK(empty.num_batches() == 0);
  CHECK(whole_epoch(empty, 0).empty());
}

TEST_CASE("loader: shuffling is a permutation, fixed by the seed, new every epoch") {
  auto ds = synthetic(30);
  auto visited = [&](DataLoader& l, int64_t epoch) {
    std::vector<int64_t> recs;
    for (const Batch& b : whole_epoch(l, epoch)) {
      const float* x = b.images.data<float>();
      const auto y = b.labels.to_vector<int64_t>();
      for (int64_t i = 0; i < b.labels.numel(); ++i) {
        recs.push_back(record_of(x + i * kImageBytes));
        CHECK(y[static_cast<size_t>(i)] == label_of(recs.back()));  // labels travel with their images
      }
    }
    return recs;
  };
  DataLoader a(Subset(ds), {.batch_size = 7, .seed = 3}), b(Subset(ds), {.batch_size = 7, .seed = 3});
  DataLoader c(Subset(ds), {.batch_size = 7, .seed = 4});
  const auto e0 = visited(a, 0), e1 = visited(a, 1);
  std::vector<int64_t> sorted = e0, all(30);
  std::sort(sorted.begin(), sorted.end());
  std::iota(all.begin(), all.end(), int64_t{0});
  CHECK(sorted == all);
  CHECK(e0 == a.epoch_order(0));
  CHECK(e0 != all);
  CHECK(e1 != e0);
  CHECK(visited(b, 1) == e1);  // same seed and epoch: same order, whichever epochs ran before
  CHECK(visited(b, 0) == e0);
  CHECK(visited(c, 0) != e0);
  DataLoader ordered(Subset(ds), {.batch_size = 7, .shuffle = false});
  CHECK(visited(ordered, 5) == all);

  // A subset's loader visits the subset's images only.
  Split s = train_val_split(ds, 10);
  DataLoader val(s.val, {.batch_size = 4, .seed = 9});
  const auto v = visited(val, 0);
  CHECK(std::set<int64_t>(v.begin(), v.end()) == std::set<int64_t>{20, 21, 22, 23, 24, 25, 26, 27, 28, 29});
}

TEST_CASE("loader: augmentation draws crops and flips from the allowed set, deterministically") {
  auto ds = synthetic(30);
  const DataLoaderOptions opts{
      .batch_size = 16, .shuffle = false, .transform = crop_flip(), .seed = 11};
  DataLoader loader(Subset(ds), opts);
  const auto batches = whole_epoch(loader, 0);
  const PixelTable table;
  std::vector<float> want(kImageBytes);
  std::set<std::tuple<int64_t, int64_t, bool>> seen;
  for (size_t bi = 0; bi < batches.size(); ++bi) {
    const float* x = batches[bi].images.data<float>();
    for (int64_t i = 0; i < batches[bi].labels.numel(); ++i) {
      const int64_t r = static_cast<int64_t>(bi) * 16 + i;  // unshuffled
      bool found = false;
      for (int64_t dy = -4; dy <= 4 && !found; ++dy)
        for (int64_t dx = -4; dx <= 4 && !found; ++dx)
          for (bool flip : {false, true}) {
            transform_image(ds->image(r), want.data(), {dy, dx, flip}, table);
            if (std::equal(want.begin(), want.end(), x + i * kImageBytes)) {
              found = true;
              seen.insert({dy, dx, flip});
              break;
            }
          }
      CHECK_MESSAGE(found, "image " << r << " is no crop/flip of its record");
    }
  }
  CHECK(seen.size() > 10);  // 30 draws from 162 choices
  DataLoader again(Subset(ds), opts);
  CHECK(same_bits(whole_epoch(again, 0), batches));
  CHECK(!same_bits(whole_epoch(again, 1), batches));
}

TEST_CASE("loader: the same batches with and without the prefetch thread") {
  auto ds = synthetic(30);
  DataLoaderOptions opts{.batch_size = 8,
                         .transform = crop_flip(compute_mean_std(Subset(ds))),
                         .seed = 5,
                         .num_workers = 0};
  DataLoader sync(Subset(ds), opts);
  opts.num_workers = 1;
  DataLoader deep(Subset(ds), opts);
  opts.prefetch_depth = 1;
  DataLoader shallow(Subset(ds), opts);
  for (int64_t e = 0; e < 3; ++e) {
    const auto want = whole_epoch(sync, e);
    CHECK(same_bits(whole_epoch(deep, e), want));
    // A slow consumer lets the worker run ahead and fill its queue: still the same batches.
    std::vector<Batch> slow;
    shallow.start_epoch(e);
    while (auto b = shallow.next()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      slow.push_back(*b);
    }
    CHECK(same_bits(slow, want));
    CHECK(!shallow.next().has_value());  // stays at the end
  }
}

TEST_CASE("loader: a new epoch or a resume mid-epoch, and destruction mid-epoch, are clean") {
  auto ds = synthetic(30);
  const DataLoaderOptions opts{.batch_size = 4, .transform = transforms::RandomHorizontalFlip(), .seed = 2};
  DataLoader a(Subset(ds), opts), fresh(Subset(ds), opts);
  a.start_epoch(0);
  REQUIRE(a.next().has_value());
  CHECK(same_bits(whole_epoch(a, 1), whole_epoch(fresh, 1)));
  // Resuming mid-epoch gives the rest of the same epoch.
  const auto full = whole_epoch(fresh, 2);
  for (bool prefetch : {true, false}) {
    DataLoaderOptions o = opts;
    o.num_workers = prefetch ? 1 : 0;
    DataLoader resumed(Subset(ds), o);
    std::vector<Batch> rest;
    resumed.start_epoch(2, 5);
    while (auto b = resumed.next()) rest.push_back(*b);
    CHECK(same_bits(rest, std::vector<Batch>(full.begin() + 5, full.end())));
    resumed.start_epoch(2, resumed.num_batches());
    CHECK(!resumed.next().has_value());
  }
  CHECK_ERROR(fresh.start_epoch(0, 9), "DataLoader: first_batch must be in [0, 8], got 9");
  for (int i = 0; i < 20; ++i) {
    DataLoader l(Subset(ds), opts);
    l.start_epoch(static_cast<int64_t>(i));
    if (i % 2 == 0) REQUIRE(l.next().has_value());
  }  // each destructor stops a worker that is mid-epoch
  DataLoader never_started(Subset(ds), opts);
  CHECK(never_started.num_batches() == 8);
}

TEST_CASE("loader: errors on the prefetch thread reach the consumer as xg::Error") {
  auto ds = synthetic(30);
  std::atomic<bool> fail_now{true};
  for (bool prefetch : {true, false}) {
    CAPTURE(prefetch);
    DataLoaderOptions opts{.batch_size = 8, .shuffle = false, .seed = 1, .num_workers = prefetch ? 1 : 0};
    opts.batch_transform = [&](Batch& b) {
      if (fail_now && b.labels.to_vector<int64_t>()[0] == label_of(16)) throw std::runtime_error("boom");
    };
    DataLoader loader(Subset(ds), opts);
    fail_now = true;
    loader.start_epoch(0);
    CHECK(loader.next().has_value());
    CHECK(loader.next().has_value());
    CHECK_ERROR(loader.next(), "DataLoader: preparing batch 2 failed: boom");
    if (prefetch) CHECK_ERROR(loader.next(), "DataLoader: preparing batch 2 failed: boom");
    fail_now = false;
    CHECK(whole_epoch(loader, 0).size() == 4);  // a new epoch starts clean

    opts.batch_transform = [](Batch&) { xg::fail("augment: custom failure"); };
    DataLoader xg_error(Subset(ds), opts);
    xg_error.start_epoch(0);
    CHECK_ERROR(xg_error.next(), "augment: custom failure");  // an xg::Error arrives unchanged
  }
}

TEST_CASE("loader: bad options and misuse") {
  auto ds = synthetic(30);
  CHECK_ERROR(DataLoader(Subset(ds), {.batch_size = 0}), "DataLoader: batch_size must be positive, got 0");
  CHECK_ERROR(DataLoader(Subset(ds), {.batch_size = -3}), "got -3");
  CHECK_ERROR(DataLoader(Subset(ds), {.num_workers = -1}), "DataLoader: num_workers must be in [0, 64], got -1");
  CHECK_ERROR(DataLoader(Subset(ds), {.prefetch_depth = 17}), "DataLoader: prefetch_depth must be in [1, 16], got 17");
  CHECK_ERROR(DataLoader(std::shared_ptr<const Dataset>()), "DataLoader: null dataset");
  DataLoader l{Subset(ds)};
  CHECK_ERROR(l.next(), "DataLoader: call start_epoch(epoch)");
  CHECK_ERROR(l.start_epoch(-1), "DataLoader: epoch must be >= 0, got -1");
  CHECK_ERROR(l.make_batch(l.epoch_order(0), 0, 1), "DataLoader: batch 1 out of range for 1 batches");
}

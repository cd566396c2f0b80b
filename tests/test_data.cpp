// Tests of xg::data's CIFAR10: record decoding, every bad file, directory lookup, splits, the real dataset.
#include "data_fixtures.hpp"

namespace fs = std::filesystem;
using namespace xg;
using namespace xg::data;

using namespace xg::test::data_fixtures;

TEST_CASE("cifar: decodes labels and R, G, B planes from the binary files") {
  TempDir tmp;
  write_dataset(tmp.path);
  CIFAR10 train(tmp.str(), true), test(tmp.str(), false);
  REQUIRE(train.size() == 30);
  REQUIRE(test.size() == 6);
  CHECK(train.images().size() == 30 * 3072);
  for (int64_t r = 0; r < 30; ++r) {
    CHECK(train.label(r) == label_of(r));
    CHECK(std::equal(train.image(r), train.image(r) + kImageBytes, records(r, 1).begin() + 1));
  }
  CHECK(test.label(2) == label_of(102));

  const std::vector<int64_t> idx{17, 3};
  Batch b = train.get_batch(idx);
  CHECK(b.images.shape() == Shape{2, 3, 32, 32});
  CHECK(b.images.dtype() == Dtype::f32);
  CHECK(b.labels.dtype() == Dtype::i64);
  CHECK(b.labels.to_vector<int64_t>() == std::vector<int64_t>{7, 3});
  const auto v = b.images.to_vector<float>();
  // [i, c, y, x] holds record idx[i]'s byte of plane c at row y, column x, scaled to [0, 1].
  for (auto [i, c, y, x] : {std::array<int64_t, 4>{0, 0, 0, 0}, {0, 1, 5, 9}, {1, 2, 31, 31}, {1, 0, 12, 30}})
    CHECK(v[static_cast<size_t>(((i * 3 + c) * 32 + y) * 32 + x)] ==
          doctest::Approx(pixel(idx[static_cast<size_t>(i)], c, y * 32 + x) / 255.0));
  CHECK(*std::max_element(v.begin(), v.end()) <= 1.0f);
  CHECK_ERROR(train.get_batch(std::vector<int64_t>{30}), "CIFAR10: index 30 out of range");
}

TEST_CASE("cifar: every bad file gives a clear error naming the file") {
  TempDir tmp;
  write_dataset(tmp.path);
  const fs::path f3 = tmp.path / "data_batch_3.bin";

  SUBCASE("missing file, with where to get it") {
    fs::remove(f3);
    CHECK_ERROR(CIFAR10(tmp.str(), true), "CIFAR10: missing file " + f3.string());
    CHECK_ERROR(CIFAR10(tmp.str(), true), "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz");
    CHECK_ERROR(CIFAR10((tmp.path / "nowhere").string(), false), "test_batch.bin");
    CIFAR10 test(tmp.str(), false);  // the test split does not need the training files
    CHECK(test.size() == 6);
  }
  SUBCASE("truncated inside a record") {
    fs::resize_file(f3, 6 * 3073 - 100);
    CHECK_ERROR(CIFAR10(tmp.str(), true), f3.string() + " has 18338 bytes, not a multiple of 3073");
  }
  SUBCASE("truncated at a record boundary") {
    write_bytes(f3, records(12, 5));
    CHECK_ERROR(CIFAR10(tmp.str(), true), f3.string() + " has 5 records but data_batch_1.bin has 6");
  }
  SUBCASE("size not a multiple of 3073") {
    write_bytes(f3, std::vector<uint8_t>(3000, 1));
    CHECK_ERROR(CIFAR10(tmp.str(), true), "data_batch_3.bin has 3000 bytes, not a multiple of 3073");
  }
  SUBCASE("label 10") {
    auto bytes = records(12, 6);
    bytes[4 * 3073] = 10;
    write_bytes(f3, bytes);
    CHECK_ERROR(CIFAR10(tmp.str(), true), f3.string() + " record 4 has label 10, labels must be 0..9");
  }
  SUBCASE("a text file of the right size") {
    write_bytes(f3, std::vector<uint8_t>(6 * 3073, 'A'));
    CHECK_ERROR(CIFAR10(tmp.str(), true), f3.string() + " record 0 has label 65");
  }
  SUBCASE("a file far larger than any batch is refused before allocating") {
    fs::resize_file(f3, uintmax_t{100001} * 3073);  // sparse: no disk space used
    CHECK_ERROR(CIFAR10(tmp.str(), true), f3.string() + " has 307303073 bytes, more than 100000 records");
  }
  SUBCASE("empty file") {
    write_bytes(tmp.path / "test_batch.bin", {});
    CHECK_ERROR(CIFAR10(tmp.str(), false), "test_batch.bin is empty");
  }
  SUBCASE("a directory where a file should be") {
    fs::remove(f3);
    fs::create_directory(f3);
    CHECK_ERROR(CIFAR10(tmp.str(), true), "data_batch_3.bin is not a regular file");
  }
  SUBCASE("from_bytes decodes one file's contents and checks it the same way") {
    const auto bytes = records(3, 4);
    CIFAR10 d = CIFAR10::from_bytes(bytes);
    CHECK(d.size() == 4);
    CHECK(d.label(1) == label_of(4));
    CHECK(std::equal(d.image(3), d.image(3) + kImageBytes, bytes.begin() + 3 * 3073 + 1));
    CHECK_ERROR(CIFAR10::from_bytes(std::span(bytes).first(3072), "blob"), "CIFAR10: file blob has 3072 bytes");
    CHECK_ERROR(CIFAR10::from_bytes({}), "CIFAR10: file <memory> is empty");
    std::vector<uint8_t> images(7, 7);
    std::vector<int64_t> labels{1};
    auto bad = bytes;
    bad[3 * 3073] = 200;
    CHECK_ERROR(decode_records(bad, "x", images, labels), "record 3 has label 200");
    CHECK(images.size() == 7);  // untouched by the failed decode
    CHECK(labels.size() == 1);
  }
  SUBCASE("from_memory checks sizes and labels") {
    CHECK_ERROR(CIFAR10::from_memory(std::vector<uint8_t>(3071), {0}), "expected 3072 per image");
    CHECK_ERROR(CIFAR10::from_memory(std::vector<uint8_t>(3072), {-1}), "label 0 is -1");
  }
}

TEST_CASE("cifar: find_cifar10_dir checks flag, CIFAR10_DIR, ./data, then fails with instructions") {
  EnvGuard env;
  TempDir a, b, base;
  write_dataset(a.path);
  write_dataset(b.path / "cifar-10-batches-bin");
  const FindOptions offline{.download = false, .base = base.str()};
  unsetenv("CIFAR10_DIR");

  CHECK(find_cifar10_dir(a.str(), offline) == a.str());
  CHECK(find_cifar10_dir(b.str(), offline) == (b.path / "cifar-10-batches-bin").string());  // the parent works too
  CHECK_ERROR(find_cifar10_dir(base.str(), offline), "CIFAR10: --data names " + base.str());
  CHECK_ERROR(find_cifar10_dir(base.str(), offline), "missing data_batch_1.bin");

  setenv("CIFAR10_DIR", a.str().c_str(), 1);
  CHECK(find_cifar10_dir("", offline) == a.str());
  CHECK(find_cifar10_dir(b.str(), offline) == (b.path / "cifar-10-batches-bin").string());  // the flag wins
  setenv("CIFAR10_DIR", base.str().c_str(), 1);
  CHECK_ERROR(find_cifar10_dir("", offline), "CIFAR10_DIR environment variable names " + base.str());

  unsetenv("CIFAR10_DIR");
  const std::string instructions = "pass --data DIR or set CIFAR10_DIR=DIR";
  CHECK_ERROR(find_cifar10_dir("", offline), "CIFAR10: cannot find the dataset");
  CHECK_ERROR(find_cifar10_dir("", offline), "downloading is disabled");
  CHECK_ERROR(find_cifar10_dir("", offline), kCifar10Url);
  CHECK_ERROR(find_cifar10_dir("", offline), instructions);
  CHECK_ERROR(find_cifar10_dir("", offline), (base.path / "cifar-10-batches-bin").string());

  write_dataset(base.path / "cifar-10-batches-bin");
  CHECK(find_cifar10_dir("", offline) == (base.path / "cifar-10-batches-bin").string());
}

TEST_CASE("cifar: find_cifar10_dir downloads with curl and tar (a fake curl: no network)") {
  EnvGuard env, path("PATH");
  unsetenv("CIFAR10_DIR");
  TempDir bin, base, src;
  // The "archive": a real tar.gz of cifar-10-batches-bin/, which the fake curl copies to its -o path.
  write_dataset(src.path / "cifar-10-batches-bin");
  const fs::path archive = src.path / "archive.tar.gz";
  REQUIRE(std::system(fmt::format("tar czf '{}' -C '{}' cifar-10-batches-bin", archive.string(), src.str()).c_str()) ==
          0);
  const fs::path curl = bin.path / "curl";
  {
    std::ofstream s(curl);
    s << "#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = -o ]; then out=$2; fi; shift; done\n"
      << "[ -n \"$FAKE_CURL_FAIL\" ] && exit 22\ncp '" << archive.string() << "' \"$out\"\n";
  }
  fs::permissions(curl, fs::perms::owner_all);
  const std::string old_path = path.saved.value_or("/usr/bin:/bin");
  const FindOptions online{.download = true, .base = (base.path / "data").string()};

  {
    EnvGuard fail_flag("FAKE_CURL_FAIL");
    setenv("FAKE_CURL_FAIL", "1", 1);
    setenv("PATH", (bin.str() + ":" + old_path).c_str(), 1);
    CHECK_ERROR(find_cifar10_dir("", online), "the download failed (curl -fL");
    CHECK(!fs::exists(base.path / "data" / "cifar-10-binary.tar.gz"));  // no partial archive left
  }
  setenv("PATH", (bin.str() + ":" + old_path).c_str(), 1);
  const std::string dir = find_cifar10_dir("", online);
  CHECK(dir == (base.path / "data" / "cifar-10-batches-bin").string());
  CHECK(CIFAR10(dir, true).size() == 30);
  CHECK(!fs::exists(base.path / "data" / "cifar-10-binary.tar.gz"));  // the archive is removed once unpacked

  TempDir empty;
  setenv("PATH", empty.str().c_str(), 1);
  CHECK_ERROR(find_cifar10_dir("", {.download = true, .base = empty.str()}), "curl is not installed");
}

TEST_CASE("cifar: train/val split and subsets are views") {
  auto ds = synthetic(30);
  Split s = train_val_split(ds, 5);
  CHECK(s.train.size() == 25);
  CHECK(s.val.size() == 5);
  CHECK(s.val.indices() == std::vector<int64_t>{25, 26, 27, 28, 29});
  CHECK(&s.train.dataset() == ds.get());  // no copy of the images
  CHECK(s.val.image(0) == ds->image(25));
  CHECK(s.val.label(1) == label_of(26));

  Subset first = s.train.first(10);
  CHECK(first.size() == 10);
  CHECK(first.image(9) == ds->image(9));
  Subset mid = s.val.slice(1, 3);
  CHECK(mid.indices() == std::vector<int64_t>{26, 27});
  Batch b = mid.get_batch(0, 2);
  CHECK(b.labels.to_vector<int64_t>() == std::vector<int64_t>{6, 7});

  CHECK(train_val_split(ds, 0).train.size() == 30);
  CHECK_ERROR(train_val_split(ds), "train_val_split: num_val must be in [0, 30) for 30 images, got 1000");
  CHECK_ERROR(train_val_split(ds, -1), "got -1");
  CHECK_ERROR(s.val.slice(2, 6), "Subset: slice [2, 6) out of range for 5 images");
  CHECK_ERROR(Subset(ds, {0, 30}), "Subset: index 30 at position 1 is out of range");
}

TEST_CASE("cifar: default split of the file dataset is all but the last 1000") {
  // 5 files x 220 records = 1100: the default leaves 100 for training.
  TempDir tmp;
  write_dataset(tmp.path, 220);
  auto ds = std::make_shared<const CIFAR10>(tmp.str(), true);
  Split s = train_val_split(ds);
  CHECK(s.train.size() == 100);
  CHECK(s.val.size() == 1000);
  CHECK(s.val.index(0) == 100);
}

TEST_CASE("cifar: the real dataset has 50000 + 10000 records and 5000 training images per class") {
  const char* dir = std::getenv("CIFAR10_DIR");
  if (dir == nullptr || !fs::exists(fs::path(dir) / "data_batch_1.bin")) {
    MESSAGE("CIFAR10_DIR is not set or holds no data_batch_1.bin: real-data test skipped");
    return;
  }
  const std::string root = find_cifar10_dir("", {.download = false});
  auto train = std::make_shared<const CIFAR10>(root, true);
  CIFAR10 test(root, false);
  REQUIRE(train->size() == 50000);
  CHECK(test.size() == 10000);
  std::array<int64_t, kClasses> count{};
  for (int64_t y : train->labels()) ++count[static_cast<size_t>(y)];
  for (int64_t k = 0; k < kClasses; ++k) CHECK_MESSAGE(count[static_cast<size_t>(k)] == 5000, "class " << k);

  Split s = train_val_split(train);
  CHECK(s.train.size() == 49000);
  CHECK(s.val.size() == 1000);
  // CIFAR-10's well-known channel means and stds in [0, 1] units (0.491 0.482 0.447, 0.247 0.243 0.262).
  const Normalization n = compute_mean_std(s.train);
  CHECK(n.mean[0] == doctest::Approx(0.491).epsilon(0.02));
  CHECK(n.mean[2] == doctest::Approx(0.447).epsilon(0.02));
  CHECK(n.std[1] == doctest::Approx(0.243).epsilon(0.03));
}

// Fixtures for the data tests: temp dirs, synthetic CIFAR-10 records and files, batch comparisons.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "helpers.hpp"

namespace xg::test::data_fixtures {

namespace fs = std::filesystem;
using namespace xg::data;

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / fmt::format("xgrad_test_data_{}_{}", getpid(), counter++);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

// Restores an environment variable (CI sets CIFAR10_DIR for the real-data test) at scope exit.
struct EnvGuard {
  std::string name;
  std::optional<std::string> saved;
  explicit EnvGuard(std::string var = "CIFAR10_DIR") : name(std::move(var)) {
    if (const char* v = std::getenv(name.c_str())) saved = v;
  }
  ~EnvGuard() {
    if (saved)
      setenv(name.c_str(), saved->c_str(), 1);
    else
      unsetenv(name.c_str());
  }
};

// Synthetic record r: pixel p (= y*32 + x) of channel c is (7r + 31c + 3p) mod 256, label r mod 10.
// The first pixel, 7r mod 256, tells records 0..36 apart.
inline uint8_t pixel(int64_t r, int64_t c, int64_t p) { return static_cast<uint8_t>((7 * r + 31 * c + 3 * p) & 255); }
inline int64_t label_of(int64_t r) { return r % 10; }

inline std::vector<uint8_t> records(int64_t first, int64_t count) {
  std::vector<uint8_t> bytes;
  for (int64_t r = first; r < first + count; ++r) {
    bytes.push_back(static_cast<uint8_t>(label_of(r)));
    for (int64_t c = 0; c < kC; ++c)
      for (int64_t p = 0; p < kH * kW; ++p) bytes.push_back(pixel(r, c, p));
  }
  return bytes;
}

inline void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Five training files of `per_file` records (records 0..5*per_file-1 in order) and a test file of
// records 100..100+per_file-1.
inline void write_dataset(const fs::path& dir, int64_t per_file = 6) {
  fs::create_directories(dir);
  const auto train = cifar10_files(true);
  for (size_t i = 0; i < train.size(); ++i)
    write_bytes(dir / train[i], records(static_cast<int64_t>(i) * per_file, per_file));
  write_bytes(dir / "test_batch.bin", records(100, per_file));
}

inline std::shared_ptr<const CIFAR10> synthetic(int64_t n) {
  const auto bytes = records(0, n);
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  for (int64_t r = 0; r < n; ++r) {
    labels.push_back(label_of(r));
    images.insert(images.end(), bytes.begin() + r * kRecordBytes + 1, bytes.begin() + (r + 1) * kRecordBytes);
  }
  return std::make_shared<const CIFAR10>(CIFAR10::from_memory(std::move(images), std::move(labels)));
}

// Which synthetic record an unaugmented, unnormalised image came from (its first pixel is 7r).
inline int64_t record_of(const float* img) { return std::lround(img[0] * 255.0f) / 7; }

inline std::vector<Batch> whole_epoch(DataLoader& loader, int64_t epoch) {
  std::vector<Batch> out;
  for (Batch& b : loader.epoch(epoch)) out.push_back(b);
  return out;
}

inline bool same_bits(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].images.to_vector<float>() != b[i].images.to_vector<float>() ||
        a[i].labels.to_vector<int64_t>() != b[i].labels.to_vector<int64_t>())
      return false;
  return true;
}

}  // namespace xg::test::data_fixtures

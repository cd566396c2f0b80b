// Reading and validating the CIFAR-10 binary files, and decoding records into tensors.
#include "data/cifar10.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace xg::data {

namespace fs = std::filesystem;

namespace {

// A bound on one file (100,000 records, ten times an official batch), so that a hostile or wrong file
// gets an error instead of an attempt to allocate its size.
constexpr uintmax_t kMaxFileBytes = 100000 * kRecordBytes;

// How to get the files, appended to every "missing" message.
std::string where_to_get(const std::string& root) {
  return fmt::format(
      "put the official binary files (data_batch_1.bin ... data_batch_5.bin, test_batch.bin) in {}; "
      "they come from {} (tar xzf unpacks them into cifar-10-batches-bin/)",
      root, kCifar10Url);
}

// Why a file of `bytes` bytes cannot hold whole records.
std::string size_message(const std::string& name, uintmax_t bytes) {
  if (bytes == 0)
    return fmt::format("CIFAR10: file {} is empty (0 bytes); expected records of {} bytes", name, kRecordBytes);
  return fmt::format(
      "CIFAR10: file {} has {} bytes, not a multiple of {} (1 label byte + {} pixel bytes per record): truncated, or "
      "not a CIFAR-10 binary file",
      name, bytes, kRecordBytes, kImageBytes);
}

}  // namespace

void decode_records(std::span<const uint8_t> bytes, const std::string& name, std::vector<uint8_t>& images,
                    std::vector<int64_t>& labels) {
  check(bytes.size() % kRecordBytes == 0 && !bytes.empty(), "{}", size_message(name, bytes.size()));
  const int64_t n = static_cast<int64_t>(bytes.size() / kRecordBytes);
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t lab = bytes[static_cast<size_t>(r * kRecordBytes)];
    check(lab < kClasses,
          "CIFAR10: file {} record {} has label {}, labels must be 0..9 (a corrupt file, or CIFAR-100's "
          "2-label-byte format)",
          name, r, lab);
  }
  // Only now, with every record valid, do the outputs grow; once both have room nothing can throw.
  labels.reserve(labels.size() + static_cast<size_t>(n));
  const size_t at = images.size();
  images.resize(at + static_cast<size_t>(n * kImageBytes));
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* rec = bytes.data() + r * kRecordBytes;
    labels.push_back(rec[0]);
    std::copy(rec + 1, rec + kRecordBytes, images.data() + at + r * kImageBytes);
  }
}

namespace {

// Appends the records of one file to `images` and `labels`, after checking every byte of it.
void read_file(const fs::path& path, const std::string& root, std::vector<uint8_t>& images,
               std::vector<int64_t>& labels) {
  const std::string name = path.string();
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) fail("CIFAR10: missing file {}; {}", name, where_to_get(root));
  check(fs::is_regular_file(status), "CIFAR10: {} is not a regular file", name);
  const uintmax_t bytes = fs::file_size(path, ec);
  check(!ec, "CIFAR10: cannot get the size of {}: {}", name, ec.message());
  check(bytes <= kMaxFileBytes,
        "CIFAR10: file {} has {} bytes, more than {} records; an official batch file holds 10000 ({} bytes)", name,
        bytes, kMaxFileBytes / kRecordBytes, 10000 * kRecordBytes);
  check(bytes % kRecordBytes == 0 && bytes > 0, "{}", size_message(name, bytes));  // before any allocation

  std::ifstream in(path, std::ios::binary);
  check(in.good(), "CIFAR10: cannot open {} for reading", name);
  std::vector<uint8_t> buf(static_cast<size_t>(bytes));
  in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(bytes));
  check(static_cast<uintmax_t>(in.gcount()) == bytes, "CIFAR10: file {} is truncated: read {} of its {} bytes", name,
        in.gcount(), bytes);

  decode_records(buf, name, images, labels);
}

}  // namespace

std::vector<std::string> cifar10_files(bool train) {
  if (!train) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
}

CIFAR10::CIFAR10(const std::string& root, bool train) {
  const auto files = cifar10_files(train);
  // Every file is checked before anything is read, so a missing batch 5 fails fast.
  for (const auto& f : files) {
    std::error_code ec;
    if (!fs::exists(fs::path(root) / f, ec))
      fail("CIFAR10: missing file {}; {}", (fs::path(root) / f).string(), where_to_get(root));
  }
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  int64_t total = 0;  // records, from the sizes; read_file reports any bad size
  for (const auto& f : files) {
    std::error_code ec;
    const uintmax_t bytes = fs::file_size(fs::path(root) / f, ec);
    if (!ec && bytes <= kMaxFileBytes) total += static_cast<int64_t>(bytes / kRecordBytes);
  }
  images.reserve(static_cast<size_t>(total * kImageBytes));
  labels.reserve(static_cast<size_t>(total));
  size_t first_count = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const size_t before = labels.size();
    read_file(fs::path(root) / files[i], root, images, labels);
    const size_t count = labels.size() - before;
    // The training batches all hold the same number of records: a file cut at a record boundary
    // shows up here.
    if (i == 0) first_count = count;
    check(count == first_count, "CIFAR10: file {} has {} records but {} has {}: truncated, or from another dataset",
          (fs::path(root) / files[i]).string(), count, files[0], first_count);
  }
  images_ = std::move(images);
  labels_ = std::move(labels);
}

CIFAR10 CIFAR10::from_bytes(std::span<const uint8_t> file_bytes, const std::string& name) {
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  decode_records(file_bytes, name, images, labels);
  CIFAR10 d;
  d.images_ = std::move(images);
  d.labels_ = std::move(labels);
  return d;
}

CIFAR10 CIFAR10::from_memory(std::vector<uint8_t> images, std::vector<int64_t> labels) {
  check(images.size() == labels.size() * kImageBytes,
        "CIFAR10: from_memory got {} image bytes for {} labels, expected {} per image", images.size(), labels.size(),
        kImageBytes);
  for (size_t i = 0; i < labels.size(); ++i)
    check(labels[i] >= 0 && labels[i] < kClasses, "CIFAR10: from_memory label {} is {}, labels must be 0..9", i,
          labels[i]);
  CIFAR10 d;
  d.images_ = std::move(images);
  d.labels_ = std::move(labels);
  return d;
}

Batch CIFAR10::get_batch(std::span<const int64_t> indices) const {
  const int64_t B = static_cast<int64_t>(indices.size());
  for (int64_t i : indices) check(i >= 0 && i < size(), "CIFAR10: index {} out of range for {} images", i, size());
  Batch b{Tensor::empty({B, kC, kH, kW}, Dtype::f32), Tensor::empty({B}, Dtype::i64)};
  float* x = b.images.data<float>();
  int64_t* y = b.labels.data<int64_t>();
  constexpr float scale = 1.0f / 255.0f;
  for (int64_t i = 0; i < B; ++i) {
    const uint8_t* src = image(indices[static_cast<size_t>(i)]);
    float* dst = x + i * kImageBytes;
    for (int64_t p = 0; p < kImageBytes; ++p) dst[p] = static_cast<float>(src[p]) * scale;
    y[i] = label(indices[static_cast<size_t>(i)]);
  }
  return b;
}

}  // namespace xg::data

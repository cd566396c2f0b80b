// Finding the CIFAR-10 directory: --data flag, CIFAR10_DIR, ./data/cifar-10-batches-bin, then a download.
#include <fmt/ranges.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <system_error>

#include "data/cifar10.hpp"

namespace xg::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSubdir = "cifar-10-batches-bin";

std::vector<std::string> missing_files(const fs::path& dir) {
  std::vector<std::string> missing;
  for (bool train : {true, false})
    for (const auto& f : cifar10_files(train)) {
      std::error_code ec;
      if (!fs::is_regular_file(dir / f, ec)) missing.push_back(f);
    }
  return missing;
}

// `dir` itself or dir/cifar-10-batches-bin, whichever holds all six files.
std::optional<std::string> resolve(const fs::path& dir) {
  if (missing_files(dir).empty()) return dir.string();
  if (missing_files(dir / kSubdir).empty()) return (dir / kSubdir).string();
  return std::nullopt;
}

// A directory named explicitly must hold the files: an error, not a silent fall-through.
std::string require(const std::string& dir, const char* source) {
  if (auto d = resolve(dir)) return *d;
  fail(
      "CIFAR10: {} names {}, which does not hold the CIFAR-10 binary files (missing {}); unpack {} there, "
      "or point it at the cifar-10-batches-bin directory",
      source, dir, fmt::join(missing_files(dir), ", "), kCifar10Url);
}

// Single-quoted for /bin/sh: every ' becomes '\''.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Fetches and unpacks the archive into `base`; returns what went wrong, or "" on success.
std::string download(const fs::path& base) {
  if (std::system("command -v curl >/dev/null 2>&1") != 0) return "curl is not installed";
  if (std::system("command -v tar >/dev/null 2>&1") != 0) return "tar is not installed";
  std::error_code ec;
  fs::create_directories(base, ec);
  if (ec) return fmt::format("cannot create {}: {}", base.string(), ec.message());
  const fs::path archive = base / "cifar-10-binary.tar.gz";
  fmt::print(stderr, "CIFAR10: downloading {} into {} (about 170 MB)\n", kCifar10Url, base.string());
  const std::string fetch = fmt::format("curl -fL --retry 2 --connect-timeout 20 -o {} {}",
                                        shell_quote(archive.string()), shell_quote(kCifar10Url));
  if (std::system(fetch.c_str()) != 0) {
    fs::remove(archive, ec);
    return fmt::format("the download failed ({})", fetch);
  }
  const std::string unpack =
      fmt::format("tar -xzf {} -C {}", shell_quote(archive.string()), shell_quote(base.string()));
  const bool unpacked = std::system(unpack.c_str()) == 0;
  fs::remove(archive, ec);
  if (!unpacked) return fmt::format("unpacking failed ({})", unpack);
  return "";
}

}  // namespace

std::string find_cifar10_dir(const std::string& flag_value, const FindOptions& opts) {
  if (!flag_value.empty()) return require(flag_value, "--data");
  if (const char* env = std::getenv("CIFAR10_DIR"); env != nullptr && *env != '\0')
    return require(env, "the CIFAR10_DIR environment variable");

  const fs::path base(opts.base.empty() ? "." : opts.base);
  const fs::path default_dir = base / kSubdir;
  if (auto d = resolve(default_dir)) return *d;

  std::string why = "downloading is disabled";
  if (opts.download) {
    why = download(base);
    if (why.empty()) {
      if (auto d = resolve(default_dir)) return *d;
      why = fmt::format("the downloaded archive did not produce {}", default_dir.string());
    }
  }
  fail(
      "CIFAR10: cannot find the dataset: no --data flag, CIFAR10_DIR is not set, {} does not hold the files, "
      "and {}. To fix: download {} and run `tar xzf cifar-10-binary.tar.gz -C {}` so that {} holds "
      "data_batch_1.bin ... data_batch_5.bin and test_batch.bin; or pass --data DIR or set CIFAR10_DIR=DIR "
      "for a directory holding those files",
      default_dir.string(), why, kCifar10Url, base.string(), default_dir.string());
}

}  // namespace xg::data

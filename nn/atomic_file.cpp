// The all-or-nothing file writer: a temporary file, fsync, rename, fsync of the directory.
#include "nn/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "autograd/error.hpp"

namespace xg::detail {

namespace {

void write_all(int fd, const char* p, size_t n, const std::string& tmp, const char* who) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      ::close(fd);
      std::remove(tmp.c_str());
      fail("{}: writing '{}' failed: {}", who, tmp, std::strerror(err));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// fsync of the directory makes the rename itself durable; best effort (some filesystems refuse).
void sync_directory(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::vector<std::string_view>& pieces, const char* who) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  check(fd >= 0, "{}: cannot create '{}': {}", who, tmp, std::strerror(errno));
  for (std::string_view piece : pieces) write_all(fd, piece.data(), piece.size(), tmp, who);
  int err = ::fsync(fd) == 0 ? 0 : errno;  // close even when fsync failed
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    std::remove(tmp.c_str());
    fail("{}: flushing '{}' failed: {}", who, tmp, std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    fail("{}: renaming '{}' to '{}' failed: {}", who, tmp, path, std::strerror(err));
  }
  sync_directory(path);
}

}  // namespace xg::detail

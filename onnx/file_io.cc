#include "onnx/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <system_error>

namespace wbs::onnxio {
namespace {

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// Closes the descriptor and removes the temp file unless released.
class TempFile {
 public:
  TempFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Closes the descriptor, reporting deferred write errors.
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }
  void Release() { path_.clear(); }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

Result<std::string> ReadFileBytes(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound("{}: no such file", path);
    return IoError("{}: cannot open: {}", path, ErrnoText(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return IoError("{}: not a regular file", path);
  }
  if (static_cast<size_t>(st.st_size) > kMaxFileBytes) {
    ::close(fd);
    return IoError("{}: file is {} bytes, more than the 2 GiB protobuf limit", path, st.st_size);
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return IoError("{}: read failed: {}", path, ErrnoText(err));
    }
    if (n == 0) break;  // the file shrank while reading
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  bytes.resize(done);
  return bytes;
}

Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  // A unique name per process and call; O_EXCL guards against leftovers of
  // another writer.
  static std::atomic<uint64_t> counter{0};
  int fd = -1;
  std::string tmp;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter.fetch_add(1));
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) {
      return IoError("{}: cannot create a temp file beside it: {}", path, ErrnoText(errno));
    }
  }
  if (fd < 0) return IoError("{}: cannot create a unique temp file beside it", path);
  TempFile file(fd, tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(file.fd(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("{}: write failed: {}", path, ErrnoText(errno));
    done += static_cast<size_t>(n);
  }
  if (file.Close() != 0) return IoError("{}: write failed: {}", path, ErrnoText(errno));
  if (::rename(file.path().c_str(), path.c_str()) != 0) {
    return IoError("{}: cannot replace the file: {}", path, ErrnoText(errno));
  }
  file.Release();
  return Status::Ok();
}

}  // namespace wbs::onnxio

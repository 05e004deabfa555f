#include <nn/io/atomic_file.hpp>

#include <autodiff/error.hpp>

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <random>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace tg::io {
namespace {

constexpr std::size_t kBufferBytes = std::size_t{1} << 20;

std::string errno_text(int err) { return std::generic_category().message(err); }

[[noreturn]] void fail(const std::filesystem::path& target, std::string_view what, int err) {
  throw IoError(fmt::format("cannot write '{}': {}: {}", target.string(), what, errno_text(err)));
}

// Closes a descriptor and removes the temporary file unless released (after the rename).
class TempFile {
 public:
  TempFile(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  int fd() const noexcept { return fd_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  /// Closes the descriptor, reporting the error close() gives (some file systems report a failed
  /// write-back only here).
  int close() noexcept {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }
  void release() noexcept { path_.clear(); }

 private:
  int fd_;
  std::filesystem::path path_;
};

// Creates a fresh file next to `target` with O_EXCL (mode 0666 minus the umask).
TempFile create_temp(const std::filesystem::path& target, const std::filesystem::path& dir) {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string stem = ".";  // (one append at a time: GCC 12 gives a false -Wrestrict on a + chain)
  stem += target.filename().string();
  stem += ".tmp";
  int last_err = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto name = fmt::format("{}.{}.{}.{:08x}", stem, ::getpid(), counter.fetch_add(1),
                                  static_cast<std::uint32_t>(rng()));
    std::filesystem::path path = dir / name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return TempFile(fd, std::move(path));
    last_err = errno;
    if (last_err != EEXIST) break;
  }
  fail(target, fmt::format("cannot create a temporary file in '{}'", dir.string()), last_err);
}

void write_all(int fd, const char* data, std::size_t n, const std::filesystem::path& target,
               std::uint64_t offset) {
  while (n > 0) {
    const ssize_t k = ::write(fd, data, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      fail(target, fmt::format("write failed at byte {}", offset), errno);
    }
    if (k == 0) fail(target, fmt::format("write made no progress at byte {}", offset), EIO);
    data += k;
    n -= static_cast<std::size_t>(k);
    offset += static_cast<std::uint64_t>(k);
  }
}

}  // namespace

void FileSink::write(std::span<const std::byte> bytes) {
  write(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void FileSink::write(std::string_view text) {
  if (buffer_.size() + text.size() > kBufferBytes) flush();
  if (text.size() >= kBufferBytes) {
    write_all(fd_, text.data(), text.size(), target_, written_);
  } else {
    buffer_.append(text);
  }
  written_ += text.size();
}

void FileSink::flush() {
  write_all(fd_, buffer_.data(), buffer_.size(), target_, written_ - buffer_.size());
  buffer_.clear();
}

void write_file_atomically(const std::filesystem::path& target,
                           const std::function<void(FileSink&)>& fill) {
  if (!target.has_filename()) {
    throw IoError(fmt::format("cannot write '{}': the path names no file", target.string()));
  }
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  TempFile tmp = create_temp(target, dir);
  {
    FileSink sink(tmp.fd(), target);
    sink.buffer_.reserve(kBufferBytes);
    fill(sink);
    sink.flush();
  }
  if (::fsync(tmp.fd()) != 0) fail(target, "fsync of the temporary file failed", errno);
  if (const int err = tmp.close(); err != 0) fail(target, "close of the temporary file failed", err);
  if (::rename(tmp.path().c_str(), target.c_str()) != 0) {
    fail(target, fmt::format("cannot rename '{}' over it", tmp.path().string()), errno);
  }
  tmp.release();
  // Make the rename durable. The new contents are in place whatever happens here, so a failure
  // (some file systems refuse fsync on a directory) is not reported as a failed write.
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomically(const std::filesystem::path& target, std::string_view contents) {
  write_file_atomically(target, [contents](FileSink& out) { out.write(contents); });
}

}  // namespace tg::io

// Atomic file replacement: every file tapegrad writes (checkpoints, metrics, plots' data) goes
// through write_file_atomically, so that a crash or an error midway never leaves a half-written
// file where a good one was.
//
//     tg::io::write_file_atomically("model.safetensors", [&](tg::io::FileSink& out) {
//       out.write(header);
//       out.write(data);
//     });
//
// How: the bytes go to a new temporary file in the target's directory (same file system, so the
// rename below is atomic), which is flushed and fsync'ed, then renamed over the target; finally the
// directory is fsync'ed so that the rename itself survives a power cut. If anything fails before
// the rename (the callback throws, a write fails, the disk is full, the target is a directory) the
// temporary file is removed, the target is untouched, and tg::IoError (or the callback's own
// exception) propagates. A reader of the target sees either the old contents or the new ones,
// never a mix.
//
// The new file gets mode 0666 minus the umask, like any newly created file; an existing target's
// permissions are not carried over. A symbolic link at the target is replaced by a regular file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace tg::io {

/// The open temporary file handed to the callback of write_file_atomically. Writes are buffered;
/// a failing write throws tg::IoError naming the target file.
class FileSink {
 public:
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;
  ~FileSink() = default;

  void write(std::span<const std::byte> bytes);
  void write(std::string_view text);
  /// Bytes written so far.
  std::uint64_t size() const noexcept { return written_; }
  /// The file that will be replaced (for error messages).
  const std::filesystem::path& target() const noexcept { return target_; }

 private:
  friend void write_file_atomically(const std::filesystem::path&,
                                    const std::function<void(FileSink&)>&);
  FileSink(int fd, std::filesystem::path target) : fd_(fd), target_(std::move(target)) {}
  void flush();

  int fd_;
  std::filesystem::path target_;
  std::string buffer_;
  std::uint64_t written_ = 0;
};

/// Replaces `target` atomically with the bytes `fill` writes into the sink. Throws tg::IoError
/// (naming the file and the failing system call) or whatever `fill` throws; in both cases the
/// previous file at `target`, if any, is left byte-identical and no temporary file remains.
void write_file_atomically(const std::filesystem::path& target,
                           const std::function<void(FileSink&)>& fill);

/// Replaces `target` atomically with `contents`.
void write_file_atomically(const std::filesystem::path& target, std::string_view contents);

}  // namespace tg::io

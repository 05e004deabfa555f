#include <nn/io/atomic_file.hpp>
#include <nn/io/safetensors.hpp>

#include "io_test_util.hpp"

#include <csignal>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

using tgtest::read_bytes;
using tgtest::ScratchDir;
using tgtest::write_bytes;

namespace {

// Lowers this process's file-size limit (RLIMIT_FSIZE) so that writes past `bytes` fail with
// EFBIG, with SIGXFSZ ignored; restores both on destruction. Applies to root too, which
// permission bits do not stop. Catch2 runs each discovered test case in its own process.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = saved_;
    lim.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_{};
  void (*old_handler_)(int) = nullptr;
};

}  // namespace

TEST_CASE("atomic_file: writes the contents and replaces an existing file", "[io][atomic]") {
  ScratchDir dir;
  const auto target = dir / "out.txt";
  tg::io::write_file_atomically(target, "first version\n");
  CHECK(read_bytes(target) == "first version\n");
  tg::io::write_file_atomically(target, [](tg::io::FileSink& out) {
    out.write("second ");
    const std::string big(3'000'000, 'x');  // larger than the sink's buffer: written directly
    out.write(big);
    out.write("!");
    CHECK(out.size() == 7 + 3'000'000 + 1);
  });
  const std::string got = read_bytes(target);
  CHECK(got.size() == 3'000'008);
  CHECK(got.substr(0, 8) == "second x");
  CHECK(got.back() == '!');
  CHECK(dir.entries() == std::vector<std::string>{"out.txt"});  // no temporary left behind
}

TEST_CASE("atomic_file: a new file gets mode 0666 minus the umask", "[io][atomic]") {
  ScratchDir dir;
  const mode_t old = ::umask(027);
  tg::io::write_file_atomically(dir / "f", "x");
  ::umask(old);
  struct stat st {};
  REQUIRE(::stat((dir / "f").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
}

TEST_CASE("atomic_file: a callback that throws midway leaves the old file byte-identical", "[io][atomic]") {
  ScratchDir dir;
  const auto target = dir / "model.bin";
  write_bytes(target, "old contents");
  struct Boom {};
  CHECK_THROWS_AS(tg::io::write_file_atomically(target,
                                                [](tg::io::FileSink& out) {
                                                  out.write(std::string(5'000'000, 'n'));
                                                  throw Boom{};
                                                }),
                  Boom);
  CHECK(read_bytes(target) == "old contents");
  CHECK(dir.entries() == std::vector<std::string>{"model.bin"});
}

TEST_CASE("atomic_file: a write that fails (file size limit) throws IoError and keeps the old file",
          "[io][atomic]") {
  ScratchDir dir;
  const auto target = dir / "metrics.csv";
  write_bytes(target, "epoch,loss\n1,0.5\n");
  {
    FileSizeLimit limit(4096);
    REQUIRE_IO_ERROR(tg::io::write_file_atomically(target, std::string(100'000, 'z')),
                     target.string(), "write failed at byte 4096", "File too large");
  }
  CHECK(read_bytes(target) == "epoch,loss\n1,0.5\n");
  CHECK(dir.entries() == std::vector<std::string>{"metrics.csv"});
}

TEST_CASE("atomic_file: a failing rename (target is a directory) throws and removes the temporary",
          "[io][atomic]") {
  ScratchDir dir;
  std::filesystem::create_directory(dir / "taken");
  write_bytes(dir / "taken" / "inside", "keep");
  REQUIRE_IO_ERROR(tg::io::write_file_atomically(dir / "taken", "data"), "taken", "cannot rename");
  CHECK(std::filesystem::is_directory(dir / "taken"));
  CHECK(read_bytes(dir / "taken" / "inside") == "keep");
  CHECK(dir.entries() == std::vector<std::string>{"taken"});
}

TEST_CASE("atomic_file: a missing directory throws IoError naming it", "[io][atomic]") {
  ScratchDir dir;
  REQUIRE_IO_ERROR(tg::io::write_file_atomically(dir / "no" / "such" / "f.txt", "x"),
                   "cannot create a temporary file", (dir / "no" / "such").string(),
                   "No such file or directory");
  REQUIRE_IO_ERROR(tg::io::write_file_atomically(dir.path() / "", "x"), "names no file");
}

TEST_CASE("atomic_file: an unwritable directory throws IoError and keeps the old file", "[io][atomic]") {
  if (::geteuid() == 0) {
    // Permission bits do not stop root; the write-failure and rename-failure cases above cover
    // the same code paths as root.
    WARN("running as root: permission bits are not enforced, case skipped");
    return;
  }
  ScratchDir dir;
  const auto target = dir / "ckpt";
  write_bytes(target, "v1");
  std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  REQUIRE_IO_ERROR(tg::io::write_file_atomically(target, "v2"), "cannot create a temporary file",
                   "Permission denied");
  CHECK(read_bytes(target) == "v1");
}

TEST_CASE("atomic_file: a failed checkpoint save leaves the previous checkpoint loadable and identical",
          "[io][atomic][safetensors]") {
  ScratchDir dir;
  const auto target = dir / "model.safetensors";
  const std::vector<float> v1(100, 1.5F);
  tg::io::save_safetensors(target, {tg::io::TensorView::of("w", {10, 10}, v1)});
  const std::string before = read_bytes(target);

  const std::vector<float> v2(100'000, -2.0F);  // 400 kB: past the limit below
  {
    FileSizeLimit limit(64 * 1024);
    REQUIRE_IO_ERROR(tg::io::save_safetensors(target, {tg::io::TensorView::of("w", {1000, 100}, v2)}),
                     "model.safetensors", "File too large");
  }
  CHECK(read_bytes(target) == before);
  CHECK(tg::io::load_safetensors(target).at("w").to_vector<float>() == v1);
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
}

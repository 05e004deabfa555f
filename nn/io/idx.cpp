#include <nn/io/idx.hpp>

#include <autodiff/error.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <fmt/format.h>
#include <string>
#include <string_view>
#include <system_error>
#include <zlib.h>

namespace tg::io {
namespace {

std::string_view idx_type_name(unsigned t) noexcept {
  switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "16-bit integer";
    case 0x0C: return "32-bit integer";
    case 0x0D: return "32-bit float";
    case 0x0E: return "64-bit float";
    default: return "unknown";
  }
}

// A gzFile that reads plain files transparently, with errors that name the file.
class GzReader {
 public:
  explicit GzReader(const std::filesystem::path& path) : name_(path.string()) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (status.type() == std::filesystem::file_type::not_found) fail("no such file");
    if (ec) fail(ec.message());  // e.g. permission denied on a directory on the way
    if (std::filesystem::is_directory(status)) fail("is a directory, expected a file");
    errno = 0;
    f_ = gzopen(path.c_str(), "rb");
    if (!f_) fail(errno != 0 ? std::generic_category().message(errno) : std::string("cannot open"));
    gzbuffer(f_, 1U << 17);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;
  ~GzReader() {
    if (f_) gzclose(f_);
  }

  [[noreturn]] void fail(std::string_view what) const { throw IoError(fmt::format("{}: {}", name_, what)); }

  // Reads up to n bytes; fewer only at the end of the data. Throws on a corrupt or truncated
  // gzip stream.
  std::size_t read(void* dst, std::size_t n) {
    auto* p = static_cast<unsigned char*>(dst);
    std::size_t done = 0;
    while (done < n) {
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1U << 30));
      const int k = gzread(f_, p + done, chunk);
      if (k < 0) fail_stream();
      if (k == 0) {
        check_stream();
        break;
      }
      done += static_cast<std::size_t>(k);
    }
    return done;
  }

  std::uint64_t position() const { return static_cast<std::uint64_t>(gztell(f_)); }
  bool compressed() const { return gzdirect(f_) == 0; }

 private:
  [[noreturn]] void fail_stream() const {
    int err = Z_OK;
    const char* msg = gzerror(f_, &err);
    if (err == Z_ERRNO) fail(fmt::format("read error: {}", std::generic_category().message(errno)));
    fail(fmt::format("corrupt gzip data ({}) after {} uncompressed bytes", msg ? msg : "?", position()));
  }
  void check_stream() const {
    int err = Z_OK;
    gzerror(f_, &err);
    if (err != Z_OK) fail_stream();
  }

  std::string name_;
  gzFile f_ = nullptr;
};

}  // namespace

IdxArray read_idx(const std::filesystem::path& path, std::size_t expected_rank) {
  GzReader in(path);
  std::array<unsigned char, 4> magic{};
  const std::size_t got = in.read(magic.data(), 4);
  if (got < 4) in.fail(fmt::format("truncated: {} bytes, too short for the 4-byte IDX magic number", got));
  const unsigned magic_value = (unsigned{magic[0]} << 24) | (unsigned{magic[1]} << 16) |
                               (unsigned{magic[2]} << 8) | unsigned{magic[3]};
  if (magic[0] != 0 || magic[1] != 0) {
    in.fail(fmt::format("bad magic number 0x{:08x}: not an IDX file (it must start with two zero "
                        "bytes, then the type and the rank)",
                        magic_value));
  }
  if (magic[2] != 0x08) {
    in.fail(fmt::format("magic number 0x{:08x}: element type 0x{:02x} ({}) is not supported, only 0x08 "
                        "(unsigned byte)",
                        magic_value, unsigned{magic[2]}, idx_type_name(magic[2])));
  }
  const std::size_t rank = magic[3];
  if (rank == 0) in.fail(fmt::format("magic number 0x{:08x}: rank 0", magic_value));
  if (expected_rank != 0 && rank != expected_rank) {
    in.fail(fmt::format("magic number 0x{:08x} says rank {}, expected rank {} (magic 0x{:08x})", magic_value,
                        rank, expected_rank, 0x0800U | expected_rank));
  }

  IdxArray out;
  std::size_t total = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    std::array<unsigned char, 4> b{};
    if (in.read(b.data(), 4) < 4) {
      in.fail(fmt::format("truncated in the header: dimension {} of {} (bytes {}..{}) is missing", i + 1,
                          rank, 4 + 4 * i, 8 + 4 * i));
    }
    const std::size_t d = (std::size_t{b[0]} << 24) | (std::size_t{b[1]} << 16) | (std::size_t{b[2]} << 8) |
                          std::size_t{b[3]};
    if (d == 0) in.fail(fmt::format("dimension {} of {} is 0", i + 1, rank));
    if (total > SIZE_MAX / d) in.fail("the dimensions' product overflows");
    total *= d;
    out.dims.push_back(d);
  }

  // Grow the buffer as data arrives, so that a corrupt header claiming terabytes fails on the
  // truncation, not on the allocation.
  const std::size_t header_bytes = 4 + 4 * rank;
  std::size_t have = 0;
  while (have < total) {
    const std::size_t want = std::min(total, std::max<std::size_t>(have * 2, std::size_t{1} << 26));
    out.data.resize(want);
    const std::size_t k = in.read(out.data.data() + have, want - have);
    have += k;
    if (have < want) {
      std::string dims = fmt::format("{}", fmt::join(out.dims, " x "));
      in.fail(fmt::format("truncated: the header declares {} = {} data bytes, the {} holds only {}", dims,
                          total, in.compressed() ? "decompressed stream" : "file", have));
    }
  }
  unsigned char extra = 0;
  if (in.read(&extra, 1) != 0) {
    in.fail(fmt::format("more data than the header declares: {} header bytes + {} data bytes, then more",
                        header_bytes, total));
  }
  return out;
}

namespace {

bool is_default_dir(const std::filesystem::path& dir) {
  const std::string a = dir.lexically_normal().string();
  const std::string b = std::filesystem::path(kFashionMnistDir).lexically_normal().string();
  const auto strip = [](std::string s) {
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
  };
  return strip(a) == strip(b);
}

constexpr std::string_view kInstallHint =
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)";

// The first existing spelling of an MNIST file: "<base>.gz", "<base>", and the same with the
// original archives' "train-images.idx3-ubyte" spelling.
std::filesystem::path find_file(const std::filesystem::path& dir, const std::string& base) {
  std::string dotted = base;
  if (const auto p = dotted.find("-idx"); p != std::string::npos) dotted[p] = '.';
  const std::array<std::string, 4> names{base + ".gz", base, dotted + ".gz", dotted};
  for (const std::string& n : names) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(dir / n, ec)) return dir / n;
  }
  throw IoError(fmt::format("{}: no {} (looked for {}){}", dir.string(), base, fmt::join(names, ", "),
                            is_default_dir(dir) ? fmt::format("; {}", kInstallHint) : std::string()));
}

ImageSet load_set(const std::filesystem::path& dir, const std::string& prefix) {
  const auto image_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const auto label_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(image_path, 3);
  IdxArray labels = read_idx(label_path, 1);
  if (images.dims[0] != labels.dims[0]) {
    throw IoError(fmt::format("{} holds {} images but {} holds {} labels", image_path.string(),
                              images.dims[0], label_path.string(), labels.dims[0]));
  }
  ImageSet s;
  s.count = images.dims[0];
  s.rows = images.dims[1];
  s.cols = images.dims[2];
  s.pixels.resize(images.data.size());
  std::transform(images.data.begin(), images.data.end(), s.pixels.begin(),
                 [](std::uint8_t b) { return static_cast<float>(b) / 255.0F; });
  s.labels = std::move(labels.data);
  return s;
}

}  // namespace

MnistData load_mnist(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    if (is_default_dir(dir)) {
      throw IoError(fmt::format("Fashion-MNIST not found: {} does not exist; {}", dir.string(), kInstallHint));
    }
    throw IoError(fmt::format("{}: no such directory (expected MNIST-format IDX files)", dir.string()));
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    throw IoError(fmt::format("{}: not a directory (expected one holding MNIST-format IDX files)", dir.string()));
  }
  MnistData d;
  d.train = load_set(dir, "train");
  d.test = load_set(dir, "t10k");
  if (d.train.rows != d.test.rows || d.train.cols != d.test.cols) {
    throw IoError(fmt::format("{}: training images are {}x{} but test images are {}x{}", dir.string(),
                              d.train.rows, d.train.cols, d.test.rows, d.test.cols));
  }
  std::uint8_t max_label = 0;
  for (const auto& s : {&d.train, &d.test}) {
    for (const std::uint8_t l : s->labels) max_label = std::max(max_label, l);
  }
  d.classes = std::size_t{max_label} + 1;
  return d;
}

}  // namespace tg::io

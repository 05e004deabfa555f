#include <nn/io/idx.hpp>

#include "io_test_util.hpp"

#include <cmath>
#include <numeric>
#include <tuple>
#include <random>
#include <zlib.h>

using tgtest::read_bytes;
using tgtest::ScratchDir;
using tgtest::write_bytes;

namespace {

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// An IDX file of unsigned bytes, written by hand.
std::string idx_file(const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data) {
  std::string s{'\0', '\0', '\x08', static_cast<char>(dims.size())};
  for (const auto d : dims) s += be32(d);
  s.append(reinterpret_cast<const char*>(data.data()), data.size());
  return s;
}

// Compresses with zlib's own gzip writer (not the code under test).
void write_gz(const std::filesystem::path& p, std::string_view bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

std::vector<std::uint8_t> iota_bytes(std::size_t n, std::uint8_t start = 0) {
  std::vector<std::uint8_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

// A small MNIST-format directory: 3 training and 2 test images of 2x3 pixels.
void write_small_mnist(const ScratchDir& dir, bool gz, bool dotted = false) {
  const auto put = [&](std::string name, const std::string& bytes) {
    if (dotted) name[name.find("-idx")] = '.';
    if (gz) {
      write_gz(dir / (name + ".gz"), bytes);
    } else {
      write_bytes(dir / name, bytes);
    }
  };
  put("train-images-idx3-ubyte", idx_file({3, 2, 3}, iota_bytes(18, 240)));  // 240..255, 0, 1
  put("train-labels-idx1-ubyte", idx_file({3}, {4, 0, 9}));
  put("t10k-images-idx3-ubyte", idx_file({2, 2, 3}, iota_bytes(12)));
  put("t10k-labels-idx1-ubyte", idx_file({2}, {1, 2}));
}

void check_small_mnist(const tg::io::MnistData& d) {
  CHECK(d.train.count == 3);
  CHECK(d.train.rows == 2);
  CHECK(d.train.cols == 3);
  CHECK(d.train.features() == 6);
  REQUIRE(d.train.pixels.size() == 18);
  CHECK(d.train.pixels[0] == 240.0F / 255.0F);
  CHECK(d.train.pixels[15] == 1.0F);
  CHECK(d.train.pixels[16] == 0.0F);
  CHECK(d.train.labels == std::vector<std::uint8_t>{4, 0, 9});
  CHECK(d.test.count == 2);
  CHECK(d.test.pixels[11] == 11.0F / 255.0F);
  CHECK(d.test.labels == std::vector<std::uint8_t>{1, 2});
  CHECK(d.classes == 10);
}

}  // namespace

TEST_CASE("idx: Fashion-MNIST from the Debian package: sizes, labels, pixel checksums", "[io][idx][data]") {
  // The reference figures were computed with Python's gzip module, independently of this code:
  //   b = gzip.open(name).read()[16:]   (8 for the label files)
  //   sum(b); sum((i % 9973 + 1) * v for i, v in enumerate(b)); [b.count(k) for k in range(10)]
  const tg::io::MnistData d = tg::io::load_mnist();  // the default directory
  CHECK(d.train.count == 60000);
  CHECK(d.test.count == 10000);
  CHECK(d.train.rows == 28);
  CHECK(d.train.cols == 28);
  CHECK(d.test.features() == 784);
  CHECK(d.classes == 10);
  REQUIRE(d.train.pixels.size() == 60000U * 784U);
  REQUIRE(d.test.pixels.size() == 10000U * 784U);
  REQUIRE(d.train.labels.size() == 60000);
  REQUIRE(d.test.labels.size() == 10000);
  // Every pixel is exactly byte / 255; the bytes recovered from the floats match the checksums.
  const auto checksums = [](const std::vector<float>& pixels) {
    std::uint64_t sum = 0, weighted = 0;
    bool exact = true;
    for (std::size_t i = 0; i < pixels.size(); ++i) {
      const long b = std::lround(pixels[i] * 255.0F);
      exact = exact && b >= 0 && b <= 255 && pixels[i] == static_cast<float>(b) / 255.0F;
      sum += static_cast<std::uint64_t>(b);
      weighted += (i % 9973 + 1) * static_cast<std::uint64_t>(b);
    }
    return std::tuple(exact, sum, weighted);
  };
  const auto [train_exact, train_sum, train_weighted] = checksums(d.train.pixels);
  CHECK(train_exact);
  CHECK(train_sum == 3431114169ULL);
  CHECK(train_weighted == 17125544523972ULL);
  const auto [test_exact, test_sum, test_weighted] = checksums(d.test.pixels);
  CHECK(test_exact);
  CHECK(test_sum == 573469082ULL);
  CHECK(test_weighted == 2850121722075ULL);

  std::vector<std::size_t> train_counts(10), test_counts(10);
  for (const auto l : d.train.labels) ++train_counts.at(l);
  for (const auto l : d.test.labels) ++test_counts.at(l);
  CHECK(train_counts == std::vector<std::size_t>(10, 6000));
  CHECK(test_counts == std::vector<std::size_t>(10, 1000));
  CHECK(std::vector<std::uint8_t>(d.train.labels.begin(), d.train.labels.begin() + 8) ==
        std::vector<std::uint8_t>{9, 0, 0, 3, 0, 2, 7, 2});
  CHECK(std::vector<std::uint8_t>(d.test.labels.begin(), d.test.labels.begin() + 8) ==
        std::vector<std::uint8_t>{9, 2, 1, 1, 6, 1, 4, 6});
}

TEST_CASE("idx: a small MNIST-format directory, plain, gzipped, or with dotted names", "[io][idx]") {
  ScratchDir dir;
  SECTION("plain") { write_small_mnist(dir, false); }
  SECTION("gzipped") { write_small_mnist(dir, true); }
  SECTION("dotted names, as in the original MNIST archives") { write_small_mnist(dir, false, true); }
  check_small_mnist(tg::io::load_mnist(dir.path()));
}

TEST_CASE("idx: read_idx reads any rank, plain or gzipped, to the same bytes", "[io][idx]") {
  ScratchDir dir;
  const auto data = iota_bytes(2 * 3 * 4 * 5);
  const std::string file = idx_file({2, 3, 4, 5}, data);
  write_bytes(dir / "a", file);
  write_gz(dir / "a.gz", file);
  for (const char* name : {"a", "a.gz"}) {
    const auto x = tg::io::read_idx(dir / name);
    CHECK(x.dims == std::vector<std::size_t>{2, 3, 4, 5});
    CHECK(x.data == data);
  }
}

TEST_CASE("idx: malformed files raise IoError naming the file and the fault", "[io][idx]") {
  ScratchDir dir;
  const auto p = dir / "x";
  const std::string p_name = p.string();
  const auto expect = [&](const std::string& bytes, std::size_t rank, std::initializer_list<std::string> parts) {
    for (const bool gz : {false, true}) {
      INFO((gz ? "gzipped" : "plain"));
      if (gz) {
        write_gz(p, bytes);
      } else {
        write_bytes(p, bytes);
      }
      REQUIRE_THROWS_MATCHES(tg::io::read_idx(p, rank), tg::IoError, tgtest::MessageHas(parts));
    }
  };
  expect("", 0, {p_name, "truncated: 0 bytes, too short for the 4-byte IDX magic number"});
  expect(std::string("\0\0\x08", 3), 0, {"truncated: 3 bytes"});
  expect("\x12\x34\x08\x01" + be32(1) + "a", 0, {"bad magic number 0x12340801", "not an IDX file"});
  expect(std::string("\0\0\x0D\x01", 4) + be32(1) + "abcd", 0,
         {"magic number 0x00000d01", "element type 0x0d (32-bit float) is not supported"});
  expect(std::string("\0\0\x08\0", 4), 0, {"rank 0"});
  expect(idx_file({4}, {1, 2, 3, 4}), 3, {"magic number 0x00000801 says rank 1, expected rank 3 (magic 0x00000803)"});
  expect(idx_file({2, 0, 2}, {}), 0, {"dimension 2 of 3 is 0"});
  expect(std::string("\0\0\x08\x03", 4) + be32(2) + be32(2), 0,
         {"truncated in the header: dimension 3 of 3 (bytes 12..16) is missing"});
  expect(idx_file({2, 3}, {1, 2, 3, 4, 5}), 0, {"truncated: the header declares 2 x 3 = 6 data bytes", "only 5"});
  expect(idx_file({2, 2}, {1, 2, 3, 4, 5}), 0, {"more data than the header declares: 12 header bytes + 4 data"});
  // A header that claims 2^32 x 2^32 x 255 bytes fails on the product, not on an allocation.
  expect(std::string("\0\0\x08\x03", 4) + be32(0xFFFFFFFF) + be32(0xFFFFFFFF) + be32(0xFF), 0, {"overflows"});
  // A header that claims 4 GB fails on the truncation, before allocating them all.
  expect(idx_file({0xFFFFFFFF}, {1, 2, 3}), 0, {"truncated: the header declares 4294967295 = 4294967295"});

  REQUIRE_IO_ERROR(tg::io::read_idx(dir / "missing.gz"), "missing.gz: no such file");
  REQUIRE_IO_ERROR(tg::io::read_idx(dir.path()), "is a directory");
}

TEST_CASE("idx: a corrupt or truncated gzip stream raises IoError", "[io][idx]") {
  ScratchDir dir;
  std::mt19937 rng(3);
  std::vector<std::uint8_t> labels(20000);
  for (auto& l : labels) l = static_cast<std::uint8_t>(rng() % 10);
  write_gz(dir / "good.gz", idx_file({20000}, labels));
  const std::string gz = read_bytes(dir / "good.gz");
  REQUIRE(tg::io::read_idx(dir / "good.gz", 1).data == labels);

  write_bytes(dir / "cut.gz", gz.substr(0, gz.size() / 2));
  REQUIRE_IO_ERROR(tg::io::read_idx(dir / "cut.gz", 1), "cut.gz", "corrupt gzip data", "unexpected end of file");
  write_bytes(dir / "no-trailer.gz", gz.substr(0, gz.size() - 4));  // the length field of the trailer
  REQUIRE_IO_ERROR(tg::io::read_idx(dir / "no-trailer.gz", 1), "no-trailer.gz", "corrupt gzip data");

  std::string flipped = gz;
  for (std::size_t i = gz.size() / 3; i < gz.size() / 3 + 8; ++i) flipped[i] = static_cast<char>(~flipped[i]);
  write_bytes(dir / "flipped.gz", flipped);
  REQUIRE_IO_ERROR(tg::io::read_idx(dir / "flipped.gz", 1), "flipped.gz", "corrupt gzip data");
}

TEST_CASE("idx: load_mnist checks the files against each other and names what is missing", "[io][idx]") {
  ScratchDir dir;
  write_small_mnist(dir, true);
  SECTION("a missing file") {
    std::filesystem::remove(dir / "t10k-labels-idx1-ubyte.gz");
    REQUIRE_IO_ERROR(tg::io::load_mnist(dir.path()), dir.path().string(), "no t10k-labels-idx1-ubyte",
                     "t10k-labels-idx1-ubyte.gz, t10k-labels-idx1-ubyte, t10k-labels.idx1-ubyte.gz");
  }
  SECTION("images and labels disagree in count") {
    write_gz(dir / "train-labels-idx1-ubyte.gz", idx_file({2}, {1, 2}));
    REQUIRE_IO_ERROR(tg::io::load_mnist(dir.path()), "train-images-idx3-ubyte.gz holds 3 images",
                     "train-labels-idx1-ubyte.gz holds 2 labels");
  }
  SECTION("train and test images differ in size") {
    write_gz(dir / "t10k-images-idx3-ubyte.gz", idx_file({2, 3, 2}, iota_bytes(12)));
    REQUIRE_IO_ERROR(tg::io::load_mnist(dir.path()), "training images are 2x3 but test images are 3x2");
  }
  SECTION("labels stored as images") {
    write_gz(dir / "train-labels-idx1-ubyte.gz", idx_file({3, 2, 3}, iota_bytes(18)));
    REQUIRE_IO_ERROR(tg::io::load_mnist(dir.path()), "train-labels-idx1-ubyte.gz", "says rank 3, expected rank 1");
  }
  SECTION("not a directory") {
    REQUIRE_IO_ERROR(tg::io::load_mnist(dir / "train-labels-idx1-ubyte.gz"), "not a directory");
    REQUIRE_IO_ERROR(tg::io::load_mnist(dir / "nope"), "nope: no such directory");
  }
}

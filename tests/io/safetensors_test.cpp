#include <nn/io/safetensors.hpp>

#include "io_test_util.hpp"

#include <bit>
#include <fmt/format.h>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using tg::io::Dtype;
using tg::io::TensorView;
using tgtest::read_bytes;
using tgtest::ScratchDir;
using tgtest::write_bytes;

namespace {

std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (char& c : s) {
    c = static_cast<char>(n & 0xFF);
    n >>= 8;
  }
  return s;
}

// A file from a header string and a data section, bypassing the writer under test.
std::string raw_file(std::string_view header, std::string_view data) {
  return le64(header.size()) + std::string(header) + std::string(data);
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace

TEST_CASE("safetensors: the file layout of a one-tensor checkpoint, byte by byte", "[io][safetensors]") {
  ScratchDir dir;
  const std::vector<float> a{1.0F, -2.0F};
  tg::io::save_safetensors(dir / "a.safetensors", {TensorView::of("a", {2}, a)});
  // 54 bytes of JSON, padded with two spaces so that the data starts at byte 64.
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  )";
  REQUIRE(header.size() == 56);
  const std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) + header +
                               std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);  // 1.0f, -2.0f LE
  CHECK(read_bytes(dir / "a.safetensors") == expected);
}

TEST_CASE("safetensors: round trip of every kind of tensor, bit for bit, with metadata", "[io][safetensors]") {
  ScratchDir dir;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> w(6 * 5);
  for (float& x : w) x = normal(rng);
  w[0] = -0.0F;
  w[1] = std::numeric_limits<float>::quiet_NaN();
  w[2] = std::numeric_limits<float>::infinity();
  w[3] = std::numeric_limits<float>::denorm_min();
  const std::vector<double> d{0.1, -1e300, 5e-324, std::numeric_limits<double>::max()};
  const std::vector<std::int64_t> step{-9'000'000'000'000'000'000LL};
  const std::vector<std::int32_t> idx{-1, 0, 2147483647};
  const std::vector<std::uint8_t> mask{0, 1, 255, 7};
  const std::vector<std::uint16_t> bf16_bits{0x3F80, 0xC000};  // BF16 1.0, -2.0 as raw bits
  const std::vector<float> empty;
  const std::vector<TensorView> views{
      TensorView::of("layers.0.weight", {6, 5}, w),
      TensorView::of("w64", {2, 2}, d),
      TensorView::of("step", {}, step),  // a scalar
      TensorView::of("idx", {3}, idx),
      TensorView::of("mask", {2, 2}, mask),
      {"half", Dtype::BF16, {2}, std::as_bytes(std::span(bf16_bits))},
      TensorView::of("nothing", {0, 3}, empty),
      TensorView::of("naïve \"quoted\" \\ name\n", {1}, std::span(w).first(1)),
  };
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "tab\there, \"quotes\", é, \x01"}};
  const auto path = dir / "ckpt.safetensors";
  tg::io::save_safetensors(path, views, meta);

  const std::string raw = read_bytes(path);
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, raw.data(), 8);
  CHECK((8 + header_len) % 8 == 0);

  const auto f = tg::io::load_safetensors(path);
  CHECK(f.metadata == meta);
  REQUIRE(f.tensors.size() == views.size());
  for (const TensorView& v : views) {
    INFO(v.name);
    const tg::io::Array& a = f.at(v.name);
    CHECK(a.dtype == v.dtype);
    CHECK(a.shape == v.shape);
    REQUIRE(a.data.size() == v.data.size());
    CHECK(std::equal(a.data.begin(), a.data.end(), v.data.begin()));
  }
  const auto back = f.at("layers.0.weight").to_vector<float>();
  CHECK(std::bit_cast<std::uint32_t>(back[0]) == 0x80000000U);  // -0.0 kept
  CHECK(std::isnan(back[1]));
  CHECK(f.at("step").size() == 1);
  CHECK(f.at("step").to_vector<std::int64_t>() == step);
  CHECK(f.at("nothing").size() == 0);
  REQUIRE_IO_ERROR(f.at("w64").to_vector<float>(), "array of dtype F64 read as F32");
  REQUIRE_IO_ERROR(f.at("layer.0.weight"), "no tensor 'layer.0.weight'", "'layers.0.weight'");
}

TEST_CASE("safetensors: loads a file written by another writer (no padding, any key order)",
          "[io][safetensors]") {
  ScratchDir dir;
  const std::vector<double> b{3.5, -4.25};
  const std::vector<std::int32_t> a{7};
  const std::string header =
      " {\n \"b\" : {\"shape\": [2], \"data_offsets\": [4, 20], \"dtype\": \"F64\"},\n"
      "  \"__metadata__\": {},\n"
      "  \"a\": {\"data_offsets\": [0, 4], \"dtype\": \"I32\", \"shape\": [1, 1]}\t}  ";
  write_bytes(dir / "x", raw_file(header, bytes_of(a) + bytes_of(b)));
  const auto f = tg::io::load_safetensors(dir / "x");
  CHECK(f.at("a").to_vector<std::int32_t>() == a);
  CHECK(f.at("a").shape == std::vector<std::uint64_t>{1, 1});
  CHECK(f.at("b").to_vector<double>() == b);
  CHECK(f.metadata.empty());
}

TEST_CASE("safetensors: an empty checkpoint round-trips", "[io][safetensors]") {
  ScratchDir dir;
  tg::io::save_safetensors(dir / "e", std::span<const TensorView>{}, {});
  CHECK(read_bytes(dir / "e") == le64(8) + "{}      ");
  const auto f = tg::io::load_safetensors(dir / "e");
  CHECK(f.tensors.empty());
  CHECK(f.metadata.empty());
}

TEST_CASE("safetensors: saving rejects inconsistent views and bad names", "[io][safetensors]") {
  ScratchDir dir;
  const std::vector<float> v(6);
  const auto p = dir / "bad.safetensors";
  REQUIRE_IO_ERROR(tg::io::save_safetensors(p, {TensorView::of("w", {2, 2}, v)}), "bad.safetensors",
                   "tensor 'w'", "needs 16 bytes, the view has 24");
  REQUIRE_IO_ERROR(tg::io::save_safetensors(p, {TensorView::of("w", {6}, v), TensorView::of("w", {6}, v)}),
                   "two tensors are named 'w'");
  REQUIRE_IO_ERROR(tg::io::save_safetensors(p, {TensorView::of("__metadata__", {6}, v)}), "reserved");
  REQUIRE_IO_ERROR(tg::io::save_safetensors(p, {TensorView::of("", {6}, v)}), "empty name");
  REQUIRE_IO_ERROR(tg::io::save_safetensors(p, {TensorView::of("\xff", {6}, v)}), "not valid UTF-8");
  REQUIRE_IO_ERROR(tg::io::save_safetensors(p, {TensorView::of("w", {1ULL << 62, 8}, v)}), "too large");
  CHECK(dir.entries().empty());  // nothing was written
}

TEST_CASE("safetensors: every malformed file raises IoError naming the file and the fault",
          "[io][safetensors]") {
  ScratchDir dir;
  const auto p = dir / "bad.safetensors";
  const std::string p_name = p.string();
  const std::string eight(8, '\x11');  // 8 data bytes
  const auto expect = [&](const std::string& file, std::initializer_list<std::string> parts) {
    write_bytes(p, file);
    INFO(std::string(file.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(8, file.size())), file.end()));
    REQUIRE_THROWS_MATCHES(tg::io::load_safetensors(p), tg::IoError, tgtest::MessageHas(parts));
  };
  const auto entry = [](std::string_view dtype, std::string_view shape, std::string_view offsets) {
    return fmt::format(R"({{"t":{{"dtype":{},"shape":{},"data_offsets":{}}}}})", dtype, shape, offsets);
  };

  SECTION("header length") {
    expect("", {p_name, "0 bytes long, too short"});
    expect(std::string("\x05\0\0", 3), {"3 bytes long, too short"});
    expect(le64(100) + "{}", {"header length 100", "exceeds the 2 bytes that follow"});
    expect(le64(~0ULL) + "{}", {"header length 18446744073709551615"});
    expect(le64(0), {"header length is 0"});
    // Over the 100 MB limit: a sparse file, so the test writes almost nothing.
    write_bytes(p, le64(200'000'000) + "{");
    std::filesystem::resize_file(p, 8 + 200'000'000);
    REQUIRE_IO_ERROR(tg::io::load_safetensors(p), "header length 200000000 exceeds the limit of 100000000");
  }
  SECTION("JSON syntax, with the byte offset in the file") {
    expect(raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],}})", eight),
           {p_name, "invalid JSON at byte 61", "expected a string key"});
    expect(raw_file(R"({"t":{"dtype":"F32)", ""), {"invalid JSON at byte 22", "unterminated string"});
    expect(raw_file(R"({"t":tru})", ""), {"invalid JSON at byte 13", "expected 'true'"});
    expect(raw_file(R"({} x)", ""), {"invalid JSON at byte 11", "after the JSON value"});
    expect(raw_file(R"({"t":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}})", eight), {"leading zeros"});
    expect(raw_file("{\"t\xff\":1}", ""), {"invalid UTF-8"});
    expect(raw_file(std::string(100, '[') + std::string(100, ']'), ""), {"nesting deeper than 64"});
    expect(raw_file("[]", ""), {"the header is a JSON array, expected an object"});
  }
  SECTION("duplicate names") {
    expect(raw_file(R"({"t":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                    R"("t":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                    eight),
           {"duplicate key \"t\" (first at byte 9)"});
  }
  SECTION("dtype") {
    expect(raw_file(entry(R"("F33")", "[2]", "[0,8]"), eight), {"tensor 't'", "unknown dtype \"F33\"", "F32"});
    expect(raw_file(entry(R"("f32")", "[2]", "[0,8]"), eight), {"unknown dtype \"f32\""});
    expect(raw_file(entry("4", "[2]", "[0,8]"), eight), {"dtype is a JSON number, expected a string"});
  }
  SECTION("fields") {
    expect(raw_file(R"({"t":{"dtype":"F32","shape":[2]}})", eight), {"tensor 't'", "no \"data_offsets\""});
    expect(raw_file(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", eight), {"no \"dtype\""});
    expect(raw_file(R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", eight), {"no \"shape\""});
    expect(raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", eight),
           {"unknown field \"x\""});
    expect(raw_file(R"({"t":[1]})", eight), {"tensor 't' (header byte 13) is a JSON array"});
    expect(raw_file(R"({"__metadata__":{"k":1}})", ""), {"metadata \"k\"", "expected a string"});
    expect(raw_file(R"({"__metadata__":[]})", ""), {"\"__metadata__\"", "expected an object of strings"});
  }
  SECTION("shape against offsets") {
    expect(raw_file(entry(R"("F32")", "[3]", "[0,8]"), eight),
           {"shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8"});
    expect(raw_file(entry(R"("F32")", "[-2]", "[0,8]"), eight), {"shape entry -2", "not a non-negative integer"});
    expect(raw_file(entry(R"("F32")", "[2.0]", "[0,8]"), eight), {"shape entry 2.0"});
    expect(raw_file(entry(R"("F32")", "[\"2\"]", "[0,8]"), eight), {"shape entry string"});
    expect(raw_file(entry(R"("F32")", "[18446744073709551616]", "[0,8]"), eight), {"shape entry 18446744073709551616"});
    expect(raw_file(entry(R"("F64")", "[4294967296,4294967296]", "[0,8]"), eight), {"is too large"});
    expect(raw_file(entry(R"("F32")", "2", "[0,8]"), eight), {"shape is a JSON number"});
  }
  SECTION("offsets out of range, reversed, overlapping, leaving gaps") {
    expect(raw_file(entry(R"("F32")", "[2]", "[0]"), eight), {"data_offsets must be an array of two"});
    expect(raw_file(entry(R"("F32")", "[2]", "[0,-8]"), eight), {"data_offsets must be non-negative"});
    expect(raw_file(entry(R"("U8")", "[0]", "[8,0]"), eight), {"[8, 0] end before they begin"});
    expect(raw_file(entry(R"("U8")", "[16]", "[0,16]"), eight),
           {"truncated", "tensor 't' needs data bytes [0, 16)", "has only 8 bytes"});
    expect(raw_file(entry(R"("U8")", "[4]", "[4,8]"), eight), {"gap", "bytes [0, 4) before tensor 't'"});
    expect(raw_file(entry(R"("U8")", "[4]", "[0,4]"), eight), {"4 trailing bytes after the last tensor"});
    expect(raw_file(R"({"a":{"dtype":"U8","shape":[6],"data_offsets":[0,6]},)"
                    R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                    eight),
           {"tensors 'a' [0, 6] and 'b' [4, 8] overlap"});
    expect(raw_file(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})",
                    eight),
           {"overlap"});
  }
}

TEST_CASE("safetensors: a file cut at any byte raises IoError", "[io][safetensors]") {
  ScratchDir dir;
  const std::vector<float> w{1, 2, 3, 4, 5, 6};
  const std::vector<std::int64_t> n{42};
  const auto good = dir / "good";
  tg::io::save_safetensors(good, {TensorView::of("w", {2, 3}, w), TensorView::of("n", {1}, n)}, {{"k", "v"}});
  const std::string bytes = read_bytes(good);
  const auto cut = dir / "cut";
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    INFO("cut at " << len << " of " << bytes.size());
    write_bytes(cut, bytes.substr(0, len));
    REQUIRE_THROWS_AS(tg::io::load_safetensors(cut), tg::IoError);
  }
  write_bytes(cut, bytes.substr(0, bytes.size() - 3));
  REQUIRE_IO_ERROR(tg::io::load_safetensors(cut), "truncated", "tensor 'n'");
}

TEST_CASE("safetensors: random byte corruption gives IoError or a valid file, never a crash",
          "[io][safetensors]") {
  ScratchDir dir;
  const std::vector<float> w{1, 2, 3, 4, 5, 6};
  const std::vector<std::int32_t> n{42, 43};
  const auto good = dir / "good";
  tg::io::save_safetensors(good, {TensorView::of("w", {2, 3}, w), TensorView::of("n", {2}, n)}, {{"k", "v"}});
  const std::string bytes = read_bytes(good);
  std::mt19937 rng(1234);
  const auto bad = dir / "bad";
  std::size_t rejected = 0;
  for (int trial = 0; trial < 1000; ++trial) {
    std::string mutated = bytes;
    const int flips = 1 + trial % 3;
    for (int k = 0; k < flips; ++k) {
      // Mostly in the length field and the header, where the parsing happens.
      const std::size_t limit = trial % 4 == 0 ? mutated.size() : std::min<std::size_t>(mutated.size(), 128);
      mutated[rng() % limit] = static_cast<char>(rng() % 256);
    }
    write_bytes(bad, mutated);
    try {
      const auto f = tg::io::load_safetensors(bad);
      // Accepted: then it must be self-consistent.
      for (const auto& [name, a] : f.tensors) {
        const auto count = tg::io::element_count(a.shape);
        REQUIRE(count);
        REQUIRE(*count * tg::io::dtype_size(a.dtype) == a.data.size());
      }
    } catch (const tg::IoError&) {
      ++rejected;
    }
  }
  CHECK(rejected > 500);  // most mutations of a small file break it
}

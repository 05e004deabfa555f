// The C++ side of the NumPy interoperability test (safetensors_numpy_test.py):
//
//   safetensors_interop write <checkpoint> <expected.txt>   save a checkpoint with tg::io, and
//                                                           its values as text for Python
//   safetensors_interop check <checkpoint> <expected.txt>   load a checkpoint written by Python
//                                                           and compare it with its values
//
// expected.txt has one line per tensor, "name<TAB>dtype<TAB>d0,d1,...<TAB>v0 v1 ..." (floats in
// shortest round-trip decimal form, so that parsing them gives the same bits), and one line per
// metadata entry, "#meta<TAB>key<TAB>value".
#include <nn/io/atomic_file.hpp>
#include <nn/io/safetensors.hpp>

#include <autodiff/error.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using tg::io::Dtype;
using tg::io::TensorView;

template <class T>
std::string format_values(const std::vector<T>& v) {
  std::string s;
  for (const T& x : v) {
    if (!s.empty()) s += ' ';
    if constexpr (std::is_floating_point_v<T>) {
      char buf[64];
      const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<double>(x));  // exact for float too
      s.append(buf, r.ptr);
    } else {
      s += std::to_string(+x);
    }
  }
  return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

int write(const std::string& ckpt, const std::string& expected) {
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0.0F, 0.5F);
  std::vector<float> weight(3 * 4);
  for (float& x : weight) x = normal(rng);
  weight[5] = -0.0F;
  weight[6] = std::numeric_limits<float>::denorm_min();
  weight[7] = std::numeric_limits<float>::max();
  const std::vector<float> bias{0.1F, -0.2F, std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity()};
  std::vector<double> w64(2 * 2 * 2);
  for (double& x : w64) x = static_cast<double>(normal(rng)) / 3.0;
  w64[0] = 5e-324;
  w64[1] = -1e308;
  const std::vector<std::int64_t> step{123456789012345LL};
  const std::vector<std::int32_t> idx{-2147483647 - 1, -1, 0, 1, 2147483647};
  const std::vector<std::uint8_t> mask{0, 1, 2, 127, 128, 255};
  const std::vector<float> none;

  std::vector<TensorView> views{
      TensorView::of("layers.0.weight", {3, 4}, weight),
      TensorView::of("layers.0.bias", {4}, bias),
      TensorView::of("w64", {2, 2, 2}, w64),
      TensorView::of("optimizer.step", {}, step),
      TensorView::of("idx", {5}, idx),
      TensorView::of("mask", {2, 3}, mask),
      TensorView::of("empty", {0, 3}, none),
  };
  const std::map<std::string, std::string> meta{{"format", "tapegrad"}, {"note", "quote \" backslash \\ é"}};
  tg::io::save_safetensors(ckpt, views, meta);

  std::string text;
  const auto line = [&](const TensorView& v, const std::string& values) {
    text += fmt::format("{}\t{}\t{}\t{}\n", v.name, tg::io::dtype_name(v.dtype), fmt::join(v.shape, ","), values);
  };
  line(views[0], format_values(weight));
  line(views[1], format_values(bias));
  line(views[2], format_values(w64));
  line(views[3], format_values(step));
  line(views[4], format_values(idx));
  line(views[5], format_values(mask));
  line(views[6], "");
  for (const auto& [k, v] : meta) text += fmt::format("#meta\t{}\t{}\n", k, v);
  tg::io::write_file_atomically(expected, text);
  return 0;
}

template <class T>
std::vector<std::byte> parse_values(const std::string& s) {
  std::vector<std::byte> out;
  for (const std::string& item : split(s, ' ')) {
    if (item.empty()) continue;
    T v{};
    if constexpr (std::is_floating_point_v<T>) {
      double d = 0;
      if (item == "nan") d = std::numeric_limits<double>::quiet_NaN();
      else if (item == "inf") d = std::numeric_limits<double>::infinity();
      else if (item == "-inf") d = -std::numeric_limits<double>::infinity();
      else if (std::from_chars(item.data(), item.data() + item.size(), d).ec != std::errc()) {
        throw std::runtime_error("bad number " + item);
      }
      v = static_cast<T>(d);
    } else {
      long long n = std::stoll(item);
      v = static_cast<T>(n);
    }
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }
  return out;
}

int check(const std::string& ckpt, const std::string& expected) {
  const auto f = tg::io::load_safetensors(ckpt);
  std::ifstream in(expected);
  std::string line;
  std::size_t tensors = 0, failures = 0;
  std::map<std::string, std::string> meta;
  const auto bad = [&](const std::string& what) {
    std::fprintf(stderr, "MISMATCH: %s\n", what.c_str());
    ++failures;
  };
  while (std::getline(in, line)) {
    const auto fields = split(line, '\t');
    if (fields.size() == 3 && fields[0] == "#meta") {
      meta[fields[1]] = fields[2];
      continue;
    }
    if (fields.size() != 4) throw std::runtime_error("bad expected line: " + line);
    ++tensors;
    const std::string& name = fields[0];
    if (!f.contains(name)) {
      bad("no tensor " + name);
      continue;
    }
    const tg::io::Array& a = f.at(name);
    if (tg::io::dtype_name(a.dtype) != fields[1]) bad(name + ": dtype " + std::string(tg::io::dtype_name(a.dtype)));
    std::vector<std::uint64_t> shape;
    for (const auto& d : split(fields[2], ',')) {
      if (!d.empty()) shape.push_back(std::stoull(d));
    }
    if (a.shape != shape) bad(name + ": shape");
    std::vector<std::byte> want;
    switch (a.dtype) {
      case Dtype::F32: want = parse_values<float>(fields[3]); break;
      case Dtype::F64: want = parse_values<double>(fields[3]); break;
      case Dtype::I64: want = parse_values<std::int64_t>(fields[3]); break;
      case Dtype::I32: want = parse_values<std::int32_t>(fields[3]); break;
      case Dtype::U8: want = parse_values<std::uint8_t>(fields[3]); break;
      case Dtype::BOOL: want = parse_values<std::uint8_t>(fields[3]); break;
      default: bad(name + ": dtype not covered by this test"); continue;
    }
    if (want != a.data) bad(name + ": values differ");
  }
  if (tensors != f.tensors.size()) bad(fmt::format("{} tensors expected, file has {}", tensors, f.tensors.size()));
  if (meta != f.metadata) bad("metadata differs");
  if (failures == 0) std::printf("ok: %zu tensors and %zu metadata entries match\n", tensors, meta.size());
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s write|check <checkpoint> <expected.txt>\n", argv[0]);
    return 2;
  }
  try {
    const std::string mode = argv[1];
    if (mode == "write") return write(argv[2], argv[3]);
    if (mode == "check") return check(argv[2], argv[3]);
    std::fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

// Helpers for the tg::io tests: a scratch directory removed at the end of each test, raw file
// writing and reading that bypass tg::io (so the tests do not trust the code under test), and a
// matcher for "throws tg::IoError whose message contains ...".
#pragma once

#include <autodiff/error.hpp>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tgtest {

class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tapegrad-io-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }
  /// Names of the entries in the directory, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("test setup: cannot write " + p.string());
}

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("test setup: cannot read " + p.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Catch2 matcher: the exception's message contains every one of the given fragments.
class MessageHas : public Catch::MatcherBase<tg::IoError> {
 public:
  MessageHas(std::initializer_list<std::string> parts) : parts_(parts) {}
  bool match(const tg::IoError& e) const override {
    const std::string_view what = e.what();
    for (const auto& p : parts_) {
      if (what.find(p) == std::string_view::npos) return false;
    }
    return true;
  }
  std::string describe() const override {
    std::string s = "has a message containing";
    for (const auto& p : parts_) s += " \"" + p + "\"";
    return s;
  }

 private:
  std::vector<std::string> parts_;
};

}  // namespace tgtest

/// REQUIRE that `expr` throws tg::IoError whose message contains all the fragments.
#define REQUIRE_IO_ERROR(expr, ...) \
  REQUIRE_THROWS_MATCHES(expr, tg::IoError, tgtest::MessageHas({__VA_ARGS__}))

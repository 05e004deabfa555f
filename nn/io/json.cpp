#include <nn/io/json.hpp>

#include <autodiff/error.hpp>

#include <fmt/format.h>
#include <unordered_map>

namespace tg::io::json {
namespace {

class Parser {
 public:
  Parser(std::string_view text, const Source& source, std::size_t max_depth)
      : s_(text), source_(source), max_depth_(max_depth) {}

  Value parse_document() {
    skip_ws();
    Value v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) error(pos_, fmt::format("unexpected {} after the JSON value", describe(pos_)));
    return v;
  }

 private:
  [[noreturn]] void error(std::size_t at, std::string_view what) const {
    throw IoError(fmt::format("{}: invalid JSON at byte {}: {}", source_.name,
                              source_.base_offset + at, what));
  }

  std::string describe(std::size_t at) const {
    if (at >= s_.size()) return "end of text";
    const auto c = static_cast<unsigned char>(s_[at]);
    if (c >= 0x20 && c < 0x7f) return fmt::format("character '{}'", static_cast<char>(c));
    return fmt::format("byte 0x{:02x}", c);
  }

  void skip_ws() noexcept {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  void expect(char c) {
    if (pos_ >= s_.size() || s_[pos_] != c) {
      error(pos_, fmt::format("expected '{}', found {}", c, describe(pos_)));
    }
    ++pos_;
  }

  Value parse_value(std::size_t depth) {
    if (pos_ >= s_.size()) error(pos_, "unexpected end of text, expected a value");
    Value v;
    v.offset = source_.base_offset + pos_;
    switch (s_[pos_]) {
      case '{': parse_object(v, depth); break;
      case '[': parse_array(v, depth); break;
      case '"': v.kind = Value::Kind::string; v.text = parse_string(); break;
      case 't': literal("true"); v.kind = Value::Kind::boolean; v.boolean = true; break;
      case 'f': literal("false"); v.kind = Value::Kind::boolean; break;
      case 'n': literal("null"); break;
      default:
        if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) {
          v.kind = Value::Kind::number;
          v.text = parse_number();
        } else {
          error(pos_, fmt::format("expected a value, found {}", describe(pos_)));
        }
    }
    return v;
  }

  void literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) error(pos_, fmt::format("expected '{}'", word));
    pos_ += word.size();
  }

  void enter(std::size_t depth) const {
    if (depth >= max_depth_) error(pos_, fmt::format("nesting deeper than {} levels", max_depth_));
  }

  void parse_object(Value& v, std::size_t depth) {
    enter(depth);
    v.kind = Value::Kind::object;
    ++pos_;  // '{'
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return;
    }
    std::unordered_map<std::string, std::size_t> seen;  // key -> offset of its first occurrence
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') {
        error(pos_, fmt::format("expected a string key, found {}", describe(pos_)));
      }
      const std::size_t key_at = pos_;
      std::string key = parse_string();
      if (auto [it, fresh] = seen.emplace(key, key_at); !fresh) {
        error(key_at, fmt::format("duplicate key \"{}\" (first at byte {})", key,
                                  source_.base_offset + it->second));
      }
      skip_ws();
      expect(':');
      skip_ws();
      Value member = parse_value(depth + 1);
      v.members.push_back(Member{std::move(key), std::move(member)});
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return;
      }
      error(pos_, fmt::format("expected ',' or '}}' in an object, found {}", describe(pos_)));
    }
  }

  void parse_array(Value& v, std::size_t depth) {
    enter(depth);
    v.kind = Value::Kind::array;
    ++pos_;  // '['
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_ws();
      v.items.push_back(parse_value(depth + 1));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return;
      }
      error(pos_, fmt::format("expected ',' or ']' in an array, found {}", describe(pos_)));
    }
  }

  std::string parse_number() {
    const std::size_t start = pos_;
    auto digit = [&] { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
    if (s_[pos_] == '-') ++pos_;
    if (!digit()) error(pos_, "expected a digit in a number");
    if (s_[pos_] == '0') {
      ++pos_;
      if (digit()) error(start, "leading zeros are not allowed in a number");
    } else {
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digit()) error(pos_, "expected a digit after the decimal point");
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit()) error(pos_, "expected a digit in the exponent");
      while (digit()) ++pos_;
    }
    return std::string(s_.substr(start, pos_ - start));
  }

  unsigned hex4() {
    if (s_.size() - pos_ < 4) error(pos_, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else error(pos_ - 1, "invalid hex digit in a \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    auto byte = [&](unsigned b) { out.push_back(static_cast<char>(b)); };
    if (cp < 0x80) {
      byte(cp);
    } else if (cp < 0x800) {
      byte(0xC0 | (cp >> 6));
      byte(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      byte(0xE0 | (cp >> 12));
      byte(0x80 | ((cp >> 6) & 0x3F));
      byte(0x80 | (cp & 0x3F));
    } else {
      byte(0xF0 | (cp >> 18));
      byte(0x80 | ((cp >> 12) & 0x3F));
      byte(0x80 | ((cp >> 6) & 0x3F));
      byte(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    const std::size_t start = pos_;
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) error(start, "unterminated string");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) error(pos_, fmt::format("raw control character 0x{:02x} in a string", c));
      if (c == '\\') {
        ++pos_;
        if (pos_ >= s_.size()) error(start, "unterminated string");
        const char e = s_[pos_++];
        switch (e) {
          case '"': out.push_back('"'); break;
          case '\\': out.push_back('\\'); break;
          case '/': out.push_back('/'); break;
          case 'b': out.push_back('\b'); break;
          case 'f': out.push_back('\f'); break;
          case 'n': out.push_back('\n'); break;
          case 'r': out.push_back('\r'); break;
          case 't': out.push_back('\t'); break;
          case 'u': {
            const std::size_t esc = pos_ - 2;
            unsigned cp = hex4();
            if (cp >= 0xDC00 && cp <= 0xDFFF) error(esc, "unpaired low surrogate in a \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (s_.substr(pos_, 2) != "\\u") error(esc, "unpaired high surrogate in a \\u escape");
              pos_ += 2;
              const unsigned lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) error(esc, "unpaired high surrogate in a \\u escape");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            append_utf8(out, cp);
            break;
          }
          default: error(pos_ - 2, fmt::format("invalid escape: backslash followed by {}", describe(pos_ - 1)));
        }
        continue;
      }
      // A run of plain characters: copy it after checking its UTF-8.
      const std::size_t run = pos_;
      while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\' &&
             static_cast<unsigned char>(s_[pos_]) >= 0x20) {
        ++pos_;
      }
      const std::string_view chunk = s_.substr(run, pos_ - run);
      if (!is_valid_utf8(chunk)) error(run, "invalid UTF-8 in a string");
      out.append(chunk);
    }
  }

  std::string_view s_;
  const Source& source_;
  std::size_t max_depth_;
  std::size_t pos_ = 0;
};

}  // namespace

const Value* Value::find(std::string_view key) const noexcept {
  for (const Member& m : members) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

std::optional<std::uint64_t> Value::as_uint64() const noexcept {
  if (kind != Kind::number || text.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

Value parse(std::string_view text, const Source& source, std::size_t max_depth) {
  return Parser(text, source, max_depth).parse_document();
}

std::string_view kind_name(Value::Kind kind) noexcept {
  switch (kind) {
    case Value::Kind::null: return "null";
    case Value::Kind::boolean: return "boolean";
    case Value::Kind::number: return "number";
    case Value::Kind::string: return "string";
    case Value::Kind::array: return "array";
    case Value::Kind::object: return "object";
  }
  return "?";
}

bool is_valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  const std::size_t n = s.size();
  auto cont = [&](std::size_t k) { return k < n && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80; };
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (!cont(i + 1)) return false;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      if (!cont(i + 1) || !cont(i + 2)) return false;
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if (c == 0xE0 && c1 < 0xA0) return false;  // overlong
      if (c == 0xED && c1 > 0x9F) return false;  // surrogate
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return false;
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if (c == 0xF0 && c1 < 0x90) return false;  // overlong
      if (c == 0xF4 && c1 > 0x8F) return false;  // above U+10FFFF
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

void append_quoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

}  // namespace tg::io::json

// A small strict JSON reader (RFC 8259) and string escaping, for the headers of tapegrad's file
// formats (safetensors). Strict means: exactly the JSON grammar (no comments, no trailing commas,
// no NaN, no leading zeros, no single quotes), strings are valid UTF-8 with no raw control
// characters, \u escapes pair their surrogates, object keys are unique, nesting is bounded. Every
// error throws tg::IoError naming the source and the byte offset.
//
// Numbers are kept as their literal text; as_uint64() reads a non-negative integer exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tg::io::json {

struct Member;

struct Value {
  enum class Kind : std::uint8_t { null, boolean, number, string, array, object };

  Kind kind = Kind::null;
  bool boolean = false;
  std::string text;             ///< a string's decoded contents, or a number's literal
  std::vector<Value> items;     ///< an array's elements
  std::vector<Member> members;  ///< an object's members, in file order, keys unique
  std::size_t offset = 0;       ///< where the value starts (Source::base_offset included)

  bool is_object() const noexcept { return kind == Kind::object; }
  bool is_array() const noexcept { return kind == Kind::array; }
  bool is_string() const noexcept { return kind == Kind::string; }
  bool is_number() const noexcept { return kind == Kind::number; }
  /// An object's member by key, or nullptr.
  const Value* find(std::string_view key) const noexcept;
  /// A number that is a non-negative integer literal (no sign, fraction or exponent) that fits
  /// in 64 bits; nullopt for anything else.
  std::optional<std::uint64_t> as_uint64() const noexcept;
};

struct Member {
  std::string key;
  Value value;
};

/// Where the text came from, for error messages: "<source>: invalid JSON at byte <offset>: ...".
/// `base_offset` is added to positions in the text (the text's position in its file).
struct Source {
  std::string name;
  std::size_t base_offset = 0;
};

/// Parses one JSON value; only whitespace may follow it. Throws tg::IoError.
Value parse(std::string_view text, const Source& source, std::size_t max_depth = 64);

/// The name of a kind, for messages ("object", "string", ...).
std::string_view kind_name(Value::Kind kind) noexcept;

/// True if `s` is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

/// Appends `s` as a JSON string literal (quotes included), escaping '"', '\\' and control
/// characters. `s` must be valid UTF-8 (checked by the callers that take names from users).
void append_quoted(std::string& out, std::string_view s);

}  // namespace tg::io::json

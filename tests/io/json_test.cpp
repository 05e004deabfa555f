#include <nn/io/json.hpp>

#include "io_test_util.hpp"

using tg::io::json::parse;
using tg::io::json::Source;
using tg::io::json::Value;

namespace {
Value parse_text(std::string_view text) { return parse(text, Source{"h.json", 100}); }
}  // namespace

TEST_CASE("json: values, members in order, offsets counted from the source's base", "[io][json]") {
  const Value v = parse_text(R"( {"a": [1, -2.5e+3, true, false, null], "b": {"c": "d"}, "": 0} )");
  REQUIRE(v.is_object());
  CHECK(v.offset == 101);
  REQUIRE(v.members.size() == 3);
  CHECK(v.members[0].key == "a");
  CHECK(v.members[1].key == "b");
  CHECK(v.members[2].key.empty());
  const Value& a = *v.find("a");
  REQUIRE(a.items.size() == 5);
  CHECK(a.offset == 107);
  CHECK(a.items[0].as_uint64() == 1U);
  CHECK(a.items[1].text == "-2.5e+3");
  CHECK_FALSE(a.items[1].as_uint64());
  CHECK(a.items[2].kind == Value::Kind::boolean);
  CHECK(a.items[2].boolean);
  CHECK(a.items[4].kind == Value::Kind::null);
  CHECK(v.find("b")->find("c")->text == "d");
  CHECK(v.find("x") == nullptr);
}

TEST_CASE("json: string escapes decode to UTF-8, surrogate pairs included", "[io][json]") {
  const Value v = parse_text(R"("q\" b\\ s\/ \b\f\n\r\t \u00e9 \u20AC \ud83d\ude00 é")");
  CHECK(v.text == "q\" b\\ s/ \b\f\n\r\t \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xC3\xA9");
  std::string quoted;
  tg::io::json::append_quoted(quoted, "a\"b\\c\nd\x01 é");
  CHECK(quoted == R"("a\"b\\c\nd\u0001 é")");
  CHECK(parse_text(quoted).text == "a\"b\\c\nd\x01 é");
}

TEST_CASE("json: as_uint64 reads exactly the non-negative integers that fit", "[io][json]") {
  CHECK(parse_text("0").as_uint64() == 0U);
  CHECK(parse_text("18446744073709551615").as_uint64() == 18446744073709551615ULL);
  CHECK_FALSE(parse_text("18446744073709551616").as_uint64());
  CHECK_FALSE(parse_text("-0").as_uint64());
  CHECK_FALSE(parse_text("1e3").as_uint64());
  CHECK_FALSE(parse_text("1.0").as_uint64());
  CHECK_FALSE(parse_text("\"1\"").as_uint64());
}

TEST_CASE("json: rejects what RFC 8259 does not allow, with the byte offset", "[io][json]") {
  REQUIRE_IO_ERROR(parse_text(""), "h.json: invalid JSON at byte 100", "unexpected end of text");
  REQUIRE_IO_ERROR(parse_text("[1,]"), "at byte 103", "expected a value, found character ']'");
  REQUIRE_IO_ERROR(parse_text("{\"a\":1,}"), "at byte 107", "expected a string key");
  REQUIRE_IO_ERROR(parse_text("{'a':1}"), "at byte 101", "expected a string key");
  REQUIRE_IO_ERROR(parse_text("{\"a\" 1}"), "at byte 105", "expected ':'");
  REQUIRE_IO_ERROR(parse_text("[1 2]"), "at byte 103", "expected ',' or ']'");
  REQUIRE_IO_ERROR(parse_text("{\"a\":1 \"b\":2}"), "at byte 107", "expected ',' or '}'");
  REQUIRE_IO_ERROR(parse_text("012"), "at byte 100", "leading zeros");
  REQUIRE_IO_ERROR(parse_text("1."), "at byte 102", "after the decimal point");
  REQUIRE_IO_ERROR(parse_text("-"), "at byte 101", "expected a digit");
  REQUIRE_IO_ERROR(parse_text("1e"), "at byte 102", "exponent");
  REQUIRE_IO_ERROR(parse_text("+1"), "expected a value");
  REQUIRE_IO_ERROR(parse_text("NaN"), "expected a value");
  REQUIRE_IO_ERROR(parse_text("nul"), "expected 'null'");
  REQUIRE_IO_ERROR(parse_text("[1] // c"), "at byte 104", "after the JSON value");
  REQUIRE_IO_ERROR(parse_text("\"a\nb\""), "at byte 102", "raw control character 0x0a");
  REQUIRE_IO_ERROR(parse_text("\"abc"), "at byte 100", "unterminated string");
  REQUIRE_IO_ERROR(parse_text(R"("\x")"), "at byte 101", "invalid escape: backslash followed by character 'x'");
  REQUIRE_IO_ERROR(parse_text(R"("\u12g4")"), "invalid hex digit");
  REQUIRE_IO_ERROR(parse_text(R"("\u12")"), "truncated \\u escape");
  REQUIRE_IO_ERROR(parse_text(R"("\udc00")"), "unpaired low surrogate");
  REQUIRE_IO_ERROR(parse_text(R"("\ud800 ")"), "unpaired high surrogate");
  REQUIRE_IO_ERROR(parse_text(R"("\ud800\u0041")"), "unpaired high surrogate");
  REQUIRE_IO_ERROR(parse_text(R"({"k":1,"k":2})"), "at byte 107", "duplicate key \"k\" (first at byte 101)");
}

TEST_CASE("json: strings must be valid UTF-8", "[io][json]") {
  REQUIRE_IO_ERROR(parse_text("\"\xC0\xAF\""), "invalid UTF-8");      // overlong '/'
  REQUIRE_IO_ERROR(parse_text("\"\xED\xA0\x80\""), "invalid UTF-8");  // encoded surrogate
  REQUIRE_IO_ERROR(parse_text("\"\xF4\x90\x80\x80\""), "invalid UTF-8");  // above U+10FFFF
  REQUIRE_IO_ERROR(parse_text("\"\xE2\x82\""), "invalid UTF-8");      // truncated sequence
  REQUIRE_IO_ERROR(parse_text("\"\x80\""), "invalid UTF-8");          // lone continuation byte
  CHECK(tg::io::json::is_valid_utf8("\xF0\x9F\x98\x80 \xEF\xBF\xBF \x7F"));
}

TEST_CASE("json: nesting is bounded instead of overflowing the stack", "[io][json]") {
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  REQUIRE_IO_ERROR(parse_text(deep), "nesting deeper than 64 levels");
  const std::string ok = std::string(64, '[') + std::string(64, ']');
  CHECK(parse_text(ok).is_array());
  REQUIRE_IO_ERROR(parse_text(std::string(65, '[') + std::string(65, ']')), "at byte 164", "nesting");
}

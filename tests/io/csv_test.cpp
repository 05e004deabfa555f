#include <nn/io/csv.hpp>

#include "io_test_util.hpp"

using tgtest::ScratchDir;
using tgtest::write_bytes;

namespace {

tg::io::CsvTable csv_from(const ScratchDir& dir, std::string_view text, tg::io::CsvOptions options = {}) {
  write_bytes(dir / "data.csv", text);
  return tg::io::read_csv(dir / "data.csv", options);
}

}  // namespace

TEST_CASE("csv: header names and row-major numbers", "[io][csv]") {
  ScratchDir dir;
  const auto t = csv_from(dir, "x1,x2,label\n0.5,1e-3,1\n-2,+3.25,0\n");
  CHECK(t.columns == std::vector<std::string>{"x1", "x2", "label"});
  CHECK(t.rows == 2);
  CHECK(t.values == std::vector<double>{0.5, 1e-3, 1, -2, 3.25, 0});
  CHECK(t.at(1, 1) == 3.25);
  CHECK(t.column_index("label") == 2);
}

TEST_CASE("csv: CRLF, no final newline, blank lines, BOM, spaces, quoted fields", "[io][csv]") {
  ScratchDir dir;
  const std::string text =
      "\xEF\xBB\xBF\r\n"
      " \"sepal, length\" ,\"the \"\"target\"\"\",plain \r\n"
      "1, 2 ,\"3\"\r\n"
      "\r\n"
      "   \r\n"
      "4.5,-0,.25";
  const auto t = csv_from(dir, text);
  CHECK(t.header_line == 2);
  CHECK(t.columns == std::vector<std::string>{"sepal, length", "the \"target\"", "plain"});
  CHECK(t.rows == 2);
  CHECK(t.values == std::vector<double>{1, 2, 3, 4.5, -0.0, 0.25});
}

TEST_CASE("csv: other delimiters", "[io][csv]") {
  ScratchDir dir;
  const auto t = csv_from(dir, "a;b\n1.5;2\n", {.delimiter = ';'});
  CHECK(t.values == std::vector<double>{1.5, 2});
  REQUIRE_IO_ERROR(csv_from(dir, "a;b\n1,5;2\n", {.delimiter = ';'}), "'1,5' is not a number");
  const auto tabs = csv_from(dir, "a\tb\n 1\t2 \n", {.delimiter = '\t'});
  CHECK(tabs.values == std::vector<double>{1, 2});
  CHECK(t.columns.size() == 2);
}

TEST_CASE("csv: split_target takes the target column out, keeping the others in order", "[io][csv]") {
  ScratchDir dir;
  const auto t = csv_from(dir, "a,y,b\n1,10,2\n3,30,4\n5,50,6\n");
  const auto d = tg::io::split_target(t, "y");
  CHECK(d.feature_names == std::vector<std::string>{"a", "b"});
  CHECK(d.target_name == "y");
  CHECK(d.rows == 3);
  CHECK(d.features == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(d.targets == std::vector<double>{10, 30, 50});
  REQUIRE_IO_ERROR(tg::io::split_target(t, "Y"), "data.csv:1: no column \"Y\" in the header (columns: a, y, b)");
}

TEST_CASE("csv: malformed files raise IoError with file, line and column", "[io][csv]") {
  ScratchDir dir;
  const std::string f = (dir / "data.csv").string();
  REQUIRE_IO_ERROR(csv_from(dir, "a,b\n1,2\n3,abc\n"), f + ":3:2: 'abc' is not a number (column \"b\")");
  REQUIRE_IO_ERROR(csv_from(dir, "a,b\r\n1,2\r\n3,4,5\r\n"), f + ":3:3: 3 fields, but the header (line 1) has 2");
  REQUIRE_IO_ERROR(csv_from(dir, "a,b,c\n1,2,3\n\n4\n"), f + ":4:2: 1 fields, but the header (line 1) has 3");
  REQUIRE_IO_ERROR(csv_from(dir, "a,b\n1,\n"), f + ":2:2: empty cell (column \"b\"), expected a number");
  REQUIRE_IO_ERROR(csv_from(dir, "a,b\n1,2\n\"\",3\n"), f + ":3:1: empty cell (column \"a\")");
  REQUIRE_IO_ERROR(csv_from(dir, "a\nnan\n"), f + ":2:1: 'nan' is not a finite number");
  REQUIRE_IO_ERROR(csv_from(dir, "a\n-inf\n"), f + ":2:1: '-inf' is not a finite number");
  REQUIRE_IO_ERROR(csv_from(dir, "a\n1e999\n"), f + ":2:1: '1e999' is out of the range of a double");
  REQUIRE_IO_ERROR(csv_from(dir, "a\n1.5.2\n"), f + ":2:1: '1.5.2' is not a number");
  REQUIRE_IO_ERROR(csv_from(dir, "a\n+-1\n"), f + ":2:1: '+-1' is not a number");
  REQUIRE_IO_ERROR(csv_from(dir, "a\n0x10\n"), f + ":2:1: '0x10' is not a number");
  REQUIRE_IO_ERROR(csv_from(dir, "a,b\n1,\"2\n"), f + ":2:2: unterminated quoted field");
  REQUIRE_IO_ERROR(csv_from(dir, "a,b\n1,\"2\"x\n"), f + ":2:2: unexpected 'x' after a closing quote");
  REQUIRE_IO_ERROR(csv_from(dir, ""), f + ":1:1: empty file, expected a header row");
  REQUIRE_IO_ERROR(csv_from(dir, "\xEF\xBB\xBF\n \r\n"), f + ":1:1: empty file");
  REQUIRE_IO_ERROR(csv_from(dir, "a,b\n"), f + ":2:1: no data rows after the header (line 1)");
  REQUIRE_IO_ERROR(csv_from(dir, "a,,b\n1,2,3\n"), f + ":1:2: empty column name in the header");
  REQUIRE_IO_ERROR(csv_from(dir, "a,b,a\n1,2,3\n"), f + ":1:3: column name \"a\" appears twice in the header");
  REQUIRE_IO_ERROR(tg::io::read_csv(dir / "missing.csv"), "cannot open", "missing.csv", "No such file or directory");
  REQUIRE_IO_ERROR(tg::io::read_csv(dir.path()), "is a directory");
}

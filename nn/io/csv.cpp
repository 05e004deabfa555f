#include <nn/io/csv.hpp>

#include <autodiff/error.hpp>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <set>
#include <system_error>

namespace tg::io {
namespace {

struct Field {
  std::string text;
  std::size_t column = 0;  // 1-based field number
};

class Reader {
 public:
  Reader(const std::filesystem::path& path, const CsvOptions& options)
      : name_(path.string()), delim_(options.delimiter) {
    if (delim_ == '"' || delim_ == '\n' || delim_ == '\r') {
      throw IoError(fmt::format("{}: the delimiter cannot be a quote or a line break", name_));
    }
  }

  [[noreturn]] void fail(std::size_t line, std::size_t column, std::string_view what) const {
    throw IoError(fmt::format("{}:{}:{}: {}", name_, line, column, what));
  }

  // Splits one line (no line break) into fields.
  void split(std::string_view s, std::size_t line, std::vector<Field>& out) const {
    out.clear();
    std::size_t i = 0;
    const auto blank = [&](char c) { return (c == ' ' || c == '\t') && c != delim_; };
    for (std::size_t column = 1;; ++column) {
      while (i < s.size() && blank(s[i])) ++i;
      Field f;
      f.column = column;
      if (i < s.size() && s[i] == '"') {
        ++i;
        for (;;) {
          if (i >= s.size()) fail(line, column, "unterminated quoted field (quoted fields cannot span lines)");
          if (s[i] == '"') {
            if (i + 1 < s.size() && s[i + 1] == '"') {
              f.text.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          f.text.push_back(s[i++]);
        }
        while (i < s.size() && blank(s[i])) ++i;
        if (i < s.size() && s[i] != delim_) {
          fail(line, column, fmt::format("unexpected '{}' after a closing quote", s[i]));
        }
      } else {
        const std::size_t start = i;
        while (i < s.size() && s[i] != delim_) ++i;
        std::size_t end = i;
        while (end > start && blank(s[end - 1])) --end;
        f.text.assign(s.substr(start, end - start));
      }
      out.push_back(std::move(f));
      if (i >= s.size()) return;
      ++i;  // the delimiter
    }
  }

  double number(const Field& f, std::size_t line, const std::string& column_name) const {
    const std::string_view t = f.text;
    const auto where = [&] { return fmt::format("(column \"{}\")", column_name); };
    if (t.empty()) fail(line, f.column, fmt::format("empty cell {}, expected a number", where()));
    std::string_view digits = t;
    if (digits.size() > 1 && digits[0] == '+' && digits[1] != '-' && digits[1] != '+') digits.remove_prefix(1);
    double v = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    const std::string shown = t.size() > 40 ? std::string(t.substr(0, 40)) + "..." : std::string(t);
    if (ec == std::errc::result_out_of_range) {
      fail(line, f.column, fmt::format("'{}' is out of the range of a double {}", shown, where()));
    }
    if (ec != std::errc() || end != digits.data() + digits.size()) {
      fail(line, f.column, fmt::format("'{}' is not a number {}", shown, where()));
    }
    if (!std::isfinite(v)) fail(line, f.column, fmt::format("'{}' is not a finite number {}", shown, where()));
    return v;
  }

  CsvTable read(const std::filesystem::path& path) const {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw IoError(fmt::format("{}: is a directory, expected a CSV file", name_));
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      throw IoError(fmt::format("cannot open '{}': {}", name_, std::generic_category().message(errno)));
    }
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw IoError(fmt::format("{}: read error", name_));

    std::string_view rest = text;
    if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);

    CsvTable table;
    table.path = path;
    bool have_header = false;
    std::vector<Field> fields;
    std::size_t line = 0;
    while (!rest.empty()) {
      ++line;
      const std::size_t nl = rest.find('\n');
      std::string_view s = rest.substr(0, nl);
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
      if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
      if (s.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
      split(s, line, fields);
      if (!have_header) {
        read_header(fields, line, table);
        have_header = true;
        continue;
      }
      if (fields.size() != table.columns.size()) {
        const std::size_t col = std::min(fields.size(), table.columns.size()) + 1;
        fail(line, col, fmt::format("{} fields, but the header (line {}) has {}", fields.size(),
                                    table.header_line, table.columns.size()));
      }
      for (std::size_t c = 0; c < fields.size(); ++c) {
        table.values.push_back(number(fields[c], line, table.columns[c]));
      }
      ++table.rows;
    }
    if (!have_header) fail(1, 1, "empty file, expected a header row of column names");
    if (table.rows == 0) {
      fail(line + 1, 1, fmt::format("no data rows after the header (line {})", table.header_line));
    }
    return table;
  }

 private:
  void read_header(const std::vector<Field>& fields, std::size_t line, CsvTable& table) const {
    table.header_line = line;
    std::set<std::string_view> seen;
    for (const Field& f : fields) {
      if (f.text.empty()) fail(line, f.column, "empty column name in the header");
      table.columns.push_back(f.text);
    }
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      if (!seen.insert(table.columns[c]).second) {
        fail(line, c + 1, fmt::format("column name \"{}\" appears twice in the header", table.columns[c]));
      }
    }
  }

  std::string name_;
  char delim_;
};

}  // namespace

std::size_t CsvTable::column_index(std::string_view name) const {
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (columns[c] == name) return c;
  }
  throw IoError(fmt::format("{}:{}: no column \"{}\" in the header (columns: {})", path.string(), header_line,
                            name, fmt::join(columns, ", ")));
}

CsvTable read_csv(const std::filesystem::path& path, const CsvOptions& options) {
  return Reader(path, options).read(path);
}

CsvDataset split_target(const CsvTable& table, std::string_view target) {
  const std::size_t t = table.column_index(target);
  CsvDataset d;
  d.target_name = table.columns[t];
  d.rows = table.rows;
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    if (c != t) d.feature_names.push_back(table.columns[c]);
  }
  const std::size_t width = table.columns.size();
  d.features.reserve(table.rows * (width - 1));
  d.targets.reserve(table.rows);
  for (std::size_t r = 0; r < table.rows; ++r) {
    for (std::size_t c = 0; c < width; ++c) {
      const double v = table.values[r * width + c];
      if (c == t) {
        d.targets.push_back(v);
      } else {
        d.features.push_back(v);
      }
    }
  }
  return d;
}

}  // namespace tg::io

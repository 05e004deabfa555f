// Numeric CSV files with a header row, for training on tabular data:
//
//     x1,x2,"label"
//     0.5,1e-3,1
//     -2,3.25,0
//
//     auto table = tg::io::read_csv("data.csv");
//     auto xy = tg::io::split_target(table, "label");   // features 2 x 2, targets {1, 0}
//
// Fields are separated by a delimiter (',' by default) and may be enclosed in double quotes (a
// doubled quote inside stands for one); spaces around a field are ignored. Line endings may be LF
// or CRLF, the last line may lack one, blank lines are skipped, a UTF-8 byte-order mark is
// skipped. Quoted fields cannot span lines. Every data cell must be a finite decimal number (as
// std::from_chars reads it, with an optional leading '+'). Errors throw tg::IoError as
// "<file>:<line>:<column>: <what>", line and column (the field's number) counted from 1.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tg::io {

struct CsvOptions {
  char delimiter = ',';
};

/// A CSV file's header and numbers.
struct CsvTable {
  std::filesystem::path path;        ///< where it was read from (for messages)
  std::size_t header_line = 1;       ///< the header's line number (blank lines may precede it)
  std::vector<std::string> columns;  ///< header names, unique and non-empty
  std::size_t rows = 0;
  std::vector<double> values;        ///< rows x columns.size(), row-major

  double at(std::size_t row, std::size_t col) const { return values[row * columns.size() + col]; }
  /// The index of the column called `name`; throws tg::IoError naming the file and listing the
  /// columns.
  std::size_t column_index(std::string_view name) const;
};

/// Reads a whole numeric CSV file. Throws tg::IoError for a missing or empty file, a header
/// without data rows, an empty or repeated column name, a row with the wrong number of fields, a
/// cell that is not a finite number, an unterminated quote.
CsvTable read_csv(const std::filesystem::path& path, const CsvOptions& options = {});

/// The table split into inputs and the target column.
struct CsvDataset {
  std::vector<std::string> feature_names;
  std::string target_name;
  std::size_t rows = 0;
  std::vector<double> features;  ///< rows x feature_names.size(), row-major
  std::vector<double> targets;   ///< rows
};

/// Takes the column `target` out of `table` as the targets; the other columns, in order, are the
/// features. Throws tg::IoError naming the file and the header line if there is no such column.
CsvDataset split_target(const CsvTable& table, std::string_view target);

}  // namespace tg::io

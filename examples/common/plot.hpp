// Plots for the example programs, drawn by gnuplot (Debian's gnuplot-nox) into PNG files.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tg::examples {

struct Series {
  std::string title;
  std::vector<double> x;
  std::vector<double> y;
  std::string style = "linespoints";  ///< gnuplot "with" style: lines, points, linespoints
};

struct Panel {
  std::string title;
  std::string xlabel;
  std::string ylabel;
  bool log_y = false;
  std::vector<Series> series;
};

/// Whether a gnuplot executable is on PATH.
bool have_gnuplot();

/// Draws the panels side by side (one row) into `png`. Returns false, after printing to stderr that
/// gnuplot is missing and which package provides it, when gnuplot is not installed; throws
/// tg::IoError when gnuplot fails. The data and script go through a temporary directory.
bool plot_png(const std::filesystem::path& png, const std::vector<Panel>& panels, int width = 0, int height = 480);

/// A 2-D picture: a grid of values in [0, 1] (e.g. a classifier's probability) as a heat map, with
/// labelled points on top. grid is ny rows of nx values over [x0, x1] x [y0, y1].
struct Field {
  std::string title;
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  int nx = 0, ny = 0;
  std::vector<double> grid;
  std::vector<double> px, py;
  std::vector<int> label;
};
bool plot_fields_png(const std::filesystem::path& png, const std::vector<Field>& fields, int height = 420);

}  // namespace tg::examples

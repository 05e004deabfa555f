#include "plot.hpp"

#include <autodiff/error.hpp>
#include <nn/io/atomic_file.hpp>

#include <cstdlib>
#include <fmt/format.h>
#include <random>
#include <unistd.h>

namespace tg::examples {

namespace {
std::string quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + '"';
}

// A fresh temporary directory, removed when the object goes.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / fmt::format("tapegrad-plot-{}-{:x}", getpid(), rd());
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

bool run_gnuplot(const std::filesystem::path& png, const std::string& script, const TempDir& dir) {
  if (!have_gnuplot()) {
    fmt::print(stderr, "note: gnuplot is not installed, so {} was not drawn (apt-get install gnuplot-nox)\n", png.string());
    return false;
  }
  const std::filesystem::path tmp_png = dir.path / "out.png";
  const std::filesystem::path script_path = dir.path / "plot.gp";
  io::write_file_atomically(script_path, script);
  const std::string cmd = fmt::format("gnuplot {} 2>{}", quote(script_path.string()), quote((dir.path / "err.txt").string()));
  if (std::system(cmd.c_str()) != 0 || !std::filesystem::exists(tmp_png)) {
    throw IoError(fmt::format("plot: gnuplot failed to draw {} (script {})", png.string(), script_path.string()));
  }
  // Into place atomically: copy next to the target, then rename.
  const std::filesystem::path staged = png.string() + ".tmp-plot";
  std::filesystem::copy_file(tmp_png, staged, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(staged, png);
  return true;
}
}  // namespace

bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

bool plot_png(const std::filesystem::path& png, const std::vector<Panel>& panels, int width, int height) {
  TempDir dir;
  const int w = width > 0 ? width : 560 * static_cast<int>(std::max<std::size_t>(panels.size(), 1));
  std::string gp = fmt::format("set terminal pngcairo size {},{} noenhanced font 'sans,10'\nset output {}\n", w, height,
                               quote((dir.path / "out.png").string()));
  gp += fmt::format("set multiplot layout 1,{}\nset grid\nset key outside bottom center horizontal\n", panels.size());
  int file = 0;
  for (const Panel& p : panels) {
    gp += fmt::format("set title {}\nset xlabel {}\nset ylabel {}\n{}\n", quote(p.title), quote(p.xlabel),
                      quote(p.ylabel), p.log_y ? "set logscale y\nset format y '%.0e'" : "unset logscale y\nset format y '% h'");
    std::string plot = "plot ";
    for (std::size_t s = 0; s < p.series.size(); ++s) {
      const Series& series = p.series[s];
      const std::filesystem::path data = dir.path / fmt::format("d{}.dat", file++);
      std::string rows;
      for (std::size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i) rows += fmt::format("{} {}\n", series.x[i], series.y[i]);
      io::write_file_atomically(data, rows);
      plot += fmt::format("{}{} using 1:2 with {} lw 2 title {}", s == 0 ? "" : ", ", quote(data.string()), series.style,
                          quote(series.title));
    }
    gp += plot + "\n";
  }
  gp += "unset multiplot\n";
  return run_gnuplot(png, gp, dir);
}

bool plot_fields_png(const std::filesystem::path& png, const std::vector<Field>& fields, int height) {
  TempDir dir;
  const int w = static_cast<int>(height * 1.1) * static_cast<int>(std::max<std::size_t>(fields.size(), 1));
  std::string gp = fmt::format("set terminal pngcairo size {},{} noenhanced font 'sans,10'\nset output {}\n", w, height,
                               quote((dir.path / "out.png").string()));
  gp += fmt::format("set multiplot layout 1,{}\nset palette defined (0 '#3b6fb6', 0.5 '#f7f7f7', 1 '#c0392b')\nset cbrange [0:1]\nunset colorbox\nset size ratio -1\n", fields.size());
  int file = 0;
  for (const Field& f : fields) {
    const std::filesystem::path grid = dir.path / fmt::format("g{}.dat", file);
    const std::filesystem::path pts = dir.path / fmt::format("p{}.dat", file++);
    std::string rows;
    for (int j = 0; j < f.ny; ++j) {
      for (int i = 0; i < f.nx; ++i) {
        const double x = f.x0 + (f.x1 - f.x0) * (i + 0.5) / f.nx;
        const double y = f.y0 + (f.y1 - f.y0) * (j + 0.5) / f.ny;
        rows += fmt::format("{} {} {}\n", x, y, f.grid[static_cast<std::size_t>(j * f.nx + i)]);
      }
      rows += '\n';
    }
    io::write_file_atomically(grid, rows);
    std::string prow;
    for (std::size_t k = 0; k < f.px.size(); ++k) prow += fmt::format("{} {} {}\n", f.px[k], f.py[k], f.label[k]);
    io::write_file_atomically(pts, prow);
    gp += fmt::format("set title {}\nset xrange [{}:{}]\nset yrange [{}:{}]\n", quote(f.title), f.x0, f.x1, f.y0, f.y1);
    // Each point in its class colour inside a black ring, so it shows on a region of its own colour.
    gp += fmt::format("plot {} using 1:2:3 with image notitle, {} using 1:2 with points pt 7 ps 0.75 lc rgb 'black' notitle, "
                      "{} using 1:2:($3 > 0 ? 1 : 0) with points pt 7 ps 0.5 lc palette notitle\n",
                      quote(grid.string()), quote(pts.string()), quote(pts.string()));
  }
  gp += "unset multiplot\n";
  return run_gnuplot(png, gp, dir);
}

}  // namespace tg::examples

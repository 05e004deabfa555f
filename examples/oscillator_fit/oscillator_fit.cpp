// oscillator_fit: a differentiable program that is not a neural network. A damped oscillator
//
//     x'' + 2 zeta omega x' + omega^2 x = 0,   x(0) = x0,   x'(0) = v0
//
// is simulated with the classical fourth-order Runge-Kutta method, written once over a number
// type T: with T = double it makes the data and the plots, with T = tg::Var the tape records every
// step of the integration, and one backward sweep gives the derivative of the fitting loss with
// respect to (omega, zeta, x0, v0) through all of them. Noisy observations are drawn from the true
// parameters (seeded); a fit starts from a wrong guess, checks its gradient against finite
// differences with tg::gradcheck, and then descends with Adam updates written out by hand.
// Run with --help for the options.
#include "../common/plot.hpp"

#include <autodiff/autodiff.hpp>
#include <nn/io/atomic_file.hpp>

#include <CLI/CLI.hpp>
#include <array>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace tg;

constexpr std::size_t kParams = 4;
constexpr std::array<const char*, kParams> kNames{"omega", "zeta", "x0", "v0"};
using Params = std::array<double, kParams>;

struct Config {
  std::vector<double> truth{2.0, 0.15, 1.0, 0.5};  // omega, zeta, x0, v0
  std::vector<double> guess{1.5, 0.4, 0.5, 0.0};
  double duration = 10.0;    // seconds observed
  double dt = 0.01;          // integration step
  int observations = 101;    // evenly spaced over [0, duration], the first at t = 0
  double noise = 0.05;       // standard deviation of the observation noise
  int iterations = 1000;
  double lr = 0.02;
  std::uint64_t seed = 1;
  std::string csv = "oscillator_fit.csv";
  std::string plot = "oscillator_fit.png";
};

// The oscillator as the first-order system (x, v)' = (v, -2 zeta omega v - omega^2 x), integrated
// with RK4 from t = 0 in steps of dt; returns x after every `every` steps, `count` values (the first
// is x0). T is double or tg::Var: the same code computes values or records them on the tape.
template <class T>
std::vector<T> simulate(const T& omega, const T& zeta, const T& x0, const T& v0, double dt, int every, int count) {
  const T damping = 2.0 * zeta * omega;
  const T stiffness = omega * omega;
  auto accel = [&](const T& x, const T& v) { return -(damping * v) - stiffness * x; };
  T x = x0, v = v0;
  std::vector<T> out{x};
  out.reserve(static_cast<std::size_t>(count));
  for (int i = 1; i < count; ++i) {
    for (int s = 0; s < every; ++s) {
      const T k1x = v, k1v = accel(x, v);
      const T k2x = v + (0.5 * dt) * k1v, k2v = accel(x + (0.5 * dt) * k1x, v + (0.5 * dt) * k1v);
      const T k3x = v + (0.5 * dt) * k2v, k3v = accel(x + (0.5 * dt) * k2x, v + (0.5 * dt) * k2v);
      const T k4x = v + dt * k3v, k4v = accel(x + dt * k3x, v + dt * k3v);
      x = x + (dt / 6.0) * (k1x + 2.0 * k2x + 2.0 * k3x + k4x);
      v = v + (dt / 6.0) * (k1v + 2.0 * k2v + 2.0 * k3v + k4v);
    }
    out.push_back(x);
  }
  return out;
}

struct Problem {
  double dt = 0;
  int every = 0;  // integration steps between observations
  std::vector<double> t, y;
};

// Mean squared difference between the simulated and the observed positions.
template <class T>
T loss(std::span<const T> p, const Problem& pb) {
  const std::vector<T> x = simulate(p[0], p[1], p[2], p[3], pb.dt, pb.every, static_cast<int>(pb.y.size()));
  T sum{};  // 0 (for tg::Var a constant, not a new input)
  for (std::size_t k = 0; k < x.size(); ++k) {
    const T d = x[k] - pb.y[k];
    sum = sum + d * d;
  }
  return sum / static_cast<double>(x.size());
}
double loss_at(const Params& p, const Problem& pb) { return loss<double>(std::span<const double>(p), pb); }

Problem make_problem(const Params& truth, const Config& c) {
  if (c.observations < 2) throw ValueError(fmt::format("--observations must be at least 2, got {}", c.observations));
  const double spacing = c.duration / (c.observations - 1);
  Problem pb;
  pb.every = std::max(1, static_cast<int>(std::lround(spacing / c.dt)));
  pb.dt = spacing / pb.every;  // a whole number of steps between observations
  const std::vector<double> x = simulate(truth[0], truth[1], truth[2], truth[3], pb.dt, pb.every, c.observations);
  std::mt19937_64 gen(c.seed);
  std::normal_distribution<double> noise(0.0, c.noise);
  for (int k = 0; k < c.observations; ++k) {
    pb.t.push_back(k * spacing);
    pb.y.push_back(x[static_cast<std::size_t>(k)] + noise(gen));
  }
  return pb;
}

// Adam (Kingma and Ba 2015), by hand: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
struct Adam {
  double lr, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  Params m{}, v{};
  int t = 0;
  void step(Params& p, const Params& g) {
    ++t;
    for (std::size_t i = 0; i < kParams; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const double mhat = m[i] / (1 - std::pow(b1, t)), vhat = v[i] / (1 - std::pow(b2, t));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
};

// One loss and gradient: a fresh recording, four input Vars, one reverse sweep.
double loss_and_gradient(const Params& p, const Problem& pb, Params& grad) {
  Tape& tape = active_tape();
  tape.reset();
  const std::array<Var, kParams> vars{Var(p[0]), Var(p[1]), Var(p[2]), Var(p[3])};
  const Var l = loss<Var>(vars, pb);
  gradient(l, vars, grad);
  return l.value();
}

// Standard errors of the fitted parameters, from the Gauss-Newton approximation of the loss around
// the fit: covariance = s^2 (J^T J)^-1, with J the Jacobian of the simulated observations with
// respect to the parameters (tg::jacobian: one reverse sweep per observation) and s^2 the residual
// variance sum(r^2) / (n - 4). Zero where J^T J is singular.
Params standard_errors(const Params& p, const Problem& pb) {
  Tape& tape = active_tape();
  tape.reset();
  const std::array<Var, kParams> vars{Var(p[0]), Var(p[1]), Var(p[2]), Var(p[3])};
  const std::vector<Var> x = simulate(vars[0], vars[1], vars[2], vars[3], pb.dt, pb.every, static_cast<int>(pb.y.size()));
  const Jacobian jac = jacobian(x, vars);
  const std::size_t n = x.size();
  double rss = 0;
  for (std::size_t k = 0; k < n; ++k) rss += (x[k].value() - pb.y[k]) * (x[k].value() - pb.y[k]);
  tape.reset();
  // [J^T J | I], reduced to [I | (J^T J)^-1] by Gauss-Jordan elimination with partial pivoting.
  std::array<std::array<double, 2 * kParams>, kParams> a{};
  for (std::size_t i = 0; i < kParams; ++i) {
    for (std::size_t j = 0; j < kParams; ++j) {
      for (std::size_t k = 0; k < n; ++k) a[i][j] += jac(k, i) * jac(k, j);
    }
    a[i][kParams + i] = 1;
  }
  for (std::size_t col = 0; col < kParams; ++col) {
    std::size_t pivot = col;
    for (std::size_t r = col + 1; r < kParams; ++r) {
      if (std::abs(a[r][col]) > std::abs(a[pivot][col])) pivot = r;
    }
    if (a[pivot][col] == 0) return {};
    std::swap(a[col], a[pivot]);
    const double d = a[col][col];
    for (double& v : a[col]) v /= d;
    for (std::size_t r = 0; r < kParams; ++r) {
      if (r == col) continue;
      const double factor = a[r][col];
      for (std::size_t j = 0; j < 2 * kParams; ++j) a[r][j] -= factor * a[col][j];
    }
  }
  const double s2 = n > kParams ? rss / static_cast<double>(n - kParams) : 0.0;
  Params se{};
  for (std::size_t i = 0; i < kParams; ++i) se[i] = std::sqrt(s2 * a[i][kParams + i]);
  return se;
}

// x(t) on the integration grid, for the plot.
examples::Series curve(const std::string& title, const Params& p, const Problem& pb) {
  const int steps = static_cast<int>(pb.y.size() - 1) * pb.every;
  const std::vector<double> x = simulate(p[0], p[1], p[2], p[3], pb.dt, 1, steps + 1);
  examples::Series s{title, {}, x, "lines"};
  for (int i = 0; i <= steps; ++i) s.x.push_back(i * pb.dt);
  return s;
}

std::string row(const std::string& label, double loss_value, const Params& p) {
  return fmt::format("{:>9} {:>12.6f} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f}\n", label, loss_value, p[0], p[1], p[2], p[3]);
}

Params to_params(const std::vector<double>& v, const char* option) {
  if (v.size() != kParams) throw ValueError(fmt::format("{} takes 4 numbers (omega, zeta, x0, v0), got {}", option, v.size()));
  for (double x : v) {
    if (!std::isfinite(x)) throw ValueError(fmt::format("{}: {} is not a finite number", option, x));
  }
  return {v[0], v[1], v[2], v[3]};
}

int run(const Config& c) {
  const auto start = std::chrono::steady_clock::now();
  const Params truth = to_params(c.truth, "--true"), guess = to_params(c.guess, "--guess");
  const Problem pb = make_problem(truth, c);
  fmt::print("damped oscillator x'' + 2 zeta omega x' + omega^2 x = 0, RK4 with dt {:.4g}; {} observations over {} s, noise sd {}, seed {}\n",
             pb.dt, pb.y.size(), c.duration, c.noise, c.seed);
  fmt::print("tape per evaluation: {} RK4 steps recorded as tg::Var operations\n\n", (pb.y.size() - 1) * pb.every);

  // 1. The gradient, checked against central finite differences at the initial guess.
  const ScalarFunction f = [&pb](std::span<const Var> p) { return loss<Var>(p, pb); };
  const GradcheckReport report = gradcheck(f, std::span<const double>(guess));
  fmt::print("gradcheck at the initial guess (central differences, step 1e-6 relative):\n");
  const std::string gheader = fmt::format("{:<6} {:>8} {:>14} {:>14} {:>10} {:>4}", "param", "value", "AD", "finite diff.", "rel. diff", "ok");
  fmt::print("{}\n{}\n", gheader, std::string(gheader.size(), '-'));
  for (const GradcheckEntry& e : report.entries) {
    const double rel = std::abs(e.ad - e.fd) / std::max(1e-300, std::max(std::abs(e.ad), std::abs(e.fd)));
    fmt::print("{:<6} {:>8.4f} {:>14.8f} {:>14.8f} {:>10.2e} {:>4}\n", kNames[e.input], e.x, e.ad, e.fd, rel, e.ok ? "yes" : "NO");
  }
  std::string summary = report.summary();
  if (!summary.ends_with('\n')) summary += '\n';
  fmt::print("{}\n", summary);
  if (!report.ok()) throw ValueError("the gradient disagrees with finite differences; not fitting with it");

  // 2. Gradient descent with Adam.
  fmt::print("fit: {} Adam iterations, lr {}\n", c.iterations, c.lr);
  const std::string header = fmt::format("{:>9} {:>12} {:>9} {:>9} {:>9} {:>9}", "iteration", "loss", kNames[0], kNames[1], kNames[2], kNames[3]);
  fmt::print("{}\n{}\n", header, std::string(header.size(), '-'));
  std::string csv = "iteration,loss,omega,zeta,x0,v0\n";
  Params p = guess, grad{};
  Adam adam{c.lr};
  std::vector<double> its, losses;
  double l = 0;
  for (int it = 0; it <= c.iterations; ++it) {
    l = loss_and_gradient(p, pb, grad);
    if (!std::isfinite(l)) {
      throw ValueError(fmt::format("the loss became {} at iteration {} (omega {}, zeta {}, x0 {}, v0 {}); try a smaller --lr", l, it,
                                   p[0], p[1], p[2], p[3]));
    }
    its.push_back(it);
    losses.push_back(l);
    csv += fmt::format("{},{},{},{},{},{}\n", it, l, p[0], p[1], p[2], p[3]);
    // A row at 0, 10, 20, 50, 100, 200, 500, ... and at the last iteration.
    bool show = it == c.iterations || it == 0;
    for (int scale = 10; scale <= it && !show; scale *= 10) show = it == scale || it == 2 * scale || it == 5 * scale;
    if (show) fmt::print("{}", row(fmt::format("{}", it), l, p));
    if (it < c.iterations) adam.step(p, grad);
  }
  active_tape().reset();

  // 3. What was found, against the truth, the fit's standard errors and the noise floor.
  const Params se = standard_errors(p, pb);
  const std::string theader = fmt::format("{:<6} {:>9} {:>9} {:>9} {:>10} {:>10} {:>11}", "param", "true", "initial", "fitted",
                                          "std. err.", "error", "error / se");
  fmt::print("\n{}\n{}\n", theader, std::string(theader.size(), '-'));
  double worst = 0;
  for (std::size_t i = 0; i < kParams; ++i) {
    const double err = p[i] - truth[i];
    const double z = se[i] > 0 ? std::abs(err) / se[i] : std::numeric_limits<double>::infinity();
    worst = std::max(worst, z);
    fmt::print("{:<6} {:>9.4f} {:>9.4f} {:>9.4f} {:>10.4f} {:>+10.4f} {:>11.2f}\n", kNames[i], truth[i], guess[i], p[i], se[i], err, z);
  }
  const double floor = loss_at(truth, pb);
  fmt::print("\nloss: initial {:.6f}, fitted {:.6f}, at the true parameters {:.6f} (noise variance {:.6f})\n", losses.front(), l,
             floor, c.noise * c.noise);
  fmt::print("the fit's loss is {} the true parameters'; every parameter within {} standard errors of the truth: {}\n",
             l <= floor ? "at or below" : "above", 3, worst <= 3 ? "yes" : "no");

  io::write_file_atomically(c.csv, csv);
  fmt::print("\ncsv: {} (loss and parameters per iteration)\n", c.csv);
  if (!c.plot.empty()) {
    examples::Panel fit{"damped oscillator: observations and fits", "t (s)", "x", false, {}};
    fit.series.push_back({"observations", pb.t, pb.y, "points pt 7 ps 0.6"});
    fit.series.push_back(curve("initial guess", guess, pb));
    fit.series.push_back(curve("fitted", p, pb));
    examples::Series true_curve = curve("true", truth, pb);
    true_curve.style = "lines dt 2";  // dashed, on top of the fit
    fit.series.push_back(true_curve);
    const examples::Panel descent{"loss over Adam iterations", "iteration", "mean squared error", true,
                                  {{"loss", its, losses, "lines"}, {"at the true parameters", {0.0, static_cast<double>(c.iterations)}, {floor, floor}, "lines dt 2"}}};
    if (examples::plot_png(c.plot, {fit, descent}, 1200, 440)) fmt::print("plot: {}\n", c.plot);
  }
  fmt::print("{:.1f} s in all\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  bool quick = false;
  CLI::App app{"oscillator_fit: fits omega, zeta, x0 and v0 of a damped oscillator x'' + 2 zeta omega x' + omega^2 x = 0 to\n"
               "noisy observations by gradient descent through an RK4 simulation on tg::Var, after a gradcheck."};
  app.get_formatter()->column_width(34);
  app.add_option("--true", c.truth, "true omega, zeta, x0, v0 (the observations' source)")->delimiter(',')->expected(4)->capture_default_str();
  app.add_option("--guess", c.guess, "initial guess of omega, zeta, x0, v0")->delimiter(',')->expected(4)->capture_default_str();
  app.add_option("--duration", c.duration, "seconds observed")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--dt", c.dt, "RK4 step (rounded so a whole number of steps separates observations)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--observations", c.observations, "observations, evenly spaced from t = 0 to --duration")->capture_default_str();
  app.add_option("--noise", c.noise, "standard deviation of the Gaussian observation noise")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--iterations", c.iterations, "Adam iterations")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--lr", c.lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", c.seed, "seed of the observation noise")->capture_default_str();
  app.add_option("--csv", c.csv, "where to write loss and parameters per iteration")->capture_default_str();
  app.add_option("--plot", c.plot, "PNG of observations, initial guess and fit, and of the loss (via gnuplot); empty to skip")->capture_default_str();
  app.add_flag("--quick", quick, "short run for the test suite: 400 iterations, lr 0.05");
  CLI11_PARSE(app, argc, argv);
  if (quick) {  // options given explicitly win
    if (app.count("--iterations") == 0) c.iterations = 400;
    if (app.count("--lr") == 0) c.lr = 0.05;
  }
  try {
    return run(c);
  } catch (const std::exception& e) {
    fmt::print(stderr, "oscillator_fit: {}\n", e.what());
    return 1;
  }
}

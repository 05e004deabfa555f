// hello_gradient: one gradient with tapegrad, and the choice it makes where a derivative does not
// exist.
//
//     hello_gradient                   x = 1.5, y = -2: x*y + 3 is exactly 0, relu sits on its kink
//     hello_gradient --x 1 --y 0.25    anywhere else
//
// Differentiates f(x, y) = relu(x*y + 3) + elu(y, 0.5) * leaky_relu(x, 0.01) with one reverse
// sweep, then again with relu'(0) = 1 chosen for the whole computation by a tg::SubgradientScope,
// and prints relu'(0) under the default, a scope and a per-call value.
#include <autodiff/autodiff.hpp>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <array>
#include <cstdint>

namespace {

tg::Var f(const tg::Var& x, const tg::Var& y) {
  return tg::relu(x * y + 3.0) + tg::elu(y, 0.5) * tg::leaky_relu(x, 0.01);
}

struct Result {
  double value = 0.0;
  std::array<double, 2> grad{};
  std::uint64_t relu_kinks = 0;  // times the sweep met relu exactly at 0
};

// Records f on a fresh recording of this thread's tape and sweeps back once.
Result differentiate(double x0, double y0) {
  tg::Tape& tape = tg::active_tape();
  tape.reset();  // earlier Vars become stale; the memory is reused
  tape.reset_kink_hits();
  const tg::Var x = x0, y = y0;
  const tg::Var out = f(x, y);
  Result r;
  r.value = out.value();
  r.grad = tg::gradient(out, x, y);
  r.relu_kinks = tape.kink_hits()[tg::Kink::relu];
  return r;
}

// d relu(a) / da at a = 0, with the choice in force where it is called.
double relu_slope_at_zero(const tg::ReluOptions& options = {}) {
  tg::active_tape().reset();
  const tg::Var a = 0.0;
  return tg::gradient(tg::relu(a, options), a)[0];
}

void print(const char* heading, const Result& r) {
  fmt::print("{}\n", heading);
  fmt::print("  f     = {:.17g}\n  df/dx = {:.17g}\n  df/dy = {:.17g}\n", r.value, r.grad[0],
             r.grad[1]);
  fmt::print("  the sweep met relu exactly at its kink {} time(s)\n", r.relu_kinks);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Differentiates relu(x*y + 3) + elu(y, 0.5) * leaky_relu(x, 0.01) with tapegrad"};
  double x = 1.5;
  double y = -2.0;
  app.add_option("-x,--x", x, "value of x")->capture_default_str();
  app.add_option("-y,--y", y, "value of y")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const double relu_input = x * y + 3.0;
    fmt::print("f(x, y) = relu(x*y + 3) + elu(y, 0.5) * leaky_relu(x, 0.01) at x = {}, y = {}\n", x,
               y);
    fmt::print("x*y + 3 = {}{}\n\n", relu_input,
               relu_input == 0.0 ? ": relu is on its kink, where its derivative does not exist"
                                 : "");
    print("With the default relu'(0) = 0:", differentiate(x, y));
    {
      const tg::SubgradientScope relu_one(tg::Kink::relu, 1.0);
      print("\nWith relu'(0) = 1, chosen by tg::SubgradientScope(tg::Kink::relu, 1.0):",
            differentiate(x, y));
    }

    fmt::print("\nrelu'(0), the derivative of relu at its kink, by how it is chosen:\n");
    fmt::print("  {:<56} {}\n", "default (as PyTorch, JAX, TensorFlow)", relu_slope_at_zero());
    {
      const tg::SubgradientScope relu_one(tg::Kink::relu, 1.0);
      fmt::print("  {:<56} {}\n", "inside tg::SubgradientScope(tg::Kink::relu, 1.0)",
                 relu_slope_at_zero());
      fmt::print("  {:<56} {}\n", "per call, tg::relu(a, {.at_zero = 0.5}), in that scope",
                 relu_slope_at_zero({.at_zero = 0.5}));
    }
    fmt::print("  {:<56} {}\n", "after the scope ended", relu_slope_at_zero());
  } catch (const tg::Error& e) {
    fmt::print(stderr, "hello_gradient: {}\n", e.what());
    return 1;
  }
  return 0;
}

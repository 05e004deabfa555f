// Uses the installed tapegrad the way a user's program would, and checks what it gets: the README's
// example at x = 1.5, y = -2, where x*y + 3 = 0 puts relu exactly on its kink, against the
// derivatives worked out by hand, under the default relu'(0) = 0 and under a scope choosing 1.
// Exits non-zero on any disagreement.
#include <autodiff/autodiff.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

int failures = 0;

void expect_near(const char* what, double got, double want) {
  const double tol = 1e-14 * std::fmax(1.0, std::fabs(want));
  if (!(std::fabs(got - want) <= tol)) {
    std::printf("FAIL %s: got %.17g, want %.17g\n", what, got, want);
    ++failures;
  } else {
    std::printf("ok   %s = %.17g\n", what, got);
  }
}

tg::Var f(const tg::Var& x, const tg::Var& y) {
  return tg::relu(x * y + 3.0) + tg::elu(y, 0.5) * tg::leaky_relu(x, 0.01);
}

}  // namespace

int main() {
  const double x0 = 1.5, y0 = -2.0;
  // By hand: x*y + 3 = 0, so relu contributes 0 to f and r * (y, x) to the gradient, where
  // r = relu'(0); leaky_relu(x) = x and its slope is 1 (x > 0); elu(y, 0.5) = 0.5 (e^y - 1) with
  // slope 0.5 e^y (y < 0).
  const double elu_y = 0.5 * std::expm1(y0);
  const double elu_slope = 0.5 * std::exp(y0);

  try {
    tg::Tape& tape = tg::active_tape();
    {
      tg::Var x = x0, y = y0;
      tg::Var out = f(x, y);
      auto [dx, dy] = tg::gradient(out, x, y);
      expect_near("f", out.value(), elu_y * x0);
      expect_near("df/dx, relu'(0) = 0", dx, elu_y);
      expect_near("df/dy, relu'(0) = 0", dy, elu_slope * x0);
      if (tape.kink_hits()[tg::Kink::relu] != 1) {
        std::printf("FAIL relu kink hits: %llu, want 1\n",
                    static_cast<unsigned long long>(tape.kink_hits()[tg::Kink::relu]));
        ++failures;
      }
    }
    tape.reset();
    {
      tg::SubgradientScope relu_one(tg::Kink::relu, 1.0);
      tg::Var x = x0, y = y0;
      tg::Var out = f(x, y);
      std::vector<tg::Var> inputs{x, y};
      std::vector<double> g = tg::gradient(out, inputs);
      expect_near("df/dx, relu'(0) = 1", g[0], y0 + elu_y);
      expect_near("df/dy, relu'(0) = 1", g[1], x0 + elu_slope * x0);
    }

    // Away from the kink, gradcheck (compiled into the installed library) agrees.
    const double at[2] = {0.7, 0.4};
    tg::GradcheckReport report = tg::gradcheck([](auto v) { return f(v[0], v[1]); }, at);
    std::printf("%s gradcheck at (0.7, 0.4): %s\n", report ? "ok  " : "FAIL", report.summary().c_str());
    if (!report) ++failures;

    // A clear tg:: exception for bad input crosses the library boundary.
    try {
      tg::SubgradientScope bad(tg::Kink::relu, NAN);
      std::printf("FAIL a NaN subgradient was accepted\n");
      ++failures;
    } catch (const tg::ValueError& e) {
      std::printf("ok   NaN subgradient rejected: %s\n", e.what());
    }
  } catch (const tg::Error& e) {
    std::printf("FAIL tg::Error: %s\n", e.what());
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}

// Every scalar primitive through tgtest::expect_ad: value against std:: math, gradient against
// finite differences at 100 random points, exact subgradients at kinks, bad input and misuse.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numbers>

#include "support/expect_ad.hpp"

using tg::Var;
using tgtest::expect_ad;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// max and min give NaN when either argument is NaN (std::max(1.0, NaN) would return 1.0).
double nan_max(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b);
}
double nan_min(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b);
}
}  // namespace

// ---- Arithmetic ---------------------------------------------------------------------------------

TEST_CASE("add: Var + Var, Var + double, double + Var", "[autodiff][primitive]") {
  expect_ad(
      "add", [](const Var& a, const Var& b) { return a + b; },
      [](double a, double b) { return a + b; },
      {.domain = {{-5, 5}, {-5, 5}}, .edges = {{kInf, -kInf}}});
  expect_ad(
      "add", [](const Var& a) { return a + 2.5; }, [](double a) { return a + 2.5; },
      {.domain = {{-5, 5}}});
  expect_ad(
      "add", [](const Var& b) { return 2.5 + b; }, [](double b) { return 2.5 + b; },
      {.domain = {{-5, 5}}});
}

TEST_CASE("sub: Var - Var, Var - double, double - Var", "[autodiff][primitive]") {
  expect_ad(
      "sub", [](const Var& a, const Var& b) { return a - b; },
      [](double a, double b) { return a - b; },
      {.domain = {{-5, 5}, {-5, 5}}, .edges = {{kInf, kInf}}});
  expect_ad(
      "sub", [](const Var& a) { return a - 2.5; }, [](double a) { return a - 2.5; },
      {.domain = {{-5, 5}}});
  expect_ad(
      "sub", [](const Var& b) { return 2.5 - b; }, [](double b) { return 2.5 - b; },
      {.domain = {{-5, 5}}});
}

TEST_CASE("mul: Var * Var, Var * double, double * Var", "[autodiff][primitive]") {
  expect_ad(
      "mul", [](const Var& a, const Var& b) { return a * b; },
      [](double a, double b) { return a * b; },
      {.domain = {{-5, 5}, {-5, 5}}, .edges = {{kInf, 0}}});
  expect_ad(
      "mul", [](const Var& a) { return a * -1.75; }, [](double a) { return a * -1.75; },
      {.domain = {{-5, 5}}});
  expect_ad(
      "mul", [](const Var& b) { return -1.75 * b; }, [](double b) { return -1.75 * b; },
      {.domain = {{-5, 5}}});
}

TEST_CASE("div: Var / Var, Var / double, double / Var", "[autodiff][primitive]") {
  expect_ad(
      "div", [](const Var& a, const Var& b) { return a / b; },
      [](double a, double b) { return a / b; },
      {.domain = {{-5, 5}, {0.5, 4}}, .edges = {{1, 0}, {-1, 0}, {0, 0}}});
  expect_ad(
      "div", [](const Var& a) { return a / 0.4; }, [](double a) { return a / 0.4; },
      {.domain = {{-5, 5}}});
  expect_ad(
      "div", [](const Var& b) { return 3.0 / b; }, [](double b) { return 3.0 / b; },
      {.domain = {{-4, -0.5}}, .edges = {{0}, {-0.0}}});
}

TEST_CASE("neg: -Var", "[autodiff][primitive]") {
  expect_ad(
      "neg", [](const Var& a) { return -a; }, [](double a) { return -a; },
      {.domain = {{-5, 5}}, .edges = {{kInf}}});
}

// ---- Exponentials, logarithms, powers -----------------------------------------------------------

TEST_CASE("exp matches std::exp", "[autodiff][primitive]") {
  expect_ad(
      "exp", [](const Var& x) { return tg::exp(x); }, [](double x) { return std::exp(x); },
      {.domain = {{-5, 5}}, .edges = {{800}, {-kInf}, {kInf}}});
}

TEST_CASE("log matches std::log, NaN below 0 and -inf at 0", "[autodiff][primitive]") {
  expect_ad(
      "log", [](const Var& x) { return tg::log(x); }, [](double x) { return std::log(x); },
      {.domain = {{0.1, 10}}, .edges = {{0}, {-1}, {kInf}}});
}

TEST_CASE("log1p matches std::log1p, NaN below -1 and -inf at -1", "[autodiff][primitive]") {
  expect_ad(
      "log1p", [](const Var& x) { return tg::log1p(x); }, [](double x) { return std::log1p(x); },
      {.domain = {{-0.9, 5}}, .edges = {{-1}, {-2}, {1e-300}}});
}

TEST_CASE("expm1 matches std::expm1", "[autodiff][primitive]") {
  expect_ad(
      "expm1", [](const Var& x) { return tg::expm1(x); }, [](double x) { return std::expm1(x); },
      {.domain = {{-5, 5}}, .edges = {{1e-300}, {-kInf}, {800}}});
}

TEST_CASE("sqrt matches std::sqrt, NaN below 0", "[autodiff][primitive]") {
  expect_ad(
      "sqrt", [](const Var& x) { return tg::sqrt(x); }, [](double x) { return std::sqrt(x); },
      {.domain = {{0.05, 9}}, .edges = {{0}, {-1}, {kInf}}});
}

TEST_CASE("pow(Var, Var) matches std::pow", "[autodiff][primitive]") {
  expect_ad(
      "pow", [](const Var& a, const Var& b) { return tg::pow(a, b); },
      [](double a, double b) { return std::pow(a, b); },
      {.domain = {{0.2, 3}, {-2, 2}}, .edges = {{-8, 1.0 / 3}, {0, -1}, {kNaN, 0}}});
}

TEST_CASE("pow(Var, double) matches std::pow", "[autodiff][primitive]") {
  expect_ad(
      "pow", [](const Var& a) { return tg::pow(a, 3.0); },
      [](double a) { return std::pow(a, 3.0); }, {.domain = {{-3, 3}}});
  expect_ad(
      "pow", [](const Var& a) { return tg::pow(a, -1.5); },
      [](double a) { return std::pow(a, -1.5); }, {.domain = {{0.2, 3}}, .edges = {{-1}, {0}}});
}

TEST_CASE("pow(double, Var) matches std::pow", "[autodiff][primitive]") {
  expect_ad(
      "pow", [](const Var& b) { return tg::pow(2.0, b); },
      [](double b) { return std::pow(2.0, b); }, {.domain = {{-3, 3}}, .edges = {{2000}}});
  expect_ad(
      "pow", [](const Var& b) { return tg::pow(0.3, b); },
      [](double b) { return std::pow(0.3, b); }, {.domain = {{-3, 3}}});
}

// ---- Trigonometric and hyperbolic ---------------------------------------------------------------

TEST_CASE("sin matches std::sin", "[autodiff][primitive]") {
  expect_ad(
      "sin", [](const Var& x) { return tg::sin(x); }, [](double x) { return std::sin(x); },
      {.domain = {{-10, 10}}, .edges = {{kInf}}});
}

TEST_CASE("cos matches std::cos", "[autodiff][primitive]") {
  expect_ad(
      "cos", [](const Var& x) { return tg::cos(x); }, [](double x) { return std::cos(x); },
      {.domain = {{-10, 10}}, .edges = {{-kInf}}});
}

TEST_CASE("tan matches std::tan", "[autodiff][primitive]") {
  expect_ad(
      "tan", [](const Var& x) { return tg::tan(x); }, [](double x) { return std::tan(x); },
      {.domain = {{-1.4, 1.4}}, .edges = {{kInf}}});
}

TEST_CASE("tanh matches std::tanh", "[autodiff][primitive]") {
  expect_ad(
      "tanh", [](const Var& x) { return tg::tanh(x); }, [](double x) { return std::tanh(x); },
      {.domain = {{-5, 5}}, .edges = {{kInf}, {-kInf}}});
}

// ---- Smooth activations -------------------------------------------------------------------------

TEST_CASE("sigmoid is 1 / (1 + exp(-x)), exact 0 and 1 at the tails", "[autodiff][primitive]") {
  expect_ad(
      "sigmoid", [](const Var& x) { return tg::sigmoid(x); },
      [](double x) { return 1 / (1 + std::exp(-x)); },
      {.domain = {{-10, 10}}, .edges = {{-1000}, {1000}, {-kInf}, {kInf}}});
}

TEST_CASE("softplus is log(1 + exp(x))", "[autodiff][primitive]") {
  expect_ad(
      "softplus", [](const Var& x) { return tg::softplus(x); },
      [](double x) { return std::log1p(std::exp(x)); },
      {.domain = {{-20, 20}}, .edges = {{-1000}, {-kInf}}});
}

TEST_CASE("softplus does not overflow: softplus(1000) = 1000 with slope 1",
          "[autodiff][primitive]") {
  const Var x = 1000.0;
  const Var y = tg::softplus(x);
  REQUIRE(y.value() == 1000.0);
  REQUIRE(tg::gradient(y, x)[0] == 1.0);
}

TEST_CASE("gelu is x Phi(x) with the erf form", "[autodiff][primitive]") {
  expect_ad(
      "gelu", [](const Var& x) { return tg::gelu(x); },
      [](double x) { return 0.5 * x * std::erfc(-x / std::numbers::sqrt2); },
      {.domain = {{-8, 8}}, .edges = {{-kInf}, {kInf}}});
}

// ---- Non-smooth primitives: defaults at the kink asserted exactly -------------------------------

TEST_CASE("relu: max(x, 0) with relu'(0) = 0", "[autodiff][primitive][kink]") {
  expect_ad(
      "relu", [](const Var& x) { return tg::relu(x); }, [](double x) { return std::max(x, 0.0); },
      {.domain = {{-5, 5}},
       .kinks = {{{0.0}, {0.0}}, {{-0.0}, {0.0}}},
       .edges = {{kInf}, {-kInf}}});
}

TEST_CASE("leaky_relu: slope 0.01 below 0, leaky_relu'(0) = 0.01", "[autodiff][primitive][kink]") {
  expect_ad(
      "leaky_relu", [](const Var& x) { return tg::leaky_relu(x); },
      [](double x) { return x >= 0 ? x : 0.01 * x; },
      {.domain = {{-5, 5}}, .kinks = {{{0.0}, {0.01}}}, .edges = {{-kInf}}});
}

TEST_CASE("leaky_relu with scale 0.2: leaky_relu'(0) = scale", "[autodiff][primitive][kink]") {
  expect_ad(
      "leaky_relu", [](const Var& x) { return tg::leaky_relu(x, 0.2); },
      [](double x) { return x >= 0 ? x : 0.2 * x; },
      {.domain = {{-5, 5}}, .kinks = {{{0.0}, {0.2}}}});
}

TEST_CASE("elu: alpha (exp(x) - 1) below 0, elu'(0) = alpha = 1", "[autodiff][primitive][kink]") {
  expect_ad(
      "elu", [](const Var& x) { return tg::elu(x); },
      [](double x) { return x > 0 ? x : std::expm1(x); },
      {.domain = {{-5, 5}}, .kinks = {{{0.0}, {1.0}}}, .edges = {{-kInf}, {kInf}}});
}

TEST_CASE("elu with alpha 0.5: elu'(0) = alpha", "[autodiff][primitive][kink]") {
  expect_ad(
      "elu", [](const Var& x) { return tg::elu(x, 0.5); },
      [](double x) { return x > 0 ? x : 0.5 * std::expm1(x); },
      {.domain = {{-5, 5}}, .kinks = {{{0.0}, {0.5}}}});
}

TEST_CASE("abs matches std::abs with abs'(0) = 0", "[autodiff][primitive][kink]") {
  expect_ad(
      "abs", [](const Var& x) { return tg::abs(x); }, [](double x) { return std::abs(x); },
      {.domain = {{-5, 5}}, .kinks = {{{0.0}, {0.0}}, {{-0.0}, {0.0}}}, .edges = {{-kInf}}});
}

TEST_CASE("max: a tie splits the gradient half and half", "[autodiff][primitive][kink]") {
  const auto tie = [](std::span<const double> x) { return std::abs(x[0] - x[1]) < 1e-3; };
  expect_ad("max", [](const Var& a, const Var& b) { return tg::max(a, b); }, nan_max,
            {.domain = {{-3, 3}, {-3, 3}},
             .kinks = {{{1.5, 1.5}, {0.5, 0.5}}, {{0.0, -0.0}, {0.5, 0.5}}},
             .near_kink = tie,
             .edges = {{kInf, 1}}});
  expect_ad(
      "max", [](const Var& a) { return tg::max(a, 1.0); }, [](double a) { return nan_max(a, 1.0); },
      {.domain = {{-3, 3}}, .kinks = {{{1.0}, {0.5}}}});
  expect_ad(
      "max", [](const Var& b) { return tg::max(1.0, b); }, [](double b) { return nan_max(1.0, b); },
      {.domain = {{-3, 3}}, .kinks = {{{1.0}, {0.5}}}});
}

TEST_CASE("min: a tie splits the gradient half and half", "[autodiff][primitive][kink]") {
  const auto tie = [](std::span<const double> x) { return std::abs(x[0] - x[1]) < 1e-3; };
  expect_ad("min", [](const Var& a, const Var& b) { return tg::min(a, b); }, nan_min,
            {.domain = {{-3, 3}, {-3, 3}},
             .kinks = {{{-2.0, -2.0}, {0.5, 0.5}}},
             .near_kink = tie,
             .edges = {{-kInf, 1}}});
  expect_ad(
      "min", [](const Var& a) { return tg::min(a, -1.0); },
      [](double a) { return nan_min(a, -1.0); }, {.domain = {{-3, 3}}, .kinks = {{{-1.0}, {0.5}}}});
  expect_ad(
      "min", [](const Var& b) { return tg::min(-1.0, b); },
      [](double b) { return nan_min(-1.0, b); }, {.domain = {{-3, 3}}, .kinks = {{{-1.0}, {0.5}}}});
}

TEST_CASE("clamp matches std::clamp and passes the gradient (1) at both bounds",
          "[autodiff][primitive][kink]") {
  expect_ad(
      "clamp", [](const Var& x) { return tg::clamp(x, -1.0, 2.0); },
      [](double x) { return std::clamp(x, -1.0, 2.0); },
      {.domain = {{-3, 4}}, .kinks = {{{-1.0}, {1.0}}, {{2.0}, {1.0}}}, .edges = {{kInf}}});
}

TEST_CASE("clamp with lo == hi is constant with gradient 1 at the bound",
          "[autodiff][primitive][kink]") {
  expect_ad(
      "clamp", [](const Var& x) { return tg::clamp(x, 0.5, 0.5); },
      [](double x) { return std::clamp(x, 0.5, 0.5); },
      {.domain = {{-3, 4}}, .kinks = {{{0.5}, {1.0}}}});
}

// ---- Reductions ---------------------------------------------------------------------------------

TEST_CASE("sum of n Vars is one statement with partials 1", "[autodiff][primitive]") {
  expect_ad(
      "sum", [](std::span<const Var> x) { return tg::sum(x); },
      [](std::span<const double> x) { return x[0] + x[1] + x[2] + x[3]; },
      {.domain = {{-5, 5}, {-5, 5}, {-5, 5}, {-5, 5}}, .edges = {{kInf, -kInf, 0, 0}}});
}

TEST_CASE("dot of n Vars with constant weights", "[autodiff][primitive]") {
  static constexpr std::array<double, 4> w{0.5, -2.0, 3.0, 1.25};
  expect_ad(
      "dot", [](std::span<const Var> x) { return tg::dot(x, w); },
      [](std::span<const double> x) {
        return x[0] * w[0] + x[1] * w[1] + x[2] * w[2] + x[3] * w[3];
      },
      {.domain = {{-5, 5}, {-5, 5}, {-5, 5}, {-5, 5}}});
}

TEST_CASE("sum and dot of constants only are constants; sum of nothing is 0",
          "[autodiff][primitive]") {
  const std::array<Var, 2> c{Var::constant(1.5), Var::constant(2.0)};
  REQUIRE(tg::sum(c).is_constant());
  REQUIRE(tg::sum(c).value() == 3.5);
  REQUIRE(tg::sum(std::span<const Var>{}).value() == 0.0);
  const std::array<double, 2> w{2.0, -1.0};
  REQUIRE(tg::dot(c, w).value() == 1.0);
}

TEST_CASE("dot with a weight count that differs from the Var count throws ShapeError",
          "[autodiff][primitive]") {
  const std::array<Var, 3> x{Var(1.0), Var(2.0), Var(3.0)};
  const std::array<double, 2> w{1.0, 2.0};
  REQUIRE_THROWS_AS(tg::dot(x, w), tg::ShapeError);
  REQUIRE_THROWS_WITH(tg::dot(x, w),
                      Catch::Contains("dot") && Catch::Contains("3") && Catch::Contains("2"));
}

// ---- Parameters that must be finite or ordered
// ---------------------------------------------------

TEST_CASE("clamp with lo > hi or a NaN bound throws ValueError", "[autodiff][primitive]") {
  const Var x = 0.5;
  REQUIRE_THROWS_AS(tg::clamp(x, 2.0, 1.0), tg::ValueError);
  REQUIRE_THROWS_WITH(tg::clamp(x, 2.0, 1.0),
                      Catch::Contains("clamp") && Catch::Contains("lo <= hi"));
  REQUIRE_THROWS_AS(tg::clamp(x, kNaN, 1.0), tg::ValueError);
  REQUIRE_THROWS_AS(tg::clamp(x, 0.0, kNaN), tg::ValueError);
}

TEST_CASE("leaky_relu scale and elu alpha must be finite", "[autodiff][primitive]") {
  const Var x = 0.5;
  REQUIRE_THROWS_AS(tg::leaky_relu(x, kNaN), tg::ValueError);
  REQUIRE_THROWS_AS(tg::leaky_relu(x, kInf), tg::ValueError);
  REQUIRE_THROWS_WITH(tg::leaky_relu(x, kInf), Catch::Contains("leaky_relu: scale"));
  REQUIRE_THROWS_AS(tg::elu(x, -kInf), tg::ValueError);
  REQUIRE_THROWS_WITH(tg::elu(x, kNaN), Catch::Contains("elu: alpha"));
}

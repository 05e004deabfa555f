// tg::gradcheck itself: it must catch a wrong derivative, say which input and with both values,
// honour its tolerances, reject invalid options, and leave the caller's tape alone.
#include <fmt/format.h>

#include <array>
#include <autodiff/gradcheck.hpp>
#include <catch2/catch.hpp>
#include <limits>

using tg::Var;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// A deliberately wrong square: value a^2, "derivative" 3a (the right one is 2a).
struct WrongSquare {
  static constexpr std::string_view name = "wrong_square";
  double value(double a) const { return a * a; }
  double derivative(double a, double) const { return 3 * a; }
};

/// a^2 with its derivative off by a relative `relative` and an absolute `absolute` error.
struct SquareOff {
  static constexpr std::string_view name = "square_off";
  double relative = 0;
  double absolute = 0;
  double value(double a) const { return a * a; }
  double derivative(double a, double) const { return 2 * a * (1 + relative) + absolute; }
};

tg::GradcheckReport check_square_off(double relative, double absolute, double x,
                                     tg::GradcheckOptions o) {
  const std::array<double, 1> point{x};
  return tg::gradcheck(
      [=](std::span<const Var> v) {
        return tg::apply(SquareOff{relative, absolute}, v[0]);
      },
      point, o);
}
}  // namespace

TEST_CASE("gradcheck passes a correct gradient and reports every input", "[autodiff][gradcheck]") {
  const std::array<double, 3> x{0.7, -1.3, 2.1};
  const tg::GradcheckReport r = tg::gradcheck(
      [](std::span<const Var> v) { return tg::exp(v[0]) * v[1] + tg::sin(v[1] * v[2]); }, x);
  REQUIRE(r.ok());
  REQUIRE(r.entries.size() == 3);
  REQUIRE(r.failures().empty());
  REQUIRE(r.summary() == "all 3 inputs agree\n");
}

TEST_CASE("gradcheck reports the disagreeing input of a wrong primitive with both values",
          "[autodiff][gradcheck]") {
  const std::array<double, 2> x{1.5, 0.3};
  const tg::GradcheckReport r = tg::gradcheck(
      [](std::span<const Var> v) { return tg::apply(WrongSquare{}, v[0]) + v[1] * 2.0; }, x);
  REQUIRE_FALSE(r.ok());
  REQUIRE_FALSE(static_cast<bool>(r));
  const std::vector<tg::GradcheckEntry> bad = r.failures();
  REQUIRE(bad.size() == 1);
  REQUIRE(bad[0].input == 0);
  REQUIRE(bad[0].x == 1.5);
  REQUIRE(bad[0].ad == 4.5);
  REQUIRE(bad[0].fd == Approx(3.0).epsilon(1e-8));
  REQUIRE_FALSE(bad[0].kink);
  REQUIRE(r.entries[1].ok);
  const std::string summary = r.summary();
  REQUIRE_THAT(summary, Catch::Contains("input 0") && Catch::Contains("AD 4.5") &&
                            Catch::Contains(fmt::format("finite difference {}", bad[0].fd)));
  REQUIRE_THAT(summary, !Catch::Contains("input 1"));
}

TEST_CASE("gradcheck reports each disagreeing input, one line each", "[autodiff][gradcheck]") {
  const std::array<double, 3> x{1.0, 2.0, -1.0};
  const tg::GradcheckReport r = tg::gradcheck(
      [](std::span<const Var> v) {
        return tg::apply(WrongSquare{}, v[0]) + v[1] + tg::apply(WrongSquare{}, v[2]);
      },
      x);
  REQUIRE(r.failures().size() == 2);
  REQUIRE(r.failures()[1].input == 2);
  REQUIRE_THAT(r.summary(), Catch::Contains("input 0") && Catch::Contains("input 2") &&
                                !Catch::Contains("input 1"));
}

TEST_CASE("gradcheck's relative tolerance decides a small relative error",
          "[autodiff][gradcheck]") {
  REQUIRE(check_square_off(1e-4, 0, 1.7, {.rtol = 1e-3}).ok());
  REQUIRE_FALSE(check_square_off(1e-4, 0, 1.7, {.rtol = 1e-5}).ok());
}

TEST_CASE("gradcheck's absolute tolerance decides an error where the derivative is 0",
          "[autodiff][gradcheck]") {
  REQUIRE(check_square_off(0, 1e-6, 0.0, {.rtol = 0, .atol = 1e-5}).ok());
  REQUIRE_FALSE(check_square_off(0, 1e-6, 0.0, {.rtol = 0, .atol = 1e-7}).ok());
}

TEST_CASE("gradcheck rejects invalid options and non-finite points with ValueError",
          "[autodiff][gradcheck]") {
  const std::array<double, 1> x{1.0};
  const auto f = [](std::span<const Var> v) { return v[0] * v[0]; };
  for (const tg::GradcheckOptions bad :
       {tg::GradcheckOptions{.step = 0}, tg::GradcheckOptions{.step = -1e-6},
        tg::GradcheckOptions{.step = kNaN}, tg::GradcheckOptions{.step = kInf},
        tg::GradcheckOptions{.rtol = -1},
        tg::GradcheckOptions{.atol = kNaN}}) {
    CAPTURE(bad.step, bad.rtol, bad.atol);
    REQUIRE_THROWS_AS(tg::gradcheck(f, x, bad), tg::ValueError);
    REQUIRE_THROWS_WITH(tg::gradcheck(f, x, bad), Catch::StartsWith("gradcheck:"));
  }
  for (const double bad : {kNaN, kInf}) {
    const std::array<double, 2> point{0.5, bad};
    REQUIRE_THROWS_WITH(tg::gradcheck(f, point),
                        Catch::StartsWith("gradcheck: input 1") && Catch::Contains("finite"));
  }
}

TEST_CASE("gradcheck records on a private tape and leaves the caller's recording alone",
          "[autodiff][gradcheck]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0;
  const Var f = x * x;
  const std::size_t recorded = tape.size();
  const std::array<double, 1> point{0.5};
  REQUIRE(tg::gradcheck([](std::span<const Var> v) { return tg::tanh(v[0]); }, point).ok());
  REQUIRE(&tg::active_tape() == &tape);
  REQUIRE(tape.size() == recorded);
  f.backward();
  REQUIRE(x.grad() == 4.0);
}

// The subgradient at kinks: per-call values, scoped thread-local overrides, kink-hit counts, and
// gradcheck's handling of a finite-difference step that crosses a kink. Every value is asserted
// exactly.
#include <array>
#include <catch2/catch.hpp>
#include <functional>
#include <limits>
#include <thread>

#include "support/expect_ad.hpp"

using tg::Kink;
using tg::Var;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// d f / d x at x, recorded on a fresh tape.
double derivative_at(const std::function<Var(const Var&)>& f, double x) {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Var v = x;
  return tg::gradient(f(v), v)[0];
}

// (d f / d a, d f / d b) at (a, b), recorded on a fresh tape.
std::array<double, 2> gradient_at(const std::function<Var(const Var&, const Var&)>& f, double a,
                                  double b) {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Var va = a, vb = b;
  return tg::gradient(f(va, vb), va, vb);
}

using Pair = std::array<double, 2>;
}  // namespace

// ---- Per-call values ----------------------------------------------------------------------------

TEST_CASE("relu: a per-call at_zero is used at 0, and only at 0", "[autodiff][kink]") {
  REQUIRE(derivative_at([](const Var& x) { return tg::relu(x, {.at_zero = 1.0}); }, 0.0) == 1.0);
  REQUIRE(derivative_at([](const Var& x) { return tg::relu(x, {.at_zero = 0.37}); }, 0.0) == 0.37);
  REQUIRE(derivative_at([](const Var& x) { return tg::relu(x, {.at_zero = -4.0}); }, 0.0) == -4.0);
  REQUIRE(derivative_at([](const Var& x) { return tg::relu(x, {.at_zero = 7.0}); }, 0.5) == 1.0);
  REQUIRE(derivative_at([](const Var& x) { return tg::relu(x, {.at_zero = 7.0}); }, -0.5) == 0.0);
}

TEST_CASE("leaky_relu, elu, abs: a per-call at_zero is used at 0", "[autodiff][kink]") {
  REQUIRE(
      derivative_at([](const Var& x) { return tg::leaky_relu(x, {.scale = 0.2, .at_zero = 1.0}); },
                    0.0) == 1.0);
  REQUIRE(
      derivative_at([](const Var& x) { return tg::leaky_relu(x, {.scale = 0.2, .at_zero = 1.0}); },
                    -1.0) == 0.2);
  REQUIRE(derivative_at([](const Var& x) { return tg::elu(x, {.alpha = 0.5, .at_zero = 1.0}); },
                        0.0) == 1.0);
  REQUIRE(derivative_at([](const Var& x) { return tg::abs(x, {.at_zero = -0.25}); }, 0.0) == -0.25);
}

TEST_CASE("max, min: a per-call at_tie gives at_tie to a and 1 - at_tie to b", "[autodiff][kink]") {
  REQUIRE(gradient_at([](const Var& a, const Var& b) { return tg::max(a, b, {.at_tie = 1.0}); }, 2,
                      2) == Pair{1.0, 0.0});
  REQUIRE(gradient_at([](const Var& a, const Var& b) { return tg::max(a, b, {.at_tie = 0.25}); }, 2,
                      2) == Pair{0.25, 0.75});
  REQUIRE(gradient_at([](const Var& a, const Var& b) { return tg::min(a, b, {.at_tie = 0.0}); }, -1,
                      -1) == Pair{0.0, 1.0});
}

TEST_CASE("clamp: a per-call at_bound is used at both bounds", "[autodiff][kink]") {
  const auto f = [](const Var& x) { return tg::clamp(x, -1.0, 2.0, {.at_bound = 0.0}); };
  REQUIRE(derivative_at(f, -1.0) == 0.0);
  REQUIRE(derivative_at(f, 2.0) == 0.0);
  REQUIRE(derivative_at(f, 0.5) == 1.0);
}

TEST_CASE("a non-finite per-call kink value throws ValueError naming the primitive",
          "[autodiff][kink]") {
  const Var x = 0.0;
  for (const double bad : {kNaN, kInf, -kInf}) {
    CAPTURE(bad);
    REQUIRE_THROWS_AS(tg::relu(x, {.at_zero = bad}), tg::ValueError);
    REQUIRE_THROWS_WITH(tg::relu(x, {.at_zero = bad}),
                        Catch::StartsWith("relu:") && Catch::Contains("finite"));
    REQUIRE_THROWS_WITH(tg::leaky_relu(x, {.scale = 0.1, .at_zero = bad}),
                        Catch::StartsWith("leaky_relu:"));
    REQUIRE_THROWS_WITH(tg::elu(x, {.alpha = 1.0, .at_zero = bad}), Catch::StartsWith("elu:"));
    REQUIRE_THROWS_WITH(tg::abs(x, {.at_zero = bad}), Catch::StartsWith("abs:"));
    REQUIRE_THROWS_WITH(tg::max(x, x, {.at_tie = bad}), Catch::StartsWith("max:"));
    REQUIRE_THROWS_WITH(tg::min(x, 1.0, {.at_tie = bad}), Catch::StartsWith("min:"));
    REQUIRE_THROWS_WITH(tg::clamp(x, 0.0, 1.0, {.at_bound = bad}), Catch::StartsWith("clamp:"));
  }
}

// ---- Scoped, thread-local overrides -------------------------------------------------------------

TEST_CASE("SubgradientScope changes relu'(0) while it lives and restores it", "[autodiff][kink]") {
  const auto relu = [](const Var& x) { return tg::relu(x); };
  {
    tg::SubgradientScope one(Kink::relu, 1.0);
    REQUIRE(derivative_at(relu, 0.0) == 1.0);
    REQUIRE(derivative_at(relu, -2.0) == 0.0);
  }
  REQUIRE(derivative_at(relu, 0.0) == 0.0);
}

TEST_CASE("SubgradientScopes nest: the innermost wins, each restores the one before",
          "[autodiff][kink]") {
  const auto relu = [](const Var& x) { return tg::relu(x); };
  {
    tg::SubgradientScope outer(Kink::relu, 1.0);
    {
      tg::SubgradientScope inner(Kink::relu, 0.25);
      REQUIRE(derivative_at(relu, 0.0) == 0.25);
    }
    REQUIRE(derivative_at(relu, 0.0) == 1.0);
  }
  REQUIRE(derivative_at(relu, 0.0) == 0.0);
  REQUIRE_FALSE(tg::kink_override(Kink::relu).has_value());
}

TEST_CASE("a per-call kink value wins over the scope", "[autodiff][kink]") {
  tg::SubgradientScope scope(Kink::relu, 1.0);
  REQUIRE(derivative_at([](const Var& x) { return tg::relu(x, {.at_zero = 0.5}); }, 0.0) == 0.5);
}

TEST_CASE("a scope changes only its own kind of kink, and overrides a parameter's default",
          "[autodiff][kink]") {
  tg::SubgradientScope relu_one(Kink::relu, 1.0);
  tg::SubgradientScope leaky(Kink::leaky_relu, 0.75);
  REQUIRE(derivative_at([](const Var& x) { return tg::abs(x); }, 0.0) == 0.0);
  REQUIRE(derivative_at([](const Var& x) { return tg::elu(x, 0.3); }, 0.0) == 0.3);
  REQUIRE(derivative_at([](const Var& x) { return tg::leaky_relu(x, 0.2); }, 0.0) == 0.75);
  REQUIRE(derivative_at([](const Var& x) { return tg::leaky_relu(x, 0.2); }, -1.0) == 0.2);
}

TEST_CASE("the kink value is fixed when recorded: a sweep after the scope ends uses it",
          "[autodiff][kink]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 0.0;
  Var y;
  {
    tg::SubgradientScope one(Kink::relu, 1.0);
    y = tg::relu(x);
  }
  REQUIRE(tg::gradient(y, x)[0] == 1.0);
}

TEST_CASE("SubgradientScope is thread-local: another thread keeps the default",
          "[autodiff][kink]") {
  const auto relu = [](const Var& x) { return tg::relu(x); };
  tg::SubgradientScope one(Kink::relu, 1.0);
  double other = -1.0;
  std::thread([&] { other = derivative_at(relu, 0.0); }).join();
  REQUIRE(other == 0.0);
  REQUIRE(derivative_at(relu, 0.0) == 1.0);
}

TEST_CASE("SubgradientScope with a non-finite value throws ValueError and changes nothing",
          "[autodiff][kink]") {
  REQUIRE_THROWS_AS([] { tg::SubgradientScope s(Kink::elu, kNaN); }(), tg::ValueError);
  REQUIRE_THROWS_WITH([] { tg::SubgradientScope s(Kink::clamp, kInf); }(),
                      Catch::Contains("clamp") && Catch::Contains("finite"));
  REQUIRE_FALSE(tg::kink_override(Kink::elu).has_value());
  REQUIRE_FALSE(tg::kink_override(Kink::clamp).has_value());
}

// ---- Kink-hit counts ----------------------------------------------------------------------------

TEST_CASE("kink hits: each sweep counts, per kind, the primitives met exactly at their kink",
          "[autodiff][kink]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 0.0, y = 3.0;
  const Var f =
      tg::relu(x) + tg::relu(y) + tg::abs(x) + tg::max(x, x) + tg::clamp(y, 0.0, 3.0) + tg::elu(y);
  f.backward();
  const tg::KinkCounts& hits = tape.kink_hits();
  REQUIRE(hits[Kink::relu] == 1);  // relu(3) is away from the kink
  REQUIRE(hits[Kink::abs] == 1);
  REQUIRE(hits[Kink::max] == 1);
  REQUIRE(hits[Kink::clamp] == 1);
  REQUIRE(hits[Kink::elu] == 0);
  REQUIRE(hits[Kink::leaky_relu] == 0);
  REQUIRE(hits[Kink::min] == 0);
  REQUIRE(hits.total() == 4);
}

TEST_CASE("kink hits accumulate over sweeps until reset_kink_hits, and survive Tape::reset",
          "[autodiff][kink]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 0.0;
  const Var f = tg::leaky_relu(x) * 2.0;
  f.backward();
  f.backward();
  (void)tg::gradient(f, x);
  REQUIRE(tape.kink_hits()[Kink::leaky_relu] == 3);
  tape.reset();
  REQUIRE(tape.kink_hits()[Kink::leaky_relu] == 3);
  tape.reset_kink_hits();
  REQUIRE(tape.kink_hits().total() == 0);
}

TEST_CASE("kink hits: recording alone, NoGrad and constants count nothing", "[autodiff][kink]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 0.0;
  const Var f = tg::relu(x);
  {
    tg::NoGrad no_grad;
    (void)tg::relu(x);
  }
  (void)tg::relu(Var::constant(0.0));
  REQUIRE(tape.kink_hits().total() == 0);
  f.backward();
  REQUIRE(tape.kink_hits().total() == 1);
}

TEST_CASE("kink hits: a sweep from an output recorded before the kink does not count it",
          "[autodiff][kink]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 0.0;
  const Var y = x * 2.0;
  const Var r = tg::relu(x);
  y.backward();
  REQUIRE(tape.kink_hits()[Kink::relu] == 0);
  r.backward();
  REQUIRE(tape.kink_hits()[Kink::relu] == 1);
}

TEST_CASE("kink hits: each Jacobian row counts only the kinks its output depends on",
          "[autodiff][kink]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var a = 0.0, b = 0.0;
  const std::array<Var, 2> outputs{tg::relu(a), tg::relu(b)};
  const std::array<Var, 2> inputs{a, b};
  tape.reset_kink_hits();
  const tg::Jacobian j = tg::jacobian(outputs, inputs);
  REQUIRE(j(0, 1) == 0.0);
  REQUIRE(tape.kink_hits()[Kink::relu] == 2);  // a positional count would give 3
}

TEST_CASE("kink hits: a kink whose incoming gradient is zero is not counted", "[autodiff][kink]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 0.0;
  // relu(0) - 1 = -1: the outer relu is off its kink and passes nothing back.
  const Var blocked = tg::relu(tg::relu(x) - 1.0);
  tape.reset_kink_hits();
  blocked.backward();
  REQUIRE(tape.kink_hits()[Kink::relu] == 0);
  // relu(0) + 1 = 1: the outer relu passes the gradient on, which meets the inner kink.
  const Var passed = tg::relu(tg::relu(x) + 1.0);
  passed.backward();
  REQUIRE(tape.kink_hits()[Kink::relu] == 1);
  // A zero weight: the output depends on relu(x) only through a factor 0.
  const Var weighted = tg::relu(x) * 0.0;
  weighted.backward();
  REQUIRE(tape.kink_hits()[Kink::relu] == 1);
}

TEST_CASE("kink hits: the gradient with respect to a kinked result does not go through its kink",
          "[autodiff][kink]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 0.0;
  const Var r = tg::relu(x);
  const Var f = r * 3.0;
  tape.reset_kink_hits();
  REQUIRE(tg::gradient(f, r)[0] == 3.0);  // the sweep stops at r
  REQUIRE(tape.kink_hits()[Kink::relu] == 0);
  REQUIRE(tg::gradient(f, x)[0] == 0.0);  // through relu'(0) = 0
  REQUIRE(tape.kink_hits()[Kink::relu] == 1);
}

TEST_CASE("kink hits: a kinked statement is not fused into afterwards, and keeps its count",
          "[autodiff][kink]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 0.0, w = 2.0;
  const std::size_t before = tape.stats().statements;
  const Var f = tg::relu(x * w) * w;  // x * w, relu fused into it at the kink; * w may not fuse
  REQUIRE(tape.stats().statements == before + 2);
  tape.reset_kink_hits();
  f.backward();
  REQUIRE(tape.kink_hits()[Kink::relu] == 1);
  REQUIRE(x.grad() == 0.0);
  // Off the kink the same expression is one statement.
  const Var y = 1.0;
  const std::size_t before_y = tape.stats().statements;
  (void)(tg::relu(y * w) * w);
  REQUIRE(tape.stats().statements == before_y + 1);
}

// ---- gradcheck at kinks -------------------------------------------------------------------------

namespace {
tg::GradcheckReport check_at(const std::function<Var(const Var&)>& f, double x) {
  const std::array<double, 1> point{x};
  return tg::gradcheck([&](std::span<const Var> v) { return f(v[0]); }, point);
}
}  // namespace

TEST_CASE("gradcheck across a kink passes a subgradient between the one-sided quotients",
          "[autodiff][kink][gradcheck]") {
  for (const double at_zero : {0.0, 0.5, 1.0}) {
    CAPTURE(at_zero);
    const tg::GradcheckReport r =
        check_at([&](const Var& x) { return tg::relu(x, {.at_zero = at_zero}); }, 0.0);
    REQUIRE(r.entries.at(0).kink);
    REQUIRE(r.entries.at(0).left == 0.0);
    REQUIRE(r.entries.at(0).right == 1.0);
    REQUIRE(r.ok());
  }
  REQUIRE(check_at([](const Var& x) { return tg::abs(x); }, 0.0).ok());
  REQUIRE(check_at([](const Var& x) { return tg::elu(x, 0.5); }, 0.0).ok());
  REQUIRE(check_at([](const Var& x) { return tg::leaky_relu(x, 0.1); }, 0.0).ok());
  REQUIRE(check_at([](const Var& x) { return tg::clamp(x, -1.0, 2.0); }, 2.0).ok());
}

TEST_CASE("gradcheck: a step that crosses a kink near, not at, the point is flagged and passes",
          "[autodiff][kink][gradcheck]") {
  const tg::GradcheckReport r = check_at([](const Var& x) { return tg::relu(x); }, 3e-7);
  REQUIRE(r.entries.at(0).kink);
  REQUIRE(r.entries.at(0).ad == 1.0);
  REQUIRE(r.ok());
}

TEST_CASE("gradcheck across a kink fails a subgradient outside the one-sided quotients",
          "[autodiff][kink][gradcheck]") {
  const tg::GradcheckReport r =
      check_at([](const Var& x) { return tg::relu(x, {.at_zero = 5.0}); }, 0.0);
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.entries.at(0).kink);
  REQUIRE(r.entries.at(0).ad == 5.0);
  REQUIRE_THAT(r.summary(), Catch::Contains("input 0") && Catch::Contains("outside"));
  REQUIRE_FALSE(check_at([](const Var& x) { return tg::relu(x, {.at_zero = -1.0}); }, 0.0).ok());
  REQUIRE_FALSE(check_at([](const Var& x) { return tg::abs(x, {.at_zero = 2.0}); }, 0.0).ok());
  REQUIRE_FALSE(
      check_at([](const Var& x) { return tg::elu(x, {.alpha = 0.5, .at_zero = 3.0}); }, 0.0).ok());
}

TEST_CASE("gradcheck at a tie of max: a split inside [0, 1] passes, outside fails",
          "[autodiff][kink][gradcheck]") {
  const std::array<double, 2> tie{1.0, 1.0};
  const auto max_with = [](double at_tie) {
    return [at_tie](std::span<const Var> v) { return tg::max(v[0], v[1], {.at_tie = at_tie}); };
  };
  REQUIRE(tg::gradcheck(max_with(0.5), tie).ok());
  REQUIRE(tg::gradcheck(max_with(1.0), tie).ok());
  const tg::GradcheckReport bad = tg::gradcheck(max_with(2.0), tie);
  REQUIRE(bad.failures().size() == 2);  // d/da = 2 and d/db = -1 are both outside [0, 1]
}

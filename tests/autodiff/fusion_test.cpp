// Fused statements (docs/design.md, "Fused statements"): a primitive applied to a fresh temporary
// recorded just before it rewrites that statement instead of recording its own. These tests pin
// what is fused (through the statement counts of Tape::stats) and, above all, that fusion never
// changes a value or a gradient, and never touches a statement someone else can still see.
#include <algorithm>
#include <array>
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "support/expect_ad.hpp"

using tg::Var;
using tgtest::tape_error_message;

namespace {
std::size_t statements(const tg::Tape& t) { return t.stats().statements; }
std::size_t operands(const tg::Tape& t) { return t.stats().operands; }
}  // namespace

TEST_CASE("s + x * x records one statement; x * x is one operand", "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var s = 2.0, x = 3.0;
  const std::size_t before = statements(tape);
  const Var f = s + x * x;
  CHECK(statements(tape) == before + 1);
  CHECK(operands(tape) == 2);  // (x, 2x), (s, 1)
  const auto [ds, dx] = tg::gradient(f, s, x);
  CHECK(f.value() == 11.0);
  CHECK(ds == 1.0);
  CHECK(dx == 6.0);
}

TEST_CASE("a running sum into a fresh accumulator grows one statement", "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  std::vector<Var> x;
  for (int i = 0; i < 100; ++i) x.emplace_back(0.01 * i - 0.3);
  Var s = x[0] * x[0];
  for (std::size_t i = 1; i < x.size(); ++i) s += x[i] * x[i];
  CHECK(statements(tape) == 1 + x.size() + 1);  // the sink, the inputs, one sum
  const std::vector<double> g = tg::gradient(s, x);
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(g[i] == 2.0 * x[i].value());
}

TEST_CASE("fused and unfused recordings give the same values and gradients", "[autodiff][fusion]") {
  // Anomaly mode records one statement per primitive: the reference.
  const auto program = [](const Var& a, const Var& b, const Var& c) {
    Var s = a * b;
    s += tg::exp(a - c) * tg::sin(b) / (1.0 + c * c);
    s -= tg::relu(a * 2.0 - b) * tg::tanh(c) + tg::log1p(b * b);
    return tg::sqrt(s * s + 1.0) * tg::elu(c - a, 0.5);
  };
  const auto run = [&](bool anomaly, std::size_t& n_statements) {
    tg::Tape tape;
    tg::TapeScope active(tape);
    tape.set_anomaly(anomaly);
    const Var a = 0.7, b = -1.3, c = 0.4;
    const Var f = program(a, b, c);
    n_statements = statements(tape);
    const auto g = tg::gradient(f, a, b, c);
    return std::array<double, 4>{f.value(), g[0], g[1], g[2]};
  };
  std::size_t fused = 0, unfused = 0;
  const auto with = run(false, fused);
  const auto without = run(true, unfused);
  CHECK(fused < unfused);
  CHECK(with[0] == without[0]);
  for (std::size_t k = 1; k < 4; ++k) CHECK(with[k] == Approx(without[k]).epsilon(1e-14));
}

TEST_CASE("a copied temporary is never fused into: the copy keeps its meaning",
          "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 3.0;
  Var m = x * x;   // fresh
  const Var c = m; // a copy: neither is fresh now
  m *= 5.0;        // must record a new statement, not scale the one c names
  const Var f = m + c * 10.0;  // 5x^2 + 10x^2: df/dx = 30x
  CHECK(tg::gradient(f, x)[0] == 90.0);
  CHECK(tg::gradient(c, x)[0] == 6.0);
}

namespace {
Var square_and_keep(const Var& x, Var& keep) {
  Var m = x * x;  // fresh, returned by NRVO
  keep = m;       // a copy made before the return: m is fresh no longer
  return m;
}
}  // namespace

TEST_CASE("a returned local that was copied first is not fused into", "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0;
  Var keep;
  const Var e = tg::exp(square_and_keep(x, keep));  // exp of a prvalue that `keep` also names
  const Var f = e + keep;                           // e^(x^2) + x^2
  CHECK(tg::gradient(f, x)[0] == Approx(2.0 * 2.0 * std::exp(4.0) + 4.0).epsilon(1e-15));
  CHECK(tg::gradient(keep, x)[0] == 4.0);
}

TEST_CASE("a moved-from fresh Var throws TapeError when used, a moved-from input stays valid",
          "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 1.5;
  Var m = x * x;
  Var n = std::move(m);  // n is the only handle now
  n *= 2.0;              // fuses into the statement m named
  CHECK_THROWS_AS(m + 1.0, tg::TapeError);  // NOLINT(bugprone-use-after-move)
  CHECK_THAT(tape_error_message([&] { (void)(m + 1.0); }),  // NOLINT(bugprone-use-after-move)
             Catch::Matchers::Contains("moved from"));
  CHECK_THROWS_AS(m.grad(), tg::TapeError);  // NOLINT(bugprone-use-after-move)
  CHECK(tg::gradient(n, x)[0] == 6.0);

  Var y = 4.0;
  Var z = std::move(y);  // an input is never fresh: both stay valid handles
  const Var g = y * z;   // NOLINT(bugprone-use-after-move)
  CHECK(tg::gradient(g, z)[0] == 8.0);
}

TEST_CASE("a closure recorded after a fresh Var keeps its statement as it was",
          "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 3.0;
  Var m = x * x;
  double seen = 0.0;
  tape.record_backward([&seen, i = m.index()](tg::Tape& t) { seen = t.adjoint(i); });
  m *= 3.0;  // would scale m's statement; the closure must still see d(out)/d(x^2)
  m.backward();
  CHECK(seen == 3.0);
  CHECK(x.grad() == 18.0);
}

TEST_CASE("kink events of merged statements are counted once per sweep", "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var a = 0.0, b = 0.0, c = 1.0;
  const Var f = tg::relu(a * c) + tg::relu(b * c);  // two fresh statements at the kink, merged
  const Var g = f * 2.0;
  tape.reset_kink_hits();
  g.backward();
  CHECK(tape.kink_hits()[tg::Kink::relu] == 2);
  CHECK(a.grad() == 0.0);  // relu'(0) = 0
}

TEST_CASE("statements longer than 65535 operands are chained, exactly", "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const std::size_t n = 150'000;
  std::vector<Var> x;
  x.reserve(n);
  for (std::size_t i = 0; i < n; ++i) x.emplace_back(1.0 + 1e-6 * static_cast<double>(i));

  SECTION("tg::sum") {
    const Var s = tg::sum(x);
    const std::vector<double> g = tg::gradient(s, x);
    CHECK(std::all_of(g.begin(), g.end(), [](double v) { return v == 1.0; }));
    CHECK(statements(tape) == 1 + n + 3);  // 65535 + 65534 + the rest, chained
  }
  SECTION("a running sum") {
    Var s = x[0] * 2.0;
    for (std::size_t i = 1; i < n; ++i) s += x[i] * 2.0;
    const std::vector<double> g = tg::gradient(s, x);
    CHECK(std::all_of(g.begin(), g.end(), [](double v) { return v == 2.0; }));
    CHECK(statements(tape) < 1 + n + 10);
  }
}

TEST_CASE("a long product stops fusing once scaling it would cost, and stays exact",
          "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  std::vector<Var> x;
  for (int i = 0; i < 300; ++i) x.emplace_back(1.0 + 0.001 * i);
  Var p = x[0] * 1.0;
  for (std::size_t i = 1; i < x.size(); ++i) p *= x[i];
  CHECK(statements(tape) > 1 + x.size() + 2);  // not a single statement of 300 rescaled operands
  const std::vector<double> g = tg::gradient(p, x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(g[i] == Approx(p.value() / x[i].value()).epsilon(1e-13));
  }
}

TEST_CASE("a fresh Var summed by tg::sum is not merged into the sum's statement", "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 3.0, y = 4.0;
  Var p = x * y;
  p += tg::sum(std::span<const Var>(&p, 1));  // 2xy; merging would make a statement name itself
  CHECK(p.value() == 24.0);
  CHECK(tg::gradient(p, x)[0] == 8.0);
  std::vector<Var> v{x * y};
  const Var q = std::move(v.back()) + tg::dot(v, std::vector<double>{2.0});  // 3xy
  CHECK(tg::gradient(q, y)[0] == 9.0);
}

TEST_CASE("fusion never makes a partial overflow or underflow where the unfused sweep would not",
          "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 1e-300;
  const Var dead = 1e10 * (1e300 * x);  // 1e300 * 1e10 would be an infinite partial
  const Var f = 2.0 * x;
  f.backward();
  CHECK(x.grad() == 2.0);  // not 0 * inf = NaN from the dead statement
  CHECK(std::isfinite(dead.value()));

  const Var z = 1.0;
  const Var g = 1e200 * (1e-200 * (1e-200 * z));  // 1e-200 * 1e-200 would underflow to 0
  CHECK(tg::gradient(g, z)[0] == Approx(1e-200).epsilon(1e-14));
}

namespace {
// A primitive of one input whose derivative is a number chosen at run time.
struct ScaledBy {
  static constexpr std::string_view name = "scaled_by";
  double k;
  double value(double a) const { return a; }
  double derivative(double, double) const { return k; }
};
}  // namespace

TEST_CASE("fusing into a one-operand statement at the edges of the double range is exact",
          "[autodiff][fusion]") {
  // Statement t = p * x, then g(t) with g' = k: fused, t's partial becomes p * k. The fusion must
  // happen exactly when that product is what the unfused sweep computes (a finite product in the
  // normal range, an exact 0, or a sign change), and the gradient must be the unfused one, bit
  // for bit (or NaN in both).
  constexpr double kMin = std::numeric_limits<double>::min();
  constexpr double kTiny = std::numeric_limits<double>::denorm_min();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    double p, k;
    bool fused;
  };
  const std::vector<Case> cases = {
      {3.0, 0.5, true},      {-2.0, 1e-3, true},   {kMin, 1.0, true},      {2 * kMin, 0.5, true},
      {kTiny, 1.0, true},    {kTiny, -1.0, true},  {0.0, 5.0, true},       {-0.0, -1.0, true},
      {2.0, 0.0, true},      {2.0, -0.0, true},    {kMin, 0.5, false},     {1e-300, 1e-10, false},
      {1e300, 1e10, false},  {-1e300, 1e10, false}, {0.0, kInf, false},    {2.0, kInf, false},
      {2.0, kNaN, false},    {kTiny, 2.0, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.p, c.k);
    const auto run = [&](bool fuse, std::size_t& n_statements) {
      tg::Tape tape;
      tg::TapeScope active(tape);
      const Var x = 1.0;
      Var t = c.p * x;
      const std::size_t before = statements(tape);
      const Var f = fuse ? tg::apply(ScaledBy{c.k}, std::move(t)) : tg::apply(ScaledBy{c.k}, t);
      n_statements = statements(tape) - before;
      return tg::gradient(f, x)[0];
    };
    std::size_t fused_count = 0, unfused_count = 0;
    const double with = run(true, fused_count);
    const double without = run(false, unfused_count);
    CHECK(unfused_count == 1);
    CHECK(fused_count == (c.fused ? 0 : 1));
    if (std::isnan(without)) {
      CHECK(std::isnan(with));
    } else {
      CHECK(std::bit_cast<std::uint64_t>(with) == std::bit_cast<std::uint64_t>(without));
    }
  }
}

TEST_CASE("a Var swept by backward() is not fused into afterwards", "[autodiff][fusion]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0;
  Var f = x * 3.0;
  f.backward();
  f *= 5.0;  // a new statement: the sweep's adjoints stay those of the old f
  CHECK(f.grad() == 0.0);  // recorded after the sweep
  CHECK(x.grad() == 3.0);
  CHECK(tg::gradient(f, x)[0] == 15.0);
}

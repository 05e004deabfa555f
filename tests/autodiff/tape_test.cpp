// The tape: accumulation, depth, Jacobians, chosen inputs, no-grad, misuse, anomaly mode, user
// primitives (rules and closures) and one tape per thread. Expected values are worked out by hand.
#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <fmt/format.h>
#include <iomanip>
#include <limits>
#include <memory>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/expect_ad.hpp"
#include "support/simd_level.hpp"

using tg::Var;
using tgtest::tape_error_message;

// ---- Accumulation and depth ---------------------------------------------------------------------

TEST_CASE("a diamond: both paths from x to f add up", "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 3.0;
  const Var a = x + 1.0, b = x * 2.0;
  const Var f = a * b;  // (x + 1) 2x: df/dx = 4x + 2
  REQUIRE(tg::gradient(f, x)[0] == 14.0);
}

TEST_CASE("a shared subexpression used twice gets both contributions", "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 3.0;
  const Var u = x * x;
  const Var f = u * u + u;  // df/dx = (2u + 1) 2x = 19 * 6
  REQUIRE(tg::gradient(f, x)[0] == 114.0);
  const Var g = x * x * x;  // x used three times: 3x^2
  REQUIRE(tg::gradient(g, x)[0] == 27.0);
}

TEST_CASE("a value the output does not use hands down nothing, even with an infinite derivative",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var z = 0.0;
  const Var x = 3.0;
  const Var unused = tg::sqrt(z);  // derivative +inf at 0; 0 * inf would be NaN
  const Var f = x * x;
  const auto [dz, dx] = tg::gradient(f, z, x);
  REQUIRE(dz == 0.0);
  REQUIRE(dx == 6.0);
  REQUIRE(std::isinf(tg::gradient(unused, z)[0]));  // where it is used, +inf as std:: math says

  // Below the unused statement sits one the output does depend on: its adjoint stays exact.
  const Var t = x * x;
  const Var dead = tg::log(t - t);  // log(0): derivative 1/0
  const Var g = 2.0 * t;
  REQUIRE(tg::gradient(g, x)[0] == 12.0);
  g.backward();
  REQUIRE(x.grad() == 12.0);
  REQUIRE(dead.grad() == 0.0);
  {
    tg::DetectAnomaly anomaly;  // nothing non-finite reaches an adjoint: no anomaly either
    const Var h = 2.0 * t;
    h.backward();
    REQUIRE(x.grad() == 12.0);
  }

  // The same through the sweep's path for long statements: an unused product whose partial on a
  // sum of 10 operands is log(0) = -inf; the sum's adjoint stays 0 and its operands get nothing.
  std::vector<Var> xs(10, x);
  const Var long_dead = tg::sum(xs) * tg::log(Var::constant(0.0) * x);
  const Var k = x * 5.0;
  REQUIRE(tg::gradient(k, x)[0] == 5.0);
  (void)long_dead;
}

TEST_CASE("a chain of 10 million operations differentiates without overflowing the stack",
          "[autodiff][tape][slow]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 1.25;
  Var y = x;
  constexpr int kPairs = 5'000'000;  // each pair: y -> -y + 1, so two pairs give y back
  for (int i = 0; i < kPairs; ++i) y = -y + 1.0;
  // Each pair is one statement (+ 1.0 fuses into -y's): a chain 5 million statements deep.
  REQUIRE(tape.size() == 2 + std::size_t{kPairs});
  REQUIRE(y.value() == 1.25);
  y.backward();
  REQUIRE(x.grad() == 1.0);  // (-1)^5,000,000; one lost statement would flip the sign
}

namespace {
// A random recording written statement by statement with Tape::push, and the same statements kept
// here, to sweep them with the plain loop of the definition: adjoint[j] += partial * adjoint[s] for
// each operand of each statement, from the top down to `stop`, each closure run at its position.
// (A statement whose adjoint is 0 hands nothing down.) The tape's sweep keeps some adjoints in
// registers (docs/design.md, "The reverse sweep"); it must add the same contributions in the same
// order, so every adjoint agrees bit for bit.
struct RandomRecording {
  struct Statement {
    std::vector<tg::Index> operands;
    std::vector<double> partials;
  };
  std::vector<Statement> statements;  // statements[s] defines variable s; 0 is the sink
  std::vector<tg::Index> closures;    // positions of closures that add 0.5 adjoint(p) to variable 2

  std::vector<double> sweep(tg::Index output, tg::Index stop) const {
    std::vector<double> adj(output + std::size_t{1}, 0.0);
    adj[output] = 1.0;
    auto closure = closures.rbegin();
    for (tg::Index s = output;; --s) {
      for (; closure != closures.rend() && *closure >= s; ++closure) {
        if (*closure <= output && *closure >= stop) adj[2] += 0.5 * adj[*closure];
      }
      if (s <= stop) break;
      const Statement& st = statements[s];
      if (adj[s] == 0.0) continue;  // nothing to hand down (Tape::sweep)
      for (std::size_t k = 0; k < st.operands.size(); ++k) {
        adj[st.operands[k]] += st.partials[k] * adj[s];
      }
    }
    adj[0] = 0.0;
    return adj;
  }
};

// Operands are drawn the way programs use them: the last few variables (a chain, a running sum),
// a handful of parameters used all along (variables 1 to 3, like mu and sigma in a likelihood), an
// operand twice, anything earlier; a few statements are long (the sweep's other path).
RandomRecording record_random(tg::Tape& tape, std::size_t n, std::uint64_t seed) {
  std::uint64_t state = seed;
  auto next = [&state](std::uint64_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % bound;
  };
  RandomRecording r;
  r.statements.resize(1);
  constexpr tg::Index kInputs = 8;
  for (tg::Index i = 1; i <= kInputs; ++i) {
    REQUIRE(tape.push_input() == i);
    r.statements.emplace_back();
  }
  for (std::size_t k = 0; k < n; ++k) {
    const auto s = static_cast<tg::Index>(r.statements.size());
    const std::size_t count = next(10) == 0 ? 5 + next(8) : 1 + next(4);
    RandomRecording::Statement st;
    // The first operand is s - 1 with partial 1: every statement depends on every one below it,
    // so a sweep reaches all of them and the adjoints neither die out nor overflow.
    st.operands.push_back(s - 1);
    st.partials.push_back(1.0);
    for (std::size_t m = 1; m < count; ++m) {
      const std::uint64_t kind = next(8);
      tg::Index j;
      if (kind < 3) {
        j = s - 1 - static_cast<tg::Index>(std::min<std::uint64_t>(kind, s - 2));  // s-1, s-2, s-3
      } else if (kind < 6) {
        j = 1 + static_cast<tg::Index>(next(3));  // a parameter
      } else if (kind == 6) {
        j = st.operands.back();  // the same operand again
      } else {
        j = 1 + static_cast<tg::Index>(next(s - 1));
      }
      st.operands.push_back(j);
      st.partials.push_back(static_cast<double>(next(1001)) / 1000.0 - 0.5);
    }
    if (tape.push(st.operands, st.partials) != s) FAIL("statement " << s << " got another index");
    r.statements.push_back(std::move(st));
    if (next(200) == 0) {
      const tg::Index p = s;
      tape.record_backward([p](tg::Tape& t) { t.add_adjoint(2, 0.5 * t.adjoint(p)); });
      r.closures.push_back(p);
    }
  }
  return r;
}
}  // namespace

TEST_CASE("the sweep adds every contribution as the plain loop does: the same adjoints bit for bit",
          "[autodiff][tape]") {
  for (const std::uint64_t seed : {1u, 2u, 3u}) {
    tg::Tape tape;
    const RandomRecording r = record_random(tape, 20'000, seed);
    const auto top = static_cast<tg::Index>(r.statements.size() - 1);
    for (const tg::Index output : {top, top / 2, tg::Index{12}}) {
      for (const tg::Index stop : {tg::Index{0}, tg::Index{3}, output / 3}) {
        INFO("seed " << seed << ", output " << output << ", stop " << stop);
        tape.sweep(output, 1.0, stop);
        const std::vector<double> expected = r.sweep(output, stop);
        std::size_t mismatches = 0;
        for (tg::Index i = 0; i <= output; ++i) {
          // Bit for bit (the adjoints stay finite: see record_random).
          if (tape.adjoint(i) != expected[i]) ++mismatches;
        }
        REQUIRE(mismatches == 0);
      }
    }
  }
}

TEST_CASE("long statements whose operands run consecutively get the same adjoints bit for bit at "
          "every instruction set",
          "[autodiff][tape]") {
  // The sweep scatters a long statement's operands in blocks of 16, a block whose indices run
  // consecutively as vectors (tape.cpp, scatter). Statements of 87 to 1,000 operands (above and
  // below the dispatch threshold) made of runs of consecutive inputs of every length, an operand
  // twice, a run again, a run backwards and single operands, so that blocks of every kind meet.
  for (const tg::detail::SimdLevel level : tgtest::simd_levels()) {
    const tgtest::SimdLevelScope use(level);
    INFO("simd level " << static_cast<int>(level));
    std::uint64_t state = 7;
    auto next = [&state](std::uint64_t bound) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return (state >> 33) % bound;
    };
    tg::Tape tape;
    RandomRecording r;
    r.statements.resize(1);
    constexpr tg::Index kInputs = 3000;
    for (tg::Index i = 1; i <= kInputs; ++i) {
      REQUIRE(tape.push_input() == i);
      r.statements.emplace_back();
    }
    for (const std::size_t length : {87u, 300u, 1000u, 257u, 643u}) {
      const auto s = static_cast<tg::Index>(r.statements.size());
      RandomRecording::Statement st;
      st.operands.push_back(s - 1);  // the statement below, so that the sweep reaches every one
      while (st.operands.size() < length) {
        const std::uint64_t kind = next(6);
        const auto start = static_cast<tg::Index>(1 + next(kInputs - 64));
        const auto run = static_cast<tg::Index>(1 + next(40));
        if (kind < 3) {
          for (tg::Index j = 0; j < run; ++j) st.operands.push_back(start + j);
        } else if (kind == 3) {
          for (tg::Index j = run; j-- > 0;) st.operands.push_back(start + j);
        } else if (kind == 4) {
          st.operands.push_back(st.operands.back());
        } else {
          st.operands.push_back(start);
        }
      }
      st.operands.resize(length);
      for (std::size_t k = 0; k < length; ++k) {
        // The first partial, not a power of 2, makes the adjoints of the statements below the top
        // ones whose products with the partials round: a multiply-add fused into one rounding
        // would then differ.
        st.partials.push_back(k == 0 ? 0.7 : static_cast<double>(next(2001)) / 1000.0 - 1.0);
      }
      REQUIRE(tape.push(st.operands, st.partials) == s);
      r.statements.push_back(std::move(st));
    }
    const auto top = static_cast<tg::Index>(r.statements.size() - 1);
    tape.sweep(top);
    const std::vector<double> expected = r.sweep(top, 0);
    std::size_t mismatches = 0;
    for (tg::Index i = 0; i <= top; ++i) {
      if (tape.adjoint(i) != expected[i]) ++mismatches;
    }
    REQUIRE(mismatches == 0);
  }
}

// ---- Jacobians and chosen inputs ----------------------------------------------------------------

TEST_CASE("jacobian of three outputs matches the hand-derived matrix, without re-recording",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0, y = 3.0, z = 5.0;
  const std::array<Var, 3> outputs{x * y, x * x * y, x + y * z};
  const std::array<Var, 3> inputs{x, y, z};
  const std::size_t recorded = tape.size();
  const tg::Jacobian j = tg::jacobian(outputs, inputs);
  REQUIRE(tape.size() == recorded);
  REQUIRE(j.rows == 3);
  REQUIRE(j.cols == 3);
  // Rows: (y, x, 0), (2xy, x^2, 0), (1, z, y).
  REQUIRE(j.data == std::vector<double>{3, 2, 0, 12, 4, 0, 1, 5, 3});
}

TEST_CASE("gradient of chosen inputs: any order, unused inputs and constants get 0",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0, y = 3.0, z = 5.0, unused = 7.0;
  const Var f = x * y + tg::sin(z);
  const auto [dz, dx, du, dc] = tg::gradient(f, z, x, unused, Var::constant(1.0));
  REQUIRE(dz == std::cos(5.0));
  REQUIRE(dx == 3.0);
  REQUIRE(du == 0.0);
  REQUIRE(dc == 0.0);
  REQUIRE(tg::gradient(f, y)[0] == 2.0);
}

TEST_CASE("gradient checks its inputs and finds where to stop at every instruction set",
          "[autodiff][tape]") {
  // 1,001 inputs (past the dispatch threshold, not a multiple of any vector width): the check pass
  // runs as compiled for each instruction set the CPU has (autodiff/simd.hpp).
  for (const tg::detail::SimdLevel level : tgtest::simd_levels()) {
    const tgtest::SimdLevelScope use(level);
    INFO("simd level " << static_cast<int>(level));
    tg::Tape tape;
    tg::TapeScope active(tape);
    std::vector<double> values(1001);
    for (std::size_t k = 0; k < values.size(); ++k) values[k] = 0.001 * static_cast<double>(k);
    // A prefix of statements below the inputs: the sweep stops above it.
    const Var p = 2.0;
    Var prefix = p;
    for (int k = 0; k < 10; ++k) prefix = prefix * 1.5;
    std::vector<Var> xs = tg::inputs(values);
    Var f = prefix;
    for (const Var& x : xs) f += x * x;
    xs[500] = Var::constant(4.0);  // a constant among the inputs: gradient 0
    const std::vector<double> g = tg::gradient(f, xs);
    for (std::size_t k = 0; k < xs.size(); ++k) {
      if (g[k] != (k == 500 ? 0.0 : 2.0 * values[k])) FAIL("input " << k << ": " << g[k]);
    }
    REQUIRE(xs[1].grad() == 2.0 * values[1]);  // grad() reads what the sweep left
    REQUIRE_THROWS_AS(p.grad(), tg::TapeError);  // below the stop

    // The same inputs with one from an earlier recording among them.
    const Var stale = xs[700];
    tape.reset();
    std::vector<Var> ys = tg::inputs(values);
    Var h = 0.0;
    for (const Var& y : ys) h += y;
    ys[700] = stale;
    REQUIRE_THROWS_AS(tg::gradient(h, ys), tg::TapeError);
  }
}

TEST_CASE("gradient reads inputs recorded together in one copy, as it reads any others",
          "[autodiff][tape]") {
  // Inputs whose indices run consecutively (tg::inputs) have their gradients copied as one block:
  // the same values as input by input, 0 for those recorded after the output, at every
  // instruction set (the check pass that finds them runs through simd.hpp).
  for (const tg::detail::SimdLevel level : tgtest::simd_levels()) {
    const tgtest::SimdLevelScope use(level);
    INFO("simd level " << static_cast<int>(level));
    tg::Tape tape;
    tg::TapeScope active(tape);
    std::vector<double> values(1001);
    for (std::size_t k = 0; k < values.size(); ++k) {
      values[k] = 0.5 + 0.001 * static_cast<double>(k);
    }
    // A constant first, then the inputs: on a new tape the first input is variable 1, so the
    // indices run 0, 1, 2, ... and the constant reads the sink's adjoint, 0.
    std::vector<Var> xs{Var::constant(2.0)};
    const std::vector<Var> recorded = tg::inputs(values);
    xs.insert(xs.end(), recorded.begin(), recorded.end());
    Var f = 0.0;
    for (std::size_t k = 0; k < xs.size(); ++k) f += static_cast<double>(k % 7) * xs[k] * xs[k];
    const std::vector<double> g = tg::gradient(f, xs);
    // The same inputs in another order take the input-by-input path.
    std::vector<Var> reversed(xs.rbegin(), xs.rend());
    const std::vector<double> g_reversed = tg::gradient(f, reversed);
    REQUIRE(g.size() == xs.size());
    for (std::size_t k = 0; k < xs.size(); ++k) {
      const double want = 2.0 * static_cast<double>(k % 7) * xs[k].value();
      if (g[k] != (k == 0 ? 0.0 : want) || g_reversed[xs.size() - 1 - k] != g[k]) {
        FAIL("input " << k << ": " << g[k] << " and " << g_reversed[xs.size() - 1 - k]);
      }
    }

    // The output is one of the inputs: those above it have no adjoint and get 0.
    const std::vector<double> g_mid = tg::gradient(xs[600], xs);
    for (std::size_t k = 0; k < xs.size(); ++k) {
      if (g_mid[k] != (k == 600 ? 1.0 : 0.0)) FAIL("input " << k << ": " << g_mid[k]);
    }
    // All of them recorded after the output.
    const Var early = xs[3] * 2.0;
    const std::vector<Var> later = tg::inputs(values);
    const std::vector<double> g_later = tg::gradient(early, later);
    REQUIRE(g_later == std::vector<double>(values.size(), 0.0));
    REQUIRE(tg::gradient(f, std::span<const Var>{}).empty());
  }
}

TEST_CASE("tg::inputs records one input per value, as constructing each Var would",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var before = 0.5;
  const std::array<double, 4> values{1.0, -2.0, 3.5, 0.0};
  std::array<Var, 4> xs{Var::constant(9.0), tg::exp(before), before, Var()};  // all replaced
  const std::size_t recorded = tape.size();
  tg::inputs(values, xs);
  REQUIRE(tape.size() == recorded + values.size());
  for (std::size_t k = 0; k < xs.size(); ++k) {
    REQUIRE(xs[k].value() == values[k]);
    REQUIRE(xs[k].index() == recorded + k);  // consecutive, after what was recorded before
    REQUIRE(xs[k].epoch() == tape.epoch());
    REQUIRE_FALSE(xs[k].fresh());
  }
  // sum_k (k + 1) x_k^2 + before * x_0: d/dx_k = 2 (k + 1) x_k (+ before for k = 0).
  Var f = before * xs[0];
  for (std::size_t k = 0; k < xs.size(); ++k) f += static_cast<double>(k + 1) * xs[k] * xs[k];
  const std::vector<double> g = tg::gradient(f, xs);
  REQUIRE(g == std::vector<double>{2.0 * 1.0 + 0.5, 2 * 2 * -2.0, 2 * 3 * 3.5, 0.0});
  REQUIRE(tg::gradient(f, before)[0] == 1.0);
  // The vector overload, and no values at all.
  const std::size_t before_ys = tape.size();
  const std::vector<Var> ys = tg::inputs(values);
  REQUIRE(ys.size() == values.size());
  REQUIRE(ys[3].index() == before_ys + 3);
  REQUIRE(tg::inputs(std::span<const double>()).empty());
  REQUIRE(tape.size() == before_ys + values.size());
}

TEST_CASE("tg::inputs with mismatched sizes throws ShapeError and records nothing",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const std::array<double, 3> values{1.0, 2.0, 3.0};
  std::array<Var, 2> xs{};
  const std::size_t recorded = tape.size();
  REQUIRE_THROWS_WITH(tg::inputs(values, xs),
                      Catch::Contains("inputs") && Catch::Contains("3 values") &&
                          Catch::Contains("room for 2"));
  REQUIRE(tape.size() == recorded);
  REQUIRE(xs[0].is_constant());
}

TEST_CASE("tg::inputs on a thread that has not recorded yet starts its tape",
          "[autodiff][tape][thread]") {
  std::vector<double> g;
  std::thread worker([&] {
    const std::array<double, 2> values{3.0, 4.0};
    const std::vector<Var> xs = tg::inputs(values);
    g = tg::gradient(xs[0] * xs[1], xs);
  });
  worker.join();
  REQUIRE(g == std::vector<double>{4.0, 3.0});
}

TEST_CASE("gradient with mismatched sizes throws ShapeError", "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const std::array<Var, 2> xs{Var(1.0), Var(2.0)};
  std::array<double, 3> out{};
  REQUIRE_THROWS_AS(tg::gradient(xs[0] * xs[1], xs, out), tg::ShapeError);
}

TEST_CASE("after gradient() stops early, grad() of a variable below the stop throws TapeError",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0, y = 3.0;
  const Var f = x * y;
  REQUIRE(tg::gradient(f, y)[0] == 2.0);
  REQUIRE(y.grad() == 2.0);
  REQUIRE_THAT(tape_error_message([&] { (void)x.grad(); }), Catch::Contains("stopped"));
  f.backward();
  REQUIRE(x.grad() == 3.0);
}

// ---- No-grad ------------------------------------------------------------------------------------

TEST_CASE("NoGrad computes values, records nothing, and its results are constants",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0;
  const std::size_t recorded = tape.size();
  Var y;
  {
    tg::NoGrad outer;
    { tg::NoGrad inner; }
    REQUIRE_FALSE(tape.recording());
    y = tg::exp(x) * x + 1.0;
  }
  REQUIRE(tape.recording());
  REQUIRE(tape.size() == recorded);
  REQUIRE(y.is_constant());
  REQUIRE(y.value() == std::exp(2.0) * 2.0 + 1.0);
  const Var f = y * x;
  f.backward();
  REQUIRE(x.grad() == y.value());
  REQUIRE(y.grad() == 0.0);
  REQUIRE_THROWS_AS(y.backward(), tg::TapeError);
}

TEST_CASE("comparing a Var with a plain number records nothing", "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0;
  const std::size_t recorded = tape.size();
  REQUIRE(x > 0.0);
  REQUIRE(0.0 < x);
  REQUIRE(x == 2.0);
  REQUIRE(2.0 == x);
  REQUIRE(x != 3.0);
  REQUIRE(x <= 2.0);
  REQUIRE_FALSE(x < 1.5);
  REQUIRE(tape.size() == recorded);
}

TEST_CASE("a Var prints as its value, with fmt's format specs or a stream's flags, recording nothing",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.5;
  const Var y = x * 3.0;
  const std::size_t recorded = tape.size();
  REQUIRE(fmt::format("{}", y) == "7.5");
  REQUIRE(fmt::format("{:.3f} {:>6}", y, x) == "7.500    2.5");
  REQUIRE(fmt::format("{}", Var::constant(-0.25)) == "-0.25");
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << y << ' ' << x;
  REQUIRE(os.str() == "7.50 2.50");
  REQUIRE(tape.size() == recorded);
}

// ---- Misuse -------------------------------------------------------------------------------------

TEST_CASE("a Var used after its tape was reset throws TapeError, never reads garbage",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0;
  const Var f = x * x;
  f.backward();
  tape.reset();
  const Var fresh = 1.0;
  REQUIRE_THAT(tape_error_message([&] { (void)x.grad(); }),
               Catch::StartsWith("grad:") && Catch::Contains("reset"));
  REQUIRE_THAT(tape_error_message([&] { (void)(x * fresh); }), Catch::StartsWith("mul:"));
  REQUIRE_THAT(tape_error_message([&] { f.backward(); }), Catch::StartsWith("backward:"));
  REQUIRE_THAT(tape_error_message([&] { (void)tg::gradient(fresh * 2.0, x); }),
               Catch::StartsWith("gradient (input):"));
}

TEST_CASE("under NoGrad a stale, foreign or moved-from Var throws as it does when recording",
          "[autodiff][tape]") {
  Var foreign;
  std::thread([&] { foreign = Var(2.0) * 3.0; }).join();
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var stale = Var(2.0) * 3.0;
  tape.reset();
  Var moved_from = Var(1.0) * 2.0;  // fresh: a move hands its statement over
  const Var owner = std::move(moved_from);
  const Var x = 1.0;
  const std::size_t recorded = tape.size();
  tg::NoGrad no_grad;
  for (const Var& bad : {stale, foreign}) {
    REQUIRE_THAT(tape_error_message([&] { (void)tg::exp(bad); }), Catch::StartsWith("exp:"));
    REQUIRE_THAT(tape_error_message([&] { (void)(bad * x); }), Catch::StartsWith("mul:"));
    REQUIRE_THAT(tape_error_message([&] { (void)(x - bad); }), Catch::StartsWith("sub:"));
    REQUIRE_THAT(tape_error_message([&] { (void)(bad + 1.0); }), Catch::StartsWith("add:"));
    REQUIRE_THAT(tape_error_message([&] { (void)tg::max(bad, Var::constant(0.0)); }),
                 Catch::StartsWith("max:"));
    const std::array<Var, 2> xs{x, bad};
    REQUIRE_THAT(tape_error_message([&] { (void)tg::sum(xs); }), Catch::StartsWith("sum:"));
    REQUIRE_THAT(tape_error_message([&] { (void)tg::dot(xs, std::array{1.0, 2.0}); }),
                 Catch::StartsWith("dot:"));
  }
  REQUIRE_THAT(tape_error_message([&] { (void)(moved_from * 2.0); }),
               Catch::StartsWith("mul:") && Catch::Contains("moved from"));
  // Valid operands and constants still work, and nothing is recorded.
  REQUIRE((tg::exp(x) * owner + Var::constant(1.0)).value() == std::exp(1.0) * 2.0 + 1.0);
  REQUIRE(tg::sum(std::array{x, owner, Var::constant(4.0)}).value() == 7.0);
  REQUIRE(tape.size() == recorded);
}

TEST_CASE("a Var recorded on another thread's tape throws TapeError", "[autodiff][tape]") {
  Var foreign;
  std::thread([&] { foreign = Var(2.0) * 3.0; }).join();
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 1.0;
  REQUIRE_THAT(tape_error_message([&] { (void)(x + foreign); }),
               Catch::StartsWith("add:") && Catch::Contains("another tape or thread"));
  REQUIRE_THAT(tape_error_message([&] { (void)foreign.grad(); }), Catch::StartsWith("grad:"));
}

TEST_CASE("a sweep that throws halfway leaves no gradients to read", "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0;
  const Var z = 0.0;
  const Var a = x * x;
  const Var b = tg::sqrt(z);
  const Var c = b + a;
  c.backward();
  REQUIRE(x.grad() == 4.0);
  {
    tg::DetectAnomaly anomaly;  // sqrt's infinite derivative reaches z: an anomaly
    REQUIRE_THROWS_AS(c.backward(), tg::AnomalyError);
  }
  REQUIRE_THAT(tape_error_message([&] { (void)x.grad(); }),
               Catch::Contains("no backward sweep") && Catch::Contains("threw"));
  // A closure that throws does the same.
  const Var d = c * 3.0;
  tape.record_backward([](tg::Tape&) { throw std::runtime_error("closure failed"); });
  const Var e = d + 1.0;
  REQUIRE_THROWS_AS(e.backward(), std::runtime_error);
  REQUIRE_THROWS_AS(x.grad(), tg::TapeError);
  // A sweep that finishes makes them readable again.
  c.backward();
  REQUIRE(x.grad() == 4.0);
}

TEST_CASE("indices from outside the tape are checked: Tape::push, Var::recorded, add_adjoint",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0;
  const tg::Index next = static_cast<tg::Index>(tape.size());  // not recorded yet
  const std::size_t recorded = tape.size();
  REQUIRE_THROWS_WITH(tape.push(next, 1.0),
                      Catch::StartsWith("Tape::push: operand") && Catch::Contains("not a variable"));
  REQUIRE_THROWS_AS(tape.push(x.index(), 1.0, next + 5, 1.0), tg::ValueError);
  const std::array<tg::Index, 2> operands{x.index(), 1000};
  const std::array<double, 2> partials{1.0, 1.0};
  REQUIRE_THROWS_AS(tape.push(operands, partials), tg::ValueError);
  REQUIRE(tape.size() == recorded);  // nothing half-written

  REQUIRE_THROWS_WITH(Var::recorded(1.0, 1000, tape), Catch::StartsWith("Var::recorded:"));
  REQUIRE_THROWS_AS(Var::recorded(1.0, 0, tape), tg::ValueError);
  const tg::Index y = tape.push(x.index(), 3.0);
  const Var vy = Var::recorded(6.0, y, tape);  // valid: y = 3x
  REQUIRE(tg::gradient(vy * 2.0, x)[0] == 6.0);

  // A closure that adds to a variable above the sweep's output has no adjoint to add to.
  const tg::Index out = tape.push_input();
  tape.record_backward([out](tg::Tape& t) { t.add_adjoint(out + 5, t.adjoint(out)); });
  const Var f = Var::recorded(1.0, out, tape) * 2.0;
  REQUIRE_THROWS_WITH(f.backward(), Catch::StartsWith("add_adjoint:"));
}

TEST_CASE("tg::gradient of a constant output still checks its inputs", "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var stale = 1.0;
  tape.reset();
  const Var x = 2.0;
  REQUIRE(tg::gradient(Var::constant(3.0), x, Var::constant(1.0)) == std::array{0.0, 0.0});
  REQUIRE_THAT(tape_error_message([&] { (void)tg::gradient(Var::constant(3.0), x, stale); }),
               Catch::StartsWith("gradient (input):"));
}

TEST_CASE("grad() before any backward sweep throws TapeError", "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0;
  const Var f = x * 3.0;
  REQUIRE_THAT(tape_error_message([&] { (void)x.grad(); }), Catch::Contains("no backward sweep"));
  f.backward();
  REQUIRE(x.grad() == 3.0);
}

// ---- Anomaly mode -------------------------------------------------------------------------------

TEST_CASE("anomaly mode reports log(-1) in the forward pass, naming log",
          "[autodiff][tape][anomaly]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = -1.0;
  REQUIRE(std::isnan(tg::log(x).value()));  // without anomaly mode: NaN, as std::log
  tg::DetectAnomaly anomaly;
  REQUIRE_THROWS_AS(tg::log(x), tg::AnomalyError);
  REQUIRE_THROWS_WITH(tg::log(x), Catch::Contains("'log'") && Catch::Contains("forward"));
}

TEST_CASE("anomaly mode reports sqrt at 0 in the backward pass, naming sqrt",
          "[autodiff][tape][anomaly]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 0.0;
  tg::DetectAnomaly anomaly;
  const Var f = tg::sqrt(x) * 2.0;  // forward finite: sqrt(0) = 0
  REQUIRE(f.value() == 0.0);
  REQUIRE_THROWS_AS(f.backward(), tg::AnomalyError);
  REQUIRE_THROWS_WITH(f.backward(), Catch::Contains("'sqrt'") && Catch::Contains("backward"));
}

TEST_CASE("anomaly mode blames only the first primitive: a NaN input is not reported again",
          "[autodiff][tape][anomaly]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var y = tg::log(Var(-1.0));  // NaN, recorded outside anomaly mode
  tg::DetectAnomaly anomaly;
  REQUIRE(std::isnan(tg::exp(y).value()));
}

TEST_CASE("anomaly mode names every statement of a sum longer than one statement holds",
          "[autodiff][tape][anomaly]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const std::size_t n = tg::Tape::kMaxStatementOperands + 10;  // two chained statements
  std::vector<Var> xs;
  for (std::size_t k = 0; k < n; ++k) xs.emplace_back(0.0);
  std::vector<double> ws(n, 1.0);
  ws[5] = std::numeric_limits<double>::infinity();  // in the first statement; forward 0 * inf = NaN
  tg::DetectAnomaly anomaly;
  const Var f = tg::dot(xs, ws) * 1.0;
  REQUIRE(std::isnan(f.value()));  // an infinite weight is an input: no forward report
  REQUIRE_THROWS_WITH(f.backward(), Catch::Contains("'dot'") && Catch::Contains("backward"));
}

TEST_CASE("anomaly mode: sum and dot blame a non-finite value only when their inputs are finite",
          "[autodiff][tape][anomaly]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const double big = std::numeric_limits<double>::max();
  const double inf = std::numeric_limits<double>::infinity();
  const std::array<Var, 2> overflow{Var(big), Var(big)};
  const std::array<Var, 2> with_inf{Var(inf), Var(1.0)};
  tg::DetectAnomaly anomaly;
  REQUIRE_THROWS_WITH(tg::sum(overflow), Catch::Contains("'sum'") && Catch::Contains("forward"));
  REQUIRE_THROWS_WITH(tg::dot(std::array{Var(big), Var(2.0)}, std::array{2.0, 1.0}),
                      Catch::Contains("'dot'") && Catch::Contains("forward"));
  // An infinite input or weight came from elsewhere: not sum's or dot's doing.
  REQUIRE(std::isinf(tg::sum(with_inf).value()));
  REQUIRE(std::isinf(tg::dot(std::array{Var(1.0), Var(2.0)}, std::array{inf, 1.0}).value()));
  REQUIRE(tg::sum(std::array{Var(1.0), Var(2.0)}).value() == 3.0);
}

// ---- User primitives ----------------------------------------------------------------------------

namespace {
/// cube(a) = a^3.  d/da = 3 a^2.
struct Cube {
  static constexpr std::string_view name = "cube";
  double value(double a) const { return a * a * a; }
  double derivative(double a, double) const { return 3 * a * a; }
};

/// hypot(a, b) = sqrt(a^2 + b^2).  d/da = a / y, d/db = b / y.
struct Hypot {
  static constexpr std::string_view name = "hypot";
  double value(double a, double b) const { return std::hypot(a, b); }
  std::array<double, 2> derivatives(double a, double b, double y) const { return {a / y, b / y}; }
};
}  // namespace

TEST_CASE("a user primitive of one input, a rule struct recorded with tg::apply",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var x = 2.0;
  const Var f = tg::apply(Cube{}, x) * 2.0;
  REQUIRE(f.value() == 16.0);
  REQUIRE(tg::gradient(f, x)[0] == 24.0);
  tgtest::expect_ad(
      "cube", [](const Var& a) { return tg::apply(Cube{}, a); },
      [](double a) { return std::pow(a, 3.0); }, {.domain = {{-3, 3}}});
}

TEST_CASE("a user primitive of two inputs, a rule struct recorded with tg::apply",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Var a = 3.0, b = 4.0;
  const Var f = tg::apply(Hypot{}, a, b);
  REQUIRE(f.value() == 5.0);
  REQUIRE(tg::gradient(f, a, b) == std::array<double, 2>{3.0 / 5.0, 4.0 / 5.0});
  tgtest::expect_ad(
      "hypot", [](const Var& p, const Var& q) { return tg::apply(Hypot{}, p, q); },
      [](double p, double q) { return std::sqrt(p * p + q * q); },
      {.domain = {{0.5, 3}, {-3, -0.5}}, .value_rtol = 1e-15});
}

namespace {
// A primitive recorded as a backward closure: y = 3a. The closure adds 3 adjoint(y) to a.
Var triple(const Var& a, int& runs) {
  tg::Tape& t = tg::active_tape();
  const tg::Index out = t.push_input();
  t.record_backward([from = a.index(), out, &runs](tg::Tape& tape) {
    ++runs;
    tape.add_adjoint(from, 3.0 * tape.adjoint(out));
  });
  return Var::recorded(3.0 * a.value(), out, t);
}
}  // namespace

TEST_CASE("record_backward closures run interleaved with statements, in reverse order",
          "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  int runs = 0;
  const Var x = 2.0;
  const Var a = x * x;                // 4
  const Var c = triple(a, runs);      // 12: its closure must wait for the adjoint from c * x below
  const Var d = c * x + a;            // 3x^3 + x^2 = 28
  const Var f = d * triple(d, runs);  // 3 d^2: df/dx = 6 d (9x^2 + 2x) = 168 * 40
  REQUIRE(f.value() == 2352.0);
  f.backward();
  REQUIRE(x.grad() == 6720.0);
  REQUIRE(runs == 2);
  REQUIRE(tg::gradient(f, x)[0] == 6720.0);
  REQUIRE(runs == 4);
}

TEST_CASE("a closure's captured state is destroyed when the tape is reset", "[autodiff][tape]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  const auto state = std::make_shared<int>(0);
  tape.record_backward([state](tg::Tape&) { ++*state; });
  REQUIRE(state.use_count() == 2);
  tape.reset();
  REQUIRE(state.use_count() == 1);
}

// ---- One tape per thread ------------------------------------------------------------------------

namespace {
// Differentiates f on this thread's own tape `rounds` times at moving points; returns how many
// gradients differ from the hand-derived ones.
template <class F, class DF>
int differentiate_many(F f, DF df, std::atomic<int>& ready, int rounds) {
  ready.fetch_add(1);
  while (ready.load() < 2) std::this_thread::yield();  // start together
  int mismatches = 0;
  for (int i = 0; i < rounds; ++i) {
    const double xv = 0.5 + 1e-3 * i, yv = 1.5 - 1e-3 * i;
    const Var x = xv, y = yv;
    if (tg::gradient(f(x, y), x, y) != df(xv, yv)) ++mismatches;
    tg::active_tape().reset();
  }
  return mismatches;
}
}  // namespace

TEST_CASE("two threads differentiating different functions at once both get exact gradients",
          "[autodiff][tape][thread]") {
  using Pair = std::array<double, 2>;
  std::atomic<int> ready{0};
  constexpr int kRounds = 20000;
  int bad_a = -1, bad_b = -1;
  std::thread a([&] {
    bad_a = differentiate_many([](const Var& x, const Var& y) { return x * x * y; },
                               [](double x, double y) {
                                 return Pair{2 * x * y, x * x};
                               },
                               ready, kRounds);
  });
  std::thread b([&] {
    bad_b =
        differentiate_many([](const Var& x, const Var& y) { return tg::sin(x) * y + tg::exp(y); },
                           [](double x, double y) {
                             return Pair{y * std::cos(x), std::sin(x) + std::exp(y)};
                           },
                           ready, kRounds);
  });
  a.join();
  b.join();
  REQUIRE(bad_a == 0);
  REQUIRE(bad_b == 0);
}

// expect_ad: the one test helper every scalar primitive goes through (after Stan's expect_ad in
// test/unit/math/test_ad.hpp). Given a primitive as a tg::Var function and a plain-double
// reference written with std:: math, it checks
//
//   1. the value against the reference at `points` seeded random points of the domain,
//   2. the reverse-mode gradient against central finite differences (tg::gradcheck) at the same
//      points, which are kept away from kinks (no finite-difference step may cross one),
//   3. the exact subgradient at each listed kink (compared with ==, no tolerance),
//   4. bad input: at each `edges` point (outside the domain) the value is the reference's, NaN and
//      infinities included; a NaN in any input gives NaN exactly when the reference does,
//   5. misuse: an operand from a reset recording or from another tape throws tg::TapeError whose
//      message starts with the primitive's name; under tg::NoGrad, and with constant operands, the
//      value is computed and nothing is recorded.
//
// A per-primitive test is then one call:
//
//     tgtest::expect_ad("exp", [](const Var& x) { return tg::exp(x); },
//                       [](double x) { return std::exp(x); }, {.domain = {{-5, 5}}});
//
// The Var function and the reference take one or two scalars, or a span of n of them (sum, dot).
#pragma once

#include <autodiff/gradcheck.hpp>
#include <autodiff/var.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace tgtest {

/// Where random points are drawn for one input: [lo, hi).
struct Interval {
  double lo;
  double hi;
};

/// At point `at`, the gradient must be exactly `grad`.
struct Subgradient {
  std::vector<double> at;
  std::vector<double> grad;
};

struct AdCase {
  /// One interval per input; their number is the primitive's arity.
  std::vector<Interval> domain;
  /// Exact subgradients at kinks. For a one-input primitive, random points also keep at least
  /// `kink_margin` away from every `at`.
  std::vector<Subgradient> kinks = {};
  /// More points to keep away from, for kinks that are not isolated points (max: a == b).
  std::function<bool(std::span<const double>)> near_kink = {};
  /// Points outside the domain (poles, domain errors, overflow) where the value must equal the
  /// reference's exactly: the same NaN, the same infinity.
  std::vector<std::vector<double>> edges = {};
  int points = 100;
  double kink_margin = 1e-3;
  double value_rtol = 1e-13;
  tg::GradcheckOptions gradcheck = {};
};

using VarFunction = std::function<tg::Var(std::span<const tg::Var>)>;
using RefFunction = std::function<double(std::span<const double>)>;

/// The helper itself, over functions of a span of inputs. `name` is the primitive's name as
/// tapegrad spells it in messages ("mul", "relu", ...).
void expect_ad_span(std::string_view name, const VarFunction& f, const RefFunction& ref,
                    const AdCase& c);

/// expect_ad for a function of one Var, two Vars, or a span of Vars, with the matching reference.
template <class F, class R>
void expect_ad(std::string_view name, F f, R ref, const AdCase& c) {
  if constexpr (std::is_invocable_r_v<tg::Var, F, const tg::Var&>) {
    expect_ad_span(
        name, [f](std::span<const tg::Var> x) { return f(x[0]); },
        [ref](std::span<const double> x) { return ref(x[0]); }, c);
  } else if constexpr (std::is_invocable_r_v<tg::Var, F, const tg::Var&, const tg::Var&>) {
    expect_ad_span(
        name, [f](std::span<const tg::Var> x) { return f(x[0], x[1]); },
        [ref](std::span<const double> x) { return ref(x[0], x[1]); }, c);
  } else {
    expect_ad_span(name, VarFunction(f), RefFunction(ref), c);
  }
}

/// The message of the tg::TapeError that `action` throws; "" if it throws nothing, and the test
/// fails if it throws anything else.
std::string tape_error_message(const std::function<void()>& action);

/// A seed derived from a name, so that every primitive gets its own reproducible points.
std::uint64_t seed_for(std::string_view name);

}  // namespace tgtest

// tg::gradcheck: reverse-mode gradients against central finite differences, in double, and aware
// of kinks. Where a finite-difference step would cross a kink of a non-smooth primitive (found by
// comparing which side of every kink the inputs were on at x - h, x and x + h), the derivative does
// not exist as a limit; the check then asks that the AD value lie between the one-sided difference
// quotients, instead of failing.
#pragma once

#include <autodiff/var.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace tg {

struct GradcheckOptions {
  double step = 1e-6;  ///< finite-difference step, relative: h = step * max(1, |x_i|)
  double rtol = 1e-5;  ///< relative tolerance
  double atol = 1e-7;  ///< absolute tolerance
};

/// The comparison for one input.
struct GradcheckEntry {
  std::size_t input = 0;
  double x = 0;      ///< where
  double ad = 0;     ///< reverse-mode derivative
  double fd = 0;     ///< central difference (f(x+h) - f(x-h)) / 2h
  double left = 0;   ///< (f(x) - f(x-h)) / h
  double right = 0;  ///< (f(x+h) - f(x)) / h
  bool kink = false; ///< the step crossed or touched a kink: checked against [left, right]
  bool ok = false;
};

struct GradcheckReport {
  std::vector<GradcheckEntry> entries;

  bool ok() const noexcept;
  explicit operator bool() const noexcept { return ok(); }
  /// The entries that disagree.
  std::vector<GradcheckEntry> failures() const;
  /// One line per disagreeing input with both values ("all N inputs agree" when none).
  std::string summary() const;
};

/// A scalar function of n inputs, written over tg::Var.
using ScalarFunction = std::function<Var(std::span<const Var>)>;

/// Checks f's reverse-mode gradient at x. f is recorded on a private tape, so the caller's active
/// tape is left alone. Throws tg::ValueError for a non-finite x, a step <= 0 or a negative tolerance.
GradcheckReport gradcheck(const ScalarFunction& f, std::span<const double> x,
                          const GradcheckOptions& options = {});

namespace detail {
/// What the finite-difference side needs from one evaluation: the value and the branch signature.
struct Probe {
  double value;
  std::uint64_t branches;
};
/// The comparison itself, shared by the scalar and the tensor front ends: `ad` is the reverse-mode
/// gradient at x, `eval` evaluates f (without recording) at a point.
GradcheckReport gradcheck_core(std::span<const double> x, std::span<const double> ad,
                               const std::function<Probe(std::span<const double>)>& eval,
                               const GradcheckOptions& options);
}  // namespace detail

}  // namespace tg

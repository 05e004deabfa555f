// The primitives of tapegrad, one rule each, read top to bottom like a table of derivatives.
//
// A rule is a small struct: `value` computes the primitive, `derivative` (one input) or
// `derivatives` (two inputs) gives the local partial derivatives from the input(s) x and the value
// y. Both are templates on the element type, so the scalar path (tg::Var, double) and the tensor
// path (float and double elements) run the very same formula. A rule with a kink also names its
// tg::Kink, says which side of the kink an input is on (`side`: -1, 0 at the kink, +1; clamp has
// more sides), and carries the subgradient to use at the kink, resolved when the rule is made.
//
// User-defined primitives are rules of the same form, recorded with tg::apply (see var.hpp and
// docs/guide.md).
//
// The tensor path runs these formulas in loops over whole arrays, so they are written to vectorise:
// exp, expm1 and tanh come from vmath.hpp (branch-free float versions; std:: for double), and the
// piecewise derivatives of the non-smooth rules are chains of selects, not branches.
#pragma once

#include <autodiff/subgradient.hpp>
#include <autodiff/vmath.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <string_view>

namespace tg {

// ---- Arithmetic -----------------------------------------------------------------------------

/// a + b.  d/da = 1, d/db = 1.
struct Add {
  static constexpr std::string_view name = "add";
  template <class T> T value(T a, T b) const { return a + b; }
  template <class T> std::array<T, 2> derivatives(T, T, T) const { return {T(1), T(1)}; }
};

/// a - b.  d/da = 1, d/db = -1.
struct Sub {
  static constexpr std::string_view name = "sub";
  template <class T> T value(T a, T b) const { return a - b; }
  template <class T> std::array<T, 2> derivatives(T, T, T) const { return {T(1), T(-1)}; }
};

/// a * b.  d/da = b, d/db = a.
struct Mul {
  static constexpr std::string_view name = "mul";
  template <class T> T value(T a, T b) const { return a * b; }
  template <class T> std::array<T, 2> derivatives(T a, T b, T) const { return {b, a}; }
};

/// a / b.  d/da = 1/b, d/db = -a/b^2 = -y/b.  b = 0 gives inf/NaN, as in IEEE arithmetic.
struct Div {
  static constexpr std::string_view name = "div";
  template <class T> T value(T a, T b) const { return a / b; }
  template <class T> std::array<T, 2> derivatives(T, T b, T y) const { return {T(1) / b, -y / b}; }
};

/// -a.  d/da = -1.
struct Neg {
  static constexpr std::string_view name = "neg";
  template <class T> T value(T a) const { return -a; }
  template <class T> T derivative(T, T) const { return T(-1); }
};

// ---- Exponentials, logarithms, powers -------------------------------------------------------

/// exp(a).  d/da = exp(a) = y.
struct Exp {
  static constexpr std::string_view name = "exp";
  template <class T> T value(T a) const { return math::exp(a); }
  template <class T> T derivative(T, T y) const { return y; }
};

/// exp(a) - 1, accurate near 0.  d/da = exp(a) = y + 1.
struct Expm1 {
  static constexpr std::string_view name = "expm1";
  template <class T> T value(T a) const { return math::expm1(a); }
  template <class T> T derivative(T, T y) const { return y + T(1); }
};

/// log(a).  d/da = 1/a.  a < 0 gives NaN, a = 0 gives -inf (std::log).
struct Log {
  static constexpr std::string_view name = "log";
  template <class T> T value(T a) const { return std::log(a); }
  template <class T> T derivative(T a, T) const { return T(1) / a; }
};

/// log(1 + a), accurate near 0.  d/da = 1/(1 + a).
struct Log1p {
  static constexpr std::string_view name = "log1p";
  template <class T> T value(T a) const { return std::log1p(a); }
  template <class T> T derivative(T a, T) const { return T(1) / (T(1) + a); }
};

/// sqrt(a).  d/da = 1/(2 sqrt(a)) = 0.5/y; +inf at a = 0, NaN for a < 0.
struct Sqrt {
  static constexpr std::string_view name = "sqrt";
  template <class T> T value(T a) const { return std::sqrt(a); }
  template <class T> T derivative(T, T y) const { return T(0.5) / y; }
};

/// pow(a, b), both recorded.  d/da = b a^(b-1) (0 when b = 0); d/db = a^b log(a) (0 when a = 0 and
/// b >= 0, where the limit of a^b log(a) is 0, as in PyTorch).
struct Pow {
  static constexpr std::string_view name = "pow";
  template <class T> T value(T a, T b) const { return std::pow(a, b); }
  template <class T> std::array<T, 2> derivatives(T a, T b, T y) const {
    const T da = b == T(0) ? T(0) : b * std::pow(a, b - T(1));
    const T db = (a == T(0) && b >= T(0)) ? T(0) : y * std::log(a);
    return {da, db};
  }
};

/// pow(a, p) with a constant exponent p.  d/da = p a^(p-1) (0 when p = 0).
struct PowScalar {
  static constexpr std::string_view name = "pow";
  double p;
  template <class T> T value(T a) const { return std::pow(a, T(p)); }
  template <class T> T derivative(T a, T) const {
    return p == 0.0 ? T(0) : T(p) * std::pow(a, T(p - 1.0));
  }
};

/// pow(c, b) with a constant base c.  d/db = c^b log(c) (0 when c = 0, for b >= 0).
struct ScalarPow {
  static constexpr std::string_view name = "pow";
  double c;
  template <class T> T value(T b) const { return std::pow(T(c), b); }
  template <class T> T derivative(T b, T y) const {
    return (c == 0.0 && b >= T(0)) ? T(0) : y * T(std::log(c));
  }
};

// ---- Trigonometric and hyperbolic -----------------------------------------------------------

/// sin(a).  d/da = cos(a).
struct Sin {
  static constexpr std::string_view name = "sin";
  template <class T> T value(T a) const { return std::sin(a); }
  template <class T> T derivative(T a, T) const { return std::cos(a); }
};

/// cos(a).  d/da = -sin(a).
struct Cos {
  static constexpr std::string_view name = "cos";
  template <class T> T value(T a) const { return std::cos(a); }
  template <class T> T derivative(T a, T) const { return -std::sin(a); }
};

/// tan(a).  d/da = 1 + tan(a)^2 = 1 + y^2.
struct Tan {
  static constexpr std::string_view name = "tan";
  template <class T> T value(T a) const { return std::tan(a); }
  template <class T> T derivative(T, T y) const { return T(1) + y * y; }
};

/// tanh(a).  d/da = 1 - tanh(a)^2 = 1 - y^2.
struct Tanh {
  static constexpr std::string_view name = "tanh";
  template <class T> T value(T a) const { return math::tanh(a); }
  template <class T> T derivative(T, T y) const { return T(1) - y * y; }
};

// ---- Smooth activations ---------------------------------------------------------------------

/// sigmoid(a) = 1 / (1 + exp(-a)); exact at both tails (exp(-a) = inf gives 0).
/// d/da = y (1 - y).
struct Sigmoid {
  static constexpr std::string_view name = "sigmoid";
  template <class T> T value(T a) const { return T(1) / (T(1) + math::exp(-a)); }
  template <class T> T derivative(T, T y) const { return y * (T(1) - y); }
};

/// softplus(a) = log(1 + exp(a)), computed as max(a, 0) + log1p(exp(-|a|)) so that it neither
/// overflows nor loses the small tail.  d/da = sigmoid(a).
struct Softplus {
  static constexpr std::string_view name = "softplus";
  template <class T> T value(T a) const {
    return (a > T(0) ? a : T(0)) + std::log1p(std::exp(-std::abs(a)));
  }
  template <class T> T derivative(T a, T) const { return T(1) / (T(1) + std::exp(-a)); }
};

/// gelu(a) = a Phi(a) = a/2 (1 + erf(a / sqrt 2)), the exact (erf) form, computed as
/// a/2 erfc(-a / sqrt 2): for a << 0, 1 + erf cancels and would lose the relative accuracy.
/// d/da = Phi(a) + a phi(a), phi(a) = exp(-a^2/2) / sqrt(2 pi).
struct Gelu {
  static constexpr std::string_view name = "gelu";
  template <class T> T value(T a) const {
    return T(0.5) * a * std::erfc(-a * T(std::numbers::sqrt2 / 2));
  }
  template <class T> T derivative(T a, T) const {
    const T cdf = T(0.5) * std::erfc(-a * T(std::numbers::sqrt2 / 2));
    const T pdf = std::exp(T(-0.5) * a * a) * T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
    return cdf + a * pdf;
  }
};

// ---- Non-smooth primitives --------------------------------------------------------------------
// Each states its derivative piecewise, the kink included, and its default at the kink (PyTorch's).
// `at_zero` / `at_tie` / `at_bound` hold the value this rule uses there, already resolved from the
// call, the thread's tg::SubgradientScope, or the default (see subgradient.hpp). A NaN input gives
// a NaN value and a NaN derivative.

namespace detail {
template <class T> constexpr T nan() { return std::numeric_limits<T>::quiet_NaN(); }
template <class T> constexpr int sign_side(T a) { return (a > T(0)) - (a < T(0)); }
/// `d`, or a itself when a is NaN (so a NaN input gives a NaN derivative).
template <class T> T nan_or(T a, T d) { return math::select(a != a, a, d); }
}  // namespace detail

/// Per-call options of relu: the derivative to use at a = 0 (default: the scope's, else 0).
struct ReluOptions {
  std::optional<double> at_zero{};
};

/// relu(a) = max(0, a).
/// d/da = 1 for a > 0;  0 for a < 0;  at_zero for a = 0 (default 0, as PyTorch, JAX, TensorFlow).
struct Relu {
  static constexpr std::string_view name = "relu";
  static constexpr Kink kink = Kink::relu;
  double at_zero = 0.0;

  static Relu make(const ReluOptions& o = {}) {
    return {resolve_kink_value(kink, o.at_zero, default_kink_value(kink))};
  }
  template <class T> T value(T a) const { return a < T(0) ? T(0) : a; }
  template <class T> T derivative(T a, T) const {
    const T d = math::select(a > T(0), T(1), T(0));
    return detail::nan_or(a, math::select(a == T(0), T(at_zero), d));
  }
  template <class T> int side(T a) const { return detail::sign_side(a); }
  template <class T> bool at_kink(T a) const { return a == T(0); }
};

/// Per-call options of leaky_relu: the negative slope and the derivative to use at a = 0.
struct LeakyReluOptions {
  double scale = 0.01;
  std::optional<double> at_zero{};
};

/// leaky_relu(a) = a for a >= 0;  scale * a for a < 0.
/// d/da = 1 for a > 0;  scale for a < 0;  at_zero for a = 0 (default scale, as PyTorch and
/// TensorFlow; JAX takes 1).
struct LeakyRelu {
  static constexpr std::string_view name = "leaky_relu";
  static constexpr Kink kink = Kink::leaky_relu;
  double scale = 0.01;
  double at_zero = 0.01;

  static LeakyRelu make(const LeakyReluOptions& o = {}) {
    check_kink_value(o.scale, "leaky_relu: scale");
    return {o.scale, resolve_kink_value(kink, o.at_zero, default_kink_value(kink, o.scale))};
  }
  template <class T> T value(T a) const { return math::select(a < T(0), T(scale) * a, a); }
  template <class T> T derivative(T a, T) const {
    const T d = math::select(a > T(0), T(1), T(scale));
    return detail::nan_or(a, math::select(a == T(0), T(at_zero), d));
  }
  template <class T> int side(T a) const { return detail::sign_side(a); }
  template <class T> bool at_kink(T a) const { return a == T(0); }
};

/// Per-call options of elu: alpha and the derivative to use at a = 0.
struct EluOptions {
  double alpha = 1.0;
  std::optional<double> at_zero{};
};

/// elu(a) = a for a > 0;  alpha (exp(a) - 1) for a <= 0.
/// d/da = 1 for a > 0;  alpha exp(a) = y + alpha for a < 0;  at_zero for a = 0 (default alpha, the
/// left limit, as PyTorch and JAX; TensorFlow takes 1, the right limit).
struct Elu {
  static constexpr std::string_view name = "elu";
  static constexpr Kink kink = Kink::elu;
  double alpha = 1.0;
  double at_zero = 1.0;

  static Elu make(const EluOptions& o = {}) {
    check_kink_value(o.alpha, "elu: alpha");
    return {o.alpha, resolve_kink_value(kink, o.at_zero, default_kink_value(kink, o.alpha))};
  }
  template <class T> T value(T a) const {
    return math::select(a > T(0), a, T(alpha) * math::expm1(a));
  }
  template <class T> T derivative(T a, T y) const {
    const T d = math::select(a > T(0), T(1), y + T(alpha));
    return detail::nan_or(a, math::select(a == T(0), T(at_zero), d));
  }
  template <class T> int side(T a) const { return detail::sign_side(a); }
  template <class T> bool at_kink(T a) const { return a == T(0); }
};

/// Per-call options of abs: the derivative to use at a = 0.
struct AbsOptions {
  std::optional<double> at_zero{};
};

/// abs(a) = |a|.
/// d/da = 1 for a > 0;  -1 for a < 0;  at_zero for a = 0 (default 0 = sign(0), as PyTorch and
/// TensorFlow; JAX takes 1, its abs JVP being select(x >= 0, g, -g)).
struct Abs {
  static constexpr std::string_view name = "abs";
  static constexpr Kink kink = Kink::abs;
  double at_zero = 0.0;

  static Abs make(const AbsOptions& o = {}) {
    return {resolve_kink_value(kink, o.at_zero, default_kink_value(kink))};
  }
  template <class T> T value(T a) const { return std::abs(a); }
  template <class T> T derivative(T a, T) const {
    const T d = math::select(a > T(0), T(1), T(-1));
    return detail::nan_or(a, math::select(a == T(0), T(at_zero), d));
  }
  template <class T> int side(T a) const { return detail::sign_side(a); }
  template <class T> bool at_kink(T a) const { return a == T(0); }
};

/// Per-call options of max and min: the share of the gradient that goes to the first argument when
/// both are equal (the second gets 1 - at_tie).
struct TieOptions {
  std::optional<double> at_tie{};
};

/// max(a, b) (NaN if either is NaN).
/// d/da, d/db = 1, 0 for a > b;  0, 1 for a < b;  at_tie, 1 - at_tie for a = b (default 1/2, as
/// PyTorch's maximum and JAX; TensorFlow gives the whole gradient to a).
struct Max {
  static constexpr std::string_view name = "max";
  static constexpr Kink kink = Kink::max;
  double at_tie = 0.5;

  static Max make(const TieOptions& o = {}) {
    return {resolve_kink_value(kink, o.at_tie, default_kink_value(kink))};
  }
  template <class T> T value(T a, T b) const {
    return detail::nan_or(b, detail::nan_or(a, math::select(b > a, b, a)));
  }
  template <class T> std::array<T, 2> derivatives(T a, T b, T) const {
    const T da = math::select(a == b, T(at_tie), math::select(a > b, T(1), T(0)));
    const T db = math::select(a == b, T(1) - T(at_tie), math::select(b > a, T(1), T(0)));
    return {detail::nan_or(b, detail::nan_or(a, da)), detail::nan_or(b, detail::nan_or(a, db))};
  }
  template <class T> int side(T a, T b) const { return detail::sign_side(a - b); }
  template <class T> bool at_kink(T a, T b) const { return a == b; }
};

/// min(a, b) (NaN if either is NaN).
/// d/da, d/db = 1, 0 for a < b;  0, 1 for a > b;  at_tie, 1 - at_tie for a = b (default 1/2).
struct Min {
  static constexpr std::string_view name = "min";
  static constexpr Kink kink = Kink::min;
  double at_tie = 0.5;

  static Min make(const TieOptions& o = {}) {
    return {resolve_kink_value(kink, o.at_tie, default_kink_value(kink))};
  }
  template <class T> T value(T a, T b) const {
    return detail::nan_or(b, detail::nan_or(a, math::select(b < a, b, a)));
  }
  template <class T> std::array<T, 2> derivatives(T a, T b, T) const {
    const T da = math::select(a == b, T(at_tie), math::select(a < b, T(1), T(0)));
    const T db = math::select(a == b, T(1) - T(at_tie), math::select(b < a, T(1), T(0)));
    return {detail::nan_or(b, detail::nan_or(a, da)), detail::nan_or(b, detail::nan_or(a, db))};
  }
  template <class T> int side(T a, T b) const { return detail::sign_side(b - a); }
  template <class T> bool at_kink(T a, T b) const { return a == b; }
};

/// Per-call options of clamp: the derivative to use when the input equals a bound.
struct ClampOptions {
  std::optional<double> at_bound{};
};

/// clamp(a, lo, hi) = min(max(a, lo), hi), lo <= hi.
/// d/da = 1 for lo < a < hi;  0 for a < lo or a > hi;  at_bound for a = lo or a = hi (default 1:
/// the gradient passes at the bounds, as PyTorch and TensorFlow's clip_by_value).
struct Clamp {
  static constexpr std::string_view name = "clamp";
  static constexpr Kink kink = Kink::clamp;
  double lo = 0.0;
  double hi = 0.0;
  double at_bound = 1.0;

  /// Throws tg::ValueError unless lo <= hi (both not NaN).
  static Clamp make(double lo, double hi, const ClampOptions& o = {});
  template <class T> T value(T a) const {
    return math::select(a < T(lo), T(lo), math::select(a > T(hi), T(hi), a));
  }
  template <class T> T derivative(T a, T) const {
    const T d = math::select(a > T(lo), math::select(a < T(hi), T(1), T(0)), T(0));
    const T at_hi = math::select(a == T(hi), T(at_bound), d);
    return detail::nan_or(a, math::select(a == T(lo), T(at_bound), at_hi));
  }
  /// Five sides: below, at lo, inside, at hi, above.
  template <class T> int side(T a) const {
    return a < T(lo) ? -2 : a == T(lo) ? -1 : a < T(hi) ? 0 : a == T(hi) ? 1 : 2;
  }
  template <class T> bool at_kink(T a) const { return a == T(lo) || a == T(hi); }
};

}  // namespace tg

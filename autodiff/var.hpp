// tg::Var: a double recorded on this thread's tape, and the scalar primitives over it.
//
//     tg::Var x = 1.5, y = -2.0;                    // inputs, recorded on the active tape
//     tg::Var f = tg::relu(x * y + 3.0) + tg::elu(y, 0.5) * tg::leaky_relu(x, 0.01);
//     auto [dx, dy] = tg::gradient(f, x, y);        // one reverse sweep
#pragma once

#include <autodiff/rules.hpp>
#include <autodiff/tape.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <span>
#include <vector>

namespace tg {

class Var {
 public:
  /// A constant zero: recorded nowhere, valid on every tape.
  constexpr Var() noexcept = default;
  /// A new independent variable (an input) on the active tape.
  Var(double value) : Var(value, active_tape()) {}  // NOLINT(google-explicit-constructor)
  /// A new independent variable on `tape`.
  Var(double value, Tape& tape) : value_(value), index_(tape.push_input()), epoch_(tape.epoch()) {}
  /// A constant: takes part in computations, never gets a gradient, valid on every tape.
  static constexpr Var constant(double value) noexcept { return Var(value, 0, 0); }
  /// A Var for a variable recorded on the active tape by a primitive (see tg::apply).
  static constexpr Var recorded(double value, Index index, std::uint32_t epoch) noexcept {
    return Var(value, index, epoch);
  }

  constexpr double value() const noexcept { return value_; }
  constexpr bool is_constant() const noexcept { return index_ == 0; }
  constexpr Index index() const noexcept { return index_; }
  constexpr std::uint32_t epoch() const noexcept { return epoch_; }

  /// Reverse sweep from this variable (seed 1) over the whole recording; then x.grad() reads
  /// d(this)/dx for every x recorded before it.
  void backward() const;
  /// d(output)/d(this) from the last sweep on the active tape. 0 for a constant. Throws
  /// tg::TapeError if this Var is stale or no sweep has run on its recording.
  double grad() const;

  Var& operator+=(const Var& b);
  Var& operator-=(const Var& b);
  Var& operator*=(const Var& b);
  Var& operator/=(const Var& b);

 private:
  constexpr Var(double value, Index index, std::uint32_t epoch) noexcept
      : value_(value), index_(index), epoch_(epoch) {}

  double value_ = 0.0;
  Index index_ = 0;
  std::uint32_t epoch_ = 0;
};
static_assert(sizeof(Var) == 16);

// ---- Recording primitives ---------------------------------------------------------------------

/// A rule for a primitive of one input: value(x) and derivative(x, y) (see rules.hpp).
template <class R>
concept UnaryRule = requires(const R& r, double x) {
  { R::name } -> std::convertible_to<std::string_view>;
  { r.value(x) } -> std::convertible_to<double>;
  { r.derivative(x, x) } -> std::convertible_to<double>;
};

/// A rule for a primitive of two inputs: value(x1, x2) and derivatives(x1, x2, y).
template <class R>
concept BinaryRule = requires(const R& r, double x) {
  { R::name } -> std::convertible_to<std::string_view>;
  { r.value(x, x) } -> std::convertible_to<double>;
  { r.derivatives(x, x, x) } -> std::convertible_to<std::array<double, 2>>;
};

/// A rule with a kink: names its tg::Kink, says which side of it an input is on.
template <class R>
concept KinkedRule = requires { { R::kink } -> std::convertible_to<Kink>; };

namespace detail {
template <class R, class... X>
void note_kink(Tape& t, const R& rule, X... x) {
  if constexpr (KinkedRule<R>) {
    t.note_branch(R::kink, rule.side(x...));
    if (rule.at_kink(x...)) [[unlikely]] t.note_kink(R::kink);
  }
}
}  // namespace detail

/// Records a primitive of one input: its value is rule.value(a), its partial derivative
/// rule.derivative(a, value). This is how every built-in scalar primitive is recorded, and how a
/// user records their own (see docs/guide.md, "Your own primitive").
template <UnaryRule R>
[[gnu::always_inline]] inline Var apply(const R& rule, const Var& a) {
  Tape& t = active_tape();
  const double x = a.value();
  const double y = rule.value(x);
  if (t.anomaly()) [[unlikely]] t.check_forward(R::name, y, {&x, 1});
  if (a.is_constant() || !t.recording()) {
    if constexpr (KinkedRule<R>) t.note_branch(R::kink, rule.side(x));
    return Var::constant(y);
  }
  t.check_epoch(a.epoch(), R::name);
  const Index i = t.push(a.index(), rule.derivative(x, y));
  detail::note_kink(t, rule, x);  // after the push: the kink event sits at statement i
  if (t.anomaly()) [[unlikely]] t.name_last_statement(R::name);
  return Var::recorded(y, i, t.epoch());
}

/// Records a primitive of two inputs: value rule.value(a, b), partials rule.derivatives(a, b, y).
/// A constant operand is not recorded.
template <BinaryRule R>
[[gnu::always_inline]] inline Var apply(const R& rule, const Var& a, const Var& b) {
  Tape& t = active_tape();
  const double x1 = a.value();
  const double x2 = b.value();
  const double y = rule.value(x1, x2);
  if (t.anomaly()) [[unlikely]] {
    const double in[2] = {x1, x2};
    t.check_forward(R::name, y, in);
  }
  const bool ca = a.is_constant();
  const bool cb = b.is_constant();
  if ((ca && cb) || !t.recording()) {
    if constexpr (KinkedRule<R>) t.note_branch(R::kink, rule.side(x1, x2));
    return Var::constant(y);
  }
  if (!ca) t.check_epoch(a.epoch(), R::name);
  if (!cb) t.check_epoch(b.epoch(), R::name);
  const std::array<double, 2> d = rule.derivatives(x1, x2, y);
  const Index i = ca   ? t.push(b.index(), d[1])
                  : cb ? t.push(a.index(), d[0])
                       : t.push(a.index(), d[0], b.index(), d[1]);
  detail::note_kink(t, rule, x1, x2);  // after the push: the kink event sits at statement i
  if (t.anomaly()) [[unlikely]] t.name_last_statement(R::name);
  return Var::recorded(y, i, t.epoch());
}

// ---- Arithmetic -------------------------------------------------------------------------------
// The functions below that record a primitive are [[gnu::always_inline]], like tg::apply: with
// apply inlined into them they are too big for GCC's heuristics in a translation unit with many
// primitives, which then calls each + or * out of line.

[[gnu::always_inline]] inline Var operator+(const Var& a, const Var& b) {
  return apply(Add{}, a, b);
}
[[gnu::always_inline]] inline Var operator+(const Var& a, double b) {
  return apply(Add{}, a, Var::constant(b));
}
[[gnu::always_inline]] inline Var operator+(double a, const Var& b) {
  return apply(Add{}, Var::constant(a), b);
}
[[gnu::always_inline]] inline Var operator-(const Var& a, const Var& b) {
  return apply(Sub{}, a, b);
}
[[gnu::always_inline]] inline Var operator-(const Var& a, double b) {
  return apply(Sub{}, a, Var::constant(b));
}
[[gnu::always_inline]] inline Var operator-(double a, const Var& b) {
  return apply(Sub{}, Var::constant(a), b);
}
[[gnu::always_inline]] inline Var operator*(const Var& a, const Var& b) {
  return apply(Mul{}, a, b);
}
[[gnu::always_inline]] inline Var operator*(const Var& a, double b) {
  return apply(Mul{}, a, Var::constant(b));
}
[[gnu::always_inline]] inline Var operator*(double a, const Var& b) {
  return apply(Mul{}, Var::constant(a), b);
}
[[gnu::always_inline]] inline Var operator/(const Var& a, const Var& b) {
  return apply(Div{}, a, b);
}
[[gnu::always_inline]] inline Var operator/(const Var& a, double b) {
  return apply(Div{}, a, Var::constant(b));
}
[[gnu::always_inline]] inline Var operator/(double a, const Var& b) {
  return apply(Div{}, Var::constant(a), b);
}
[[gnu::always_inline]] inline Var operator-(const Var& a) { return apply(Neg{}, a); }
inline Var operator+(const Var& a) { return a; }

[[gnu::always_inline]] inline Var& Var::operator+=(const Var& b) { return *this = *this + b; }
[[gnu::always_inline]] inline Var& Var::operator-=(const Var& b) { return *this = *this - b; }
[[gnu::always_inline]] inline Var& Var::operator*=(const Var& b) { return *this = *this * b; }
[[gnu::always_inline]] inline Var& Var::operator/=(const Var& b) { return *this = *this / b; }

// Comparisons look at values only (a program's branches are not differentiated).
inline bool operator==(const Var& a, const Var& b) noexcept { return a.value() == b.value(); }
inline auto operator<=>(const Var& a, const Var& b) noexcept { return a.value() <=> b.value(); }
// With a plain number: compares without turning the number into a recorded input.
inline bool operator==(const Var& a, double b) noexcept { return a.value() == b; }
inline auto operator<=>(const Var& a, double b) noexcept { return a.value() <=> b; }

// ---- Functions --------------------------------------------------------------------------------

[[gnu::always_inline]] inline Var exp(const Var& a) { return apply(Exp{}, a); }
[[gnu::always_inline]] inline Var expm1(const Var& a) { return apply(Expm1{}, a); }
[[gnu::always_inline]] inline Var log(const Var& a) { return apply(Log{}, a); }
[[gnu::always_inline]] inline Var log1p(const Var& a) { return apply(Log1p{}, a); }
[[gnu::always_inline]] inline Var sqrt(const Var& a) { return apply(Sqrt{}, a); }
[[gnu::always_inline]] inline Var pow(const Var& a, const Var& b) { return apply(Pow{}, a, b); }
[[gnu::always_inline]] inline Var pow(const Var& a, double p) { return apply(PowScalar{p}, a); }
[[gnu::always_inline]] inline Var pow(double c, const Var& b) { return apply(ScalarPow{c}, b); }
[[gnu::always_inline]] inline Var sin(const Var& a) { return apply(Sin{}, a); }
[[gnu::always_inline]] inline Var cos(const Var& a) { return apply(Cos{}, a); }
[[gnu::always_inline]] inline Var tan(const Var& a) { return apply(Tan{}, a); }
[[gnu::always_inline]] inline Var tanh(const Var& a) { return apply(Tanh{}, a); }
[[gnu::always_inline]] inline Var sigmoid(const Var& a) { return apply(Sigmoid{}, a); }
[[gnu::always_inline]] inline Var softplus(const Var& a) { return apply(Softplus{}, a); }
[[gnu::always_inline]] inline Var gelu(const Var& a) { return apply(Gelu{}, a); }

[[gnu::always_inline]] inline Var relu(const Var& a, const ReluOptions& o = {}) {
  // Away from the kink the rule never reads at_zero: skip resolving it (a thread-local lookup).
  return apply(!o.at_zero && a.value() != 0.0 ? Relu{} : Relu::make(o), a);
}
[[gnu::always_inline]] inline Var leaky_relu(const Var& a, const LeakyReluOptions& o = {}) {
  return apply(LeakyRelu::make(o), a);
}
[[gnu::always_inline]] inline Var leaky_relu(const Var& a, double scale) {
  return leaky_relu(a, LeakyReluOptions{scale, std::nullopt});
}
[[gnu::always_inline]] inline Var elu(const Var& a, const EluOptions& o = {}) {
  return apply(Elu::make(o), a);
}
[[gnu::always_inline]] inline Var elu(const Var& a, double alpha) {
  return elu(a, EluOptions{alpha, std::nullopt});
}
[[gnu::always_inline]] inline Var abs(const Var& a, const AbsOptions& o = {}) {
  return apply(Abs::make(o), a);
}
[[gnu::always_inline]] inline Var max(const Var& a, const Var& b, const TieOptions& o = {}) {
  return apply(Max::make(o), a, b);
}
[[gnu::always_inline]] inline Var max(const Var& a, double b, const TieOptions& o = {}) {
  return apply(Max::make(o), a, Var::constant(b));
}
[[gnu::always_inline]] inline Var max(double a, const Var& b, const TieOptions& o = {}) {
  return apply(Max::make(o), Var::constant(a), b);
}
[[gnu::always_inline]] inline Var min(const Var& a, const Var& b, const TieOptions& o = {}) {
  return apply(Min::make(o), a, b);
}
[[gnu::always_inline]] inline Var min(const Var& a, double b, const TieOptions& o = {}) {
  return apply(Min::make(o), a, Var::constant(b));
}
[[gnu::always_inline]] inline Var min(double a, const Var& b, const TieOptions& o = {}) {
  return apply(Min::make(o), Var::constant(a), b);
}
[[gnu::always_inline]] inline Var clamp(const Var& a, double lo, double hi,
                                         const ClampOptions& o = {}) {
  return apply(Clamp::make(lo, hi, o), a);
}

/// sum of xs as one statement (one operand each, partial 1).
Var sum(std::span<const Var> xs);
/// sum_i xs[i] * ws[i] with constant weights, as one statement. Throws tg::ShapeError if the sizes
/// differ.
Var dot(std::span<const Var> xs, std::span<const double> ws);

// ---- Gradients --------------------------------------------------------------------------------

/// d f / d x_i for each chosen input into `out`, from one reverse sweep that stops at the earliest
/// input. Inputs that f does not depend on, and constants, get 0. Allocates nothing once the tape
/// has grown. Throws tg::ShapeError if the sizes differ, tg::TapeError for a stale Var.
void gradient(const Var& f, std::span<const Var> xs, std::span<double> out);
/// The same, returned as a vector.
std::vector<double> gradient(const Var& f, std::span<const Var> xs);

/// d f / d x_i for each input, as a std::array: `auto [dx, dy] = tg::gradient(f, x, y);`
template <class... Vs>
  requires(std::same_as<std::remove_cvref_t<Vs>, Var> && ...)
std::array<double, sizeof...(Vs)> gradient(const Var& f, const Vs&... xs) {
  const std::array<Var, sizeof...(Vs)> inputs{xs...};
  std::array<double, sizeof...(Vs)> out{};
  gradient(f, std::span<const Var>(inputs), std::span<double>(out));
  return out;
}

/// Jacobian of several outputs with respect to several inputs: one reverse sweep per output over
/// the same recording. Row i is the gradient of outputs[i].
struct Jacobian {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> data;  ///< row-major
  double operator()(std::size_t i, std::size_t j) const { return data[i * cols + j]; }
};
Jacobian jacobian(std::span<const Var> outputs, std::span<const Var> inputs);

}  // namespace tg

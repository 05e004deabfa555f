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

class Var;
namespace detail {
template <class R> Var record(const R& rule, Var& a);
template <class R> Var record(const R& rule, Var& a, Var& b);
Var record_linear(std::string_view name, std::span<const Var> xs, std::span<const double> ws);
}  // namespace detail

/// A double recorded on a tape: its value, the index of the variable that holds it on the tape,
/// and the recording (epoch) it belongs to. A Var is a handle, cheap to copy; the tape owns the
/// record.
///
/// The result of a primitive is "fresh": the only handle to its statement. A primitive applied to a
/// fresh temporary recorded just before it is fused into that statement (docs/design.md, "Fused
/// statements"): `s + x * x` records one statement, not two, and so does `s += x * x` when s is
/// fresh. Copying a Var clears the flag on both sides, so a Var that anyone else can still use is
/// never fused into. Moving a fresh Var hands the flag over and leaves the moved-from Var empty:
/// recording with it afterwards throws tg::TapeError. Fusion changes how much is recorded, never a
/// value, and a gradient only by rounding. (Copying a fresh Var writes to it: like every recorded
/// Var, it belongs to the thread whose tape recorded it.)
class Var {
 public:
  /// A constant zero: recorded nowhere, valid on every tape.
  constexpr Var() noexcept = default;
  /// A new independent variable (an input) on the active tape.
  Var(double value) : Var(value, active_tape()) {}  // NOLINT(google-explicit-constructor)
  /// A new independent variable on `tape`.
  Var(double value, Tape& tape) : value_(value), index_(tape.push_input()), epoch_(tape.epoch()) {}
  constexpr Var(const Var& o) noexcept
      : value_(o.value_), index_(o.index_), epoch_(o.epoch_ & ~kFresh) {
    o.share();
  }
  constexpr Var& operator=(const Var& o) noexcept {
    value_ = o.value_;
    index_ = o.index_;
    epoch_ = o.epoch_ & ~kFresh;
    o.share();
    return *this;
  }
  constexpr Var(Var&& o) noexcept : value_(o.value_), index_(o.index_), epoch_(o.epoch_) {
    o.give_up();
  }
  constexpr Var& operator=(Var&& o) noexcept {
    value_ = o.value_;
    index_ = o.index_;
    epoch_ = o.epoch_;
    if (&o != this) o.give_up();
    return *this;
  }
  ~Var() = default;

  /// A constant: takes part in computations, never gets a gradient, valid on every tape.
  static constexpr Var constant(double value) noexcept { return Var(value, 0, 0); }
  /// A Var for variable `index` recorded on the active tape (by a primitive of your own, with
  /// Tape::push or a closure; see docs/guide.md). Not fresh: nothing is ever fused into it. Do not
  /// make one for the index of a Var that may still be fresh: that Var's statement may be rewritten.
  static constexpr Var recorded(double value, Index index, std::uint32_t epoch) noexcept {
    return Var(value, index, epoch);
  }

  constexpr double value() const noexcept { return value_; }
  constexpr bool is_constant() const noexcept { return index_ == 0; }
  constexpr Index index() const noexcept { return index_; }
  constexpr std::uint32_t epoch() const noexcept { return epoch_ & ~kFresh; }
  /// True for the uncopied result of a primitive (see above).
  constexpr bool fresh() const noexcept { return (epoch_ & kFresh) != 0; }

  /// Reverse sweep from this variable (seed 1) over the whole recording; then x.grad() reads
  /// d(this)/dx for every x recorded before it.
  void backward() const;
  /// d(output)/d(this) from the last sweep on the active tape. 0 for a constant. Throws
  /// tg::TapeError if this Var is stale or no sweep has run on its recording.
  double grad() const;

  Var& operator+=(Var b);
  Var& operator-=(Var b);
  Var& operator*=(Var b);
  Var& operator/=(Var b);
  // With a plain number: the number is a constant, not a new input.
  Var& operator+=(double b);
  Var& operator-=(double b);
  Var& operator*=(double b);
  Var& operator/=(double b);

 private:
  template <class R> friend Var detail::record(const R&, Var&);
  template <class R> friend Var detail::record(const R&, Var&, Var&);
  friend Var detail::record_linear(std::string_view, std::span<const Var>, std::span<const double>);

  static constexpr std::uint32_t kFresh = 0x8000'0000u;  // epochs are 31 bits (tape.cpp)
  static constexpr std::uint32_t kMovedFrom = Tape::kMovedFromEpoch;

  constexpr Var(double value, Index index, std::uint32_t epoch) noexcept
      : value_(value), index_(index), epoch_(epoch) {}
  static constexpr Var make_fresh(double value, Index index, std::uint32_t epoch) noexcept {
    return Var(value, index, epoch | kFresh);
  }
  // Only writes when the flag is set: a shared constant copied from several threads is only read.
  constexpr void share() const noexcept {
    if ((epoch_ & kFresh) != 0) epoch_ &= ~kFresh;
  }
  // After a move: a fresh Var's flag went to the new owner, so this one may no longer name the
  // statement (it may be rewritten); an epoch that no recording has makes every use throw.
  constexpr void give_up() noexcept {
    if ((epoch_ & kFresh) != 0) epoch_ = kMovedFrom;
  }

  double value_ = 0.0;
  Index index_ = 0;
  mutable std::uint32_t epoch_ = 0;  // top bit: fresh
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

namespace detail {
// A non-fresh Var with a's fields, made without touching a.
[[gnu::always_inline]] inline Var detached(const Var& a) noexcept {
  return Var::recorded(a.value(), a.index(), a.epoch());
}

// The recording itself. `a` and `b` belong to the caller, who took the operands by value: a fresh
// one is a temporary nobody else can see, and its statement may be rewritten in place. The hot path
// is the plain recording mode; anomaly mode and NoGrad go to record_slow, out of line.

// record_slow takes copies made from the fields (detail::detached), so that no operand's address
// escapes from the hot path: an accumulator like `s` in `s += x * x` stays in registers.
template <class R>
[[gnu::noinline]] Var record_slow(const R& rule, Var a) {
  Tape& t = active_tape();
  const double x = a.value();
  const double y = rule.value(x);
  if (t.anomaly()) t.check_forward(R::name, y, {&x, 1});
  if (a.is_constant() || !t.recording()) {
    if constexpr (KinkedRule<R>) t.note_branch(R::kink, rule.side(x));
    return Var::constant(y);
  }
  t.check_epoch(a.epoch(), R::name);
  const Index i = t.push(a.index(), rule.derivative(x, y));  // no fusion: one statement each
  detail::note_kink(t, rule, x);
  t.name_last_statement(R::name);
  return Var::recorded(y, i, t.epoch());  // never fused into: one statement per primitive here
}

template <class R>
[[gnu::noinline]] Var record_slow(const R& rule, Var a, Var b) {
  Tape& t = active_tape();
  const double x1 = a.value();
  const double x2 = b.value();
  const double y = rule.value(x1, x2);
  if (t.anomaly()) {
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
  const Index i = ca ? t.push(b.index(), d[1])
                  : cb ? t.push(a.index(), d[0])
                       : t.push(a.index(), d[0], b.index(), d[1]);
  detail::note_kink(t, rule, x1, x2);
  t.name_last_statement(R::name);
  return Var::recorded(y, i, t.epoch());
}

template <class R>
[[gnu::always_inline]] inline Var record(const R& rule, Var& a) {
  Tape& t = active_tape();
  if (!t.plain()) [[unlikely]] return record_slow(rule, detached(a));
  const double x = a.value();
  const double y = rule.value(x);
  if (a.is_constant()) {
    if constexpr (KinkedRule<R>) t.note_branch(R::kink, rule.side(x));
    return Var::constant(y);
  }
  t.check_epoch(a.epoch(), R::name);
  const double d = rule.derivative(x, y);
  const Index i = a.fresh() && t.can_fuse(a.index(), d) && t.fuse(d) ? t.top() : t.push(a.index(), d);
  detail::note_kink(t, rule, x);  // after the push: the kink event sits at statement i
  return Var::make_fresh(y, i, t.epoch());
}

template <class R>
[[gnu::always_inline]] inline Var record(const R& rule, Var& a, Var& b) {
  Tape& t = active_tape();
  if (!t.plain()) [[unlikely]] return record_slow(rule, detached(a), detached(b));
  const double x1 = a.value();
  const double x2 = b.value();
  const double y = rule.value(x1, x2);
  const bool ca = a.is_constant();
  const bool cb = b.is_constant();
  if (ca && cb) {
    if constexpr (KinkedRule<R>) t.note_branch(R::kink, rule.side(x1, x2));
    return Var::constant(y);
  }
  if (!ca && !cb) {
    t.check_epochs(a.epoch(), b.epoch(), R::name);
  } else {
    t.check_epoch(ca ? b.epoch() : a.epoch(), R::name);
  }
  const std::array<double, 2> d = rule.derivatives(x1, x2, y);
  // Fused into a fresh operand's statement if the tape allows it and the scaling is exact
  // (fuse and merge may decline), else a statement of its own.
  Index i;
  if (ca) {
    i = b.fresh() && t.can_fuse(b.index(), d[1]) && t.fuse(d[1]) ? t.top() : t.push(b.index(), d[1]);
  } else if (cb) {
    i = a.fresh() && t.can_fuse(a.index(), d[0]) && t.fuse(d[0]) ? t.top() : t.push(a.index(), d[0]);
  } else if (a.index() == b.index() && std::isfinite(d[0] + d[1])) {
    // The same variable on both sides (x * x): one operand with the two partials added.
    i = t.push(a.index(), d[0] + d[1]);
  } else if ((b.fresh() && a.fresh() && t.can_merge(a.index(), d[0], b.index(), d[1]) &&
              t.merge(a.index(), d[0], d[1])) ||
             (b.fresh() && t.can_fuse(b.index(), d[1], 1) && t.fuse(d[1], a.index(), d[0])) ||
             (a.fresh() && t.can_fuse(a.index(), d[0], 1) && t.fuse(d[0], b.index(), d[1]))) {
    i = t.top();
  } else {
    i = t.push(a.index(), d[0], b.index(), d[1]);
  }
  detail::note_kink(t, rule, x1, x2);  // after the push: the kink event sits at statement i
  return Var::make_fresh(y, i, t.epoch());
}
}  // namespace detail

/// Records a primitive of one input: its value is rule.value(a), its partial derivative
/// rule.derivative(a, value). This is how every built-in scalar primitive is recorded, and how a
/// user records their own (see docs/guide.md, "Your own primitive"). Applied to the fresh result of
/// the primitive recorded just before, it fuses into that statement (see tg::Var).
template <UnaryRule R>
[[gnu::always_inline]] inline Var apply(const R& rule, Var a) {
  return detail::record(rule, a);
}

/// Records a primitive of two inputs: value rule.value(a, b), partials rule.derivatives(a, b, y).
/// A constant operand is not recorded.
template <BinaryRule R>
[[gnu::always_inline]] inline Var apply(const R& rule, Var a, Var b) {
  return detail::record(rule, a, b);
}

// ---- Arithmetic -------------------------------------------------------------------------------
// Operands are taken by value, so that a temporary reaches detail::record still fresh (copy elision
// from a prvalue) and an lvalue arrives as a copy, never fused into. Everything that records is
// [[gnu::always_inline]], like tg::apply: with apply inlined into them these functions are too big
// for GCC's heuristics in a translation unit with many primitives, which then calls each + or * out
// of line.

#define TAPEGRAD_BINARY_OPERATOR(op, Rule)                                 \
  [[gnu::always_inline]] inline Var operator op(Var a, Var b) {            \
    return detail::record(Rule{}, a, b);                                   \
  }                                                                        \
  [[gnu::always_inline]] inline Var operator op(Var a, double b) {         \
    Var c = Var::constant(b);                                              \
    return detail::record(Rule{}, a, c);                                   \
  }                                                                        \
  [[gnu::always_inline]] inline Var operator op(double a, Var b) {         \
    Var c = Var::constant(a);                                              \
    return detail::record(Rule{}, c, b);                                   \
  }
TAPEGRAD_BINARY_OPERATOR(+, Add)
TAPEGRAD_BINARY_OPERATOR(-, Sub)
TAPEGRAD_BINARY_OPERATOR(*, Mul)
TAPEGRAD_BINARY_OPERATOR(/, Div)
#undef TAPEGRAD_BINARY_OPERATOR

[[gnu::always_inline]] inline Var operator-(Var a) { return detail::record(Neg{}, a); }
inline Var operator+(Var a) { return a; }

// `s += t` may fuse into s's own statement when s is fresh: s is overwritten with the result, so no
// one can see the statement it had.
[[gnu::always_inline]] inline Var& Var::operator+=(Var b) { return *this = detail::record(Add{}, *this, b); }
[[gnu::always_inline]] inline Var& Var::operator-=(Var b) { return *this = detail::record(Sub{}, *this, b); }
[[gnu::always_inline]] inline Var& Var::operator*=(Var b) { return *this = detail::record(Mul{}, *this, b); }
[[gnu::always_inline]] inline Var& Var::operator/=(Var b) { return *this = detail::record(Div{}, *this, b); }
#define TAPEGRAD_COMPOUND_WITH_NUMBER(op, Rule)                \
  [[gnu::always_inline]] inline Var& Var::operator op(double b) { \
    Var c = Var::constant(b);                                  \
    return *this = detail::record(Rule{}, *this, c);           \
  }
TAPEGRAD_COMPOUND_WITH_NUMBER(+=, Add)
TAPEGRAD_COMPOUND_WITH_NUMBER(-=, Sub)
TAPEGRAD_COMPOUND_WITH_NUMBER(*=, Mul)
TAPEGRAD_COMPOUND_WITH_NUMBER(/=, Div)
#undef TAPEGRAD_COMPOUND_WITH_NUMBER

// Comparisons look at values only (a program's branches are not differentiated).
inline bool operator==(const Var& a, const Var& b) noexcept { return a.value() == b.value(); }
inline auto operator<=>(const Var& a, const Var& b) noexcept { return a.value() <=> b.value(); }
// With a plain number: compares without turning the number into a recorded input.
inline bool operator==(const Var& a, double b) noexcept { return a.value() == b; }
inline auto operator<=>(const Var& a, double b) noexcept { return a.value() <=> b; }

// ---- Functions --------------------------------------------------------------------------------

[[gnu::always_inline]] inline Var exp(Var a) { return detail::record(Exp{}, a); }
[[gnu::always_inline]] inline Var expm1(Var a) { return detail::record(Expm1{}, a); }
[[gnu::always_inline]] inline Var log(Var a) { return detail::record(Log{}, a); }
[[gnu::always_inline]] inline Var log1p(Var a) { return detail::record(Log1p{}, a); }
[[gnu::always_inline]] inline Var sqrt(Var a) { return detail::record(Sqrt{}, a); }
[[gnu::always_inline]] inline Var pow(Var a, Var b) { return detail::record(Pow{}, a, b); }
[[gnu::always_inline]] inline Var pow(Var a, double p) { return detail::record(PowScalar{p}, a); }
[[gnu::always_inline]] inline Var pow(double c, Var b) { return detail::record(ScalarPow{c}, b); }
[[gnu::always_inline]] inline Var sin(Var a) { return detail::record(Sin{}, a); }
[[gnu::always_inline]] inline Var cos(Var a) { return detail::record(Cos{}, a); }
[[gnu::always_inline]] inline Var tan(Var a) { return detail::record(Tan{}, a); }
[[gnu::always_inline]] inline Var tanh(Var a) { return detail::record(Tanh{}, a); }
[[gnu::always_inline]] inline Var sigmoid(Var a) { return detail::record(Sigmoid{}, a); }
[[gnu::always_inline]] inline Var softplus(Var a) { return detail::record(Softplus{}, a); }
[[gnu::always_inline]] inline Var gelu(Var a) { return detail::record(Gelu{}, a); }

[[gnu::always_inline]] inline Var relu(Var a, const ReluOptions& o = {}) {
  // Away from the kink the rule never reads at_zero: skip resolving it (a thread-local lookup).
  return detail::record(!o.at_zero && a.value() != 0.0 ? Relu{} : Relu::make(o), a);
}
[[gnu::always_inline]] inline Var leaky_relu(Var a, const LeakyReluOptions& o = {}) {
  return detail::record(LeakyRelu::make(o), a);
}
[[gnu::always_inline]] inline Var leaky_relu(Var a, double scale) {
  return detail::record(LeakyRelu::make(LeakyReluOptions{scale, std::nullopt}), a);
}
[[gnu::always_inline]] inline Var elu(Var a, const EluOptions& o = {}) {
  return detail::record(Elu::make(o), a);
}
[[gnu::always_inline]] inline Var elu(Var a, double alpha) {
  return detail::record(Elu::make(EluOptions{alpha, std::nullopt}), a);
}
[[gnu::always_inline]] inline Var abs(Var a, const AbsOptions& o = {}) {
  return detail::record(Abs::make(o), a);
}
// max and min: with a tie option, on two Vars or a Var and a number (the number a constant).
#define TAPEGRAD_TIE_FUNCTION(name, Rule)                                              \
  [[gnu::always_inline]] inline Var name(Var a, Var b, const TieOptions& o = {}) {     \
    return detail::record(Rule::make(o), a, b);                                        \
  }                                                                                    \
  [[gnu::always_inline]] inline Var name(Var a, double b, const TieOptions& o = {}) {  \
    Var c = Var::constant(b);                                                          \
    return detail::record(Rule::make(o), a, c);                                        \
  }                                                                                    \
  [[gnu::always_inline]] inline Var name(double a, Var b, const TieOptions& o = {}) {  \
    Var c = Var::constant(a);                                                          \
    return detail::record(Rule::make(o), c, b);                                        \
  }
TAPEGRAD_TIE_FUNCTION(max, Max)
TAPEGRAD_TIE_FUNCTION(min, Min)
#undef TAPEGRAD_TIE_FUNCTION

[[gnu::always_inline]] inline Var clamp(Var a, double lo, double hi, const ClampOptions& o = {}) {
  return detail::record(Clamp::make(lo, hi, o), a);
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

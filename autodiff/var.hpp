// tg::Var: a double recorded on this thread's tape, and the scalar primitives over it.
//
//     tg::Var x = 1.5, y = -2.0;                    // inputs, recorded on the active tape
//     tg::Var f = tg::relu(x * y + 3.0) + tg::elu(y, 0.5) * tg::leaky_relu(x, 0.01);
//     auto [dx, dy] = tg::gradient(f, x, y);        // one reverse sweep
#pragma once

#include <autodiff/rules.hpp>
#include <autodiff/tape.hpp>

#include <fmt/core.h>

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <iosfwd>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

namespace tg {

class Var;
namespace detail {
struct Recorder;
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
  Var(double value) {  // NOLINT(google-explicit-constructor)
    Tape& t = detail::recording_tape();
    if (!t.has_room_for_input()) [[unlikely]] {
      const NewInput in = new_input(value);  // grows the buffer, or starts this thread's tape
      value = in.value;
      tag_.set(in.tag);
    } else {
      tag_.set(Tag::pack(t.push_input_unchecked(), t.epoch()));
    }
    value_ = value;
  }
  /// A new independent variable on `tape`.
  Var(double value, Tape& tape) : value_(value), tag_{tape.push_input(), tape.epoch()} {}
  constexpr Var(const Var& o) noexcept
      : value_(o.value_), tag_{o.tag_.index, o.tag_.epoch & ~kFresh} {
    o.share();
  }
  constexpr Var& operator=(const Var& o) noexcept {
    value_ = o.value_;
    tag_ = {o.tag_.index, o.tag_.epoch & ~kFresh};
    o.share();
    return *this;
  }
  constexpr Var(Var&& o) noexcept : value_(o.value_), tag_(o.tag_) { o.give_up(); }
  constexpr Var& operator=(Var&& o) noexcept {
    value_ = o.value_;
    tag_ = o.tag_;
    if (&o != this) o.give_up();
    return *this;
  }
  ~Var() = default;

  /// A constant: takes part in computations, never gets a gradient, valid on every tape.
  static constexpr Var constant(double value) noexcept { return Var(value, 0, 0); }
  /// A Var for variable `index` recorded on `tape` (by a primitive of your own, with Tape::push or
  /// a closure; see docs/guide.md). Not fresh: nothing is ever fused into it. Do not make one for
  /// the index of a Var that may still be fresh: that Var's statement may be rewritten. Throws
  /// tg::ValueError unless `index` is a variable of the tape's recording (0 < index < size()).
  static Var recorded(double value, Index index, const Tape& tape);

  constexpr double value() const noexcept { return value_; }
  constexpr bool is_constant() const noexcept { return tag_.index == 0; }
  constexpr Index index() const noexcept { return tag_.index; }
  constexpr std::uint32_t epoch() const noexcept { return tag_.epoch & ~kFresh; }
  /// True for the uncopied result of a primitive (see above).
  constexpr bool fresh() const noexcept { return (tag_.epoch & kFresh) != 0; }

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
  friend struct detail::Recorder;
  friend Var detail::record_linear(std::string_view, std::span<const Var>, std::span<const double>);
  friend void inputs(std::span<const double> values, std::span<Var> out);

  static constexpr std::uint32_t kFresh = 0x8000'0000u;  // epochs are 30 bits (tape.cpp)
  static constexpr std::uint32_t kMovedFrom = Tape::kMovedFromEpoch;

  constexpr Var(double value, Index index, std::uint32_t epoch) noexcept
      : value_(value), tag_{index, epoch} {}
  static constexpr Var make_fresh(double value, Index index, std::uint32_t epoch) noexcept {
    return Var(value, index, epoch | kFresh);
  }
  // The input constructor's out-of-line path: the new input's Tag, packed, and the value handed
  // back, both in registers, so that the value need not survive the call in the hot path (a call
  // clobbers every vector register: the value was spilled to the stack for every input).
  struct NewInput {
    double value;
    std::uint64_t tag;
  };
  [[gnu::noinline]] static NewInput new_input(double value) {
    Tape& t = active_tape();
    const Index i = t.push_input();
    return {value, Tag::pack(i, t.epoch())};
  }
  // Only writes when the flag is set: a shared constant copied from several threads is only read.
  constexpr void share() const noexcept {
    if ((tag_.epoch & kFresh) != 0) tag_.epoch &= ~kFresh;
  }
  // After a move: a fresh Var's flag went to the new owner, so this one may no longer name the
  // statement (it may be rewritten); an epoch that no recording has makes every use throw.
  constexpr void give_up() noexcept {
    if ((tag_.epoch & kFresh) != 0) tag_.epoch = kMovedFrom;
  }

  // The index and the epoch (its top bit: the fresh flag). set() stores both at once, which the
  // input constructor uses: a loop that sets inputs is bound by its stores (docs/benchmarks.md).
  // A primitive's result is not stored that way: it is usually read back field by field soon
  // after, and a load of the upper half of a wider store is not forwarded from the store buffer.
  struct Tag {
    Index index = 0;
    std::uint32_t epoch = 0;
    static std::uint64_t pack(Index index, std::uint32_t epoch) noexcept {
      return std::uint64_t{epoch} << 32 | index;
    }
    void set(std::uint64_t packed) noexcept {
      static_assert(sizeof(Tag) == sizeof packed && std::endian::native == std::endian::little);
      std::memcpy(this, &packed, sizeof packed);
    }
  };

  double value_ = 0.0;
  mutable Tag tag_;
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
    if (rule.at_kink(x...)) [[unlikely]] t.note_scalar_kink(R::kink);
  }
}

/// A rule of two inputs with one of them a plain number `c` (operand K is the recorded one), seen
/// as a rule of one input: `x - 1.0`, `2.0 * x`, `tg::max(x, 0.5)`. The number is a constant: it is
/// never recorded.
template <class R, int K>
struct WithNumber {
  static constexpr std::string_view name = R::name;
  R rule;
  double c;
  double value(double x) const { return K == 0 ? rule.value(x, c) : rule.value(c, x); }
  double derivative(double x, double y) const {
    return K == 0 ? rule.derivatives(x, c, y)[0] : rule.derivatives(c, x, y)[1];
  }
  // The kink, the branch side and anomaly mode see both inputs, in their order.
  std::array<double, 2> inputs(double x) const {
    return K == 0 ? std::array<double, 2>{x, c} : std::array<double, 2>{c, x};
  }
};
template <class R>
struct IsWithNumber : std::false_type {};
template <class R, int K>
struct IsWithNumber<WithNumber<R, K>> : std::true_type {};

// The branch-side and kink notes of a rule of one input (for WithNumber, of the rule it wraps).
template <class R>
[[gnu::always_inline]] inline void note_kink1(Tape& t, const R& rule, double x) {
  if constexpr (IsWithNumber<R>::value) {
    const std::array<double, 2> in = rule.inputs(x);
    detail::note_kink(t, rule.rule, in[0], in[1]);
  } else {
    detail::note_kink(t, rule, x);
  }
}
template <class R>
[[gnu::always_inline]] inline void note_branch1(Tape& t, const R& rule, double x) {
  if constexpr (IsWithNumber<R>::value) {
    if constexpr (KinkedRule<decltype(rule.rule)>) {
      const std::array<double, 2> in = rule.inputs(x);
      t.note_branch(decltype(rule.rule)::kink, rule.rule.side(in[0], in[1]));
    }
  } else if constexpr (KinkedRule<R>) {
    t.note_branch(R::kink, rule.side(x));
  }
}
template <class R>
void check_forward1(const Tape& t, const R& rule, double y, double x) {
  if constexpr (IsWithNumber<R>::value) {
    const std::array<double, 2> in = rule.inputs(x);
    t.check_forward(R::name, y, in);
  } else {
    t.check_forward(R::name, y, {&x, 1});
  }
}

// A Var's fields as a trivially copyable value (the epoch with its fresh flag): what crosses into
// and out of the out-of-line paths, in registers. (A tg::Var is not trivially copyable, so passing
// or returning one by value goes through memory, and a result that an out-of-line path returns
// through memory pins the inline path's result there too.)
struct VarFields {
  double value;
  Index index;
  std::uint32_t bits;  // epoch | fresh flag
};

/// The recording, for tg::apply and the operators and functions below. Primitives are recorded
/// here, and only here.
///
/// The inline paths (record) handle what a program does over and over, in the plain mode
/// (recording, no anomaly mode) with recorded operands: they push a statement or fuse into a fresh
/// operand's statement (docs/design.md, "Fused statements"). Everything else goes out of line, to
/// record_general: constant operands (index 0), NoGrad and anomaly mode (record_slow: one
/// statement per primitive, never fused, the result not fresh), and stale operands (which throw).
/// `a` and `b` belong to the caller, who took the operands by value: a fresh one is a temporary
/// nobody else can see, and its statement may be rewritten in place.
struct Recorder {
  static VarFields fields(const Var& a) noexcept { return {a.value_, a.tag_.index, a.tag_.epoch}; }
  static Var make(VarFields f) noexcept { return Var(f.value, f.index, f.bits); }
  static bool fresh(std::uint32_t bits) noexcept { return (bits & Var::kFresh) != 0; }

  // Out-of-line paths take a small rule by value, in registers (a WithNumber's number would
  // otherwise be stored to the stack on every call of the inline path, for its address).
  template <class R>
  using RuleArg =
      std::conditional_t<std::is_trivially_copyable_v<R> && sizeof(R) <= 16, R, const R&>;

  // A stale, foreign or moved-from operand throws in every mode, NoGrad included: a Var's
  // recording is checked wherever it is used, not only where it would be recorded.
  template <class R>
  [[gnu::noinline]] static VarFields record_slow(RuleArg<R> rule, VarFields a) {
    Tape& t = active_tape();
    if (a.index != 0) t.check_epoch_bits(a.bits, R::name);
    const double x = a.value;
    const double y = rule.value(x);
    if (t.anomaly()) check_forward1(t, rule, y, x);
    if (a.index == 0 || !t.recording()) {
      note_branch1(t, rule, x);
      return {y, 0, 0};
    }
    const Index i = t.append(a.index, rule.derivative(x, y));
    note_kink1(t, rule, x);
    t.name_last_statement(R::name);
    return {y, i, t.epoch()};
  }

  template <class R>
  [[gnu::noinline]] static VarFields record_slow(RuleArg<R> rule, VarFields a, VarFields b) {
    Tape& t = active_tape();
    const bool ca = a.index == 0;
    const bool cb = b.index == 0;
    if (!ca) t.check_epoch_bits(a.bits, R::name);
    if (!cb) t.check_epoch_bits(b.bits, R::name);
    const double x1 = a.value;
    const double x2 = b.value;
    const double y = rule.value(x1, x2);
    if (t.anomaly()) {
      const double in[2] = {x1, x2};
      t.check_forward(R::name, y, in);
    }
    if ((ca && cb) || !t.recording()) {
      if constexpr (KinkedRule<R>) t.note_branch(R::kink, rule.side(x1, x2));
      return {y, 0, 0};
    }
    const std::array<double, 2> d = rule.derivatives(x1, x2, y);
    const Index i = ca ? t.append(b.index, d[1])
                    : cb ? t.append(a.index, d[0])
                         : t.append(a.index, d[0], b.index, d[1]);
    detail::note_kink(t, rule, x1, x2);
    t.name_last_statement(R::name);
    return {y, i, t.epoch()};
  }

  // Everything the inline paths leave: modes other than plain, constant operands, stale operands.
  template <class R>
  [[gnu::noinline]] static VarFields record_general(RuleArg<R> rule, double xa, Index ia,
                                                    std::uint32_t ba) {
    const VarFields a{xa, ia, ba};
    Tape& t = active_tape();
    if (!t.plain()) return record_slow<R>(rule, a);
    const double x = a.value;
    const double y = rule.value(x);
    if (a.index == 0) {
      note_branch1(t, rule, x);
      return {y, 0, 0};
    }
    t.check_epoch_bits(a.bits, R::name);
    return {y, record1(t, rule, a, x, y), t.epoch() | Var::kFresh};
  }

  template <class R>
  [[gnu::noinline]] static VarFields record_general(RuleArg<R> rule, double xa, Index ia,
                                                    std::uint32_t ba, double xb, Index ib,
                                                    std::uint32_t bb) {
    const VarFields a{xa, ia, ba};
    const VarFields b{xb, ib, bb};
    Tape& t = active_tape();
    if (!t.plain()) return record_slow<R>(rule, a, b);
    const double x1 = a.value;
    const double x2 = b.value;
    const double y = rule.value(x1, x2);
    const bool ca = a.index == 0;
    const bool cb = b.index == 0;
    if (ca && cb) {
      if constexpr (KinkedRule<R>) t.note_branch(R::kink, rule.side(x1, x2));
      return {y, 0, 0};
    }
    if (!ca) t.check_epoch_bits(a.bits, R::name);
    if (!cb) t.check_epoch_bits(b.bits, R::name);
    if (!ca && !cb) return {y, record2(t, rule, a, b, x1, x2, y), t.epoch() | Var::kFresh};
    // One constant operand: a primitive of the other one, as for a plain number.
    const Index i = ca ? record1(t, WithNumber<R, 1>{rule, x1}, b, x2, y)
                       : record1(t, WithNumber<R, 0>{rule, x2}, a, x1, y);
    return {y, i, t.epoch() | Var::kFresh};
  }

  // The statement of a primitive of one recorded operand, fused into a fresh operand's if the
  // tape allows it and the scaling is exact (fuse may decline), else one of its own.
  template <class R>
  [[gnu::always_inline]] static Index record1(Tape& t, const R& rule, VarFields a, double x,
                                              double y) {
    const double d = rule.derivative(x, y);
    const Index i = fresh(a.bits) && t.fuse(a.index, d) ? a.index : t.append(a.index, d);
    note_kink1(t, rule, x);  // after the push: the kink event sits at statement i
    return i;
  }

  // The same for two recorded operands.
  template <class R>
  [[gnu::always_inline]] static Index record2(Tape& t, const R& rule, VarFields a, VarFields b,
                                              double x1, double x2, double y) {
    const std::array<double, 2> d = rule.derivatives(x1, x2, y);
    const Index ia = a.index;
    const Index ib = b.index;
    // Merging comes first: it is what a running sum (`s += x * x`) does on every term. Two fresh
    // operands are two different statements (a Var copied to both sides is not fresh), so the
    // same-variable case below is never one that merges.
    Index i = fresh(a.bits & b.bits) ? t.merge(ia, d[0], ib, d[1]) : 0;  // 0: not merged
    if (i == 0) {
      if (ia == ib) {
        // The same variable on both sides (x * x): one operand with the two partials added, if
        // that is exact (see Tape::scale_exactly).
        const double sum = d[0] + d[1];
        i = std::abs(sum) <= std::numeric_limits<double>::max() ? t.append(ia, sum)
                                                                : t.append(ia, d[0], ib, d[1]);
      } else if (fresh(b.bits) && t.fuse(ib, d[1], ia, d[0])) {
        i = ib;
      } else if (fresh(a.bits) && t.fuse(ia, d[0], ib, d[1])) {
        i = ia;
      } else {
        i = t.append(ia, d[0], ib, d[1]);
      }
    }
    detail::note_kink(t, rule, x1, x2);  // after the push: the kink event sits at statement i
    return i;
  }

  // The inline paths compare each operand's epoch field, its fresh flag masked off, with the
  // tape's key (Tape::key()): for a copied operand the mask is the one its copy already applied,
  // and for the fresh result of the primitive just before, the compiler can fold the test away.
  template <class R>
  [[gnu::always_inline]] static Var record(const R& rule, Var& a) {
    Tape& t = recording_tape();
    const VarFields fa = fields(a);
    const std::uint32_t key = t.key();  // the epoch, in the plain mode
    if ((fa.bits & ~Var::kFresh) != key) [[unlikely]] {
      return make(record_general<R>(rule, fa.value, fa.index, fa.bits));
    }
    const double y = rule.value(fa.value);
    return make(VarFields{y, record1(t, rule, fa, fa.value, y), key | Var::kFresh});
  }

  template <class R>
  [[gnu::always_inline]] static Var record(const R& rule, Var& a, Var& b) {
    Tape& t = recording_tape();
    const VarFields fa = fields(a);
    const VarFields fb = fields(b);
    const std::uint32_t key = t.key();  // the epoch, in the plain mode
    if ((((fa.bits ^ key) & ~Var::kFresh) | ((fb.bits ^ key) & ~Var::kFresh)) != 0) [[unlikely]] {
      return make(
          record_general<R>(rule, fa.value, fa.index, fa.bits, fb.value, fb.index, fb.bits));
    }
    const double y = rule.value(fa.value, fb.value);
    return make(VarFields{y, record2(t, rule, fa, fb, fa.value, fb.value, y), key | Var::kFresh});
  }
};

template <class R>
[[gnu::always_inline]] inline Var record(const R& rule, Var& a) {
  return Recorder::record(rule, a);
}
template <class R>
[[gnu::always_inline]] inline Var record(const R& rule, Var& a, Var& b) {
  return Recorder::record(rule, a, b);
}
// A rule of two inputs with one of them a number.
template <class R>
[[gnu::always_inline]] inline Var record(const R& rule, Var& a, double b) {
  return Recorder::record(WithNumber<R, 0>{rule, b}, a);
}
template <class R>
[[gnu::always_inline]] inline Var record(const R& rule, double a, Var& b) {
  return Recorder::record(WithNumber<R, 1>{rule, a}, b);
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
    return detail::record(Rule{}, a, b);                                   \
  }                                                                        \
  [[gnu::always_inline]] inline Var operator op(double a, Var b) {         \
    return detail::record(Rule{}, a, b);                                   \
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
    return *this = detail::record(Rule{}, *this, b);           \
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
    return detail::record(Rule::make(o), a, b);                                        \
  }                                                                                    \
  [[gnu::always_inline]] inline Var name(double a, Var b, const TieOptions& o = {}) {  \
    return detail::record(Rule::make(o), a, b);                                        \
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

// ---- Inputs -----------------------------------------------------------------------------------

/// New independent variables on the active tape, one per value, written into `out` (the same size;
/// what was there is replaced): the same as `out[i] = values[i]` for each i, with consecutive
/// indices, and about three times faster for many inputs (the room is reserved once, and nothing
/// is checked per input; docs/benchmarks.md). Throws tg::ShapeError if the sizes differ.
void inputs(std::span<const double> values, std::span<Var> out);
/// The same, returned in a new vector.
std::vector<Var> inputs(std::span<const double> values);

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

// ---- Printing ---------------------------------------------------------------------------------

/// Writes the value, as `os << v.value()` does (the stream's own format flags apply).
std::ostream& operator<<(std::ostream& os, const Var& v);

}  // namespace tg

/// Formats a Var as its value, with every format spec of a double: `fmt::format("{:.3f}", x)`.
template <>
struct fmt::formatter<tg::Var> : fmt::formatter<double> {
  auto format(const tg::Var& v, fmt::format_context& ctx) const {
    return fmt::formatter<double>::format(v.value(), ctx);
  }
};

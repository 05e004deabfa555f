// The tape: a record of every primitive a program runs, in creation order, and the reverse sweep
// that turns it into exact gradients. See docs/design.md for the layout and its reasons.
//
// A recording is a stream of statements. Statement i defines variable i; it lists its operands
// (indices of earlier variables) with the local partial derivative d(var i)/d(operand), computed
// when the primitive ran. A primitive applied to the temporary result of the primitive just recorded
// is fused into that statement (its partials are composed by the chain rule) instead of recording a
// statement of its own: see "Fused statements" in docs/design.md. Statement 0 is a sink for
// constants. A backward sweep seeds the adjoint of one variable and walks the statements from there
// down to 0 once, adding adjoint[i] * partial into each operand's adjoint (nothing for a statement
// whose adjoint is 0, which the output does not depend on): no recursion, no sort, creation order
// is already a valid reverse order. Primitives that are not scalar (tensor operations, user
// closures) record a backward closure at the current position; the sweep runs it when it passes
// that position.
#pragma once

#include <autodiff/buffer.hpp>
#include <autodiff/error.hpp>
#include <autodiff/subgradient.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

namespace tg {

/// Position of a variable on its tape.
using Index = std::uint32_t;

class Tape;

namespace detail {
struct Recorder;
// This thread's active tape. Never null: until the thread first records, it points to
// `unstarted_tape`, a shared tape that records nothing (not plain, not recording), so the hot path
// of a primitive reads it without a test and takes its slow path, which starts the thread's tape.
extern constinit thread_local Tape* tls_active_tape;
extern Tape unstarted_tape;
Tape& init_thread_tape();
[[noreturn]] void throw_tape_full();
}  // namespace detail

/// Figures about one recording, for reports and benchmarks.
struct TapeStats {
  std::size_t statements = 0;       ///< variables recorded (statement 0, the constant sink, included)
  std::size_t operands = 0;         ///< operand entries across all statements
  std::size_t recording_bytes = 0;  ///< statement stream: 2 bytes a statement + 12 an operand
  std::size_t adjoint_bytes = 0;    ///< the sweep's adjoint workspace (8 bytes a swept variable)
  std::size_t arena_bytes = 0;      ///< tensor data and closures recorded in the arena
  std::size_t callbacks = 0;        ///< backward closures recorded
  std::size_t heap_allocations = 0; ///< times this tape's buffers went to the heap, ever
};

/// One tape records one computation at a time. Every thread has its own (tg::active_tape()); a
/// tg::TapeScope makes another Tape object the active one for a while.
class Tape {
 public:
  Tape();
  ~Tape();
  /// The placeholder behind detail::unstarted_tape: no memory, records nothing.
  struct Unstarted {};
  constexpr explicit Tape(Unstarted) noexcept : key_(kNoKey), recording_(false), plain_(false) {}
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // ---- Recording --------------------------------------------------------------------------
  /// Most operands one statement holds (its count is 16 bits). Longer sums are chained: see
  /// StatementWriter.
  static constexpr std::size_t kMaxStatementOperands = 65535;

  /// Records an independent variable (an input) and returns its index.
  [[gnu::always_inline]] Index push_input() {
    reserve_statement(0);
    return push_input_unchecked();
  }
  /// Records n independent variables at once and returns the index of the first: they are the n
  /// consecutive variables from there (for tg::inputs).
  Index push_inputs(std::size_t n) {
    reserve_statement(0, n);
    const std::size_t first = counts_.size();
    counts_.append_zeros(n);
    return static_cast<Index>(first);
  }
  /// For tg::Var's constructor: whether push_input_unchecked() may be called (false for a full
  /// buffer and for detail::unstarted_tape, which has none).
  [[gnu::always_inline]] bool has_room_for_input() const noexcept {
    return counts_.size() != counts_.capacity();
  }
  [[gnu::always_inline]] Index push_input_unchecked() noexcept {
    const std::size_t i = counts_.size();
    counts_.push_unchecked(0);
    return static_cast<Index>(i);
  }
  /// Records a statement with one operand and returns its index. Throws tg::ValueError unless the
  /// operand is a variable recorded already (an index below size()).
  Index push(Index a, double da) {
    check_operand(a);
    return append(a, da);
  }
  /// Records a statement with two operands and returns its index (operands checked as above).
  Index push(Index a, double da, Index b, double db) {
    check_operand(a);
    check_operand(b);
    return append(a, da, b, db);
  }
  /// Records a statement with any number of operands (constants, index 0, are skipped) and returns
  /// its index. Throws tg::ValueError if the sizes differ or an operand is not recorded yet.
  Index push(std::span<const Index> operands, std::span<const double> partials);

  /// Writes one statement of up to n operands straight into the stream: at most n put() calls, then
  /// finish(). Nothing else may be recorded in between. Past kMaxStatementOperands operands the
  /// writer closes the statement and continues in a new one whose first operand is the one just
  /// closed (partial 1), so a sum of any length records exactly; finish() returns the last.
  class StatementWriter {
   public:
    [[gnu::always_inline]] void put(Index operand, double partial) {
      if (count_ == kMaxStatementOperands) [[unlikely]] chain();
      tape_.ops_.push_unchecked(operand, partial);
      ++count_;
    }
    Index finish() noexcept {
      tape_.counts_.push_unchecked(static_cast<std::uint16_t>(count_));
      return tape_.top();
    }

   private:
    friend class Tape;
    explicit StatementWriter(Tape& t) noexcept : tape_(t) {}
    void chain() noexcept {
      const Index closed = finish();
      tape_.ops_.push_unchecked(closed, 1.0);
      count_ = 1;
    }
    Tape& tape_;
    std::size_t count_ = 0;
  };
  StatementWriter begin_statement(std::size_t n_operands) {
    // Room for the chained statements too: one count and one link operand each.
    const std::size_t links = n_operands / (kMaxStatementOperands - 1) + 1;
    reserve_statement(n_operands + links, links);
    return StatementWriter(*this);
  }

  // ---- Fusion (for tg::apply; docs/design.md, "Fused statements") ---------------------------
  // Each member below either rewrites statement(s) in place, or changes nothing and declines
  // (returns false, or 0 for merge): then the primitive records a statement of its own.
  // tg::detail::Recorder calls them in the plain mode only, for operands that are fresh (the only
  // handle to their statement). A statement may be rewritten only if it is the newest (the two
  // newest for a merge), above the barrier (no backward closure recorded, no sweep run, no change
  // of anomaly mode and no kink event since), has room for the operands it gains, and, unless the
  // factor is 1, is short (scaling its partials costs one multiply each) and scales exactly (see
  // scale_exactly).

  /// Index of the newest statement.
  [[gnu::always_inline]] Index top() const noexcept { return static_cast<Index>(counts_.size() - 1); }

  /// Statement i becomes g(i) for a primitive g with derivative `scale` there.
  [[gnu::always_inline]] bool fuse(Index i, double scale) noexcept {
    const std::size_t top = counts_.size() - 1;
    if (i != top || i <= barrier_) return false;
    return scale_exactly(ops_.size(), counts_[top], scale);
  }
  /// Statement i becomes g(i, b) for a primitive g of two inputs with partials `scale` (on i) and
  /// db (on b). When b is the statement's last operand (`(c * z) * z`) the partials are added.
  [[gnu::always_inline]] bool fuse(Index i, double scale, Index b, double db) {
    const std::size_t top = counts_.size() - 1;
    if (i != top || i <= barrier_) return false;
    const std::size_t n = counts_[top];
    if (n == kMaxStatementOperands) return false;
    ops_.reserve_more(1, kMaxIndex, &detail::throw_tape_full);
    if (!scale_exactly(ops_.size(), n, scale)) return false;
    const std::size_t last = ops_.size() - 1;
    if (n != 0 && ops_.indices()[last] == detail::OperandIndex{b} &&
        std::isfinite(ops_.partials()[last] + db)) {
      ops_.partials()[last] += db;  // (c * z) * z: one operand on z, partials added
    } else {
      ops_.push_unchecked(b, db);
      counts_[top] = static_cast<std::uint16_t>(n + 1);
    }
    return true;
  }
  /// Statements i and j, the two newest in either order, become one: g(i, j) for a primitive g
  /// with partials scale_i, scale_j. Returns the merged statement, the lower of the two, now top()
  /// (0, never a statement that can be merged into, when it declines).
  [[gnu::always_inline]] Index merge(Index i, double scale_i, Index j, double scale_j) noexcept {
    // Usually j is the newest (`s += x * x`: i is the accumulator below it).
    return j > i ? merge_ordered(i, scale_i, j, scale_j) : merge_ordered(j, scale_j, i, scale_i);
  }

  /// Records `f(Tape&)` to run when a backward sweep passes this point of the recording: after
  /// every statement recorded later, before every statement recorded earlier. `f` lives in the
  /// tape's arena until reset(); it reads and adds to adjoints with adjoint()/add_adjoint().
  template <class F>
  void record_backward(F&& f);

  /// Marks `count` elements of a non-smooth primitive met exactly at its kink at this point of the
  /// recording (a primitive that records a backward closure: call it right after); every backward
  /// sweep that passes this point adds them to kink_hits().
  void note_kink(Kink k, std::uint64_t count = 1);
  /// The same for the scalar primitive just recorded (tg::apply): a sweep counts it only if the
  /// output depends on it there, i.e. the sweep hands its statement a nonzero adjoint.
  void note_scalar_kink(Kink k);

  /// Memory that lives until reset() (tensor data, closure state).
  detail::Arena& arena() noexcept { return arena_; }

  /// Forgets the recording, keeps the memory. Every Var and Tensor recorded so far becomes stale:
  /// using one afterwards throws tg::TapeError.
  void reset();

  /// Identifies this recording; unique across all tapes of the process, never 0. Epochs are 30
  /// bits (tape.cpp): the two bits above are free for tg::Var's fresh flag and for kNoKey.
  [[gnu::always_inline]] std::uint32_t epoch() const noexcept {
    if (epoch_ > kEpochMask) __builtin_unreachable();
    return epoch_;
  }
  static constexpr std::uint32_t kEpochMask = 0x3fff'ffffu;
  /// What the inline path of a primitive compares its operands' epochs with (tg::Var's epoch field,
  /// its fresh flag masked off): the epoch in the plain mode, else kNoKey, which no Var's epoch
  /// equals. One comparison then sends a primitive to its out-of-line path for a stale or foreign
  /// operand, a constant one (epoch 0), or a mode other than plain.
  [[gnu::always_inline]] std::uint32_t key() const noexcept {
    if (key_ > kNoKey) __builtin_unreachable();
    return key_;
  }
  static constexpr std::uint32_t kNoKey = 0x4000'0000u;
  /// Number of variables recorded, the constant sink included.
  std::size_t size() const noexcept { return counts_.size(); }
  TapeStats stats() const noexcept;

  /// Throws tg::TapeError unless an operand recorded with `epoch` belongs to this recording.
  [[gnu::always_inline]] void check_epoch(std::uint32_t epoch, std::string_view op) const {
    if (epoch != epoch_) [[unlikely]] throw_stale(op, epoch);
  }
  /// check_epoch for the raw epoch field of tg::Var (its top bit, the fresh flag, is ignored: the
  /// shift drops it).
  [[gnu::always_inline]] void check_epoch_bits(std::uint32_t bits, std::string_view op) const {
    if (((bits ^ epoch_) << 1) != 0) [[unlikely]] throw_stale(op, bits & kEpochMask);
  }
  /// The epoch of a tg::Var that was moved from: no recording has it.
  static constexpr std::uint32_t kMovedFromEpoch = kEpochMask;

  // ---- Modes ------------------------------------------------------------------------------
  /// False inside a tg::NoGrad scope: primitives compute values and record nothing.
  bool recording() const noexcept { return recording_; }
  void set_recording(bool on) noexcept {
    recording_ = on;
    update_plain();
  }
  /// Anomaly mode: see tg::DetectAnomaly.
  bool anomaly() const noexcept { return anomaly_; }
  void set_anomaly(bool on) noexcept {
    anomaly_ = on;
    update_plain();
    barrier_ = top();  // a statement recorded in one mode is not fused in the other
  }
  /// Recording, and not in anomaly mode: the mode primitives are recorded fastest in.
  [[gnu::always_inline]] bool plain() const noexcept { return plain_; }

  /// Branch tracking, used by tg::gradcheck to find out whether a finite-difference step crossed a
  /// kink: each non-smooth primitive hashes which side of its kink its input was on.
  void track_branches(bool on) noexcept {
    track_branches_ = on;
    branch_hash_ = kFnvOffset;
  }
  bool tracking_branches() const noexcept { return track_branches_; }
  void note_branch(Kink k, int side) noexcept {
    if (track_branches_) [[unlikely]] hash_branch(static_cast<std::uint64_t>(k) * 8 +
                                                  static_cast<std::uint64_t>(side + 4));
  }
  std::uint64_t branch_signature() const noexcept { return branch_hash_; }

  // ---- Backward ---------------------------------------------------------------------------
  /// One reverse sweep: zeroes the adjoints, sets adjoint(output) = seed, and propagates down to
  /// variable `stop` (variables below `stop` are not needed by the caller). Counts kink hits.
  void sweep(Index output, double seed = 1.0, Index stop = 0);

  /// Adjoint of variable i after the last sweep. Inside a backward closure: the adjoint so far.
  double adjoint(Index i) const noexcept { return i < adjoints_.size() ? adjoints_[i] : 0.0; }
  /// The adjoints of the last sweep: variables 0 .. its output (for tg::gradient); entry 0, the
  /// constant sink, is 0.
  const double* adjoints() const noexcept { return adjoints_.data(); }
  /// For backward closures: adds to the adjoint of variable i, which must be below the closure's
  /// position (else tg::TapeError: the sweep has no adjoint for it).
  void add_adjoint(Index i, double v) {
    if (i >= adjoints_.size()) [[unlikely]] throw_bad_adjoint(i);
    adjoints_[i] += v;
  }
  /// Gradient of the last sweep's output with respect to variable i (checks that a sweep ran and
  /// reached i).
  double gradient_of(Index i, std::uint32_t epoch) const;
  /// Increases with every sweep: tensor nodes use it to know whether their gradient buffer belongs
  /// to the current sweep.
  std::uint64_t sweep_id() const noexcept { return sweep_id_; }

  // ---- Diagnostics ------------------------------------------------------------------------
  /// Kink hits summed over all sweeps since the last reset_kink_hits() (not cleared by reset()).
  const KinkCounts& kink_hits() const noexcept { return kink_hits_; }
  void reset_kink_hits() noexcept { kink_hits_ = {}; }

  /// Anomaly mode: throws tg::AnomalyError naming the primitive when its forward value is not
  /// finite although its inputs are.
  void check_forward(std::string_view name, double value, std::span<const double> inputs) const;
  /// Anomaly mode: remembers the name of the latest statement, so that a backward report can name
  /// it. `name` must have static storage (a primitive's name).
  void name_last_statement(std::string_view name) { name_statements(top(), name); }
  /// The same for statements first .. top() (a long sum that StatementWriter chained).
  void name_statements(Index first, std::string_view name);
  /// Throws tg::AnomalyError naming the primitive, the phase ("forward" or "backward") and what.
  [[noreturn]] void report_anomaly(std::string_view name, std::string_view phase,
                                   std::string_view what) const;

 private:
  static constexpr std::size_t kMaxIndex = std::numeric_limits<Index>::max() - 1;
  static constexpr std::size_t kFuseScaleLimit = 64;
  static constexpr std::uint64_t kFnvOffset = 14695981039346656037ull;

  struct Callback {
    Index position;
    void (*run)(void*, Tape&);
    void (*destroy)(void*);
    void* state;
  };
  struct KinkEvent {
    Index position;
    Kink kink;
    bool scalar;  // note_scalar_kink: counted only where the sweep's adjoint is nonzero
    std::uint64_t count;
  };
  struct AnomalyName {
    Index statement;
    std::string_view name;  // a primitive's static name
  };

  friend struct detail::Recorder;  // records through append(): its operands come from live Vars
  // push() without the check, for the primitives' hot path.
  [[gnu::always_inline]] Index append(Index a, double da) {
    reserve_statement(1);
    ops_.push_unchecked(a, da);
    counts_.push_unchecked(1);
    return top();
  }
  [[gnu::always_inline]] Index append(Index a, double da, Index b, double db) {
    reserve_statement(2);
    ops_.push_unchecked(a, da);
    ops_.push_unchecked(b, db);
    counts_.push_unchecked(2);
    return top();
  }
  void check_operand(Index a) const {
    if (a >= counts_.size()) [[unlikely]] throw_bad_operand(a);
  }
  [[noreturn]] void throw_bad_operand(Index a) const;
  [[noreturn]] void throw_bad_adjoint(Index i) const;

  // Room for one statement of n operands (or `statements` statements of n in all): one branch for
  // the two buffers of the stream, the growing out of line (this runs for every primitive recorded).
  [[gnu::always_inline]] void reserve_statement(std::size_t n_operands, std::size_t statements = 1) {
    if (counts_.capacity() - counts_.size() < statements ||
        ops_.capacity() - ops_.size() < n_operands) [[unlikely]] {
      grow_statement(n_operands, statements);
    }
  }
  void grow_statement(std::size_t n_operands, std::size_t statements);
  // Whether p * scale is what the unfused sweep would get: the sweep multiplies by the adjoint in
  // between, so a product that overflows (an infinite partial, and 0 * inf = NaN from a statement
  // whose adjoint is 0) or underflows below the normal range (a gradient flushed to 0) may not
  // happen there. A scale of 0 gives exact zeros, as the unfused sweep does.
  [[gnu::always_inline]] static bool exact_product(double p, double q, double scale) noexcept {
    const double m = std::abs(q);
    return m <= std::numeric_limits<double>::max() &&
           (m >= std::numeric_limits<double>::min() || p == 0.0 || scale == 0.0);
  }
  // Whether scaling the n partials that end at `end` by `scale` is exact in that sense (always for
  // a scale of 1 or -1; never for a non-finite one, which keeps a statement of its own).
  [[gnu::always_inline]] bool scales_exactly(std::size_t end, std::size_t n, double scale) const noexcept {
    if (scale == 1.0 || scale == -1.0) return true;
    if (!std::isfinite(scale)) return false;
    const double* p = ops_.partials() + (end - n);
    for (std::size_t k = 0; k < n; ++k) {
      if (!exact_product(p[k], p[k] * scale, scale)) return false;
    }
    return true;
  }
  // Scales the n partials that end at `end` by `scale` if that is exact and the statement is short
  // enough (a long product would rescale an ever longer statement), and returns true; else changes
  // nothing and returns false. One pass for the usual one-operand statement.
  //
  // A one-operand statement, the usual case, is tested by its product alone first: a product in
  // the normal range of finite doubles is exact in that sense (and its scale finite). Only a zero,
  // subnormal or non-finite product goes through the full test. A scale known to be 1 when this is
  // inlined folds away.
  [[gnu::always_inline]] bool scale_exactly(std::size_t end, std::size_t n, double scale) noexcept {
    if (__builtin_constant_p(scale == 1.0) && scale == 1.0) return true;
    if (n == 1) {
      double* p = ops_.partials() + (end - 1);
      const double q = *p * scale;
      const double m = std::abs(q);
      if (m >= std::numeric_limits<double>::min() && m <= std::numeric_limits<double>::max())
          [[likely]] {
        *p = q;
        return true;
      }
      if (scale == 1.0 || scale == -1.0) {
        *p = q;  // exact: q is p or -p
        return true;
      }
      if (!std::isfinite(scale) || !exact_product(*p, q, scale)) return false;
      *p = q;
      return true;
    }
    if (scale == 1.0) return true;
    if (n > kFuseScaleLimit || !scales_exactly(end, n, scale)) return false;
    scale_statement(end, n, scale);
    return true;
  }
  // Multiplies the partials of the n operands that end at `end` by `scale`. Nothing to do for a
  // scale of 1 (+, -, and the linear side of most rules; a constant 1 folds away when inlined).
  // The short statements that fusion meets most are done one element at a time: the partials were
  // just stored one by one, and a vector load over two of them would wait for both stores.
  [[gnu::always_inline]] void scale_statement(std::size_t end, std::size_t n, double scale) noexcept {
    if (scale == 1.0) return;
    double* p = ops_.partials() + (end - n);
    switch (n) {
      case 0: return;
      case 1: p[0] *= scale; return;
      case 2: p[0] *= scale; p[1] *= scale; return;
      default: for (std::size_t k = 0; k < n; ++k) p[k] *= scale;
    }
  }
  // merge() with the operands in order: statement `hi` must be the newest, `lo` the one below it.
  [[gnu::always_inline]] Index merge_ordered(Index lo, double s_lo, Index hi,
                                             double s_hi) noexcept {
    const std::size_t n_all = counts_.size();
    if (hi + std::size_t{1} != n_all || lo + std::size_t{2} != n_all || lo <= barrier_) return 0;
    std::uint16_t* last_two = counts_.data() + (n_all - 2);  // lo's count, hi's count
    const std::uint16_t n_lo = last_two[0];
    const std::uint16_t n_hi = last_two[1];
    std::uint16_t n;  // at most kMaxStatementOperands
    if (__builtin_add_overflow(n_lo, n_hi, &n)) return 0;
    if (s_lo != 1.0 || s_hi != 1.0) {
      const std::size_t end = ops_.size();
      if ((s_lo != 1.0 && n_lo > kFuseScaleLimit) || (s_hi != 1.0 && n_hi > kFuseScaleLimit) ||
          !scales_exactly(end - n_hi, n_lo, s_lo) || !scales_exactly(end, n_hi, s_hi)) {
        return 0;
      }
      scale_statement(end - n_hi, n_lo, s_lo);
      scale_statement(end, n_hi, s_hi);
    }
    last_two[0] = n;
    counts_.pop_back();
    return lo;
  }
  void update_plain() noexcept {
    plain_ = recording_ && !anomaly_;
    key_ = plain_ ? epoch_ : kNoKey;
  }
  // One past the last operand of statement s.
  std::size_t operand_end(Index s) const noexcept;
  void hash_branch(std::uint64_t v) noexcept {
    branch_hash_ = (branch_hash_ ^ v) * 1099511628211ull;
  }
  void add_callback(const Callback& c);
  std::size_t sweep_statements(Index from, Index down_to, std::size_t end);
  std::size_t sweep_statements_checked(Index from, Index down_to, std::size_t end);
  void destroy_callbacks() noexcept;
  std::string_view statement_name(Index s) const;
  [[noreturn]] void throw_stale(std::string_view op, std::uint32_t epoch) const;

  detail::PodBuffer<std::uint16_t> counts_;  // counts_[s]: how many operands statement s has
  detail::OperandBuffer ops_;                // operand indices and d(statement)/d(operand), in order
  detail::PodBuffer<double> adjoints_;
  detail::PodBuffer<Callback> callbacks_;
  detail::PodBuffer<KinkEvent> kink_events_;
  detail::PodBuffer<AnomalyName> anomaly_names_;
  detail::Arena arena_;

  Index barrier_ = 0;  // statements at or below it are not fused into (a closure, a sweep or a change
                       // of anomaly mode came after them)
  std::uint32_t epoch_ = 0;
  std::uint32_t key_ = 0;  // epoch_ in the plain mode, else kNoKey (see key())
  std::uint32_t swept_epoch_ = 0;  // epoch of the last sweep (0: none in this recording)
  Index swept_from_ = 0;
  Index swept_stop_ = 0;
  std::uint64_t sweep_id_ = 0;
  KinkCounts kink_hits_;
  std::uint64_t branch_hash_ = kFnvOffset;
  bool recording_ = true;
  bool anomaly_ = false;
  bool plain_ = true;  // recording_ && !anomaly_
  bool track_branches_ = false;
};

/// This thread's active tape: its own tape, unless a TapeScope selected another.
[[gnu::always_inline]] inline Tape& active_tape() {
  Tape* t = detail::tls_active_tape;
  return t != &detail::unstarted_tape ? *t : detail::init_thread_tape();
}

namespace detail {
/// The active tape for the hot path of a primitive, which only records when it is plain(): may be
/// detail::unstarted_tape, never null.
[[gnu::always_inline]] inline Tape& recording_tape() noexcept { return *tls_active_tape; }
}  // namespace detail

/// Makes `tape` the active tape of this thread while the scope lives.
class TapeScope {
 public:
  explicit TapeScope(Tape& tape) noexcept;
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape* previous_;
};

/// Pauses recording on the active tape: primitives compute values only and return constants.
class NoGrad {
 public:
  NoGrad() noexcept : tape_(active_tape()), previous_(tape_.recording()) {
    tape_.set_recording(false);
  }
  ~NoGrad() { tape_.set_recording(previous_); }
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  Tape& tape_;
  bool previous_;
};

/// Anomaly mode on the active tape while the scope lives: the first primitive whose forward value
/// is NaN or infinite while its inputs are finite, or whose backward contribution is, raises
/// tg::AnomalyError naming it. Costs time; for debugging.
class DetectAnomaly {
 public:
  DetectAnomaly() noexcept : tape_(active_tape()), previous_(tape_.anomaly()) {
    tape_.set_anomaly(true);
  }
  ~DetectAnomaly() { tape_.set_anomaly(previous_); }
  DetectAnomaly(const DetectAnomaly&) = delete;
  DetectAnomaly& operator=(const DetectAnomaly&) = delete;

 private:
  Tape& tape_;
  bool previous_;
};

template <class F>
void Tape::record_backward(F&& f) {
  using Fn = std::decay_t<F>;
  void* memory = arena_.allocate(sizeof(Fn), alignof(Fn));
  Fn* state = ::new (memory) Fn(std::forward<F>(f));
  void (*destroy)(void*) = nullptr;
  if constexpr (!std::is_trivially_destructible_v<Fn>) {
    destroy = [](void* p) { static_cast<Fn*>(p)->~Fn(); };
  }
  add_callback({top(),
                [](void* p, Tape& t) { (*static_cast<Fn*>(p))(t); }, destroy, state});
}

}  // namespace tg

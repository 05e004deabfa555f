// The tape: a record of every primitive a program runs, in creation order, and the reverse sweep
// that turns it into exact gradients. See docs/design.md for the layout and its reasons.
//
// A recording is a stream of statements. Statement i defines variable i; it lists its operands
// (indices of earlier variables) with the local partial derivative d(var i)/d(operand), computed
// when the primitive ran. Statement 0 is a sink for constants. A backward sweep seeds the adjoint of
// one variable and walks the statements from there down to 0 once, adding
// adjoint[i] * partial into each operand's adjoint: no recursion, no sort, creation order is already
// a valid reverse order. Primitives that are not scalar (tensor operations, user closures) record a
// backward closure at the current position; the sweep runs it when it passes that position.
#pragma once

#include <autodiff/buffer.hpp>
#include <autodiff/error.hpp>
#include <autodiff/subgradient.hpp>

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
extern constinit thread_local Tape* tls_active_tape;
Tape& init_thread_tape();
[[noreturn]] void throw_tape_full();
}  // namespace detail

/// Figures about one recording, for reports and benchmarks.
struct TapeStats {
  std::size_t statements = 0;       ///< variables recorded (statement 0, the constant sink, included)
  std::size_t operands = 0;         ///< operand entries across all statements
  std::size_t recording_bytes = 0;  ///< statement stream: 4 bytes a statement + 12 an operand
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
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // ---- Recording --------------------------------------------------------------------------
  /// Records an independent variable (an input) and returns its index.
  Index push_input() {
    reserve_statement(0);
    ends_.push_unchecked(static_cast<Index>(operands_.size()));
    return static_cast<Index>(ends_.size() - 1);
  }
  /// Records a statement with one operand and returns its index.
  Index push(Index a, double da) {
    reserve_statement(1);
    put(a, da);
    return finish_statement();
  }
  /// Records a statement with two operands and returns its index.
  Index push(Index a, double da, Index b, double db) {
    reserve_statement(2);
    put(a, da);
    put(b, db);
    return finish_statement();
  }
  /// Records a statement with any number of operands (constants, index 0, are skipped).
  Index push(std::span<const Index> operands, std::span<const double> partials);

  /// Writes one statement of n operands straight into the stream: exactly n put() calls, then
  /// finish(). Nothing else may be recorded in between.
  class StatementWriter {
   public:
    void put(Index operand, double partial) noexcept { tape_.put(operand, partial); }
    Index finish() noexcept { return tape_.finish_statement(); }

   private:
    friend class Tape;
    explicit StatementWriter(Tape& t) noexcept : tape_(t) {}
    Tape& tape_;
  };
  StatementWriter begin_statement(std::size_t n_operands) {
    reserve_statement(n_operands);
    return StatementWriter(*this);
  }

  /// Records `f(Tape&)` to run when a backward sweep passes this point of the recording: after
  /// every statement recorded later, before every statement recorded earlier. `f` lives in the
  /// tape's arena until reset(); it reads and adds to adjoints with adjoint()/add_adjoint().
  template <class F>
  void record_backward(F&& f);

  /// Marks `count` elements of a non-smooth primitive met exactly at its kink at this point of the
  /// recording; every backward sweep that passes this point adds them to kink_hits().
  void note_kink(Kink k, std::uint64_t count = 1);

  /// Memory that lives until reset() (tensor data, closure state).
  detail::Arena& arena() noexcept { return arena_; }

  /// Forgets the recording, keeps the memory. Every Var and Tensor recorded so far becomes stale:
  /// using one afterwards throws tg::TapeError.
  void reset();

  /// Identifies this recording; unique across all tapes of the process, never 0.
  std::uint32_t epoch() const noexcept { return epoch_; }
  /// Number of variables recorded, the constant sink included.
  std::size_t size() const noexcept { return ends_.size(); }
  TapeStats stats() const noexcept;

  /// Throws tg::TapeError unless an operand recorded with `epoch` belongs to this recording.
  void check_epoch(std::uint32_t epoch, std::string_view op) const {
    if (epoch != epoch_) [[unlikely]] throw_stale(op);
  }

  // ---- Modes ------------------------------------------------------------------------------
  /// False inside a tg::NoGrad scope: primitives compute values and record nothing.
  bool recording() const noexcept { return recording_; }
  void set_recording(bool on) noexcept { recording_ = on; }
  /// Anomaly mode: see tg::DetectAnomaly.
  bool anomaly() const noexcept { return anomaly_; }
  void set_anomaly(bool on) noexcept { anomaly_ = on; }

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
  /// For backward closures: adds to the adjoint of an operand.
  void add_adjoint(Index i, double v) noexcept { adjoints_[i] += v; }
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
  void name_last_statement(std::string_view name);
  /// Throws tg::AnomalyError naming the primitive, the phase ("forward" or "backward") and what.
  [[noreturn]] void report_anomaly(std::string_view name, std::string_view phase,
                                   std::string_view what) const;

 private:
  static constexpr std::size_t kMaxIndex = std::numeric_limits<Index>::max() - 1;
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
    std::uint64_t count;
  };
  struct AnomalyName {
    Index statement;
    std::string_view name;  // a primitive's static name
  };

  // Room for one statement of n operands: one branch for the three buffers of the stream, the
  // growing out of line (this runs for every primitive recorded).
  void reserve_statement(std::size_t n_operands) {
    if (ends_.size() == ends_.capacity() ||
        operands_.capacity() - operands_.size() < n_operands ||
        partials_.capacity() - partials_.size() < n_operands) [[unlikely]] {
      grow_statement(n_operands);
    }
  }
  void grow_statement(std::size_t n_operands);
  void put(Index i, double d) noexcept {
    operands_.push_unchecked(i);
    partials_.push_unchecked(d);
  }
  Index finish_statement() noexcept {
    ends_.push_unchecked(static_cast<Index>(operands_.size()));
    return static_cast<Index>(ends_.size() - 1);
  }
  void hash_branch(std::uint64_t v) noexcept {
    branch_hash_ = (branch_hash_ ^ v) * 1099511628211ull;
  }
  void add_callback(const Callback& c);
  void sweep_statements(Index from, Index down_to);
  void sweep_statements_checked(Index from, Index down_to);
  void destroy_callbacks() noexcept;
  std::string_view statement_name(Index s) const;
  [[noreturn]] void throw_stale(std::string_view op) const;

  detail::PodBuffer<Index> ends_;       // ends_[s]: one past statement s's last operand
  detail::PodBuffer<Index> operands_;   // operand indices
  detail::PodBuffer<double> partials_;  // d(statement)/d(operand), aligned with operands_
  detail::PodBuffer<double> adjoints_;
  detail::PodBuffer<Callback> callbacks_;
  detail::PodBuffer<KinkEvent> kink_events_;
  detail::PodBuffer<AnomalyName> anomaly_names_;
  detail::Arena arena_;

  std::uint32_t epoch_ = 0;
  std::uint32_t swept_epoch_ = 0;  // epoch of the last sweep (0: none in this recording)
  Index swept_from_ = 0;
  Index swept_stop_ = 0;
  std::uint64_t sweep_id_ = 0;
  KinkCounts kink_hits_;
  std::uint64_t branch_hash_ = kFnvOffset;
  bool recording_ = true;
  bool anomaly_ = false;
  bool track_branches_ = false;
};

/// This thread's active tape: its own tape, unless a TapeScope selected another.
inline Tape& active_tape() {
  Tape* t = detail::tls_active_tape;
  return t != nullptr ? *t : detail::init_thread_tape();
}

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
  add_callback({static_cast<Index>(ends_.size() - 1),
                [](void* p, Tape& t) { (*static_cast<Fn*>(p))(t); }, destroy, state});
}

}  // namespace tg

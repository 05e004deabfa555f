#include <autodiff/tape.hpp>

#include <autodiff/simd.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <fmt/format.h>

namespace tg {

namespace detail {

constinit Tape unstarted_tape{Tape::Unstarted{}};
constinit thread_local Tape* tls_active_tape = &unstarted_tape;

Tape& init_thread_tape() {
  thread_local Tape own;
  tls_active_tape = &own;
  return own;
}

void throw_tape_full() {
  throw TapeError(fmt::format(
      "tape is full: a recording holds at most {} variables and {} operands; reset the tape or "
      "split the computation",
      std::numeric_limits<Index>::max() - 1, std::numeric_limits<Index>::max() - 1));
}

Arena::~Arena() {
  for (const Block& b : blocks_) ::operator delete(b.data, std::align_val_t{64});
}

std::size_t Arena::capacity() const noexcept {
  std::size_t c = 0;
  for (const Block& b : blocks_) c += b.size;
  return c;
}

void* Arena::allocate_slow(std::size_t bytes, std::size_t align) {
  // Move on to the next kept block that fits; allocate a new, larger one when none does.
  while (++current_ < blocks_.size()) {
    offset_ = 0;
    if (bytes <= blocks_[current_].size) return allocate(bytes, align);
  }
  const std::size_t last = blocks_.empty() ? 0 : blocks_.back().size;
  const std::size_t size = std::max<std::size_t>({std::size_t{1} << 16, 2 * last, bytes + 64});
  auto* data = static_cast<std::byte*>(::operator new(size, std::align_val_t{64}));
  blocks_.push_back({data, size});
  ++allocations_;
  current_ = blocks_.size() - 1;
  offset_ = 0;
  return allocate(bytes, align);
}

}  // namespace detail

namespace {
std::atomic<std::uint32_t> next_epoch{1};

// Epochs are 30 bits: a tg::Var keeps its "fresh" flag in the top bit of its copy (var.hpp), and
// Tape::kNoKey, bit 30, is no epoch.
std::uint32_t fresh_epoch() {
  for (;;) {
    const std::uint32_t e = next_epoch.fetch_add(1, std::memory_order_relaxed) & Tape::kEpochMask;
    if (e != 0 && e != Tape::kMovedFromEpoch) return e;  // 0 marks constants
  }
}
}  // namespace

Tape::Tape() : epoch_(fresh_epoch()), key_(epoch_) {
  push_input();  // statement 0: the sink that constants point to
  // Kink events appear when an input lands exactly on a kink, which in training can first happen
  // after thousands of steps: room for them now keeps such a step from allocating.
  kink_events_.reserve_more(256, kMaxIndex, &detail::throw_tape_full);
}

Tape::~Tape() { destroy_callbacks(); }

void Tape::destroy_callbacks() noexcept {
  for (std::size_t c = callbacks_.size(); c-- > 0;) {
    if (callbacks_[c].destroy != nullptr) callbacks_[c].destroy(callbacks_[c].state);
  }
  callbacks_.clear();
}

void Tape::reset() {
  destroy_callbacks();
  counts_.clear();
  ops_.clear();
  barrier_ = 0;
  kink_events_.clear();
  anomaly_names_.clear();
  arena_.reset();
  epoch_ = fresh_epoch();
  update_plain();
  swept_epoch_ = 0;
  swept_from_ = 0;
  swept_stop_ = 0;
  push_input();
}

void Tape::grow_statement(std::size_t n_operands, std::size_t statements) {
  counts_.reserve_more(statements, kMaxIndex, &detail::throw_tape_full);
  ops_.reserve_more(n_operands, kMaxIndex, &detail::throw_tape_full);
}

Index Tape::push(std::span<const Index> operands, std::span<const double> partials) {
  if (operands.size() != partials.size()) {
    throw ValueError(fmt::format("Tape::push: {} operands but {} partials", operands.size(),
                                 partials.size()));
  }
  for (const Index a : operands) check_operand(a);
  StatementWriter w = begin_statement(operands.size());
  for (std::size_t k = 0; k < operands.size(); ++k) {
    if (operands[k] != 0) w.put(operands[k], partials[k]);
  }
  return w.finish();
}

void Tape::throw_bad_operand(Index a) const {
  throw ValueError(fmt::format("Tape::push: operand {} is not a variable of this recording yet "
                               "(it has {}); a statement reads earlier variables only",
                               a, counts_.size()));
}

void Tape::throw_bad_adjoint(Index i) const {
  throw TapeError(fmt::format("add_adjoint: variable {} is above the sweep's output {}: a backward "
                              "closure adds to variables recorded before it",
                              i, adjoints_.size() - 1));
}

void Tape::add_callback(const Callback& c) {
  try {
    callbacks_.push(c, kMaxIndex, &detail::throw_tape_full);
  } catch (...) {
    if (c.destroy != nullptr) c.destroy(c.state);
    throw;
  }
  barrier_ = c.position;  // the closure may read or feed statement `position`: it stays as it is
}

void Tape::note_kink(Kink k, std::uint64_t count) {
  if (count == 0) return;
  kink_events_.push({top(), k, false, count}, kMaxIndex, &detail::throw_tape_full);
  // The event names this statement: nothing is fused or merged into it any more, so that it keeps
  // its index (kinks are hit rarely; the statements after it fuse as before).
  barrier_ = top();
}

void Tape::note_scalar_kink(Kink k) {
  kink_events_.push({top(), k, true, 1}, kMaxIndex, &detail::throw_tape_full);
  // Sealed as above; for a scalar primitive this also keeps the statement's adjoint the adjoint of
  // the kinked primitive's own result, which the sweep's count looks at.
  barrier_ = top();
}

std::size_t Tape::operand_end(Index s) const noexcept {
  std::size_t end = ops_.size();
  for (std::size_t t = counts_.size() - 1; t > s; --t) end -= counts_[t];
  return end;
}

TapeStats Tape::stats() const noexcept {
  TapeStats s;
  s.statements = counts_.size();
  s.operands = ops_.size();
  s.recording_bytes = counts_.size() * sizeof(std::uint16_t) +
                      ops_.size() * (sizeof(Index) + sizeof(double));
  s.adjoint_bytes = adjoints_.size() * sizeof(double);
  s.arena_bytes = arena_.used();
  s.callbacks = callbacks_.size();
  s.heap_allocations = counts_.allocations() + ops_.allocations() + adjoints_.allocations() +
                       callbacks_.allocations() + kink_events_.allocations() +
                       anomaly_names_.allocations() + arena_.allocations();
  return s;
}

namespace {
// GCC vector types W bytes wide: the widths of simd.hpp's run_kernel_sized.
template <std::size_t W>
struct Lanes;
template <>
struct Lanes<16> {
  using F64 = double __attribute__((vector_size(16)));
  using U32 = std::uint32_t __attribute__((vector_size(16)));
};
template <>
struct Lanes<32> {
  using F64 = double __attribute__((vector_size(32)));
  using U32 = std::uint32_t __attribute__((vector_size(32)));
};
template <>
struct Lanes<64> {
  using F64 = double __attribute__((vector_size(64)));
  using U32 = std::uint32_t __attribute__((vector_size(64)));
};

constexpr std::size_t kRun = 16;  // operands per block of scatter()

// Whether the kRun indices at o are first, first + 1, ..., first + kRun - 1.
template <std::size_t W>
[[gnu::always_inline]] inline bool consecutive(const detail::OperandIndex* o, std::uint32_t first) {
  using U32 = typename Lanes<W>::U32;
  constexpr std::size_t lanes = W / sizeof(std::uint32_t);
  U32 iota;
  for (std::size_t j = 0; j != lanes; ++j) iota[j] = static_cast<std::uint32_t>(j);
  U32 gap{};
  for (std::size_t j = 0; j != kRun; j += lanes) {
    U32 v;
    std::memcpy(&v, o + j, W);
    gap |= v ^ (iota + (first + static_cast<std::uint32_t>(j)));
  }
  std::uint64_t words[W / sizeof(std::uint64_t)];
  std::memcpy(words, &gap, W);
  std::uint64_t any = 0;
  for (const std::uint64_t w : words) any |= w;
  return any == 0;
}

// t[j] += d[j] * a for the kRun operands of a block whose indices run consecutively from t: no two
// are the same variable, so this goes a vector at a time.
template <std::size_t W>
[[gnu::always_inline]] inline void add_run(double* t, const double* d, double a) {
  using F64 = typename Lanes<W>::F64;
  for (std::size_t j = 0; j != kRun; j += W / sizeof(double)) {
    F64 x;
    F64 y;
    std::memcpy(&x, t + j, W);
    std::memcpy(&y, d + j, W);
    x += y * a;
    std::memcpy(t + j, &x, W);
  }
}

// adj[ops[k]] += d[k] * a for the n operands of one statement (a long one: a sum).
//
// A sum over inputs recorded together (tg::inputs, then sum_i f(x_i)) has operands whose indices
// run consecutively. So the operands go in blocks of kRun: a block whose indices are i, i + 1, ...
// is one contiguous multiply-add, in vectors (wider ones through run_kernel_sized), any other block
// one operand at a time. Each adjoint gets the same multiply, then the same add, in the same order,
// either way: the same result bit for bit (tape.cpp is compiled with -ffp-contract=off, so that no
// instruction set fuses them into one rounding).
[[gnu::noinline]] void scatter(double* adj, const detail::OperandIndex* ops, const double* d,
                               std::size_t n, double a) {
  const auto kernel = [=](auto width) __attribute__((always_inline)) {
    constexpr std::size_t W = decltype(width)::value;
    std::size_t k = 0;
    for (; k + kRun <= n; k += kRun) {
      const auto first = static_cast<std::uint32_t>(ops[k]);
      if (consecutive<W>(ops + k, first)) {
        add_run<W>(adj + first, d + k, a);
      } else {
        for (std::size_t j = k; j != k + kRun; ++j) {
          adj[static_cast<std::size_t>(ops[j])] += d[j] * a;
        }
      }
    }
    for (; k != n; ++k) adj[static_cast<std::size_t>(ops[k])] += d[k] * a;
  };
  detail::run_kernel_sized(static_cast<std::int64_t>(n), kernel);
}
}  // namespace

// (No SLP vectorisation: GCC packs r1 and r2 into one vector register and spends more shuffling
// them than it saves.)
[[gnu::optimize("no-tree-slp-vectorize")]]
std::size_t Tape::sweep_statements(Index from, Index down_to, std::size_t end) {
  // The hot loop: statement s hands its adjoint to its operands, the counts_[s] operands that end
  // at `end`. Returns where the operands of statement down_to end.
  //
  // In a chain of statements (a running product, x = f(x) repeated) each adjoint is the one the
  // previous statement just added to; through memory that is a store-to-load round trip on the
  // critical path of every statement. So the adjoints of the two statements below s live in
  // registers (r1: s - 1, r2: s - 2) from the moment every statement above them has run; the
  // contributions to them are added there, in the same order as through memory (same results, bit
  // for bit), and each is written back when its own statement comes up. A long statement (a sum)
  // is not such a chain: its operands go straight to memory, without the two comparisons each,
  // with r1 and r2 written back before and read again after it.
  //
  // A variable that many statements far above it use (a parameter in a loop over data: mu and sigma
  // of a likelihood) is the same kind of chain: each contribution to its adjoint waits for the one
  // before, through memory. So two more variables keep their adjoints in registers (h1, the newer,
  // and h2; values v1 and v2), and contributions to them are added there, in the same order again.
  // A contribution from a short statement to a variable that is neither s - 1, s - 2 nor cached
  // writes h2 back, moves h1 to h2 and takes h1. A cached adjoint is written back before a long
  // statement and at the end, and moves to r2 when its own statement comes near. An empty slot
  // names variable 0, the constant sink, whose adjoint is discarded (sweep() zeroes it).
  //
  // Once no operand is left below (end == 0), the statements that remain have none either (the
  // inputs, usually recorded first): the sweep stops there.
  constexpr std::size_t kShort = 4;
  double* adj = adjoints_.data();
  const std::uint16_t* counts = counts_.data();
  const detail::OperandIndex* ops = ops_.indices();
  const double* d = ops_.partials();
  std::size_t s = from;
  std::size_t e = end;
  if (s >= std::size_t{down_to} + 3) {
    double a = adj[s];
    double r1 = adj[s - 1];
    double r2 = adj[s - 2];
    std::size_t h1 = 0;
    std::size_t h2 = 0;
    double v1 = 0.0;
    double v2 = 0.0;
    for (; s > std::size_t{down_to} + 2 && e != 0; --s) {
      const std::size_t n = counts[s];
      const std::size_t b = e - n;
      if (a == 0.0) {
        // Nothing to hand down (see sweep()).
      } else if (n > kShort) [[unlikely]] {
        adj[s - 1] = r1;
        adj[s - 2] = r2;
        adj[h2] = v2;
        adj[h1] = v1;
        scatter(adj, ops + b, d + b, n, a);
        r1 = adj[s - 1];
        r2 = adj[s - 2];
        v1 = adj[h1];
        v2 = adj[h2];
      } else {
        const auto add = [&](std::size_t k) __attribute__((always_inline)) {
          const auto j = static_cast<std::size_t>(ops[k]);
          const double c = d[k] * a;
          if (j == s - 1) {
            r1 += c;
          } else if (j == s - 2) {
            r2 += c;
          } else if (j == h1) {
            v1 += c;
          } else if (j == h2) {
            v2 += c;
          } else {
            adj[h2] = v2;
            h2 = h1;
            v2 = v1;
            h1 = j;
            v1 = adj[j] + c;
          }
        };
        // The n operands in order, b = e - n up to e - 1, without a loop's counter and test.
        static_assert(kShort == 4);
        switch (n) {
          case 4: add(e - 4); [[fallthrough]];
          case 3: add(e - 3); [[fallthrough]];
          case 2: add(e - 2); [[fallthrough]];
          case 1: add(e - 1); [[fallthrough]];
          default: break;
        }
      }
      e = b;
      adj[s - 1] = r1;  // final: every statement above s - 1 has run
      a = r1;
      r1 = r2;
      // Statement s's stores to s - 3 are done; if it is cached, the cache has its adjoint.
      if (s - 3 == h1) {
        r2 = v1;
        h1 = h2;
        v1 = v2;
        h2 = 0;
        v2 = 0.0;
      } else if (s - 3 == h2) {
        r2 = v2;
        h2 = 0;
        v2 = 0.0;
      } else {
        r2 = adj[s - 3];
      }
    }
    adj[s - 1] = r1;
    adj[s - 2] = r2;
    adj[h2] = v2;
    adj[h1] = v1;
    if (e == 0) return 0;
  }
  for (; s > down_to && e != 0; --s) {
    const double a = adj[s];
    const std::size_t b = e - counts[s];
    if (a != 0.0) {
      for (std::size_t k = b; k != e; ++k) adj[static_cast<std::size_t>(ops[k])] += d[k] * a;
    }
    e = b;
  }
  return e;
}

std::size_t Tape::sweep_statements_checked(Index from, Index down_to, std::size_t end) {
  const detail::OperandIndex* ops = ops_.indices();
  const double* d = ops_.partials();
  for (Index s = from; s > down_to; --s) {
    const double a = adjoints_[s];
    const std::size_t b = end - counts_[s];
    if (a == 0.0) {  // nothing to hand down (see sweep())
      end = b;
      continue;
    }
    for (std::size_t k = b; k < end; ++k) {
      const auto j = static_cast<std::size_t>(ops[k]);
      const double contribution = d[k] * a;
      adjoints_[j] += contribution;
      if (!std::isfinite(adjoints_[j]) && std::isfinite(a)) [[unlikely]] {
        report_anomaly(statement_name(s), "backward",
                       fmt::format("adjoint contribution {} = partial {} * adjoint {} to variable "
                                   "{} (statement {})",
                                   contribution, d[k], a, j, s));
      }
    }
    end = b;
  }
  return end;
}

void Tape::sweep(Index output, double seed, Index stop) {
  if (output >= counts_.size()) {
    throw TapeError(fmt::format("backward: variable {} is not on this recording (it has {})",
                                output, counts_.size()));
  }
  stop = std::min(stop, output);
  adjoints_.resize_uninitialized(static_cast<std::size_t>(output) + 1, kMaxIndex + 1,
                                 &detail::throw_tape_full);
  std::memset(adjoints_.data(), 0, adjoints_.size() * sizeof(double));
  adjoints_[output] = seed;
  ++sweep_id_;
  // grad() reads this sweep's adjoints only once it has finished: a closure or anomaly mode may
  // throw halfway, and the adjoints of the previous sweep are gone already.
  swept_epoch_ = 0;
  // Statements a sweep has seen are not fused into afterwards: a Var recorded later must get a new
  // index, whose grad() is 0 for this sweep, not the adjoint of the statement it rewrote.
  barrier_ = std::max(barrier_, output);

  // A statement whose adjoint is 0 (the output does not depend on it) hands nothing down: not
  // 0 * partial, which is NaN for an infinite partial (sqrt or log at 0 somewhere the output does
  // not use would otherwise make the gradients NaN).
  //
  // Closures recorded at positions <= output run, interleaved with the statements: a closure at
  // position p runs after statement p + 1 and before statement p.
  const Callback* cb = callbacks_.data();
  std::size_t c = static_cast<std::size_t>(
      std::upper_bound(cb, cb + callbacks_.size(), output,
                       [](Index v, const Callback& x) { return v < x.position; }) -
      cb);
  Index s = output;
  std::size_t end = operand_end(output);
  for (;;) {
    const Index next = c > 0 ? std::max(cb[c - 1].position, stop) : stop;
    if (anomaly_) [[unlikely]] {
      end = sweep_statements_checked(s, next, end);
    } else {
      end = sweep_statements(s, next, end);
    }
    s = next;
    if (c > 0 && cb[c - 1].position >= stop) {
      --c;
      cb[c].run(cb[c].state, *this);
      continue;
    }
    break;
  }

  adjoints_[0] = 0.0;  // the constant sink: what a constant's gradient reads (tg::gradient)

  // Kink hits. A scalar primitive's event counts where the output depends on it: its statement was
  // processed (above stop) and received a nonzero adjoint, the factor its subgradient multiplied.
  // A closure's event counts wherever the sweep ran the closure (stop <= position <= output): the
  // tape does not see inside a closure what depends on what.
  for (std::size_t e = 0; e < kink_events_.size(); ++e) {
    const KinkEvent& ev = kink_events_[e];
    if (ev.position < stop || ev.position > output) continue;
    if (ev.scalar && (ev.position == stop || adjoints_[ev.position] == 0.0)) continue;
    kink_hits_[ev.kink] += ev.count;
  }
  swept_epoch_ = epoch_;
  swept_from_ = output;
  swept_stop_ = stop;
}

double Tape::gradient_of(Index i, std::uint32_t epoch) const {
  check_epoch(epoch, "grad");
  if (swept_epoch_ != epoch_) {
    throw TapeError("grad: no backward sweep has run on this recording yet (or the last one threw "
                    "before it finished); call backward() on the output first");
  }
  if (i != 0 && i < swept_stop_) {
    throw TapeError(fmt::format(
        "grad: the last sweep (tg::gradient) stopped at variable {}, above variable {}; use "
        "backward() for gradients of every variable",
        swept_stop_, i));
  }
  return i <= swept_from_ ? adjoints_[i] : 0.0;
}

void Tape::check_forward(std::string_view name, double value, std::span<const double> inputs) const {
  if (std::isfinite(value)) return;
  for (double x : inputs) {
    if (!std::isfinite(x)) return;  // not the first: an input already was
  }
  std::string args;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    args += fmt::format("{}{}", k == 0 ? "" : ", ", inputs[k]);
  }
  report_anomaly(name, "forward", fmt::format("value {} from finite input(s) ({})", value, args));
}

void Tape::name_statements(Index first, std::string_view name) {
  for (std::size_t s = first; s <= top(); ++s) {
    anomaly_names_.push({static_cast<Index>(s), name}, kMaxIndex, &detail::throw_tape_full);
  }
}

std::string_view Tape::statement_name(Index s) const {
  const AnomalyName* b = anomaly_names_.data();
  const AnomalyName* e = b + anomaly_names_.size();
  const AnomalyName* it =
      std::lower_bound(b, e, s, [](const AnomalyName& n, Index v) { return n.statement < v; });
  if (it != e && it->statement == s) return it->name;
  return "a primitive recorded outside anomaly mode";
}

void Tape::report_anomaly(std::string_view name, std::string_view phase,
                          std::string_view what) const {
  throw AnomalyError(fmt::format("anomaly: '{}' produced a non-finite value in the {} pass: {}",
                                 name, phase, what));
}

void Tape::throw_stale(std::string_view op, std::uint32_t epoch) const {
  if (epoch == kMovedFromEpoch) {
    throw TapeError(fmt::format("{}: operand is a Var that was moved from (std::move); a moved-from "
                                "Var names nothing, use the Var it was moved to",
                                op));
  }
  throw TapeError(fmt::format(
      "{}: operand belongs to another recording (the tape was reset since it was made, or it comes "
      "from another tape or thread); record it again",
      op));
}

TapeScope::TapeScope(Tape& tape) noexcept : previous_(detail::tls_active_tape) {
  detail::tls_active_tape = &tape;
}

TapeScope::~TapeScope() { detail::tls_active_tape = previous_; }

}  // namespace tg

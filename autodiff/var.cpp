#include <autodiff/var.hpp>

#include <autodiff/simd.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fmt/format.h>
#include <ostream>

namespace tg {

Clamp Clamp::make(double lo, double hi, const ClampOptions& o) {
  if (!(lo <= hi)) {
    throw ValueError(fmt::format("clamp: needs lo <= hi (neither NaN), got lo = {}, hi = {}", lo, hi));
  }
  return {lo, hi, resolve_kink_value(kink, o.at_bound, default_kink_value(kink))};
}

void Var::backward() const {
  Tape& t = active_tape();
  if (is_constant()) {
    throw TapeError("backward: called on a constant (made under NoGrad or from constants only); "
                    "nothing was recorded");
  }
  t.check_epoch(epoch(), "backward");
  t.sweep(index());
}

Var Var::recorded(double value, Index index, const Tape& tape) {
  if (index == 0 || index >= tape.size()) {
    throw ValueError(fmt::format("Var::recorded: variable {} is not on this tape's recording "
                                 "(variables 1 to {})",
                                 index, tape.size() - 1));
  }
  return Var(value, index, tape.epoch());
}

double Var::grad() const {
  if (is_constant()) return 0.0;
  return active_tape().gradient_of(index(), epoch());
}

namespace detail {
// Records one statement over the active operands of xs with partial ws[k] (1 when ws is empty).
Var record_linear(std::string_view name, std::span<const Var> xs, std::span<const double> ws) {
  Tape& t = active_tape();
  std::size_t active = 0;
  for (const Var& x : xs) {
    if (x.is_constant()) continue;
    t.check_epoch(x.epoch(), name);  // in every mode, NoGrad included (see Recorder::record_slow)
    ++active;
  }
  double y = 0.0;
  for (std::size_t k = 0; k < xs.size(); ++k) y += ws.empty() ? xs[k].value() : xs[k].value() * ws[k];
  if (t.anomaly() && !std::isfinite(y)) [[unlikely]] {
    // As for every primitive: blamed only if its inputs (the weights too) are all finite.
    const auto finite = [](double v) { return std::isfinite(v); };
    if (std::ranges::all_of(xs, finite, &Var::value) && std::ranges::all_of(ws, finite)) {
      t.report_anomaly(name, "forward",
                       fmt::format("value {} from {} finite input(s)", y, xs.size()));
    }
  }
  if (!t.recording() || active == 0) return Var::constant(y);
  for (const Var& x : xs) x.share();  // the new statement names it too: no longer the only handle
  // Operands go straight into the statement stream: no scratch buffers.
  const auto first = static_cast<Index>(t.size());  // the first statement written
  Tape::StatementWriter w = t.begin_statement(active);
  for (std::size_t k = 0; k < xs.size(); ++k) {
    if (!xs[k].is_constant()) w.put(xs[k].index(), ws.empty() ? 1.0 : ws[k]);
  }
  const Index i = w.finish();
  if (t.anomaly()) [[unlikely]] t.name_statements(first, name);  // a long sum is several
  return Var::make_fresh(y, i, t.epoch());
}
}  // namespace detail

Var sum(std::span<const Var> xs) { return detail::record_linear("sum", xs, {}); }

Var dot(std::span<const Var> xs, std::span<const double> ws) {
  if (xs.size() != ws.size()) {
    throw ShapeError(fmt::format("dot: {} variables but {} weights", xs.size(), ws.size()));
  }
  return detail::record_linear("dot", xs, ws);
}

void inputs(std::span<const double> values, std::span<Var> out) {
  if (values.size() != out.size()) {
    throw ShapeError(
        fmt::format("inputs: {} values but room for {} variables", values.size(), out.size()));
  }
  Tape& t = active_tape();
  // The index is the low half of the packed tag, and the last index fits in it (the tape holds at
  // most 2^32 - 1 variables): input k's tag is the first's plus k.
  std::uint64_t tag = Var::Tag::pack(t.push_inputs(values.size()), t.epoch());
  for (std::size_t k = 0; k < values.size(); ++k) {
    out[k].value_ = values[k];
    out[k].tag_.set(tag++);
  }
}

std::vector<Var> inputs(std::span<const double> values) {
  std::vector<Var> out(values.size());
  inputs(values, out);
  return out;
}

namespace {

struct InputScan {
  std::uint32_t stale;  // nonzero if some recorded input is not of this recording
  Index low;            // the lowest input index - 1, at most the initial value
  std::uint32_t gap;    // zero if the inputs' indices run consecutively (tg::inputs' Vars)
};

// tg::gradient's check of its inputs, one pass without branches: a constant (index 0, epoch 0)
// passes the check and does not lower `low` (its index - 1 wraps around). It runs over every input
// of every gradient, and baseline x86-64 (SSE2) has no unsigned 32-bit minimum: 5.3 us for 10,000
// inputs there, 2.7 as compiled for AVX2 and 1.7 for AVX-512 (docs/benchmarks.md), hence
// run_kernel.
InputScan scan_inputs(std::span<const Var> xs, std::uint32_t epoch, Index low) {
  InputScan scan{0, low, 0};
  if (xs.empty()) return scan;
  const Index first = xs[0].index();
  detail::run_kernel(static_cast<std::int64_t>(xs.size()), [&]() __attribute__((always_inline)) {
    // Locals, not the captured references: stores through those might alias the inputs.
    std::uint32_t stale = 0;
    Index lowest = low;
    std::uint32_t gap = 0;
    for (std::size_t k = 0; k < xs.size(); ++k) {
      const Var& x = xs[k];
      const Index i = x.index();
      stale |= (x.epoch() ^ epoch) & (0u - static_cast<std::uint32_t>(i != 0));
      lowest = std::min(lowest, i - 1);
      gap |= i ^ (first + static_cast<Index>(k));
    }
    scan = {stale, lowest, gap};
  });
  return scan;
}

}  // namespace

void gradient(const Var& f, std::span<const Var> xs, std::span<double> out) {
  if (xs.size() != out.size()) {
    throw ShapeError(fmt::format("gradient: {} inputs but room for {} results", xs.size(), out.size()));
  }
  Tape& t = active_tape();
  if (!f.is_constant()) t.check_epoch(f.epoch(), "gradient (output)");
  // One pass checks the inputs (also for a constant f), finds the lowest, where the sweep may
  // stop, and whether their indices run consecutively; a second reads the adjoints, as one copy if
  // they do. Both without branches: a constant reads adjoint 0, the constant sink, which the sweep
  // leaves at 0; so does an input recorded after f.
  const auto [stale, low, gap] = scan_inputs(xs, t.epoch(), f.index() - 1);
  if (stale != 0) {
    for (const Var& x : xs) {
      if (!x.is_constant()) t.check_epoch(x.epoch(), "gradient (input)");
    }
  }
  if (f.is_constant()) {
    std::fill(out.begin(), out.end(), 0.0);
    return;
  }
  t.sweep(f.index(), 1.0, low + 1);
  const Index last = f.index();
  const double* adj = t.adjoints();
  if (gap == 0 && !xs.empty()) {
    // Consecutive indices, first .. first + n - 1 (the Vars of tg::inputs): one copy, and 0 for
    // those recorded after f, which have no adjoint.
    const std::size_t first = xs[0].index();
    const std::size_t reached =
        first <= last ? std::min(xs.size(), std::size_t{last} + 1 - first) : 0;
    std::memcpy(out.data(), adj + first, reached * sizeof(double));
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(reached), out.end(), 0.0);
    return;
  }
#pragma GCC unroll 4
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const Index i = xs[k].index();
    out[k] = adj[i <= last ? i : 0];
  }
}

std::vector<double> gradient(const Var& f, std::span<const Var> xs) {
  std::vector<double> out(xs.size());
  gradient(f, xs, out);
  return out;
}

Jacobian jacobian(std::span<const Var> outputs, std::span<const Var> inputs) {
  Jacobian j{outputs.size(), inputs.size(), std::vector<double>(outputs.size() * inputs.size())};
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    gradient(outputs[i], inputs, std::span<double>(j.data).subspan(i * inputs.size(), inputs.size()));
  }
  return j;
}

std::ostream& operator<<(std::ostream& os, const Var& v) { return os << v.value(); }

}  // namespace tg

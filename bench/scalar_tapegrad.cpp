// tapegrad: each workload recorded with tg::Var as a user writes it, then one reverse sweep.
// A timed iteration is a full gradient: set the inputs, record, backward, read the gradients into
// a vector, reset the tape.
#include "scalar.hpp"

#include <autodiff/var.hpp>

#include <vector>

namespace tgbench {
namespace {

struct TapegradTool {
  using Scalar = tg::Var;
  static tg::Var relu(const tg::Var& a) { return tg::relu(a); }
};

// The same programs as a user who knows tg::sum and tg::dot writes them (the "tapegrad_sum" and
// "tapegrad_dot" variants): a sum of many terms is one statement with an operand per term instead
// of a chain of two-operand additions. The terms go into a vector made in the call, as a user
// would make it (one heap allocation per gradient, timed).

struct SumsqSum : Sumsq {
  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> x) const {
    std::vector<T> terms(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) terms[i] = x[i] * x[i];
    return tg::sum(terms);
  }
};

struct LogsumexpSum : Logsumexp {
  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> x) const {
    std::vector<T> terms(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) terms[i] = exp(x[i]);
    return log(tg::sum(terms));
  }
};

struct RosenbrockSum : Rosenbrock {
  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> x) const {
    std::vector<T> terms(x.size() - 1);
    for (std::size_t i = 0; i + 1 < x.size(); ++i) {
      T a = x[i + 1] - x[i] * x[i];
      T b = 1.0 - x[i];
      terms[i] = 100.0 * a * a + b * b;
    }
    return tg::sum(terms);
  }
};

struct NormalLpdfSum : NormalLpdf {
  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> p) const {
    const T& mu = p[0];
    const T& sigma = p[1];
    std::vector<T> terms(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) {
      T z = (y[i] - mu) / sigma;
      terms[i] = -0.5 * z * z - log(sigma) - half_log_2pi;
    }
    return tg::sum(terms);
  }
};

/// Each hidden unit's W1 row times the fixed x is one tg::dot statement of 64 operands instead of
/// 64 products and 64 sums.
struct ReluMlpDot : ReluMlp {
  template <class Tool, class T = typename Tool::Scalar>
  T record(std::span<const std::type_identity_t<T>> p) const {
    T f = p[b2];
    for (std::size_t j = 0; j < width; ++j) {
      const T h = tg::dot(p.subspan(w1 + j * width, width), x) + p[b1 + j];
      f += p[w2 + j] * tg::relu(h);
    }
    return f;
  }
};

// How a timed iteration sets the inputs: with tg::inputs, as a user with a vector of values does
// (`tapegrad`), or one tg::Var at a time, `x[i] = value` (the `tapegrad_each` variant).
enum class Inputs { bulk, each };

// One full gradient of a workload with tapegrad: set the inputs, record, sweep and read the
// gradient into g, reset. `tapegrad` times it whole; `tapegrad_phases` (phases = true) times the
// phases apart.
template <class W>
void gradient(benchmark::State& state, const W& w, bool phases = false,
              Inputs how = Inputs::bulk) {
  const std::size_t n = w.point.size();
  tg::Tape& tape = tg::active_tape();
  tape.reset();
  std::vector<tg::Var> x(n);
  std::vector<double> g(n);
  tg::Var f;
  const auto inputs = [&] {
    if (how == Inputs::bulk) {
      tg::inputs(w.point, x);
    } else {
      for (std::size_t i = 0; i < n; ++i) x[i] = w.point[i];
    }
  };
  const auto record = [&] { f = w.template record<TapegradTool>(x); };
  const auto sweep = [&] { tg::gradient(f, x, g); };
  if (phases) {
    time_phases(state, w, g, inputs, record, [&] {
      sweep();
      tape.reset();
    });
    return;
  }

  inputs();
  record();
  sweep();
  if (!check_gradient(state, w, g)) return;
  const tg::TapeStats s = tape.stats();
  tape.reset();

  for (auto _ : state) {
    inputs();
    record();
    sweep();
    benchmark::DoNotOptimize(g.data());
    benchmark::ClobberMemory();
    tape.reset();
  }
  const tg::TapeStats after = tape.stats();

  // Memory of one recording. "tape B/operand" is the statement stream (what the recording keeps):
  // 2 bytes a statement (its operand count) and 12 (index + partial) an operand, divided by the
  // number of operands. "+adj B/operand" adds the sweep's adjoint workspace (8 bytes a variable).
  const auto ops = static_cast<double>(s.operands);
  state.counters["operands"] = ops;
  state.counters["tape B/operand"] = static_cast<double>(s.recording_bytes) / ops;
  state.counters["+adj B/operand"] =
      static_cast<double>(s.recording_bytes + s.adjoint_bytes) / ops;
  // Heap allocations made by the tape during the timed loop (expected: none).
  state.counters["tape allocs"] =
      static_cast<double>(after.heap_allocations - s.heap_allocations);
}

}  // namespace

void register_tapegrad(std::string_view workload) {
  with_workload(workload, [](const auto& w) {
    register_gradient(w, "tapegrad", [](benchmark::State& state, const auto& wl) {
      gradient(state, wl);
    });
  });
  const auto variant = [](const auto& w, std::string_view tool) {
    register_gradient(w, tool, [](benchmark::State& state, const auto& wl) { gradient(state, wl); });
  };
  if (workload == Sumsq::name) variant(SumsqSum{}, "tapegrad_sum");
  if (workload == Logsumexp::name) variant(LogsumexpSum{}, "tapegrad_sum");
  if (workload == Rosenbrock::name) variant(RosenbrockSum{}, "tapegrad_sum");
  if (workload == NormalLpdf::name) variant(NormalLpdfSum{}, "tapegrad_sum");
  if (workload == ReluMlp::name) variant(ReluMlpDot{}, "tapegrad_dot");
  if (workload != Chain::name && workload != NormalLpdf::name && !is_small(workload)) {
    with_workload(workload, [](const auto& w) {  // thousands of inputs
      register_gradient(w, "tapegrad_each", [](benchmark::State& state, const auto& wl) {
        gradient(state, wl, false, Inputs::each);
      });
    });
  }
  if (workload != Chain::name && !is_small(workload)) {
    with_workload(workload, [](const auto& w) {
      register_gradient(w, "tapegrad_phases", [](benchmark::State& state, const auto& wl) {
        gradient(state, wl, true);
      });
    });
  }
}

}  // namespace tgbench

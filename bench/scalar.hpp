// Shared pieces of the scalar benchmark: the list of workloads, the registration entry point of
// each tool (one translation unit per tool, so the peers' headers never meet), and the common
// shape of a timed gradient.
#pragma once

#include "workloads.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace tgbench {

/// The workloads in the order they run and are reported: the six, then the small ones.
inline constexpr std::array<std::string_view, 10> kWorkloads = {
    Sumsq::name,      Logsumexp::name,      Rosenbrock::name,      NormalLpdf::name,
    ReluMlp::name,    Chain::name,
    SumsqSmall::name, LogsumexpSmall::name, RosenbrockSmall::name, NormalLpdfSmall::name};

/// True for the n = 2,000 versions, which the targets do not cover.
constexpr bool is_small(std::string_view workload) { return workload.ends_with("_n2000"); }

/// Calls f with a freshly built workload object of the given name.
template <class F>
void with_workload(std::string_view name, F&& f) {
  if (name == Sumsq::name) std::forward<F>(f)(Sumsq{});
  else if (name == Logsumexp::name) std::forward<F>(f)(Logsumexp{});
  else if (name == Rosenbrock::name) std::forward<F>(f)(Rosenbrock{});
  else if (name == NormalLpdf::name) std::forward<F>(f)(NormalLpdf{});
  else if (name == ReluMlp::name) std::forward<F>(f)(ReluMlp{});
  else if (name == Chain::name) std::forward<F>(f)(Chain{});
  else if (name == SumsqSmall::name) std::forward<F>(f)(SumsqSmall{});
  else if (name == LogsumexpSmall::name) std::forward<F>(f)(LogsumexpSmall{});
  else if (name == RosenbrockSmall::name) std::forward<F>(f)(RosenbrockSmall{});
  else if (name == NormalLpdfSmall::name) std::forward<F>(f)(NormalLpdfSmall{});
}

/// Registers benchmark "<workload>/<tool>" running body(state, w) on its own copy of the workload.
/// The chain also reports its time per operation ("time/op", in seconds: 5n is 5 ns).
template <class W, class Body>
void register_gradient(const W& w, std::string_view tool, Body body) {
  benchmark::RegisterBenchmark(
      (std::string(W::name) + "/" + std::string(tool)).c_str(),
      [w, body](benchmark::State& state) {
        body(state, w);
        if constexpr (std::is_same_v<W, Chain>) {
          state.counters["time/op"] = benchmark::Counter(
              static_cast<double>(Chain::ops),
              benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
        }
      })
      ->Unit(std::is_same_v<W, Chain> ? benchmark::kNanosecond : benchmark::kMicrosecond)
      // With --benchmark_repetitions: the fastest repetition, the least disturbed by other work on
      // the machine (noise only ever adds time). The summary table reports it.
      ->ComputeStatistics("min", [](const std::vector<double>& v) {
        return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
      });
}

/// Checks a tool's gradient against the hand-written adjoint before timing it; a wrong gradient
/// skips the benchmark with the error. Returns false then.
template <class W>
bool check_gradient(benchmark::State& state, const W& w, std::span<const double> g) {
  std::vector<double> expected(w.point.size());
  w.adjoint(w.point, expected);
  const double err = gradient_error(g, expected);
  if (!(err <= kGradientTolerance)) {
    state.SkipWithError(("gradient differs from the hand-written adjoint by " +
                         std::to_string(err) + " (relative)").c_str());
    return false;
  }
  return true;
}

/// The timed loop of a tool whose iteration is one call of `full_gradient` (set the inputs, record,
/// sweep, read the gradient into g): one call checked against the hand-written adjoint first, then
/// the timing.
template <class W, class F>
void time_full_gradients(benchmark::State& state, const W& w, std::span<const double> g,
                         F&& full_gradient) {
  full_gradient();
  if (!check_gradient(state, w, g)) return;
  for (auto _ : state) {
    full_gradient();
    benchmark::DoNotOptimize(g.data());
    benchmark::ClobberMemory();
  }
}

/// The phases of a full gradient, timed apart: "<workload>/<tool>_phases" runs the same iteration
/// as "<workload>/<tool>" (inputs(), record(), gradient(), which reads the gradient into g and
/// readies the tool for the next recording) and reports each phase's time per gradient as a counter
/// in microseconds ("inputs us", "record us", "gradient us"); the summary prints the fastest
/// repetition of each. This says where a tool's time goes; the four clock reads add about 0.1 µs
/// to the whole.
inline constexpr std::array<const char*, 3> kPhaseCounters = {"inputs us", "record us",
                                                              "gradient us"};
template <class W, class Inputs, class Record, class Gradient>
void time_phases(benchmark::State& state, const W& w, std::span<const double> g, Inputs&& inputs,
                 Record&& record, Gradient&& gradient) {
  inputs();
  record();
  gradient();
  if (!check_gradient(state, w, g)) return;
  using Clock = std::chrono::steady_clock;
  std::array<Clock::duration, 3> spent{};
  for (auto _ : state) {
    const Clock::time_point t0 = Clock::now();
    inputs();
    const Clock::time_point t1 = Clock::now();
    record();
    const Clock::time_point t2 = Clock::now();
    gradient();
    benchmark::DoNotOptimize(g.data());
    benchmark::ClobberMemory();
    const Clock::time_point t3 = Clock::now();
    spent[0] += t1 - t0;
    spent[1] += t2 - t1;
    spent[2] += t3 - t2;
  }
  for (std::size_t k = 0; k < spent.size(); ++k) {
    state.counters[kPhaseCounters[k]] =
        std::chrono::duration<double, std::micro>(spent[k]).count() /
        static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
  }
}

// One per tool; each registers its benchmark of the named workload.
void register_hand(std::string_view workload);
void register_bare(std::string_view workload);  // sumsq and logsumexp only
void register_tapegrad(std::string_view workload);
#ifdef TAPEGRAD_BENCH_HAVE_SACADO
void register_sacado(std::string_view workload);
#endif
#ifdef TAPEGRAD_BENCH_HAVE_ADOLC
void register_adolc(std::string_view workload);
#endif

}  // namespace tgbench

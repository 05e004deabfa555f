// The main() shared by the benchmark programs: Google Benchmark's usual command line, and when the
// output is the console (no --benchmark_format other than console), a ConsoleReporter subclass that
// prints the program's summary of targets after the usual table. The summaries read what the runs
// said through RecordingReporter.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tgbench {

/// What the runs of one benchmark said, for a program's summary. Times are seconds per iteration.
struct RunRecord {
  struct Aggregate {
    double cpu = 0.0;
    double real = 0.0;
    std::map<std::string, double> counters;
  };
  int runs = 0;          ///< plain runs (not aggregates)
  double cpu_sum = 0.0;  ///< over the plain runs
  double real_sum = 0.0;
  std::map<std::string, double> counter_sums;   ///< over the plain runs
  std::map<std::string, Aggregate> aggregates;  ///< "median", "min", ... (--benchmark_repetitions)
  std::string error;                            ///< why the benchmark was skipped, if it was

  /// CPU time: the aggregate named (e.g. "min", the fastest repetition) if there is one, else the
  /// mean of the runs; nothing for a skipped benchmark.
  std::optional<double> cpu(std::string_view aggregate) const {
    return pick(aggregate, &Aggregate::cpu, cpu_sum);
  }
  /// Wall time, the same way.
  std::optional<double> real(std::string_view aggregate) const {
    return pick(aggregate, &Aggregate::real, real_sum);
  }
  /// Counter `name`: its value in the aggregate named if there is one, else its mean over the runs.
  std::optional<double> counter(const std::string& name, std::string_view aggregate) const {
    if (!error.empty()) return std::nullopt;
    if (const auto a = aggregates.find(std::string(aggregate)); a != aggregates.end()) {
      if (const auto c = a->second.counters.find(name); c != a->second.counters.end()) {
        return c->second;
      }
    }
    const auto c = counter_sums.find(name);
    if (c == counter_sums.end() || runs == 0) return std::nullopt;
    return c->second / runs;
  }

 private:
  std::optional<double> pick(std::string_view aggregate, double Aggregate::*field,
                             double sum) const {
    if (!error.empty()) return std::nullopt;
    if (const auto a = aggregates.find(std::string(aggregate)); a != aggregates.end()) {
      return a->second.*field;
    }
    if (runs == 0) return std::nullopt;
    return sum / runs;
  }
};

/// The console table, and a RunRecord per benchmark (by its function name) for the summary that a
/// subclass prints in Finalize().
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  using benchmark::ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      RunRecord& e = records_[r.run_name.function_name];
      if (r.error_occurred) {
        e.error = r.error_message;
        continue;
      }
      const double unit = benchmark::GetTimeUnitMultiplier(r.time_unit);
      const double cpu = r.GetAdjustedCPUTime() / unit;
      const double real = r.GetAdjustedRealTime() / unit;
      if (r.run_type == Run::RT_Aggregate) {
        RunRecord::Aggregate& a = e.aggregates[r.aggregate_name];
        a.cpu = cpu;
        a.real = real;
        for (const auto& [name, c] : r.counters) a.counters[name] = c.value;
        continue;
      }
      ++e.runs;
      e.cpu_sum += cpu;
      e.real_sum += real;
      for (const auto& [name, c] : r.counters) e.counter_sums[name] += c.value;
    }
  }

 protected:
  /// What benchmark `name` said, or null if it did not run.
  const RunRecord* record(const std::string& name) const {
    const auto it = records_.find(name);
    return it == records_.end() ? nullptr : &it->second;
  }
  /// Every benchmark that ran, by name.
  const std::map<std::string, RunRecord>& records() const { return records_; }

 private:
  std::map<std::string, RunRecord> records_;
};

/// False when --benchmark_format asks for something other than the console table.
inline bool wants_console(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("--benchmark_format=") && a != "--benchmark_format=console") return false;
  }
  return true;
}

/// Initialises Google Benchmark from the command line, calls register_all() to register the
/// program's benchmarks, runs them (with a Reporter, constructed from the console's colour
/// setting, when the output is the console) and returns main()'s exit code.
template <class Reporter, class Register>
int benchmark_main(int argc, char** argv, Register register_all) {
  const bool console = wants_console(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  if (console) {
    Reporter reporter(isatty(STDOUT_FILENO) != 0 ? benchmark::ConsoleReporter::OO_Color
                                                 : benchmark::ConsoleReporter::OO_None);
    benchmark::RunSpecifiedBenchmarks(&reporter);
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
  return 0;
}

}  // namespace tgbench

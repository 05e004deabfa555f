// tapegrad_bench_scalar: the five workloads and the chain of issue 2, with tapegrad, the
// hand-written adjoint, the bare statement stream (sumsq and logsumexp) and (when built with them)
// Sacado and ADOL-C, followed by a summary table of the ratios and the targets. Run with
// --benchmark_repetitions=N (docs/benchmarks.md).
#include "bench_main.hpp"
#include "scalar.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tgbench {
namespace {

constexpr double kWorkloadTarget = 0.5;     // tapegrad time / Sacado time
constexpr double kChainTargetNs = 10.0;     // per operation
constexpr double kMemoryTarget = 16.0;      // bytes of tape per recorded operand

/// The console output, then a table per workload: the CPU time of each tool (the fastest of the
/// repetitions with --benchmark_repetitions, else the mean of the runs), tapegrad/Sacado, the
/// targets.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  using benchmark::ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      Entry& e = entries_[r.run_name.function_name];
      const double ns = r.GetAdjustedCPUTime() / benchmark::GetTimeUnitMultiplier(r.time_unit) * 1e9;
      if (r.run_type == Run::RT_Aggregate) {
        if (r.aggregate_name != "min") continue;
        e.min_ns = ns;
      } else {
        e.sum_ns += ns;
        ++e.runs;
      }
      for (const auto& [name, c] : r.counters) e.counters[name] = c.value;
    }
  }

  void Finalize() override {
    std::FILE* out = stdout;
    std::fflush(out);
    std::fprintf(out, "\nSummary (CPU time per full gradient; the fastest repetition when repeated)\n");
    std::fprintf(out, "%-18s %10s %10s %10s %10s %10s %9s %8s %8s\n", "workload", "hand",
                 "tapegrad", "sacado", "adolc-rep", "adolc-rec", "tg/sacado", "tape B/op",
                 "+adj B/op");
    for (std::string_view w : kWorkloads) {
      if (w == SumsqSmall::name) std::fprintf(out, "at n = 2,000 (the tapes fit in L2):\n");
      const bool chain = w == Chain::name;
      // The chain is reported per operation, the workloads per gradient.
      const double scale = chain ? 1.0 / static_cast<double>(Chain::ops) : 1e-3;
      std::fprintf(out, "%-18s", std::string(w).c_str());
      for (std::string_view tool : {"hand", "tapegrad", "sacado", "adolc_replay", "adolc_retape"}) {
        const std::optional<double> t = time_ns(w, tool);
        if (t) std::fprintf(out, " %7.2f %s", *t * scale, chain ? "ns" : "us");
        else std::fprintf(out, " %10s", "-");
      }
      const std::optional<double> tg = time_ns(w, "tapegrad");
      const std::optional<double> sac = time_ns(w, "sacado");
      if (tg && sac) std::fprintf(out, " %9.2f", *tg / *sac);
      else std::fprintf(out, " %9s", "-");
      const auto c = entries_.find(std::string(w) + "/tapegrad");
      if (c != entries_.end() && c->second.counters.count("tape B/operand") != 0) {
        std::fprintf(out, " %8.2f %8.2f", c->second.counters.at("tape B/operand"),
                     c->second.counters.at("+adj B/operand"));
      }
      std::fprintf(out, "\n");
    }
    std::fprintf(out, "(chain: per operation; others: microseconds. adolc-rep replays one stored "
                      "tape with gradient(); adolc-rec records a new tape each time.)\n");
    // Variants of the tapegrad program (tool names "tapegrad_*", e.g. with tg::dot).
    for (const auto& [name, e] : entries_) {
      const std::size_t slash = name.find("/tapegrad_");
      if (slash == std::string::npos) continue;
      const std::string workload = name.substr(0, slash);
      const std::optional<double> t = time_ns(workload, name.substr(slash + 1));
      const std::optional<double> sac = time_ns(workload, "sacado");
      if (!t) continue;
      std::fprintf(out, "variant %-24s %8.2f us", name.c_str(), *t * 1e-3);
      if (sac) std::fprintf(out, "   tg/sacado %.2f", *t / *sac);
      std::fprintf(out, "\n");
    }
    // The bare statement stream (scalar_bare.cpp): the floor of a tape with this layout.
    for (std::string_view w : kWorkloads) {
      const std::optional<double> bare = time_ns(w, "bare");
      const std::optional<double> sac = time_ns(w, "sacado");
      const std::optional<double> tg = time_ns(w, "tapegrad");
      if (!bare) continue;
      std::fprintf(out, "bare    %-24s %8.2f us", std::string(w).c_str(), *bare * 1e-3);
      if (sac) std::fprintf(out, "   bare/sacado %.2f", *bare / *sac);
      if (tg) std::fprintf(out, "   tapegrad/bare %.2f", *tg / *bare);
      std::fprintf(out, "\n");
    }
    print_targets(out);
    std::fflush(out);
  }

 private:
  struct Entry {
    double sum_ns = 0.0;
    int runs = 0;
    std::optional<double> min_ns;
    std::map<std::string, double> counters;
  };

  std::optional<double> time_ns(std::string_view workload, std::string_view tool) const {
    const auto it = entries_.find(std::string(workload) + "/" + std::string(tool));
    if (it == entries_.end()) return std::nullopt;
    if (it->second.min_ns) return it->second.min_ns;
    if (it->second.runs == 0) return std::nullopt;
    return it->second.sum_ns / it->second.runs;
  }

  void print_targets(std::FILE* out) const {
    std::fprintf(out, "\nTargets (issue 2)\n");
    for (std::string_view w : kWorkloads) {
      if (w == Chain::name || is_small(w)) continue;
      const std::optional<double> tg = time_ns(w, "tapegrad");
      const std::optional<double> sac = time_ns(w, "sacado");
      if (!tg) continue;
      if (!sac) {
        std::fprintf(out, "  %-12s tapegrad/sacado <= %.1f: not measured (configure with "
                          "-DTAPEGRAD_BENCH_SACADO=ON)\n", std::string(w).c_str(), kWorkloadTarget);
        continue;
      }
      const double r = *tg / *sac;
      std::fprintf(out, "  %-12s tapegrad/sacado <= %.1f: %.2f  %s", std::string(w).c_str(),
                   kWorkloadTarget, r, r <= kWorkloadTarget ? "met" : "MISSED");
      for (std::string_view variant : {"tapegrad_sum", "tapegrad_dot"}) {
        if (const std::optional<double> v = time_ns(w, variant)) {
          const double rv = *v / *sac;
          std::fprintf(out, "  (with %s: %.2f %s)", variant == "tapegrad_sum" ? "tg::sum" : "tg::dot",
                       rv, rv <= kWorkloadTarget ? "met" : "missed");
        }
      }
      std::fprintf(out, "\n");
    }
    if (const std::optional<double> t = time_ns(Chain::name, "tapegrad")) {
      const double per_op = *t / static_cast<double>(Chain::ops);
      std::fprintf(out, "  %-12s ns per operation <= %.0f: %.2f  %s\n", "chain", kChainTargetNs,
                   per_op, per_op <= kChainTargetNs ? "met" : "MISSED");
    }
    // Per workload, since the margin is thin: 16 bytes is exactly a one-operand statement.
    std::string met;
    std::string missed;
    for (std::string_view w : kWorkloads) {
      if (is_small(w)) continue;
      const auto c = entries_.find(std::string(w) + "/tapegrad");
      if (c == entries_.end() || c->second.counters.count("tape B/operand") == 0) continue;
      const double b = c->second.counters.at("tape B/operand");
      char item[64];
      std::snprintf(item, sizeof item, " %s %.4f", std::string(w).c_str(), b);
      (b <= kMemoryTarget ? met : missed) += item;
    }
    if (!met.empty() || !missed.empty()) {
      std::fprintf(out, "  %-12s tape bytes per recorded operand <= %.0f (the statement stream; "
                        "+adj B/op adds the adjoints):\n", "memory", kMemoryTarget);
      if (!met.empty()) std::fprintf(out, "               met:%s\n", met.c_str());
      if (!missed.empty()) std::fprintf(out, "               MISSED:%s\n", missed.c_str());
    }
  }

  std::map<std::string, Entry> entries_;
};

}  // namespace
}  // namespace tgbench

int main(int argc, char** argv) {
  return tgbench::benchmark_main<tgbench::SummaryReporter>(argc, argv, [] {
    for (std::string_view w : tgbench::kWorkloads) {
      tgbench::register_hand(w);
      tgbench::register_bare(w);
      tgbench::register_tapegrad(w);
#ifdef TAPEGRAD_BENCH_HAVE_SACADO
      tgbench::register_sacado(w);
#endif
#ifdef TAPEGRAD_BENCH_HAVE_ADOLC
      tgbench::register_adolc(w);
#endif
    }
  });
}

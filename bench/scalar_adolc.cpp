// ADOL-C on the same workloads, two ways:
//   adolc_replay: the program is recorded once (before timing); each timed gradient replays the
//                 stored tape at the inputs with gradient() (a forward and a reverse sweep). This is
//                 valid here because the inputs, hence every branch (relu), never change.
//   adolc_retape: each timed gradient records the program anew (trace_on with keep = 1, so the
//                 values stay for the reverse sweep) and runs fos_reverse().
#include "scalar.hpp"

#include <adolc/adolc.h>

#include <vector>

namespace tgbench {
namespace {

struct AdolcTool {
  using Scalar = adouble;
  static adouble relu(const adouble& a) { return fmax(a, 0.0); }
};

// One tape tag for every benchmark: each records its program before timing (benchmarks run one
// after another), and ADOL-C keeps a Taylor buffer per tag, of which it allows only a few.
constexpr short kTag = 1;

template <class W>
void record(short tag, const W& w, std::vector<adouble>& x, int keep) {
  trace_on(tag, keep);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] <<= w.point[i];
  adouble f = w.template record<AdolcTool>(x);
  double value = 0.0;
  f >>= value;
  trace_off();
  benchmark::DoNotOptimize(value);
}

template <class W>
void replay(benchmark::State& state, const W& w) {
  const short tag = kTag;
  const int n = static_cast<int>(w.point.size());
  std::vector<adouble> x(w.point.size());
  std::vector<double> g(w.point.size());
  record(tag, w, x, 0);
  const auto full_gradient = [&] { gradient(tag, n, w.point.data(), g.data()); };

  time_full_gradients(state, w, g, full_gradient);
}

template <class W>
void retape(benchmark::State& state, const W& w) {
  const short tag = kTag;
  const int n = static_cast<int>(w.point.size());
  std::vector<adouble> x(w.point.size());
  std::vector<double> g(w.point.size());
  double seed = 1.0;
  const auto full_gradient = [&] {
    record(tag, w, x, 1);
    fos_reverse(tag, 1, n, &seed, g.data());
  };

  time_full_gradients(state, w, g, full_gradient);
}

}  // namespace

void register_adolc(std::string_view workload) {
  with_workload(workload, [](const auto& w) {
    register_gradient(w, "adolc_replay", [](benchmark::State& state, const auto& wl) {
      replay(state, wl);
    });
    register_gradient(w, "adolc_retape", [](benchmark::State& state, const auto& wl) {
      retape(state, wl);
    });
  });
}

}  // namespace tgbench

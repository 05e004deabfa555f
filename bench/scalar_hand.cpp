// The floor: each workload's gradient written by hand in plain double, no tape.
#include "scalar.hpp"

#include <vector>

namespace tgbench {

void register_hand(std::string_view workload) {
  with_workload(workload, [](const auto& w) {
    register_gradient(w, "hand", [](benchmark::State& state, const auto& wl) {
      std::vector<double> g(wl.point.size());
      for (auto _ : state) {
        const double f = wl.adjoint(wl.point, g);
        benchmark::DoNotOptimize(f);
        benchmark::DoNotOptimize(g.data());
        benchmark::ClobberMemory();
      }
    });
  });
}

}  // namespace tgbench

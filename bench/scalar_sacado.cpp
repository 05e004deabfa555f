// Sacado's reverse mode (Sacado::Rad, the templated RAD package of Trilinos) on the same workloads:
// the same templated programs, recorded with Sacado::Rad::ADvar<double>; ADvar::Gradcomp() sweeps
// and makes the memory ready for the next recording, so it also plays the part of the reset.
#include "scalar.hpp"

#include <Sacado_trad.hpp>

#include <vector>

namespace tgbench {
namespace {

using SacadoVar = Sacado::Rad::ADvar<double>;

struct SacadoTool {
  using Scalar = SacadoVar;
  static SacadoVar relu(const SacadoVar& a) { return max(a, 0.0); }
};

template <class W>
void gradient(benchmark::State& state, const W& w) {
  const std::size_t n = w.point.size();
  std::vector<SacadoVar> x(n);
  std::vector<double> g(n);
  const auto full_gradient = [&] {
    for (std::size_t i = 0; i < n; ++i) x[i] = w.point[i];
    const SacadoVar f = w.template record<SacadoTool>(x);
    SacadoVar::Gradcomp();
    for (std::size_t i = 0; i < n; ++i) g[i] = x[i].adj();
    benchmark::DoNotOptimize(f.val());
  };

  time_full_gradients(state, w, g, full_gradient);
}

}  // namespace

void register_sacado(std::string_view workload) {
  with_workload(workload, [](const auto& w) {
    register_gradient(w, "sacado", [](benchmark::State& state, const auto& wl) {
      gradient(state, wl);
    });
  });
}

}  // namespace tgbench

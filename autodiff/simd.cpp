#include <autodiff/simd.hpp>

#include <autodiff/error.hpp>
#include <autodiff/gemm.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fmt/format.h>
#include <string_view>

namespace tg::detail {

SimdLevel max_simd_level() noexcept {
  const CpuFeatures cpu = cpu_features();
  if (TAPEGRAD_SIMD_DISPATCH && cpu.avx512) return SimdLevel::avx512;
  if (TAPEGRAD_SIMD_DISPATCH && cpu.avx2_fma) return SimdLevel::avx2;
  return SimdLevel::baseline;
}

namespace {
std::atomic<int> simd_in_use{-1};  // a SimdLevel, -1 before the first use

std::string_view simd_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512: return "avx512";
    case SimdLevel::avx2: return "avx2";
    case SimdLevel::baseline: break;
  }
  return "baseline";
}
}  // namespace

SimdLevel simd_level() {
  const int in_use = simd_in_use.load(std::memory_order_relaxed);
  if (in_use >= 0) [[likely]] return static_cast<SimdLevel>(in_use);
  SimdLevel level = max_simd_level();
  if (const char* env = std::getenv("TAPEGRAD_SIMD")) {
    const std::string_view want = env;
    SimdLevel asked = SimdLevel::baseline;
    if (want == "avx512") asked = SimdLevel::avx512;
    else if (want == "avx2") asked = SimdLevel::avx2;
    else if (want != "baseline") {
      throw ValueError(fmt::format("TAPEGRAD_SIMD: unknown instruction set '{}'; expected "
                                   "baseline, avx2 or avx512", want));
    }
    level = std::min(level, asked);
  }
  simd_in_use.store(static_cast<int>(level), std::memory_order_relaxed);
  return level;
}

void set_simd_level(SimdLevel level) {
  if (level > max_simd_level()) {
    throw ValueError(fmt::format("set_simd_level: this CPU does not run {} (at most {})",
                                 simd_name(level), simd_name(max_simd_level())));
  }
  simd_in_use.store(static_cast<int>(level), std::memory_order_relaxed);
}

}  // namespace tg::detail

// Running a test at every instruction set the CPU has (autodiff/simd.hpp): the levels, and a scope
// that uses one of them.
#pragma once

#include <autodiff/simd.hpp>

#include <vector>

namespace tgtest {

/// baseline, then avx2 and avx512 where this CPU runs them.
inline std::vector<tg::detail::SimdLevel> simd_levels() {
  using tg::detail::SimdLevel;
  std::vector<SimdLevel> out = {SimdLevel::baseline};
  if (tg::detail::max_simd_level() >= SimdLevel::avx2) out.push_back(SimdLevel::avx2);
  if (tg::detail::max_simd_level() >= SimdLevel::avx512) out.push_back(SimdLevel::avx512);
  return out;
}

/// Uses a SIMD level for a scope.
class SimdLevelScope {
 public:
  explicit SimdLevelScope(tg::detail::SimdLevel l) : previous_(tg::detail::simd_level()) {
    tg::detail::set_simd_level(l);
  }
  ~SimdLevelScope() { tg::detail::set_simd_level(previous_); }
  SimdLevelScope(const SimdLevelScope&) = delete;
  SimdLevelScope& operator=(const SimdLevelScope&) = delete;

 private:
  tg::detail::SimdLevel previous_;
};

}  // namespace tgtest

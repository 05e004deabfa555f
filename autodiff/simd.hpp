// Instruction sets chosen at run time: a loop written once, as a lambda marked always_inline, is
// compiled for the baseline x86-64 and again inside functions with the AVX2+FMA and AVX-512 target
// attributes; run_kernel runs the widest one the CPU has (and TAPEGRAD_SIMD allows). The tensor
// kernels (tensor_ops.hpp), tg::gradient's check of its inputs (var.cpp) and the sweep's scatter
// of a long statement (tape.cpp) run through it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace tg::detail {

/// Instruction sets a kernel is compiled for.
enum class SimdLevel : std::uint8_t { baseline, avx2, avx512 };
/// The widest level this CPU runs (AVX2 needs FMA too; AVX-512 means F, DQ, VL and BW).
SimdLevel max_simd_level() noexcept;
/// The level in use: max_simd_level(), lowered by TAPEGRAD_SIMD=baseline|avx2|avx512 in the
/// environment (read at the first call; another value throws tg::ValueError naming it).
SimdLevel simd_level();
/// For tests: the level to use from now on; throws tg::ValueError above max_simd_level().
void set_simd_level(SimdLevel level);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TAPEGRAD_SIMD_DISPATCH 1
template <class K>
[[gnu::target("avx2,fma")]] void run_avx2(const K& kernel) {
  kernel();
}
template <class K>
[[gnu::target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]] void run_avx512(const K& kernel) {
  kernel();
}
#else
#define TAPEGRAD_SIMD_DISPATCH 0
#endif

/// Below this many elements a loop runs inline, for the baseline instruction set: the call and
/// the level check would cost more than wider vectors save.
inline constexpr std::int64_t kDispatchMin = 256;

/// Runs `kernel` (a loop over n elements) for the widest instruction set in use.
template <class K>
inline void run_kernel(std::int64_t n, const K& kernel) {
#if TAPEGRAD_SIMD_DISPATCH
  if (n >= kDispatchMin) {
    switch (simd_level()) {
      case SimdLevel::avx512: run_avx512(kernel); return;
      case SimdLevel::avx2: run_avx2(kernel); return;
      case SimdLevel::baseline: break;
    }
  }
#endif
  kernel();
}

/// The same for a kernel written with GCC's vector types, which takes the width of the widest
/// vectors the instruction set it is compiled for has, in bytes: kernel(std::integral_constant<
/// std::size_t, W>{}) with W = 16 (baseline SSE2), 32 (AVX2) or 64 (AVX-512).
template <class K>
inline void run_kernel_sized(std::int64_t n, const K& kernel) {
#if TAPEGRAD_SIMD_DISPATCH
  if (n >= kDispatchMin) {
    switch (simd_level()) {
      case SimdLevel::avx512:
        run_avx512([&]() __attribute__((always_inline)) {
          kernel(std::integral_constant<std::size_t, 64>{});
        });
        return;
      case SimdLevel::avx2:
        run_avx2([&]() __attribute__((always_inline)) {
          kernel(std::integral_constant<std::size_t, 32>{});
        });
        return;
      case SimdLevel::baseline: break;
    }
  }
#endif
  kernel(std::integral_constant<std::size_t, 16>{});
}

}  // namespace tg::detail

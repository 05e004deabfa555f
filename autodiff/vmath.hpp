// exp, expm1, tanh and select for the rules of rules.hpp, in a form compilers vectorise.
//
// glibc's expf, expm1f and tanhf are scalar calls: a loop over a tensor that calls them runs one
// element at a time, and the activation kernels would spend most of their time there. The float
// versions below are branch-free straight-line code (Cody-Waite range reduction, a polynomial,
// scaling by 2^n through the exponent bits; every special case a select), so that GCC vectorises
// the tensor loops that inline them, at the default -ftrapping-math and without -ffast-math. They
// keep IEEE semantics at the edges: NaN in gives NaN out, exp overflows to +inf and underflows
// through the subnormals to 0, tanh(+-inf) = +-1, expm1(-inf) = -1, expm1(+-0) = tanh(+-0) = +-0.
// Their error is at most 2 ulp of the correctly rounded result (tests/gemm/test_kernels.cpp
// checks them against std:: over every float in the ranges that matter).
//
// The double versions are std::exp, std::expm1 and std::tanh: the double path (tg::Var, gradient
// checks) keeps the C library's values exactly.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace tg::math {

/// `if_true` where `condition` holds, else `if_false`; both are computed.
///
/// Piecewise formulas (the derivative of relu, the two branches of elu) are written with this
/// rather than ?: or if. GCC turns `c ? x : y` into control flow, may then move the computation
/// of x or y into its branch, and does not vectorise a loop whose branches hold floating-point
/// arithmetic unless -fno-trapping-math; a select by bit mask stays data flow, so the loop over a
/// tensor that inlines the formula vectorises with the default flags.
template <class T>
[[gnu::always_inline]] inline T select(bool condition, T if_true, T if_false) noexcept {
  static_assert(std::is_floating_point_v<T> && (sizeof(T) == 4 || sizeof(T) == 8));
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const Bits mask = Bits(0) - static_cast<Bits>(condition);
  return std::bit_cast<T>(static_cast<Bits>((std::bit_cast<Bits>(if_true) & mask) |
                                            (std::bit_cast<Bits>(if_false) & ~mask)));
}

namespace detail {
/// 2^n for n in [-126, 127], built in the exponent field.
inline float pow2i(std::int32_t n) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(n + 127) << 23);
}
/// The reduction shared by exp, expm1 and tanh: x = n ln2 + r, |r| <= ln2/2, for |x| < 2^21.
struct Reduced {
  float r;
  std::int32_t n;
};
inline Reduced reduce(float x) noexcept {
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = x * 1.44269504088896341f + kShift;
  const float n = t - kShift;
  // Cody-Waite: ln2 = kLn2Hi + kLn2Lo, kLn2Hi with few bits so that n * kLn2Hi is exact.
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440e-4f;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  // The integer in the low bits of t (unsigned arithmetic: defined for any bits, NaN included).
  const auto bits = std::bit_cast<std::uint32_t>(t) - std::bit_cast<std::uint32_t>(kShift);
  return {r, static_cast<std::int32_t>(bits)};
}
/// e^r for |r| <= ln2/2 (Cephes expf's coefficients, relative error below 2^-24).
inline float exp_reduced(float r) noexcept {
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * (r * r) + r + 1.0f;
}
/// e^r - 1 for |r| <= ln2/2: its Taylor series to r^8 (truncation error below 2^-31).
inline float expm1_reduced(float r) noexcept {
  float q = 1.0f / 40320.0f;
  q = q * r + 1.0f / 5040.0f;
  q = q * r + 1.0f / 720.0f;
  q = q * r + 1.0f / 120.0f;
  q = q * r + 1.0f / 24.0f;
  q = q * r + 1.0f / 6.0f;
  q = q * r + 0.5f;
  return q * (r * r) + r;
}
}  // namespace detail

/// e^x.
[[gnu::always_inline]] inline float exp(float x) noexcept {
  // Below -104 the result rounds to 0, above 89 to +inf; NaN fails both tests and passes through.
  const float xc = select(x > 89.0f, 89.0f, select(x < -104.0f, -104.0f, x));
  const auto [r, n] = detail::reduce(xc);
  // 2^n in two factors (n is in [-150, 128]), so that subnormal results round once and results
  // past the float range become +inf.
  const std::int32_t half = n / 2;
  return detail::exp_reduced(r) * detail::pow2i(half) * detail::pow2i(n - half);
}

/// e^x - 1, accurate near 0.
[[gnu::always_inline]] inline float expm1(float x) noexcept {
  // Below -88, e^x - 1 rounds to -1; above 89 it is +inf.
  const float xc = select(x > 89.0f, 89.0f, select(x < -88.0f, -88.0f, x));
  const auto [r, n] = detail::reduce(xc);
  const float q = detail::expm1_reduced(r);
  // e^x - 1 = 2^n (e^r - 1) + (2^n - 1): both terms exact for n <= 24, one rounding in the sum.
  // From n = 25 on the -1 no longer shows: 2^n (e^r) in two factors, which overflows to +inf.
  const std::int32_t nm = std::min(std::max(n, -126), 24);
  const float s = detail::pow2i(nm);
  const float mid = s * q + (s - 1.0f);
  const std::int32_t half = n / 2;
  const float big = (q + 1.0f) * detail::pow2i(half) * detail::pow2i(n - half);
  return select(x == 0.0f, x, select(n > 24, big, mid));  // x == 0: keeps the sign of a zero
}

/// tanh(x).
[[gnu::always_inline]] inline float tanh(float x) noexcept {
  // tanh(|x|) rounds to 1 from |x| = 9.01; NaN passes the clamp.
  const float ax = select(std::abs(x) > 9.0f, 9.0f, std::abs(x));
  // |x| < 0.625: an odd polynomial (Cephes tanhf's coefficients).
  const float s = ax * ax;
  float p = -5.70498872745e-3f;
  p = p * s + 2.06390887954e-2f;
  p = p * s - 5.37397155531e-2f;
  p = p * s + 1.33314422036e-1f;
  p = p * s - 3.33332819422e-1f;
  const float small = p * s * ax + ax;
  // Otherwise (1 - e) / (1 + e), e = e^(-2|x|) in [1.5e-8, 0.29]: no overflow, no subnormals.
  const auto [r, n] = detail::reduce(-2.0f * ax);
  const float e = detail::exp_reduced(r) * detail::pow2i(n);
  const float large = (1.0f - e) / (1.0f + e);
  return std::copysign(select(ax < 0.625f, small, large), x);
}

inline double exp(double x) noexcept { return std::exp(x); }
inline double expm1(double x) noexcept { return std::expm1(x); }
inline double tanh(double x) noexcept { return std::tanh(x); }

}  // namespace tg::math

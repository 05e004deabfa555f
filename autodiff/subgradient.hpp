// The choice of derivative at a kink, where the derivative of a non-smooth primitive does not
// exist. Every non-smooth primitive has one Kink; the value used there is resolved in this order:
//
//   1. the value passed to the call (`tg::relu(x, {.at_zero = 1.0})`),
//   2. the innermost tg::SubgradientScope for that kink on this thread,
//   3. the default, which is PyTorch's (see default_kink_value and docs/subgradients.md).
//
// The value is resolved when the primitive is recorded; a backward sweep uses what was recorded.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tg {

/// The non-smooth primitives, one entry per kink rule.
enum class Kink : std::uint8_t {
  relu,        ///< relu'(0)
  leaky_relu,  ///< leaky_relu'(0)
  elu,         ///< elu'(0)
  abs,         ///< abs'(0)
  max,         ///< share of the gradient that goes to the first argument of max(a, b) when a == b
  min,         ///< share of the gradient that goes to the first argument of min(a, b) when a == b
  clamp,       ///< clamp'(x) when x equals a bound
};
inline constexpr std::size_t kKinkCount = 7;

/// The primitive's name, as used in messages and reports ("relu", "leaky_relu", ...).
std::string_view kink_name(Kink k) noexcept;

/// PyTorch's choices: relu'(0) = 0, abs'(0) = 0, max/min split a tie half and half, clamp passes
/// the gradient (1) at its bounds. leaky_relu'(0) = scale and elu'(0) = alpha depend on the
/// primitive's parameter, so they are passed in as `parameter`.
double default_kink_value(Kink k, double parameter = 0.0) noexcept;

/// Throws tg::ValueError naming `where` unless `value` is finite.
double check_kink_value(double value, std::string_view where);

/// The innermost scoped override for `k` on this thread, if any.
std::optional<double> kink_override(Kink k) noexcept;

/// Resolves a kink value: per-call `requested` if given, else the thread's scoped override, else
/// `fallback` (the default). Validates that the result is finite.
double resolve_kink_value(Kink k, std::optional<double> requested, double fallback);

/// Changes the subgradient of one kind of kink for every primitive recorded on this thread while
/// the scope lives (unless a call passes its own value). Scopes nest; the previous value comes back
/// when the scope ends.
///
///     { tg::SubgradientScope one(tg::Kink::relu, 1.0);  train(); }  // relu'(0) = 1 throughout
class SubgradientScope {
 public:
  SubgradientScope(Kink k, double value);
  ~SubgradientScope();
  SubgradientScope(const SubgradientScope&) = delete;
  SubgradientScope& operator=(const SubgradientScope&) = delete;

 private:
  Kink kink_;
  std::optional<double> previous_;
};

/// How many times backward sweeps met each kind of non-smooth primitive exactly at its kink
/// (for tensor primitives: how many elements).
struct KinkCounts {
  std::array<std::uint64_t, kKinkCount> hits{};

  std::uint64_t operator[](Kink k) const noexcept { return hits[static_cast<std::size_t>(k)]; }
  std::uint64_t& operator[](Kink k) noexcept { return hits[static_cast<std::size_t>(k)]; }
  std::uint64_t total() const noexcept;
};

}  // namespace tg

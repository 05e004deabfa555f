#include <autodiff/subgradient.hpp>

#include <autodiff/error.hpp>

#include <cmath>
#include <fmt/format.h>

namespace tg {
namespace {
thread_local std::array<std::optional<double>, kKinkCount> tls_overrides{};
}

std::string_view kink_name(Kink k) noexcept {
  switch (k) {
    case Kink::relu: return "relu";
    case Kink::leaky_relu: return "leaky_relu";
    case Kink::elu: return "elu";
    case Kink::abs: return "abs";
    case Kink::max: return "max";
    case Kink::min: return "min";
    case Kink::clamp: return "clamp";
  }
  return "unknown";
}

double default_kink_value(Kink k, double parameter) noexcept {
  switch (k) {
    case Kink::relu: return 0.0;              // threshold_backward(grad, self, 0): grad where x > 0
    case Kink::leaky_relu: return parameter;  // x > 0 ? grad : grad * negative_slope
    case Kink::elu: return parameter;         // x <= 0 ? grad * alpha * exp(x) : grad
    case Kink::abs: return 0.0;               // grad * sgn(x), sgn(0) = 0
    case Kink::max:
    case Kink::min: return 0.5;               // where(a == b, grad / 2, ...)
    case Kink::clamp: return 1.0;             // where(lo <= x <= hi, grad, 0)
  }
  return 0.0;
}

double check_kink_value(double value, std::string_view where) {
  if (!std::isfinite(value)) {
    throw ValueError(fmt::format("{}: the subgradient at the kink must be a finite number, got {}",
                                 where, value));
  }
  return value;
}

std::optional<double> kink_override(Kink k) noexcept {
  return tls_overrides[static_cast<std::size_t>(k)];
}

double resolve_kink_value(Kink k, std::optional<double> requested, double fallback) {
  if (requested) return check_kink_value(*requested, kink_name(k));
  if (auto o = tls_overrides[static_cast<std::size_t>(k)]) return *o;
  return fallback;
}

SubgradientScope::SubgradientScope(Kink k, double value) : kink_(k) {
  check_kink_value(value, fmt::format("SubgradientScope({})", kink_name(k)));
  auto& slot = tls_overrides[static_cast<std::size_t>(k)];
  previous_ = slot;
  slot = value;
}

SubgradientScope::~SubgradientScope() { tls_overrides[static_cast<std::size_t>(kink_)] = previous_; }

std::uint64_t KinkCounts::total() const noexcept {
  std::uint64_t t = 0;
  for (auto h : hits) t += h;
  return t;
}

}  // namespace tg

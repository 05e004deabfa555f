// Helpers of the tensor tests: seeded double tensors, a gradcheck that must pass (and must actually
// compare something), and the message of an expected exception.
#pragma once

#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tgtest {

/// A double tensor of `shape`, uniform on [lo, hi), from `seed`.
inline tg::Tensor uniform(const tg::Shape& shape, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return tg::Tensor::rand(shape, seed, tg::Dtype::f64, lo, hi);
}

/// A double tensor holding `values`.
inline tg::Tensor f64(std::initializer_list<double> values, const tg::Shape& shape) {
  return tg::Tensor::from_values(values, shape, tg::Dtype::f64);
}

struct CheckOptions {
  tg::GradcheckOptions gradcheck = {};
  /// Whether a finite-difference step may cross a kink (the inputs sit exactly on one).
  bool kinks_allowed = false;
  /// Whether every derivative may be 0 (else at least one must not be: a check of zeros against
  /// zeros proves little).
  bool zero_allowed = false;
};

/// tg::gradcheck of f at `inputs`, which must pass; INFO shows the report on failure.
inline tg::TensorGradcheckReport require_gradcheck(std::string_view what, const tg::TensorFunction& f,
                                                   const std::vector<tg::Tensor>& inputs,
                                                   const CheckOptions& o = {}) {
  const tg::TensorGradcheckReport report = tg::gradcheck(f, inputs, o.gradcheck);
  INFO(fmt::format("{}:\n{}", what, report.summary()));
  REQUIRE(report.ok());
  std::size_t expected = 0;
  for (const tg::Tensor& t : inputs) expected += static_cast<std::size_t>(t.numel());
  REQUIRE(report.entries.size() == expected);
  bool any_nonzero = false;
  for (const tg::TensorGradcheckEntry& e : report.entries) {
    if (!o.kinks_allowed) REQUIRE_FALSE(e.check.kink);
    any_nonzero = any_nonzero || e.check.ad != 0.0;
  }
  if (!o.zero_allowed) REQUIRE(any_nonzero);
  return report;
}

/// The message of the exception of type E that `action` throws; the test fails if it throws
/// nothing or something else.
template <class E>
std::string error_message(const std::function<void()>& action) {
  try {
    action();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK(fmt::format("threw another exception: {}", e.what()));
    return {};
  }
  FAIL_CHECK("threw nothing");
  return {};
}

/// Element-wise |a - b| <= atol + rtol |b|.
inline bool all_close(const std::vector<double>& a, const std::vector<double>& b, double rtol = 1e-12,
                      double atol = 1e-14) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i]))) return false;
  }
  return true;
}

}  // namespace tgtest

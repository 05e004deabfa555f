#include "support/expect_ad.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <string>

namespace tgtest {
namespace {

// The same value as the reference: equal (infinities included), both NaN, or within rtol.
bool same_value(double v, double r, double rtol) {
  if (std::isnan(r) || std::isnan(v)) return std::isnan(r) && std::isnan(v);
  if (v == r) return true;
  return std::isfinite(r) && std::abs(v - r) <= rtol * std::abs(r);
}

std::vector<tg::Var> inputs_on(tg::Tape& tape, std::span<const double> x) {
  std::vector<tg::Var> v;
  for (double xi : x) v.emplace_back(xi, tape);
  return v;
}

bool keep_away(const AdCase& c, std::span<const double> x) {
  if (c.near_kink && c.near_kink(x)) return true;
  if (x.size() != 1) return false;
  for (const Subgradient& k : c.kinks) {
    if (std::abs(x[0] - k.at[0]) < c.kink_margin * std::max(1.0, std::abs(k.at[0]))) return true;
  }
  return false;
}

std::vector<double> random_point(const AdCase& c, std::mt19937_64& rng) {
  std::vector<double> x(c.domain.size());
  do {
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = std::uniform_real_distribution<double>(c.domain[i].lo, c.domain[i].hi)(rng);
    }
  } while (keep_away(c, x));
  return x;
}

std::vector<double> midpoint(const AdCase& c) {
  std::vector<double> x;
  for (const Interval& d : c.domain) x.push_back(0.5 * (d.lo + d.hi));
  return x;
}

// 1 and 2: values and finite-difference gradients at random points away from kinks.
void check_random_points(std::string_view name, const VarFunction& f, const RefFunction& ref,
                         const AdCase& c) {
  const std::uint64_t seed = seed_for(name);
  std::mt19937_64 rng(seed);
  tg::Tape tape;
  tg::TapeScope scope(tape);
  for (int p = 0; p < c.points; ++p) {
    const std::vector<double> x = random_point(c, rng);
    INFO(fmt::format("{} at x = ({}), point {} of seed {}", name, fmt::join(x, ", "), p, seed));
    tape.reset();
    const std::vector<tg::Var> v = inputs_on(tape, x);
    const double value = f(v).value();
    const double expected = ref(x);
    INFO(fmt::format("value {}, reference {}", value, expected));
    REQUIRE(std::isfinite(expected));
    REQUIRE(same_value(value, expected, c.value_rtol));

    const tg::GradcheckReport report = tg::gradcheck(f, x, c.gradcheck);
    INFO(report.summary());
    REQUIRE(report.ok());
    for (const tg::GradcheckEntry& e : report.entries) REQUIRE_FALSE(e.kink);
  }
}

// 3: exact subgradients.
void check_kinks(std::string_view name, const VarFunction& f, const RefFunction& ref,
                 const AdCase& c) {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  for (const Subgradient& k : c.kinks) {
    INFO(fmt::format("{} at the kink x = ({}): expected gradient ({})", name, fmt::join(k.at, ", "),
                     fmt::join(k.grad, ", ")));
    REQUIRE(k.at.size() == c.domain.size());
    REQUIRE(k.grad.size() == c.domain.size());
    tape.reset();
    const std::vector<tg::Var> v = inputs_on(tape, k.at);
    const tg::Var y = f(v);
    REQUIRE(same_value(y.value(), ref(k.at), c.value_rtol));
    const std::vector<double> g = tg::gradient(y, v);
    INFO(fmt::format("got ({})", fmt::join(g, ", ")));
    for (std::size_t i = 0; i < g.size(); ++i) REQUIRE(g[i] == k.grad[i]);
  }
}

// 4: edges and NaN inputs behave as the reference does.
void check_bad_input(std::string_view name, const VarFunction& f, const RefFunction& ref,
                     const AdCase& c) {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  std::vector<std::vector<double>> points = c.edges;
  const std::vector<double> mid = midpoint(c);
  for (std::size_t i = 0; i < mid.size(); ++i) {
    points.push_back(mid);
    points.back()[i] = std::numeric_limits<double>::quiet_NaN();
  }
  for (const std::vector<double>& x : points) {
    REQUIRE(x.size() == c.domain.size());
    tape.reset();
    const double value = f(inputs_on(tape, x)).value();
    INFO(fmt::format("{} at x = ({}): value {}, reference {}", name, fmt::join(x, ", "), value,
                     ref(x)));
    REQUIRE(same_value(value, ref(x), c.value_rtol));
  }
}

// 5: stale operands, operands of another tape, NoGrad and constants.
void check_misuse(std::string_view name, const VarFunction& f, const AdCase& c) {
  const std::vector<double> x = midpoint(c);
  const std::string prefix = std::string(name) + ":";
  tg::Tape tape;
  tg::TapeScope scope(tape);
  for (std::size_t i = 0; i < x.size(); ++i) {
    INFO(fmt::format("{}: operand {} of {} is stale", name, i, x.size()));
    const tg::Var stale(x[i], tape);
    tape.reset();
    std::vector<tg::Var> v = inputs_on(tape, x);
    v[i] = stale;
    const std::string message = tape_error_message([&] { (void)f(v); });
    REQUIRE_THAT(message, Catch::StartsWith(prefix) && Catch::Contains("another recording"));
  }
  {
    INFO(fmt::format("{}: operands recorded on another tape", name));
    tg::Tape other;
    const std::vector<tg::Var> foreign = inputs_on(other, x);
    REQUIRE_THAT(tape_error_message([&] { (void)f(foreign); }), Catch::StartsWith(prefix));
  }
  tape.reset();
  const std::vector<tg::Var> v = inputs_on(tape, x);
  const double value = f(v).value();
  const std::size_t size = tape.size();
  {
    INFO(fmt::format("{} under NoGrad", name));
    tg::NoGrad no_grad;
    const tg::Var y = f(v);
    REQUIRE(y.is_constant());
    REQUIRE(same_value(y.value(), value, 0.0));
    REQUIRE(tape.size() == size);
  }
  {
    INFO(fmt::format("{} of constants", name));
    std::vector<tg::Var> constants;
    for (double xi : x) constants.push_back(tg::Var::constant(xi));
    const tg::Var y = f(constants);
    REQUIRE(y.is_constant());
    REQUIRE(same_value(y.value(), value, 0.0));
    REQUIRE(tape.size() == size);
  }
}

}  // namespace

std::uint64_t seed_for(std::string_view name) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (char ch : name) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  return h;
}

std::string tape_error_message(const std::function<void()>& action) {
  try {
    action();
  } catch (const tg::TapeError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("expected tg::TapeError, got another exception: " << e.what());
  }
  return "";
}

void expect_ad_span(std::string_view name, const VarFunction& f, const RefFunction& ref,
                    const AdCase& c) {
  REQUIRE_FALSE(c.domain.empty());
  check_random_points(name, f, ref, c);
  check_kinks(name, f, ref, c);
  check_bad_input(name, f, ref, c);
  check_misuse(name, f, c);
}

}  // namespace tgtest

// The elementwise kernels and the math they inline:
//  - vmath.hpp's float exp, expm1 and tanh are within 2 ulp of the correctly rounded result on a
//    dense sample of all floats, and exact at the special values (NaN, infinities, signed zeros,
//    overflow, subnormal underflow); the double versions are the C library's;
//  - every instruction-set build of the tensor loops (baseline, AVX2, AVX-512 where the CPU runs
//    them) computes what the rule computes one element at a time, values, gradients and kink hits;
//  - a binary rule with a plain number gives what the same rule with a broadcast tensor gives;
//  - gradient buffers handed out for overwriting still accumulate every contribution.
#include <autodiff/tensor_index.hpp>
#include <autodiff/tensor_ops.hpp>
#include <autodiff/vmath.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "support/simd_level.hpp"

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

/// Distance in units in the last place between two floats of the same sign (or zeros).
std::int64_t ulp_distance(float a, float b) {
  auto key = [](float f) {
    const auto i = std::bit_cast<std::int32_t>(f);
    return i < 0 ? -static_cast<std::int64_t>(i & 0x7fffffff) : static_cast<std::int64_t>(i);
  };
  return std::abs(key(a) - key(b));
}

/// Checks f against the double-precision reference rounded to float, on every 4099th float
/// (about a million, both signs, every exponent) and on the given special values exactly.
void check_float_function(const std::string& name, float (*f)(float), double (*reference)(double),
                          std::int64_t max_ulp) {
  std::int64_t worst = 0;
  float worst_at = 0.0f;
  for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << 32); bits += 4099) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(bits));
    const float want = static_cast<float>(reference(static_cast<double>(x)));
    const float got = f(x);
    if (std::isnan(want) || std::isnan(got)) {
      if (std::isnan(want) != std::isnan(got)) FAIL(fmt::format("{}({}) = {}, expected {}", name, x, got, want));
      continue;
    }
    const std::int64_t d = ulp_distance(got, want);
    if (d > worst) {
      worst = d;
      worst_at = x;
    }
  }
  INFO(fmt::format("{}: worst {} ulp at {:a}", name, worst, worst_at));
  CHECK(worst <= max_ulp);
}

}  // namespace

TEST_CASE("vmath: float exp, expm1 and tanh are within 2 ulp over all exponents", "[vmath]") {
  check_float_function("exp", [](float x) { return tg::math::exp(x); }, [](double x) { return std::exp(x); }, 2);
  check_float_function("expm1", [](float x) { return tg::math::expm1(x); }, [](double x) { return std::expm1(x); }, 2);
  check_float_function("tanh", [](float x) { return tg::math::tanh(x); }, [](double x) { return std::tanh(x); }, 2);
}

TEST_CASE("vmath: special values as IEEE and the C library have them", "[vmath]") {
  using tg::math::exp;
  using tg::math::expm1;
  using tg::math::tanh;
  CHECK(std::isnan(exp(kNaN)));
  CHECK(std::isnan(expm1(kNaN)));
  CHECK(std::isnan(tanh(kNaN)));
  CHECK(exp(kInf) == kInf);
  CHECK(exp(-kInf) == 0.0f);
  CHECK(exp(0.0f) == 1.0f);
  CHECK(exp(-0.0f) == 1.0f);
  CHECK(exp(88.72f) == std::exp(88.72f));  // the largest finite results
  CHECK(exp(88.73f) == kInf);              // overflow
  CHECK(exp(1000.0f) == kInf);
  CHECK(exp(-87.5f) == Approx(std::exp(-87.5f)).epsilon(1e-6));  // subnormal results
  CHECK(ulp_distance(exp(-100.0f), std::exp(-100.0f)) <= 1);
  CHECK(ulp_distance(exp(-103.5f), std::exp(-103.5f)) <= 1);
  CHECK(exp(-104.0f) == 0.0f);
  CHECK(exp(-1000.0f) == 0.0f);
  CHECK(expm1(kInf) == kInf);
  CHECK(expm1(-kInf) == -1.0f);
  CHECK(expm1(-100.0f) == -1.0f);
  CHECK(expm1(89.0f) == kInf);
  CHECK(std::signbit(expm1(-0.0f)));
  CHECK(expm1(0.0f) == 0.0f);
  CHECK_FALSE(std::signbit(expm1(0.0f)));
  CHECK(expm1(1e-30f) == 1e-30f);
  CHECK(tanh(kInf) == 1.0f);
  CHECK(tanh(-kInf) == -1.0f);
  CHECK(tanh(20.0f) == 1.0f);
  CHECK(tanh(-20.0f) == -1.0f);
  CHECK(std::signbit(tanh(-0.0f)));
  CHECK(tanh(1e-30f) == 1e-30f);
  CHECK(tanh(-1e-30f) == -1e-30f);
}

TEST_CASE("vmath: the double versions are the C library's", "[vmath]") {
  for (double x : {-700.0, -20.0, -1.0, -1e-9, 0.0, 1e-9, 0.5, 3.0, 20.0, 700.0}) {
    CHECK(tg::math::exp(x) == std::exp(x));
    CHECK(tg::math::expm1(x) == std::expm1(x));
    CHECK(tg::math::tanh(x) == std::tanh(x));
  }
}

TEST_CASE("vmath: select picks by the condition and keeps NaN and signed zeros", "[vmath]") {
  CHECK(tg::math::select(true, 1.0f, 2.0f) == 1.0f);
  CHECK(tg::math::select(false, 1.0f, 2.0f) == 2.0f);
  CHECK(std::isnan(tg::math::select(true, kNaN, 0.0f)));
  CHECK(std::signbit(tg::math::select(false, 0.0, -0.0)));
  CHECK(tg::math::select(true, -3.5, 1e300) == -3.5);
}

// ---- The kernels at every instruction set ----------------------------------------------------------

namespace {

using tg::detail::SimdLevel;

/// 1,000 floats (past the dispatch threshold, not a multiple of any vector width): a spread over
/// [-12, 12], exact zeros and negative zeros, kinks of clamp, infinities, a NaN, subnormal inputs.
std::vector<float> inputs() {
  std::vector<float> v;
  for (int i = 0; i < 960; ++i) v.push_back(-12.0f + 24.0f * static_cast<float>(i) / 959.0f);
  for (float s : {0.0f, -0.0f, 0.0f, 1.0f, -1.0f, 0.5f, -0.5f, kInf, -kInf, kNaN, 1e-40f, -1e-40f,
                  90.0f, -90.0f, 1e-6f, -1e-6f, 0.625f, -0.625f, 9.5f, -9.5f}) {
    v.push_back(s);
  }
  for (int i = 0; i < 20; ++i) v.push_back(static_cast<float>(i % 3) - 1.0f);  // more -1, 0, 1
  return v;
}

/// The comparison with the per-element rule: exact (tol = 0) for the piecewise-linear rules; for
/// those with exp/tanh a few ulp of the value, and as much again of the size of the terms (up to
/// 8 here) for a derivative such as y (1 - y), where a one-ulp change of y near 1 moves 1 - y by
/// much more in relative terms: a wider build may fuse a multiply and an add.
bool close(float got, float want, float tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (got == want) return true;
  return std::abs(got - want) <= tol * (std::abs(want) + 8.0f);
}

template <class R>
void check_unary_rule(const std::string& name, const R& rule, float rel) {
  const std::vector<float> xs = inputs();
  const auto n = static_cast<std::int64_t>(xs.size());
  // The incoming gradient: 1 everywhere except some larger values, so d is checked, not only 1*d.
  std::vector<float> seed(xs.size());
  for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = 1.0f + static_cast<float>(i % 7);
  for (SimdLevel level : tgtest::simd_levels()) {
    INFO(fmt::format("{} at level {}", name, static_cast<int>(level)));
    const tgtest::SimdLevelScope use(level);
    tg::Tape tape;
    tg::TapeScope scope(tape);
    const tg::Tensor x = tg::Tensor::from_values(std::span<const float>(xs), tg::Shape{n}).requires_grad();
    const tg::Tensor h = x * 1.0;  // a recorded input: its gradient buffer is overwritten
    const tg::Tensor y = tg::apply(rule, h);
    tape.record_backward([&seed, y](tg::Tape& t) {
      float* g = y.grad_target<float>(t);
      for (std::size_t i = 0; i < seed.size(); ++i) g[i] = seed[i];
    });
    tape.reset_kink_hits();
    tape.sweep(static_cast<tg::Index>(tape.size() - 1));
    const float* yv = y.data<float>();
    const tg::Tensor gh = h.grad();
    const float* g = gh.data<float>();
    std::uint64_t hits = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const float want_y = rule.value(xs[i]);
      const float want_g = seed[i] * rule.derivative(xs[i], want_y);
      if (!close(yv[i], want_y, rel)) FAIL(fmt::format("value at x = {}: {} vs {}", xs[i], yv[i], want_y));
      if (!close(g[i], want_g, rel)) FAIL(fmt::format("gradient at x = {}: {} vs {}", xs[i], g[i], want_g));
      if constexpr (tg::KinkedRule<R>) hits += rule.at_kink(xs[i]) ? 1 : 0;
    }
    if constexpr (tg::KinkedRule<R>) CHECK(tape.kink_hits()[R::kink] == hits);
  }
}

}  // namespace

TEST_CASE("kernels: every instruction set computes each unary rule as the rule does", "[kernels]") {
  check_unary_rule("relu", tg::Relu::make(), 0.0f);
  check_unary_rule("relu at_zero=1", tg::Relu::make({.at_zero = 1.0}), 0.0f);
  check_unary_rule("leaky_relu", tg::LeakyRelu::make({0.2, std::nullopt}), 0.0f);
  check_unary_rule("elu", tg::Elu::make({1.5, std::nullopt}), 4e-7f);
  check_unary_rule("abs", tg::Abs::make(), 0.0f);
  check_unary_rule("clamp", tg::Clamp::make(-1.0, 0.5), 0.0f);
  check_unary_rule("tanh", tg::Tanh{}, 4e-7f);
  check_unary_rule("sigmoid", tg::Sigmoid{}, 4e-7f);
  check_unary_rule("exp", tg::Exp{}, 4e-7f);
  check_unary_rule("expm1", tg::Expm1{}, 4e-7f);
  check_unary_rule("neg", tg::Neg{}, 0.0f);
}

namespace {

/// a op b for every layout of the fast paths (elementwise, either side one element, either side a
/// plain number) against the rule applied per element, with both gradients.
template <class R>
void check_binary_rule(const std::string& name, const R& rule) {
  const std::vector<float> xs = inputs();
  std::vector<float> zs(xs.rbegin(), xs.rend());
  const auto n = static_cast<std::int64_t>(xs.size());
  for (SimdLevel level : tgtest::simd_levels()) {
    for (int layout = 0; layout < 5; ++layout) {
      INFO(fmt::format("{} at level {}, layout {}", name, static_cast<int>(level), layout));
      const tgtest::SimdLevelScope use(level);
      tg::Tape tape;
      tg::TapeScope scope(tape);
      const float c = 0.5f;
      const tg::Tensor a = tg::Tensor::from_values(std::span<const float>(xs), tg::Shape{n}).requires_grad();
      const tg::Tensor b = tg::Tensor::from_values(std::span<const float>(zs), tg::Shape{n}).requires_grad();
      const tg::Tensor one = tg::Tensor::full(tg::Shape{1}, c).requires_grad();
      tg::Tensor y;
      switch (layout) {
        case 0: y = tg::apply(rule, a, b); break;
        case 1: y = tg::apply(rule, a, one); break;
        case 2: y = tg::apply(rule, one, b); break;
        case 3: y = tg::apply(rule, a, static_cast<double>(c)); break;
        default: y = tg::apply(rule, static_cast<double>(c), b); break;
      }
      tg::sum(y).backward();
      const float* yv = y.data<float>();
      const float* ga = a.grad().data<float>();
      const float* gb = b.grad().data<float>();
      double g_one = 0.0;
      for (std::int64_t i = 0; i < n; ++i) {
        const float u = layout == 2 || layout == 4 ? c : xs[static_cast<std::size_t>(i)];
        const float v = layout == 1 || layout == 3 ? c : zs[static_cast<std::size_t>(i)];
        const float want = rule.value(u, v);
        const std::array<float, 2> d = rule.derivatives(u, v, want);
        if (!close(yv[i], want, 0.0f)) FAIL(fmt::format("value at ({}, {}): {} vs {}", u, v, yv[i], want));
        if (layout == 0 || layout == 1 || layout == 3) {
          if (!close(ga[i], d[0], 0.0f)) FAIL(fmt::format("d/da at ({}, {}): {} vs {}", u, v, ga[i], d[0]));
        }
        if (layout == 0 || layout == 2 || layout == 4) {
          if (!close(gb[i], d[1], 0.0f)) FAIL(fmt::format("d/db at ({}, {}): {} vs {}", u, v, gb[i], d[1]));
        }
        g_one += layout == 1 ? d[1] : layout == 2 ? d[0] : 0.0;
      }
      if (layout == 1 || layout == 2) {
        const float got = one.grad().data<float>()[0];
        if (std::isnan(g_one)) CHECK(std::isnan(got));
        else CHECK(got == Approx(g_one).epsilon(1e-6));
      }
    }
  }
}

}  // namespace

TEST_CASE("kernels: binary rules in every fast layout and instruction set", "[kernels]") {
  check_binary_rule("add", tg::Add{});
  check_binary_rule("sub", tg::Sub{});
  check_binary_rule("mul", tg::Mul{});
  check_binary_rule("div", tg::Div{});
  check_binary_rule("max", tg::Max::make());
  check_binary_rule("min", tg::Min::make({.at_tie = 0.25}));
}

TEST_CASE("kernels: a plain number and a broadcast one-element tensor give the same results",
          "[kernels]") {
  tg::Tensor x = tg::Tensor::randn(tg::Shape{3, 300}, 21).requires_grad();
  std::vector<double> by_number;
  std::vector<double> by_tensor;
  for (int pass = 0; pass < 2; ++pass) {
    tg::Tape tape;
    tg::TapeScope scope(tape);
    const tg::Tensor c = tg::Tensor::full(tg::Shape{}, 0.25);
    const tg::Tensor y = pass == 0 ? tg::maximum(x * 3.0 - 0.25, 0.0) / (2.0 + x * x)
                                   : tg::maximum(x * (c * 12.0) - c, c * 0.0) / (c * 8.0 + x * x);
    const tg::Tensor loss = tg::sum(y * y);
    x.zero_grad();
    loss.backward();
    (pass == 0 ? by_number : by_tensor) = x.grad().to_vector();
    std::vector<double> values = y.to_vector();
    (pass == 0 ? by_number : by_tensor).insert((pass == 0 ? by_number : by_tensor).end(), values.begin(), values.end());
  }
  REQUIRE(by_number.size() == by_tensor.size());
  for (std::size_t i = 0; i < by_number.size(); ++i) CHECK(by_number[i] == by_tensor[i]);
}

TEST_CASE("kernels: a row broadcast over a batch (a bias) gives the generic broadcast's results",
          "[kernels]") {
  // [rows, w] op [w] runs row by row through the elementwise loops; [rows, w] op [rows, 1] still
  // takes the generic broadcast plan. Built the same way, a[r, j] op b[j] must agree exactly with
  // per-element arithmetic in both operand orders, at every instruction set, for values and for
  // both gradients (the row's a column sum).
  const std::int64_t rows = 5;
  const std::int64_t w = 300;  // past the dispatch threshold
  for (SimdLevel level : tgtest::simd_levels()) {
    INFO(fmt::format("level {}", static_cast<int>(level)));
    const tgtest::SimdLevelScope use(level);
    for (int order = 0; order < 2; ++order) {
      INFO(fmt::format("order {}", order));
      tg::Tensor full = tg::Tensor::randn(tg::Shape{rows, w}, 31).requires_grad();
      tg::Tensor row = tg::Tensor::randn(tg::Shape{w}, 32).requires_grad();
      tg::Tape tape;
      tg::TapeScope scope(tape);
      const tg::Tensor h = full * 1.0;  // recorded: its gradient buffer may be overwritten
      const tg::Tensor y = order == 0 ? tg::maximum(h, row) * (h - row) : (row / (h * h + 1.0)) - tg::minimum(row, h);
      tg::sum(y * y).backward();
      const std::vector<double> f = full.to_vector();
      const std::vector<double> r = row.to_vector();
      const std::vector<double> yv = y.to_vector();
      const std::vector<double> gf = full.grad().to_vector();
      const std::vector<double> gr = row.grad().to_vector();
      std::vector<double> want_gr(static_cast<std::size_t>(w), 0.0);
      for (std::int64_t i = 0; i < rows * w; ++i) {
        const auto u = static_cast<float>(f[static_cast<std::size_t>(i)]);
        const auto v = static_cast<float>(r[static_cast<std::size_t>(i % w)]);
        float want = 0.0f;
        float du = 0.0f;
        float dv = 0.0f;
        if (order == 0) {
          const float m = u > v ? u : v;
          want = m * (u - v);
          du = (u > v ? 1.0f : 0.0f) * (u - v) + m;
          dv = (u > v ? 0.0f : 1.0f) * (u - v) - m;
        } else {
          const float q = u * u + 1.0f;
          const float mn = v < u ? v : u;
          want = v / q - mn;
          du = -v * 2.0f * u / (q * q) - (v < u ? 0.0f : 1.0f);
          dv = 1.0f / q - (v < u ? 1.0f : 0.0f);
        }
        CHECK(yv[static_cast<std::size_t>(i)] == Approx(want).epsilon(1e-5).margin(1e-6));
        const double g = 2.0 * yv[static_cast<std::size_t>(i)];
        CHECK(gf[static_cast<std::size_t>(i)] == Approx(g * du).epsilon(1e-4).margin(1e-5));
        want_gr[static_cast<std::size_t>(i % w)] += g * dv;
      }
      for (std::int64_t j = 0; j < w; ++j) {
        CHECK(gr[static_cast<std::size_t>(j)] == Approx(want_gr[static_cast<std::size_t>(j)]).epsilon(1e-4).margin(1e-4));
      }
    }
  }
  // The same operation through the row path and the generic path.
  tg::Tensor full = tg::Tensor::randn(tg::Shape{rows, w}, 33).requires_grad();
  tg::Tensor bias = tg::Tensor::randn(tg::Shape{1, w}, 34).requires_grad();
  std::vector<double> results[2];
  for (int path = 0; path < 2; ++path) {
    tg::Tape tape;
    tg::TapeScope scope(tape);
    full.zero_grad();
    bias.zero_grad();
    // path 0: [rows, w] + [1, w] (the row layout); path 1: the transposes, [w, rows] + [w, 1],
    // which broadcast along the last axis through the generic plan; transposed back to compare.
    const tg::Tensor y = path == 0 ? tg::relu(full + bias)
                                   : tg::transpose(tg::relu(tg::transpose(full) + tg::transpose(bias)));
    tg::sum(y * y).backward();
    results[path] = y.to_vector();
    const std::vector<double> gf = full.grad().to_vector();
    const std::vector<double> gb = bias.grad().to_vector();
    results[path].insert(results[path].end(), gf.begin(), gf.end());
    results[path].insert(results[path].end(), gb.begin(), gb.end());
  }
  REQUIRE(results[0].size() == results[1].size());
  for (std::size_t i = 0; i < results[0].size(); ++i) CHECK(results[0][i] == Approx(results[1][i]).epsilon(1e-6));
}

TEST_CASE("kernels: a row broadcast whose row is a view of the full operand, and an empty batch",
          "[kernels]") {
  // h + h.rows(k, k + 1): both operands' gradients land in h's buffer; row k gets 1 + rows.
  const std::int64_t rows = 4;
  const std::int64_t w = 300;
  tg::Tensor x = tg::Tensor::randn(tg::Shape{rows, w}, 41).requires_grad();
  for (std::int64_t k = 0; k < rows; ++k) {
    tg::Tape tape;
    tg::TapeScope scope(tape);
    x.zero_grad();
    const tg::Tensor h = x * 1.0;
    tg::sum(h + h.rows(k, k + 1)).backward();
    const std::vector<double> g = x.grad().to_vector();
    for (std::int64_t i = 0; i < rows * w; ++i) {
      INFO("k = " << k << ", element " << i);
      CHECK(g[static_cast<std::size_t>(i)] == (i / w == k ? 1.0 + rows : 1.0));
    }
  }
  // [0, w] + [w]: no element, and the row's gradient is zero, not whatever its buffer held.
  tg::Tensor bias = tg::Tensor::randn(tg::Shape{w}, 42).requires_grad();
  tg::Tape tape;
  tg::TapeScope scope(tape);
  tg::sum(x * 3.0 + bias * 2.0).backward();  // leave numbers in the arena
  tape.reset();
  bias.zero_grad();
  const tg::Tensor none = tg::Tensor::zeros(tg::Shape{0, w});
  tg::sum(none + bias * 1.0).backward();
  for (double v : bias.grad().to_vector()) CHECK(v == 0.0);
}

TEST_CASE("kernels: an overwritten gradient buffer still takes every contribution", "[kernels]") {
  // h feeds four primitives: the first contribution to its gradient in a sweep is written with =,
  // the others add. A view covering part of it (rows) never overwrites.
  const tg::Tensor x = tg::Tensor::randn(tg::Shape{4, 300}, 22).requires_grad();
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const tg::Tensor h = x * 1.0;
  const tg::Tensor top = h.rows(0, 2);
  const tg::Tensor y = tg::sum(tg::tanh(h)) + tg::sum(tg::sigmoid(h) * h) + tg::sum(h * h) +
                       tg::sum(tg::relu(top) * 3.0);
  y.backward();
  const std::vector<double> xs = x.to_vector();
  const std::vector<double> g = h.grad().to_vector();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double v = static_cast<double>(static_cast<float>(xs[i]));
    const double t = std::tanh(v);
    const double s = 1.0 / (1.0 + std::exp(-v));
    double want = (1.0 - t * t) + (s * (1.0 - s) * v + s) + 2.0 * v;
    if (i < 600 && v > 0.0) want += 3.0;
    CHECK(g[i] == Approx(want).epsilon(1e-5).margin(1e-5));
  }
}

TEST_CASE("kernels: TAPEGRAD_SIMD levels above the CPU's are refused", "[kernels]") {
  if (tg::detail::max_simd_level() < SimdLevel::avx512) {
    CHECK_THROWS_AS(tg::detail::set_simd_level(SimdLevel::avx512), tg::ValueError);
  }
  CHECK_NOTHROW(tg::detail::set_simd_level(tg::detail::simd_level()));
}

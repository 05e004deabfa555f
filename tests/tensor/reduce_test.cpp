// Reductions over all elements and over chosen axes (sum, mean, max), softmax and log_softmax:
// values worked by hand, tg::gradcheck over each axis and several, the tie rule of max and its kink
// hits, stability for large logits, and the errors.
#include "tensor_check.hpp"

#include <limits>

using tg::Axes;
using tg::Shape;
using tg::Tensor;
using tgtest::f64;
using tgtest::require_gradcheck;
using tgtest::uniform;
using In = std::span<const Tensor>;

namespace {
// Every axis, two pairs, all three, with and without keepdim, for a [2, 3, 4] input.
const std::vector<Axes> kAxes{{0}, {1}, {2}, {-1}, {0, 2}, {2, 1}, {0, 1, 2}};

void check_over_axes(std::string_view name, const std::function<Tensor(const Tensor&, const Axes&, bool)>& f) {
  const Tensor x = uniform({2, 3, 4}, std::hash<std::string_view>{}(name));
  for (const Axes& axes : kAxes) {
    for (const bool keepdim : {false, true}) {
      INFO(fmt::format("{} over ({}) keepdim {}", name,
                       fmt::join(std::span<const int>(axes.axes.data(), axes.count), ", "), keepdim));
      require_gradcheck(name, [&](In in) { return f(in[0], axes, keepdim); }, {x});
    }
  }
}
}  // namespace

// ---- sum and mean --------------------------------------------------------------------------------

TEST_CASE("sum, mean over axes: values and shapes", "[tensor][reduce]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(tg::sum(x).item() == 21);
  REQUIRE(tg::sum(x).shape() == Shape{});
  REQUIRE(tg::mean(x).item() == 3.5);
  REQUIRE(tg::sum(x, {0}).to_vector() == std::vector<double>{5, 7, 9});
  REQUIRE(tg::sum(x, {0}).shape() == Shape{3});
  REQUIRE(tg::sum(x, {1}, true).to_vector() == std::vector<double>{6, 15});
  REQUIRE(tg::sum(x, {1}, true).shape() == Shape{2, 1});
  REQUIRE(tg::sum(x, {-1}).shape() == Shape{2});
  REQUIRE(tg::sum(x, {0, 1}).item() == 21);
  REQUIRE(tg::sum(x, {0, 1}, true).shape() == Shape{1, 1});
  REQUIRE(tg::mean(x, {0}).to_vector() == std::vector<double>{2.5, 3.5, 4.5});
  REQUIRE(tg::mean(x, {1}).to_vector() == std::vector<double>{2, 5});
  REQUIRE(tg::sum(x, Axes{}).to_vector() == x.to_vector());  // no axes: nothing reduced
  REQUIRE(tg::sum(Tensor::zeros({0, 3})).item() == 0);
  REQUIRE(tg::sum(Tensor::zeros({0, 3}), {0}).to_vector() == std::vector<double>{0, 0, 0});
}

TEST_CASE("sum, mean of float tensors accumulate in double", "[tensor][reduce]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  // 2^24 + 1 + 1 + ... : a float accumulator would stick at 2^24.
  std::vector<float> v(1001, 1.0f);
  v[0] = 16777216.0f;
  const Tensor x = Tensor::from_values(std::span<const float>(v), {1, 1001});
  REQUIRE(tg::sum(x).item() == 16778216.0);
  REQUIRE(tg::sum(x, {1}).item() == 16778216.0);
}

TEST_CASE("sum: gradcheck over each axis and several, with and without keepdim", "[tensor][reduce]") {
  check_over_axes("sum", [](const Tensor& a, const Axes& ax, bool k) { return tg::sum(a, ax, k); });
  require_gradcheck("sum of all", [](In in) { return tg::sum(in[0]); }, {uniform({2, 3}, 1)});
}

TEST_CASE("mean: gradcheck over each axis and several, with and without keepdim", "[tensor][reduce]") {
  check_over_axes("mean", [](const Tensor& a, const Axes& ax, bool k) { return tg::mean(a, ax, k); });
  require_gradcheck("mean of all", [](In in) { return tg::mean(in[0]); }, {uniform({2, 3}, 2)});
}

TEST_CASE("keepdim results broadcast against the input", "[tensor][reduce]") {
  require_gradcheck("x - mean(x, 1, keepdim)", [](In in) { return in[0] - tg::mean(in[0], {1}, true); },
                    {uniform({3, 4}, 3)});
}

// ---- max -----------------------------------------------------------------------------------------

TEST_CASE("max: values over all elements and over axes", "[tensor][reduce][max]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor x = f64({1, 7, 3, 9, -5, 6}, {2, 3});
  REQUIRE(tg::max(x).item() == 9);
  REQUIRE(tg::max(x, {0}).to_vector() == std::vector<double>{9, 7, 6});
  REQUIRE(tg::max(x, {1}).to_vector() == std::vector<double>{7, 9});
  REQUIRE(tg::max(x, {1}, true).shape() == Shape{2, 1});
  const Tensor with_nan = f64({1, std::numeric_limits<double>::quiet_NaN(), 3}, {3});
  REQUIRE(std::isnan(tg::max(with_nan).item()));
}

TEST_CASE("max: gradcheck over each axis and several, with and without keepdim", "[tensor][reduce][max]") {
  check_over_axes("max", [](const Tensor& a, const Axes& ax, bool k) { return tg::max(a, ax, k); });
  require_gradcheck("max of all", [](In in) { return tg::max(in[0]); }, {uniform({2, 3}, 4)});
}

TEST_CASE("max: a tie splits the gradient evenly and counts one kink hit per tied output", "[tensor][reduce][max][kink]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor x = f64({2, 5, 5, 5, /**/ 1, 0, 1, -3, /**/ 4, 3, 2, 1}, {3, 4}).requires_grad();
  tape.reset_kink_hits();
  tg::sum(tg::max(x, {1}) * f64({3, 2, 1}, {3})).backward();
  // Row 0: three-way tie at 5, 3/3 each; row 1: two-way tie at 1, 2/2 each; row 2: unique maximum.
  REQUIRE(x.grad().to_vector() == std::vector<double>{0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0});
  REQUIRE(tape.kink_hits()[tg::Kink::max] == 2);
  // The scope's at_tie (a two-argument max's share) does not change the reduction's even split.
  x.zero_grad();
  {
    tg::SubgradientScope first(tg::Kink::max, 1.0);
    tg::max(x).backward();
  }
  REQUIRE(x.grad().to_vector() == std::vector<double>{0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0, 0, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("max: gradcheck at a tie lies between the one-sided quotients", "[tensor][reduce][max][kink]") {
  const tg::TensorGradcheckReport r = require_gradcheck(
      "max at a tie", [](In in) { return tg::max(in[0], {1}); }, {f64({0.5, 0.5, -1, 2, 1, 2}, {2, 3})},
      {.kinks_allowed = true});
  // Each tied element's step moves the maximum to it or away from it: a kink, AD 1/2 inside [0, 1].
  std::size_t kinks = 0;
  for (const tg::TensorGradcheckEntry& e : r.entries) kinks += e.check.kink ? 1 : 0;
  REQUIRE(kinks == 4);
}

TEST_CASE("max: a NaN maximum gives NaN derivatives to its slice", "[tensor][reduce][max]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor x = f64({1, std::numeric_limits<double>::quiet_NaN(), 2, 3}, {2, 2}).requires_grad();
  tg::sum(tg::max(x, {1})).backward();
  const std::vector<double> g = x.grad().to_vector();
  REQUIRE(std::isnan(g[0]));
  REQUIRE(std::isnan(g[1]));
  REQUIRE(g[2] == 0);
  REQUIRE(g[3] == 1);
}

// ---- softmax -------------------------------------------------------------------------------------

TEST_CASE("softmax, log_softmax: values by hand", "[tensor][softmax]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor x = f64({0, std::log(3.0), 1, 1}, {2, 2});
  const std::vector<double> s = tg::softmax(x).to_vector();
  REQUIRE(tgtest::all_close(s, {0.25, 0.75, 0.5, 0.5}));
  const std::vector<double> ls = tg::log_softmax(x).to_vector();
  REQUIRE(tgtest::all_close(ls, {std::log(0.25), std::log(0.75), std::log(0.5), std::log(0.5)}));
  // Along axis 0: columns (0, 1) and (log 3, 1).
  const std::vector<double> s0 = tg::softmax(x, 0).to_vector();
  const double e = std::exp(1.0);
  REQUIRE(tgtest::all_close(s0, {1 / (1 + e), 3 / (3 + e), e / (1 + e), e / (3 + e)}));
}

TEST_CASE("softmax, log_softmax: gradcheck along every axis", "[tensor][softmax]") {
  for (const int axis : {0, 1, 2, -1}) {
    INFO(fmt::format("axis {}", axis));
    require_gradcheck("softmax", [=](In in) { return tg::softmax(in[0], axis); }, {uniform({2, 3, 4}, 5, -2, 2)});
    require_gradcheck("log_softmax", [=](In in) { return tg::log_softmax(in[0], axis); },
                      {uniform({2, 3, 4}, 6, -2, 2)});
  }
}

TEST_CASE("softmax, log_softmax: large logits stay finite and exact", "[tensor][softmax]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  for (const tg::Dtype dtype : {tg::Dtype::f32, tg::Dtype::f64}) {
    Tensor x = Tensor::from_values({1000, 1000, 0, -1000, 999, 1000}, {2, 3}, dtype).requires_grad();
    const Tensor s = tg::softmax(x);
    const Tensor ls = tg::log_softmax(x);
    const std::vector<double> sv = s.to_vector();
    const std::vector<double> lv = ls.to_vector();
    for (double v : sv) REQUIRE(std::isfinite(v));
    for (double v : lv) REQUIRE(std::isfinite(v));
    REQUIRE(sv[0] == Approx(0.5));
    REQUIRE(sv[2] == 0);
    REQUIRE(lv[0] == Approx(-std::log(2.0)));
    REQUIRE(lv[2] == Approx(-1000 - std::log(2.0)));
    REQUIRE(lv[4] == Approx(-1 - std::log1p(std::exp(-1.0))));
    tg::sum(ls * Tensor::from_values({1, 0, 0, 0, 0, 1}, {2, 3}, dtype)).backward();
    for (double v : x.grad().to_vector()) REQUIRE(std::isfinite(v));
  }
  // At logits near 1000 a relative step of 1e-9 is 1e-6 in absolute terms.
  const tgtest::CheckOptions fine{.gradcheck = {.step = 1e-9}};
  const Tensor large = f64({1000, 999.5, 999, 1000.1, -1000, -999}, {2, 3});
  require_gradcheck("softmax of large logits", [](In in) { return tg::softmax(in[0]); }, {large}, fine);
  require_gradcheck("log_softmax of large logits", [](In in) { return tg::log_softmax(in[0]); }, {large}, fine);
}

// ---- errors ------------------------------------------------------------------------------------

TEST_CASE("reductions: bad axes and empty reductions name the operation and the shape", "[tensor][reduce][error]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor x = Tensor::zeros({2, 3});
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::sum(x, {2}); }),
               Catch::StartsWith("sum:") && Catch::Contains("[2, 3]") && Catch::Contains("axis 2"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::mean(x, {1, -1}); }),
               Catch::StartsWith("mean:") && Catch::Contains("twice") && Catch::Contains("[2, 3]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::max(Tensor::zeros({2, 0}), {1}); }),
               Catch::StartsWith("max:") && Catch::Contains("[2, 0]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::mean(Tensor::zeros({0})); }),
               Catch::StartsWith("mean:") && Catch::Contains("[0]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::softmax(x, 2); }),
               Catch::StartsWith("softmax:") && Catch::Contains("[2, 3]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)tg::log_softmax(Tensor::zeros({}), -1); }),
               Catch::StartsWith("log_softmax:") && Catch::Contains("[]"));
}

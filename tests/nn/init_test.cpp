// Initialisers: each one's mean, spread and bounds over half a million draws, within statistical
// tolerances of several standard errors; the gains; reproducibility from seeds.
#include "nn_test_util.hpp"

#include <nn/init.hpp>
#include <nn/layers.hpp>

#include <cmath>

using tg::Dtype;
using tg::Shape;
using tg::Tensor;
using namespace tg::nn;

namespace {

struct Stats {
  double mean = 0;
  double std = 0;
  double max_abs = 0;
  std::int64_t n = 0;
  /// Fraction of draws with |w| < limit.
  double fraction_within(const Tensor& w, double limit) const {
    std::int64_t k = 0;
    for (double v : w.to_vector()) k += std::abs(v) < limit ? 1 : 0;
    return static_cast<double>(k) / static_cast<double>(n);
  }
};

Stats stats(const Tensor& w) {
  Stats s;
  const std::vector<double> v = w.to_vector();
  s.n = static_cast<std::int64_t>(v.size());
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(s.n);
  for (double x : v) {
    s.std += (x - s.mean) * (x - s.mean);
    s.max_abs = std::max(s.max_abs, std::abs(x));
  }
  s.std = std::sqrt(s.std / static_cast<double>(s.n - 1));
  return s;
}

// U(-b, b): every draw inside, the extremes close to b, mean 0 and std b / sqrt(3). With n = 5e5
// the standard error of the mean is 0.0008 b and that of the std 0.13 %: the tolerances are > 6 of
// them.
void require_uniform(const Tensor& w, double b) {
  const Stats s = stats(w);
  INFO("bound " << b << ": mean " << s.mean << ", std " << s.std << ", max |w| " << s.max_abs);
  REQUIRE(s.max_abs <= b);
  REQUIRE(s.max_abs > 0.999 * b);
  REQUIRE(std::abs(s.mean) < 0.005 * b);
  REQUIRE(s.std == Approx(b / std::sqrt(3.0)).epsilon(0.01));
}

// N(0, sd^2): mean 0, std sd, 68.27 % within one sd (standard error 0.07 %), nothing beyond 7 sd.
void require_normal(const Tensor& w, double sd) {
  const Stats s = stats(w);
  INFO("std " << sd << ": mean " << s.mean << ", std " << s.std << ", max |w| " << s.max_abs);
  REQUIRE(std::abs(s.mean) < 0.01 * sd);
  REQUIRE(s.std == Approx(sd).epsilon(0.01));
  REQUIRE(s.fraction_within(w, sd) == Approx(0.6827).margin(0.005));
  REQUIRE(s.max_abs < 7 * sd);
}

}  // namespace

TEST_CASE("gains: relu sqrt(2), leaky relu sqrt(2 / (1 + s^2)), tanh 5/3", "[nn][init]") {
  REQUIRE(relu_gain() == std::sqrt(2.0));
  REQUIRE(leaky_relu_gain(0.0) == relu_gain());
  REQUIRE(leaky_relu_gain(0.2) == Approx(std::sqrt(2.0 / 1.04)).epsilon(1e-15));
  REQUIRE(leaky_relu_gain(1.0) == Approx(1.0).epsilon(1e-15));  // slope 1: the identity, no gain
  REQUIRE(tanh_gain() == Approx(5.0 / 3.0).epsilon(1e-15));
}

TEST_CASE("Linear: the default init is He uniform, U(-sqrt(6/in), sqrt(6/in)), biases zero", "[nn][init]") {
  Linear lin(1000, 500, {.seed = 11});  // float, as by default
  REQUIRE(lin.weight().dtype() == Dtype::f32);
  require_uniform(lin.weight(), std::sqrt(6.0 / 1000.0));
  // Variance 2 / in: what keeps the activations' scale through ReLU layers.
  REQUIRE(stats(lin.weight()).std == Approx(std::sqrt(2.0 / 1000.0)).epsilon(0.01));
  for (double b : lin.bias().to_vector()) REQUIRE(b == 0.0);
}

TEST_CASE("kaiming_uniform_: U(-b, b) with b = gain sqrt(3 / fan_in)", "[nn][init]") {
  Tensor w = Tensor::zeros({400, 1250}, Dtype::f64);  // [fan_out, fan_in]
  const double gain = leaky_relu_gain(0.2);
  kaiming_uniform_(w, gain, 5);
  require_uniform(w, gain * std::sqrt(3.0 / 1250.0));
}

TEST_CASE("kaiming_normal_: N(0, (gain / sqrt(fan_in))^2), also for leaky ReLU's gain", "[nn][init]") {
  Tensor w = Tensor::zeros({400, 1250}, Dtype::f64);
  kaiming_normal_(w, relu_gain(), 6);
  require_normal(w, std::sqrt(2.0) / std::sqrt(1250.0));
  Linear lin(1250, 400, {.init = Init::kaiming_normal(leaky_relu_gain(0.1)), .seed = 7});
  require_normal(lin.weight(), std::sqrt(2.0 / 1.01) / std::sqrt(1250.0));
}

TEST_CASE("xavier_uniform_: U(-b, b) with b = gain sqrt(6 / (fan_in + fan_out))", "[nn][init]") {
  Tensor w = Tensor::zeros({300, 1700}, Dtype::f64);
  xavier_uniform_(w, tanh_gain(), 8);
  require_uniform(w, (5.0 / 3.0) * std::sqrt(6.0 / 2000.0));
}

TEST_CASE("xavier_normal_: N(0, sd^2) with sd = gain sqrt(2 / (fan_in + fan_out))", "[nn][init]") {
  Tensor w = Tensor::zeros({300, 1700}, Dtype::f32);
  xavier_normal_(w, 1.0, 9);
  require_normal(w, std::sqrt(2.0 / 2000.0));
}

TEST_CASE("zeros_ and constant_ fill every element, Init::constant does so through Linear", "[nn][init]") {
  Tensor w = Tensor::full({3, 4}, 7.0, Dtype::f64);
  zeros_(w);
  for (double v : w.to_vector()) REQUIRE(v == 0.0);
  constant_(w, -0.5);
  for (double v : w.to_vector()) REQUIRE(v == -0.5);
  Linear lin(4, 3, {.init = Init::constant(0.125)});
  for (double v : lin.weight().to_vector()) REQUIRE(v == 0.125);
  Linear zero(4, 3, {.init = Init::zeros()});
  for (double v : zero.weight().to_vector()) REQUIRE(v == 0.0);
}

TEST_CASE("initialisers: the same seed gives the same weights, another seed others", "[nn][init]") {
  Linear a(20, 10, {.seed = 42});
  Linear b(20, 10, {.seed = 42});
  Linear c(20, 10, {.seed = 43});
  REQUIRE(a.weight().to_vector() == b.weight().to_vector());
  REQUIRE(a.weight().to_vector() != c.weight().to_vector());
  Tensor n1 = Tensor::zeros({5, 6}, Dtype::f64);
  Tensor n2 = Tensor::zeros({5, 6}, Dtype::f64);
  xavier_normal_(n1, 1.0, 3);
  xavier_normal_(n2, 1.0, 3);
  REQUIRE(n1.to_vector() == n2.to_vector());
}

TEST_CASE("manual_seed: layers without a seed are reproducible from the thread's generator", "[nn][init]") {
  manual_seed(2024);
  Linear a1(8, 4);
  Linear a2(8, 4);
  manual_seed(2024);
  Linear b1(8, 4);
  Linear b2(8, 4);
  REQUIRE(a1.weight().to_vector() == b1.weight().to_vector());
  REQUIRE(a2.weight().to_vector() == b2.weight().to_vector());
  REQUIRE(a1.weight().to_vector() != a2.weight().to_vector());  // each layer draws a new seed
}

TEST_CASE("initialisers: a negative or non-finite gain is a ValueError, a scalar a ShapeError", "[nn][init]") {
  Tensor w = Tensor::zeros({3, 3}, Dtype::f64);
  REQUIRE_THROWS_SAYING(kaiming_uniform_(w, -1.0, 1), tg::ValueError, "kaiming_uniform_", "gain");
  REQUIRE_THROWS_SAYING(xavier_normal_(w, std::nan(""), 1), tg::ValueError, "xavier_normal_");
  Tensor s = Tensor::zeros({}, Dtype::f64);
  REQUIRE_THROWS_AS(kaiming_normal_(s, 1.0, 1), tg::ShapeError);
}

TEST_CASE("Init::describe names the initialiser and its gain", "[nn][init]") {
  REQUIRE(Init::kaiming_uniform().describe() == "kaiming_uniform(gain=1.414)");
  REQUIRE(Init::xavier_normal(2.0).describe() == "xavier_normal(gain=2)");
  REQUIRE(Init::constant(0.5).describe() == "constant(0.5)");
}

// Activation modules and Dropout: values and gradients through the tape's primitives, the exact
// subgradient at each kink (per module, by default, and under a tg::SubgradientScope), and
// Dropout's mask: its rate, its scaling, its seeds and its gradient.
#include "nn_test_util.hpp"

#include <nn/layers.hpp>

#include <autodiff/tensor_gradcheck.hpp>
#include <autodiff/tensor_reduce.hpp>

#include <cmath>
#include <functional>
#include <memory>

using tg::Dtype;
using tg::Kink;
using tg::Shape;
using tg::Tensor;
using namespace tg::nn;

namespace {

// d sum(module(x)) / dx at x = [-1.5, 0, 2] (0 exactly: the kink).
std::vector<double> gradient_at_kink(Module& m) {
  Tensor x = tgtest::param({-1.5, 0.0, 2.0}, {1, 3});
  tg::sum(m(x)).backward();
  tg::active_tape().reset();
  return x.grad().to_vector();
}

// sum(module(x) * P) gradient-checked at x, through tg::gradcheck (the module's parameters, if any,
// stay fixed).
void require_module_gradcheck(Module& m, const Tensor& x) {
  const tg::TensorGradcheckReport r = tg::gradcheck([&m](std::span<const Tensor> in) { return m(in[0]); }, {x});
  INFO(m.describe() << ":\n" << r.summary());
  REQUIRE(r.ok());
  REQUIRE(r.entries.size() == static_cast<std::size_t>(x.numel()));
}

}  // namespace

TEST_CASE("activation modules: values are the tape primitives' values", "[nn][activation]") {
  const Tensor x = tgtest::tensor64({-3.0, -0.5, 0.0, 0.25, 2.0, 5.0}, {2, 3});
  const std::vector<double> xs = x.to_vector();
  struct Case {
    std::shared_ptr<Module> m;
    std::function<double(double)> f;
  };
  const std::vector<Case> cases{
      {std::make_shared<ReLU>(), [](double v) { return v > 0 ? v : 0.0; }},
      {std::make_shared<LeakyReLU>(0.1), [](double v) { return v >= 0 ? v : 0.1 * v; }},
      {std::make_shared<ELU>(0.5), [](double v) { return v > 0 ? v : 0.5 * std::expm1(v); }},
      {std::make_shared<Sigmoid>(), [](double v) { return 1 / (1 + std::exp(-v)); }},
      {std::make_shared<Tanh>(), [](double v) { return std::tanh(v); }},
      {std::make_shared<GELU>(), [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }},
      {std::make_shared<Softplus>(), [](double v) { return std::log1p(std::exp(v)); }},
  };
  for (const Case& c : cases) {
    INFO(c.m->describe());
    const std::vector<double> y = (*c.m)(x).to_vector();
    for (std::size_t i = 0; i < xs.size(); ++i) REQUIRE(y[i] == Approx(c.f(xs[i])).epsilon(1e-14).margin(1e-15));
  }
  tg::active_tape().reset();
}

TEST_CASE("activation modules: gradients agree with finite differences away from kinks", "[nn][activation][gradcheck]") {
  const Tensor x = Tensor::rand({3, 4}, 17, Dtype::f64, -2.0, 2.0);
  ReLU relu;
  LeakyReLU leaky(0.2);
  ELU elu(0.7);
  Sigmoid sigmoid;
  Tanh tanh;
  GELU gelu;
  Softplus softplus;
  for (Module* m : std::initializer_list<Module*>{&relu, &leaky, &elu, &sigmoid, &tanh, &gelu, &softplus}) {
    require_module_gradcheck(*m, x);
  }
}

TEST_CASE("ReLU: relu'(0) is 0 by default and 1 with ReLU({.at_zero = 1})", "[nn][activation][kink]") {
  ReLU plain;
  ReLU one({.at_zero = 1.0});
  REQUIRE(gradient_at_kink(plain) == std::vector<double>{0, 0, 1});
  REQUIRE(gradient_at_kink(one) == std::vector<double>{0, 1, 1});
  REQUIRE(one.describe() == "ReLU(at_zero=1)");
}

TEST_CASE("LeakyReLU and ELU: the default at 0 is the left slope (scale, alpha), else at_zero", "[nn][activation][kink]") {
  LeakyReLU leaky(0.1);
  REQUIRE(gradient_at_kink(leaky) == std::vector<double>{0.1, 0.1, 1});
  LeakyReLU leaky_one({.scale = 0.1, .at_zero = 1.0});
  REQUIRE(gradient_at_kink(leaky_one) == std::vector<double>{0.1, 1, 1});
  ELU elu(0.5);
  const std::vector<double> g = gradient_at_kink(elu);
  REQUIRE(g[0] == Approx(0.5 * std::exp(-1.5)).epsilon(1e-15));
  REQUIRE(g[1] == 0.5);
  REQUIRE(g[2] == 1.0);
  ELU elu_one({.alpha = 0.5, .at_zero = 1.0});
  REQUIRE(gradient_at_kink(elu_one)[1] == 1.0);
}

TEST_CASE("SubgradientScope changes ReLU modules without their own at_zero, not the others", "[nn][activation][kink]") {
  ReLU plain;
  ReLU own({.at_zero = 0.25});
  {
    tg::SubgradientScope scope(Kink::relu, 0.5);
    REQUIRE(gradient_at_kink(plain)[1] == 0.5);
    REQUIRE(gradient_at_kink(own)[1] == 0.25);
  }
  REQUIRE(gradient_at_kink(plain)[1] == 0.0);  // the scope is gone
}

TEST_CASE("activation modules record the tape's kinked primitive: kink hits are counted", "[nn][activation][kink]") {
  tg::Tape& tape = tg::active_tape();
  tape.reset_kink_hits();
  ReLU relu;
  gradient_at_kink(relu);
  REQUIRE(tape.kink_hits()[Kink::relu] == 1);
  LeakyReLU leaky;
  gradient_at_kink(leaky);
  REQUIRE(tape.kink_hits()[Kink::leaky_relu] == 1);
  tape.reset_kink_hits();
}

// ---- Dropout -----------------------------------------------------------------------------------

TEST_CASE("Dropout: the identity in evaluation mode", "[nn][dropout]") {
  Dropout d(0.5, 1);
  d.eval();
  const Tensor x = Tensor::rand({10, 10}, 3, Dtype::f64, 0.5, 1.5);
  REQUIRE(d(x).to_vector() == x.to_vector());
  tg::active_tape().reset();
}

TEST_CASE("Dropout: in training zeroes a fraction p and scales the rest by 1 / (1 - p)", "[nn][dropout]") {
  const double p = 0.3;
  Dropout d(p, 5);
  const Tensor x = Tensor::rand({400, 250}, 4, Dtype::f64, 0.5, 1.5);  // no zeros of its own
  const std::vector<double> xs = x.to_vector();
  const std::vector<double> y = d(x).to_vector();
  tg::active_tape().reset();
  std::int64_t zeros = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (y[i] == 0.0) {
      ++zeros;
    } else {
      REQUIRE(y[i] == xs[i] * (1.0 / (1.0 - p)));
    }
  }
  // 1e5 draws: the standard error of the fraction is 0.0014.
  REQUIRE(static_cast<double>(zeros) / 1e5 == Approx(p).margin(0.01));
}

TEST_CASE("Dropout: the same seed gives the same masks, each call draws a new one", "[nn][dropout]") {
  Dropout a(0.5, 9);
  Dropout b(0.5, 9);
  const Tensor x = Tensor::ones({1, 64}, Dtype::f64);
  const std::vector<double> a1 = a(x).to_vector();
  const std::vector<double> a2 = a(x).to_vector();
  const std::vector<double> b1 = b(x).to_vector();
  const std::vector<double> b2 = b(x).to_vector();
  tg::active_tape().reset();
  REQUIRE(a1 == b1);
  REQUIRE(a2 == b2);
  REQUIRE(a1 != a2);
}

TEST_CASE("Dropout: layers with nearby seeds do not replay each other's masks", "[nn][dropout]") {
  // A generator re-seeded per call with seed + call count would give layer 9's second mask to
  // layer 10's first call.
  Dropout a(0.5, 9);
  Dropout b(0.5, 10);
  const Tensor x = Tensor::ones({1, 64}, Dtype::f64);
  a(x);
  const std::vector<double> a2 = a(x).to_vector();
  const std::vector<double> b1 = b(x).to_vector();
  tg::active_tape().reset();
  REQUIRE(a2 != b1);
}

TEST_CASE("Dropout: the gradient goes through the kept elements only, scaled the same way", "[nn][dropout]") {
  const double p = 0.5;
  Dropout d(p, 21);
  Tensor x = Tensor::rand({8, 16}, 5, Dtype::f64, 0.5, 1.5);
  x.requires_grad();
  const Tensor y = d(x);
  const std::vector<double> ys = y.to_vector();
  tg::sum(y).backward();
  tg::active_tape().reset();
  const std::vector<double> g = x.grad().to_vector();
  std::int64_t dropped = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    REQUIRE(g[i] == (ys[i] == 0.0 ? 0.0 : 1.0 / (1.0 - p)));
    dropped += ys[i] == 0.0 ? 1 : 0;
  }
  REQUIRE(dropped > 0);
  REQUIRE(dropped < 128);
}

TEST_CASE("Dropout: p below 0 or from 1 up is a ValueError, p = 0 is the identity", "[nn][dropout]") {
  REQUIRE_THROWS_SAYING(Dropout(1.0), tg::ValueError, "[0, 1)", "1");
  REQUIRE_THROWS_AS(Dropout(-0.1), tg::ValueError);
  REQUIRE_THROWS_AS(Dropout(std::nan("")), tg::ValueError);
  Dropout none(0.0, 1);
  const Tensor x = Tensor::rand({4, 4}, 6, Dtype::f64);
  REQUIRE(none(x).to_vector() == x.to_vector());
  tg::active_tape().reset();
}

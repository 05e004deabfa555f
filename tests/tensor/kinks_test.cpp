// relu, leaky_relu and elu on tensors at exactly 0: the same defaults, per-call values and
// tg::SubgradientScope overrides as on tg::Var (one rule, two paths), kink hits counted per element,
// and tg::gradcheck's kink awareness on tensors.
#include "tensor_check.hpp"

using tg::Kink;
using tg::Tensor;
using tg::Var;
using In = std::span<const Tensor>;

namespace {
using TensorFn = std::function<Tensor(const Tensor&)>;
using VarFn = std::function<Var(const Var&)>;

// d sum(f(x)) / dx for x = (-1, 0, 0, 2), as a tensor of `dtype` on a fresh tape.
std::vector<double> tensor_derivatives(const TensorFn& f, tg::Dtype dtype = tg::Dtype::f64) {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor x = Tensor::from_values({-1, 0, 0, 2}, {4}, dtype).requires_grad();
  tg::sum(f(x)).backward();
  return x.grad().to_vector();
}

// The same derivatives through tg::Var, one input at a time.
std::vector<double> var_derivatives(const VarFn& f) {
  std::vector<double> out;
  for (const double x : {-1.0, 0.0, 0.0, 2.0}) {
    tg::Tape tape;
    tg::TapeScope scope(tape);
    const Var v = x;
    out.push_back(tg::gradient(f(v), v)[0]);
  }
  return out;
}

// The tensor and the Var paths agree, in double and in float.
void require_same(const TensorFn& tf, const VarFn& vf, const std::vector<double>& expected) {
  REQUIRE(tensor_derivatives(tf) == expected);
  REQUIRE(tensor_derivatives(tf, tg::Dtype::f32) == expected);
  REQUIRE(var_derivatives(vf) == expected);
}
}  // namespace

TEST_CASE("relu on tensors: default 0 at 0, per-call and scoped overrides, as on Var", "[tensor][kink]") {
  require_same([](const Tensor& x) { return tg::relu(x); }, [](const Var& x) { return tg::relu(x); },
               {0, 0, 0, 1});
  require_same([](const Tensor& x) { return tg::relu(x, {.at_zero = 1.0}); },
               [](const Var& x) { return tg::relu(x, {.at_zero = 1.0}); }, {0, 1, 1, 1});
  tg::SubgradientScope half(Kink::relu, 0.5);
  require_same([](const Tensor& x) { return tg::relu(x); }, [](const Var& x) { return tg::relu(x); },
               {0, 0.5, 0.5, 1});
  // The per-call value wins over the scope.
  require_same([](const Tensor& x) { return tg::relu(x, {.at_zero = 0.25}); },
               [](const Var& x) { return tg::relu(x, {.at_zero = 0.25}); }, {0, 0.25, 0.25, 1});
}

TEST_CASE("leaky_relu on tensors: default slope at 0, per-call and scoped overrides, as on Var", "[tensor][kink]") {
  require_same([](const Tensor& x) { return tg::leaky_relu(x, 0.125); },
               [](const Var& x) { return tg::leaky_relu(x, 0.125); }, {0.125, 0.125, 0.125, 1});
  require_same([](const Tensor& x) { return tg::leaky_relu(x, {.scale = 0.125, .at_zero = 1.0}); },
               [](const Var& x) { return tg::leaky_relu(x, {.scale = 0.125, .at_zero = 1.0}); },
               {0.125, 1, 1, 1});
  tg::SubgradientScope one(Kink::leaky_relu, 1.0);
  require_same([](const Tensor& x) { return tg::leaky_relu(x, 0.125); },
               [](const Var& x) { return tg::leaky_relu(x, 0.125); }, {0.125, 1, 1, 1});
}

TEST_CASE("elu on tensors: default alpha at 0, per-call and scoped overrides, as on Var", "[tensor][kink]") {
  const double left = 0.5 * std::exp(-1.0);  // elu'(-1) = alpha e^-1
  const std::vector<double> by_default{left, 0.5, 0.5, 1};
  REQUIRE(tgtest::all_close(tensor_derivatives([](const Tensor& x) { return tg::elu(x, 0.5); }), by_default, 1e-15));
  REQUIRE(tgtest::all_close(var_derivatives([](const Var& x) { return tg::elu(x, 0.5); }), by_default, 1e-15));
  REQUIRE(tgtest::all_close(tensor_derivatives([](const Tensor& x) { return tg::elu(x, 0.5); }, tg::Dtype::f32),
                            by_default, 1e-6));
  tg::SubgradientScope one(Kink::elu, 1.0);
  const std::vector<double> scoped{left, 1, 1, 1};
  REQUIRE(tgtest::all_close(tensor_derivatives([](const Tensor& x) { return tg::elu(x, 0.5); }), scoped, 1e-15));
  REQUIRE(tgtest::all_close(var_derivatives([](const Var& x) { return tg::elu(x, 0.5); }), scoped, 1e-15));
  REQUIRE(tensor_derivatives([](const Tensor& x) { return tg::elu(x, {.alpha = 0.5, .at_zero = 0.75}); })[1] == 0.75);
}

TEST_CASE("kink hits on tensors count the elements met exactly at the kink", "[tensor][kink]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor x = tgtest::f64({0, -1, 0, 0, 3, 0}, {2, 3}).requires_grad();
  tape.reset_kink_hits();
  const Tensor loss = tg::sum(tg::relu(x) + tg::leaky_relu(x * 2.0) + tg::elu(x - 3.0));
  loss.backward();
  REQUIRE(tape.kink_hits()[Kink::relu] == 4);
  REQUIRE(tape.kink_hits()[Kink::leaky_relu] == 4);
  REQUIRE(tape.kink_hits()[Kink::elu] == 1);
  loss.backward();  // every sweep that passes the primitives counts them again
  REQUIRE(tape.kink_hits()[Kink::relu] == 8);
  REQUIRE(tape.kink_hits()[Kink::elu] == 2);

  // Elements without a gradient are not counted: a constant records no kink event.
  tape.reset();
  tape.reset_kink_hits();
  const Tensor constant = tgtest::f64({0, 0}, {2});
  tg::sum(tg::relu(constant) + tg::relu(x.rows(0, 1)).reshape({3}).rows(0, 2)).backward();
  REQUIRE(tape.kink_hits()[Kink::relu] == 2);
}

TEST_CASE("gradcheck on tensors: a step across a kink is checked against the one-sided quotients", "[tensor][kink][gradcheck]") {
  const Tensor x = tgtest::f64({0.0, -0.5, 0.0, 0.7}, {4});
  for (const double at_zero : {0.0, 0.5, 1.0}) {
    INFO(fmt::format("relu'(0) = {}", at_zero));
    const tg::TensorGradcheckReport r = tgtest::require_gradcheck(
        "relu at 0", [=](In in) { return tg::relu(in[0], {.at_zero = at_zero}); }, {x}, {.kinks_allowed = true});
    REQUIRE(r.entries[0].check.kink);
    REQUIRE_FALSE(r.entries[1].check.kink);
    REQUIRE(r.entries[2].check.kink);
    REQUIRE_FALSE(r.entries[3].check.kink);
  }
  // A subgradient outside [left, right] quotients = [0, 1] is caught, at the kinked elements only.
  const tg::TensorGradcheckReport bad =
      tg::gradcheck([](In in) { return tg::relu(in[0], {.at_zero = 3.0}); }, {x});
  REQUIRE_FALSE(bad.ok());
  REQUIRE(bad.failures().size() == 2);
  REQUIRE(bad.failures()[0].index == std::vector<std::int64_t>{0});
  REQUIRE(bad.failures()[1].index == std::vector<std::int64_t>{2});
  REQUIRE_THAT(bad.summary(), Catch::Contains("kink"));
}

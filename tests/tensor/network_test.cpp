// Compositions: a two-layer network with a loss under tg::gradcheck; the same network written with
// tg::Var and with tg::Tensor giving the same values and gradients; a Var loss built from tensor
// reductions, differentiated by one backward call.
#include "tensor_check.hpp"

#include <array>

using tg::Tensor;
using tg::Var;
using tgtest::require_gradcheck;
using tgtest::uniform;
using In = std::span<const Tensor>;

namespace {
constexpr std::int64_t kBatch = 4;
constexpr std::int64_t kIn = 3;
constexpr std::int64_t kHidden = 5;
constexpr std::int64_t kClasses = 2;
const std::vector<std::int64_t> kLabels{1, 0, 0, 1};

// Cross-entropy of a two-layer network: -mean_i log_softmax(elu(x W1 + b1) W2 + b2)[i, label_i],
// plus 0.01 |W1|^2.
Tensor tensor_loss(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2) {
  const Tensor h = tg::elu(tg::matmul(x, w1) + b1, 0.7);
  const Tensor z = tg::matmul(h, w2) + b2;
  return -tg::mean(tg::gather(tg::log_softmax(z), kLabels)) + 0.01 * tg::sum(w1 * w1);
}

// The same with one Var per element; p holds W1, b1, W2, b2 row-major, one after another.
Var var_loss(const std::vector<double>& x, const std::vector<Var>& p) {
  auto w1 = [&](std::int64_t i, std::int64_t j) { return p[static_cast<std::size_t>(i * kHidden + j)]; };
  auto b1 = [&](std::int64_t j) { return p[static_cast<std::size_t>(kIn * kHidden + j)]; };
  auto w2 = [&](std::int64_t j, std::int64_t c) {
    return p[static_cast<std::size_t>(kIn * kHidden + kHidden + j * kClasses + c)];
  };
  auto b2 = [&](std::int64_t c) { return p[static_cast<std::size_t>(kIn * kHidden + kHidden + kHidden * kClasses + c)]; };
  Var total = Var::constant(0);
  for (std::int64_t i = 0; i < kBatch; ++i) {
    std::array<Var, kHidden> h;
    for (std::int64_t j = 0; j < kHidden; ++j) {
      Var a = b1(j);
      for (std::int64_t k = 0; k < kIn; ++k) a = a + x[static_cast<std::size_t>(i * kIn + k)] * w1(k, j);
      h[static_cast<std::size_t>(j)] = tg::elu(a, 0.7);
    }
    std::array<Var, kClasses> z;
    double m = -1e300;
    for (std::int64_t c = 0; c < kClasses; ++c) {
      Var a = b2(c);
      for (std::int64_t j = 0; j < kHidden; ++j) a = a + h[static_cast<std::size_t>(j)] * w2(j, c);
      z[static_cast<std::size_t>(c)] = a;
      m = std::max(m, a.value());
    }
    Var s = Var::constant(0);
    for (const Var& zc : z) s = s + tg::exp(zc - m);
    total = total + (z[static_cast<std::size_t>(kLabels[static_cast<std::size_t>(i)])] - m - tg::log(s));
  }
  Var reg = Var::constant(0);
  for (std::int64_t k = 0; k < kIn * kHidden; ++k) reg = reg + p[static_cast<std::size_t>(k)] * p[static_cast<std::size_t>(k)];
  return -(total / static_cast<double>(kBatch)) + 0.01 * reg;
}

std::vector<Tensor> network_parameters() {
  return {uniform({kIn, kHidden}, 41), uniform({kHidden}, 42), uniform({kHidden, kClasses}, 43),
          uniform({kClasses}, 44)};
}
}  // namespace

TEST_CASE("two-layer network with a cross-entropy loss: gradcheck of every parameter", "[tensor][network][gradcheck]") {
  const Tensor x = uniform({kBatch, kIn}, 40, -2, 2);
  require_gradcheck("network", [&](In p) { return tensor_loss(x, p[0], p[1], p[2], p[3]); }, network_parameters());
  require_gradcheck("network and its input", [](In p) { return tensor_loss(p[4], p[0], p[1], p[2], p[3]); },
                    [] {
                      std::vector<Tensor> v = network_parameters();
                      v.push_back(uniform({kBatch, kIn}, 45, -2, 2));
                      return v;
                    }());
}

TEST_CASE("relu network with a squared error: gradcheck", "[tensor][network][gradcheck]") {
  const Tensor x = uniform({6, 3}, 50, -2, 2);
  const Tensor target = uniform({6, 1}, 51);
  require_gradcheck("relu mse", [&](In p) {
    const Tensor h = tg::relu(tg::matmul(x, p[0], false, true) + p[1]);
    const Tensor e = tg::matmul(h, p[2]) - target;
    return tg::mean(e * e);
  }, {uniform({4, 3}, 52), uniform({1, 4}, 53), uniform({4, 1}, 54)});
}

TEST_CASE("the same network with Var and with Tensor: same value, same gradients", "[tensor][network][agreement]") {
  const Tensor x = uniform({kBatch, kIn}, 40, -2, 2);
  std::vector<Tensor> params = network_parameters();

  tg::Tape tape;
  tg::TapeScope scope(tape);
  for (Tensor& p : params) p.requires_grad();
  const Tensor loss = tensor_loss(x, params[0], params[1], params[2], params[3]);
  loss.backward();
  std::vector<double> tensor_grad;
  std::vector<double> values;
  for (const Tensor& p : params) {
    const std::vector<double> g = p.grad().to_vector();
    const std::vector<double> v = p.to_vector();
    tensor_grad.insert(tensor_grad.end(), g.begin(), g.end());
    values.insert(values.end(), v.begin(), v.end());
  }

  tg::Tape scalar_tape;
  tg::TapeScope scalar_scope(scalar_tape);
  std::vector<Var> vars;
  for (double v : values) vars.emplace_back(v);
  const Var scalar = var_loss(x.to_vector(), vars);
  const std::vector<double> scalar_grad = tg::gradient(scalar, vars);

  INFO(fmt::format("tensor loss {}, Var loss {}", loss.item(), scalar.value()));
  REQUIRE(loss.item() == Approx(scalar.value()).epsilon(1e-13));
  INFO(fmt::format("tensor gradient {}\nVar gradient {}", fmt::join(tensor_grad, ", "), fmt::join(scalar_grad, ", ")));
  REQUIRE(tgtest::all_close(tensor_grad, scalar_grad, 1e-12, 1e-14));
}

TEST_CASE("a Var loss from tensor reductions: one backward call reaches tensors and Vars", "[tensor][mixing]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor w = tgtest::f64({0.5, -1, 2, 0.25}, {2, 2}).requires_grad();
  const Var s = 1.5;
  const Var a = tg::to_var(tg::sum(w * w));        // 5.3125
  const Var b = tg::to_var(tg::mean(tg::tanh(w)));
  const Var loss = a * s + tg::exp(b);
  loss.backward();
  REQUIRE(s.grad() == 5.3125);
  const std::vector<double> wv = w.to_vector();
  const std::vector<double> g = w.grad().to_vector();
  for (std::size_t i = 0; i < wv.size(); ++i) {
    const double t = std::tanh(wv[i]);
    REQUIRE(g[i] == Approx(2 * wv[i] * 1.5 + std::exp(b.value()) * (1 - t * t) / 4).epsilon(1e-14));
  }

  // And back: Vars into a tensor, tensor operations, a Var out.
  const std::array<Var, 2> v{Var(1.0), Var(2.0)};
  const Tensor m = tgtest::f64({3, 4}, {2, 1});
  const Var y = tg::to_var(tg::sum(tg::matmul(tg::from_vars(v, {1, 2}), m)));
  REQUIRE(y.value() == 11);
  REQUIRE(tg::gradient(y, v[0], v[1]) == std::array<double, 2>{3, 4});
}

TEST_CASE("a Var from a tensor that the output does not use hands nothing down to the tensor",
          "[tensor][mixing]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor w = tgtest::f64({0.0, 1.0}, {2}).requires_grad();
  const Var unused = tg::to_var(tg::sum(tg::sqrt(w)));  // sqrt'(0) = inf; 0 * inf would be NaN
  const Var used = tg::to_var(tg::sum(w * 2.0));
  const Var f = used * 3.0;
  f.backward();
  REQUIRE(w.grad().to_vector() == std::vector<double>{6.0, 6.0});
  REQUIRE(unused.grad() == 0.0);
}

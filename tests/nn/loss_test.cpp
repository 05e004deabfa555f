// Losses: values and gradients worked by hand, tg::gradcheck of each fused loss (prediction and
// target), stability for large logits, mean against sum, and the errors for bad labels and shapes.
#include "nn_test_util.hpp"
#include "tensor/tensor_check.hpp"

#include <nn/loss.hpp>

#include <autodiff/tensor_index.hpp>
#include <autodiff/tensor_reduce.hpp>

#include <cmath>

using tg::Dtype;
using tg::Shape;
using tg::Tensor;
using tgtest::param;
using tgtest::require_gradcheck;
using namespace tg::nn;
using In = std::span<const Tensor>;

namespace {
double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// f's value and the gradient of f with respect to a fresh parameter holding x.
std::pair<double, std::vector<double>> value_and_grad(const Tensor& x, const std::function<Tensor(const Tensor&)>& f) {
  Tensor p = x.clone();
  p.requires_grad();
  const Tensor y = f(p);
  const double v = y.item();
  y.backward();
  tg::active_tape().reset();
  return {v, p.grad().to_vector()};
}
}  // namespace

// ---- mse_loss ----------------------------------------------------------------------------------

TEST_CASE("mse_loss: value and gradient by hand, mean and sum", "[nn][loss]") {
  const Tensor pred = tgtest::tensor64({1, 2, 3, 4}, {2, 2});
  const Tensor target = tgtest::tensor64({0, 2, 5, 1}, {2, 2});  // differences 1, 0, -2, 3
  const auto [mean, gmean] = value_and_grad(pred, [&](const Tensor& p) { return mse_loss(p, target); });
  REQUIRE(mean == 14.0 / 4);
  REQUIRE(gmean == std::vector<double>{0.5, 0, -1, 1.5});  // 2 (pred - target) / 4
  const auto [sum, gsum] = value_and_grad(pred, [&](const Tensor& p) { return mse_loss(p, target, Reduction::sum); });
  REQUIRE(sum == 14.0);
  REQUIRE(gsum == std::vector<double>{2, 0, -4, 6});
}

TEST_CASE("mse_loss: gradcheck in prediction and target, both reductions", "[nn][loss][gradcheck]") {
  const Tensor p = Tensor::rand({3, 4}, 1, Dtype::f64, -2, 2);
  const Tensor t = Tensor::rand({3, 4}, 2, Dtype::f64, -2, 2);
  require_gradcheck("mse mean", [](In in) { return mse_loss(in[0], in[1]); }, {p, t});
  require_gradcheck("mse sum", [](In in) { return mse_loss(in[0], in[1], Reduction::sum); }, {p, t});
}

TEST_CASE("mse_loss: different shapes are a ShapeError naming both", "[nn][loss]") {
  const Tensor a = Tensor::zeros({2, 3});
  const Tensor b = Tensor::zeros({3, 2});
  REQUIRE_THROWS_SAYING(mse_loss(a, b), tg::ShapeError, "mse_loss", "[2, 3]", "[3, 2]");
  REQUIRE_THROWS_AS(mse_loss(a, Tensor::zeros({2, 3}, Dtype::f64)), tg::ValueError);  // element types differ
}

// ---- cross_entropy -----------------------------------------------------------------------------

TEST_CASE("cross_entropy: exact values against a hand log-softmax, logits of 1000 included", "[nn][loss]") {
  // Row 0: labels 2 of logits [1, 2, 3]: -log_softmax = log(1 + e^-1 + e^-2).
  // Row 1: label 1 of [1000, 0, -1000]: log-sum-exp is 1000 (+ log(1 + e^-1000 + e^-2000) = 0), so
  // the term is 1000 - 0. A naive exp(1000) would overflow to inf and give NaN.
  const Tensor logits = tgtest::tensor64({1, 2, 3, 1000, 0, -1000}, {2, 3});
  const std::vector<std::int64_t> labels{2, 1};
  const double row0 = std::log(1 + std::exp(-1.0) + std::exp(-2.0));
  const auto [mean, g] = value_and_grad(logits, [&](const Tensor& z) { return cross_entropy(z, labels); });
  REQUIRE(std::isfinite(mean));
  REQUIRE(mean == Approx((row0 + 1000) / 2).epsilon(1e-15));
  // d/dz = (softmax(z) - one_hot(label)) / 2.
  const double s = 1 + std::exp(-1.0) + std::exp(-2.0);
  const std::vector<double> want{std::exp(-2.0) / s / 2, std::exp(-1.0) / s / 2, (1 / s - 1) / 2, 0.5, -0.5, 0};
  for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(g[i] == Approx(want[i]).margin(1e-15));
  const auto [sum, gs] = value_and_grad(logits, [&](const Tensor& z) { return cross_entropy(z, labels, Reduction::sum); });
  REQUIRE(sum == Approx(row0 + 1000).epsilon(1e-15));
  for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(gs[i] == Approx(2 * want[i]).margin(1e-15));
}

TEST_CASE("cross_entropy: float logits of +-1000 give a finite loss and gradient", "[nn][loss]") {
  // Row 0: label 1 of [1000, -1000, 0] costs 1000 - (-1000) = 2000. Row 1: label 2 of
  // [-1000, 1000, 999] costs 1000 + log(1 + e^-1) - 999.
  Tensor z = Tensor::from_values({1000, -1000, 0, -1000, 1000, 999}, {2, 3}, Dtype::f32);
  z.requires_grad();
  const std::vector<std::int64_t> labels{1, 2};
  const Tensor loss = cross_entropy(z, labels);
  REQUIRE(std::isfinite(loss.item()));
  REQUIRE(loss.item() == Approx((2001.0 + std::log1p(std::exp(-1.0))) / 2).epsilon(1e-6));
  loss.backward();
  tg::active_tape().reset();
  for (double g : z.grad().to_vector()) REQUIRE(std::isfinite(g));
}

TEST_CASE("cross_entropy: agrees with -mean(gather(log_softmax(z), labels)) and with gradcheck", "[nn][loss][gradcheck]") {
  const Tensor z = Tensor::rand({4, 5}, 3, Dtype::f64, -3, 3);
  const std::vector<std::int64_t> labels{4, 0, 2, 2};
  const double fused = cross_entropy(z, labels).item();
  const double composed = -tg::mean(tg::gather(tg::log_softmax(z), labels)).item();
  tg::active_tape().reset();
  REQUIRE(fused == Approx(composed).epsilon(1e-14));
  require_gradcheck("cross_entropy mean", [&](In in) { return cross_entropy(in[0], labels); }, {z});
  require_gradcheck("cross_entropy sum", [&](In in) { return cross_entropy(in[0], labels, Reduction::sum); }, {z});
}

TEST_CASE("cross_entropy: a label below 0 or from classes up is a ValueError naming the row", "[nn][loss]") {
  const Tensor z = Tensor::zeros({3, 3});
  const std::vector<std::int64_t> high{0, 3, 1};
  const std::vector<std::int64_t> negative{0, 1, -1};
  REQUIRE_THROWS_SAYING(cross_entropy(z, high), tg::ValueError, "label 3", "row 1", "[0, 3)");
  REQUIRE_THROWS_SAYING(cross_entropy(z, negative), tg::ValueError, "label -1", "row 2");
}

TEST_CASE("cross_entropy: logits not [batch, classes] or a label count off are a ShapeError", "[nn][loss]") {
  const std::vector<std::int64_t> two{0, 1};
  REQUIRE_THROWS_SAYING(cross_entropy(Tensor::zeros({3, 4}), two), tg::ShapeError, "2 labels", "[3, 4]");
  REQUIRE_THROWS_SAYING(cross_entropy(Tensor::zeros({2}), two), tg::ShapeError, "[batch, classes]", "[2]");
}

// ---- binary_cross_entropy_with_logits ------------------------------------------------------------

TEST_CASE("binary_cross_entropy_with_logits: values and gradient by hand, stable for large |x|", "[nn][loss]") {
  const Tensor x = tgtest::tensor64({-1000, -2, 0, 3, 1000}, {5});
  const Tensor t = tgtest::tensor64({1, 0, 0.5, 1, 0}, {5});
  // Per element -(t log s(x) + (1 - t) log(1 - s(x))); at |x| = 1000 the wrong side costs |x|.
  const double terms = 1000 + std::log1p(std::exp(-2.0)) + std::log(2.0) + std::log1p(std::exp(-3.0)) + 1000;
  const auto [mean, g] = value_and_grad(x, [&](const Tensor& p) { return binary_cross_entropy_with_logits(p, t); });
  REQUIRE(mean == Approx(terms / 5).epsilon(1e-15));
  const std::vector<double> want{-1, sigmoid(-2), 0, sigmoid(3) - 1, 1};  // sigmoid(x) - t
  for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(g[i] == Approx(want[i] / 5).margin(1e-16));
  const auto [sum, gs] = value_and_grad(x, [&](const Tensor& p) {
    return binary_cross_entropy_with_logits(p, t, Reduction::sum);
  });
  REQUIRE(sum == Approx(terms).epsilon(1e-15));
  for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(gs[i] == Approx(want[i]).margin(1e-16));
}

TEST_CASE("binary_cross_entropy_with_logits: gradcheck in logits and targets", "[nn][loss][gradcheck]") {
  const Tensor x = Tensor::rand({2, 5}, 4, Dtype::f64, -4, 4);
  const Tensor t = Tensor::rand({2, 5}, 5, Dtype::f64, 0, 1);
  require_gradcheck("bce mean", [](In in) { return binary_cross_entropy_with_logits(in[0], in[1]); }, {x, t});
  require_gradcheck("bce sum", [](In in) { return binary_cross_entropy_with_logits(in[0], in[1], Reduction::sum); },
                    {x, t});
}

TEST_CASE("binary_cross_entropy_with_logits: different shapes are a ShapeError naming both", "[nn][loss]") {
  REQUIRE_THROWS_SAYING(binary_cross_entropy_with_logits(Tensor::zeros({4}), Tensor::zeros({4, 1})), tg::ShapeError,
                        "[4]", "[4, 1]");
}

TEST_CASE("losses: the sum is n times the mean, for n elements (mse, bce) or rows (cross-entropy)", "[nn][loss]") {
  const Tensor a = Tensor::rand({6, 3}, 7, Dtype::f64, -1, 1);
  const Tensor b = Tensor::rand({6, 3}, 8, Dtype::f64, 0, 1);
  const std::vector<std::int64_t> labels{0, 1, 2, 2, 1, 0};
  REQUIRE(mse_loss(a, b, Reduction::sum).item() == Approx(18 * mse_loss(a, b).item()).epsilon(1e-14));
  REQUIRE(binary_cross_entropy_with_logits(a, b, Reduction::sum).item() ==
          Approx(18 * binary_cross_entropy_with_logits(a, b).item()).epsilon(1e-14));
  REQUIRE(cross_entropy(a, labels, Reduction::sum).item() == Approx(6 * cross_entropy(a, labels).item()).epsilon(1e-14));
  tg::active_tape().reset();
}

// fit() and evaluate() on small synthetic problems (XOR-like quadrants, a noisy linear function),
// their reports and reproducibility; the diagnostics: dead units and gradient norms.
#include "nn_test_util.hpp"

#include <nn/layers.hpp>
#include <nn/loss.hpp>
#include <nn/optim.hpp>
#include <nn/train.hpp>

#include <autodiff/tensor_reduce.hpp>

#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>

using tg::Dtype;
using tg::Shape;
using tg::Tensor;
using namespace tg::nn;

namespace {

// XOR-like: n points around the four centres (+-1.5, +-1.5) with noise 0.4; the label is 1 where
// the signs of the two coordinates differ. No straight line separates the classes.
TensorDataset quadrants(std::int64_t n, std::uint64_t seed) {
  const Tensor noise = Tensor::randn({n, 2}, seed, Dtype::f32, 0.0, 0.4);
  std::vector<float> x(static_cast<std::size_t>(2 * n));
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const double sx = (i % 2) == 0 ? 1.0 : -1.0;
    const double sy = (i / 2) % 2 == 0 ? 1.0 : -1.0;
    x[static_cast<std::size_t>(2 * i)] = static_cast<float>(1.5 * sx + noise.at(2 * i));
    x[static_cast<std::size_t>(2 * i + 1)] = static_cast<float>(1.5 * sy + noise.at(2 * i + 1));
    labels[static_cast<std::size_t>(i)] = sx * sy < 0 ? 1 : 0;
  }
  return TensorDataset(Tensor::from_values(std::span<const float>(x), {n, 2}), std::move(labels));
}

// y = 3 x0 - 2 x1 + 1 + noise(0.01), x uniform on [-1, 1)^2.
TensorDataset linear_data(std::int64_t n, std::uint64_t seed) {
  const Tensor x = Tensor::rand({n, 2}, seed, Dtype::f32, -1, 1);
  const Tensor noise = Tensor::randn({n, 1}, seed + 1, Dtype::f32, 0.0, 0.01);
  std::vector<float> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    y[static_cast<std::size_t>(i)] = static_cast<float>(3 * x.at(2 * i) - 2 * x.at(2 * i + 1) + 1 + noise.at(i));
  }
  return TensorDataset(x, Tensor::from_values(std::span<const float>(y), {n, 1}));
}

std::shared_ptr<Sequential> classifier() {
  return tgtest::sequential({std::make_shared<Linear>(2, 16), std::make_shared<ReLU>(),
                                                 std::make_shared<Linear>(16, 2)});
}

struct Run {
  std::vector<EpochStats> history;
  tgtest::Snapshot weights;
};

// Trains a fresh classifier on the quadrants: everything seeded.
Run train_quadrants(int epochs) {
  manual_seed(5);
  auto model = classifier();
  Adam opt(model->named_parameters(), {.lr = 0.05});
  const TensorDataset data = quadrants(400, 1);
  DataLoader loader(data, {.batch_size = 32, .seed = 9});
  Run r;
  r.history = fit(*model, opt, loader, {.epochs = epochs, .out = nullptr});
  r.weights = tgtest::snapshot(*model);
  return r;
}

std::string read_all(std::FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[256];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

}  // namespace

// ---- fit and evaluate --------------------------------------------------------------------------

TEST_CASE("fit: an MLP learns XOR-like quadrants to high accuracy in a few epochs", "[nn][train]") {
  manual_seed(5);
  auto model = classifier();
  Adam opt(model->named_parameters(), {.lr = 0.05});
  const TensorDataset train = quadrants(400, 1);
  const TensorDataset held_out = quadrants(200, 2);
  DataLoader loader(train, {.batch_size = 32, .seed = 9});
  const auto history = fit(*model, opt, loader, {.epochs = 8, .validation = &held_out, .out = nullptr});
  REQUIRE(history.size() == 8);
  REQUIRE(history.back().train_loss < history.front().train_loss);
  REQUIRE(history.back().train_accuracy >= 0.95);
  REQUIRE(history.back().validation.has_value());
  REQUIRE(history.back().validation->accuracy >= 0.95);
  const Evaluation ev = evaluate(*model, held_out);
  REQUIRE(ev.accuracy == history.back().validation->accuracy);
  REQUIRE(ev.loss == Approx(history.back().validation->loss).epsilon(1e-12));
  for (std::size_t e = 0; e < history.size(); ++e) REQUIRE(history[e].epoch == static_cast<int>(e) + 1);
}

TEST_CASE("fit: a linear regression's loss falls by orders of magnitude", "[nn][train]") {
  Linear model(2, 1, {.seed = 3});
  SGD opt(model.named_parameters(), {.lr = 0.1, .momentum = 0.9});
  const TensorDataset data = linear_data(256, 4);
  DataLoader loader(data, {.batch_size = 16, .seed = 1});
  const auto history = fit(model, opt, loader, {.epochs = 6, .out = nullptr});
  std::string losses;
  for (const EpochStats& s : history) losses += std::to_string(s.train_loss) + " ";
  INFO("losses per epoch: " << losses);
  REQUIRE(history.back().train_loss < 0.01 * history.front().train_loss);
  REQUIRE(history.back().train_loss < 1e-3);
  const std::vector<double> w = model.weight().to_vector();
  REQUIRE(w[0] == Approx(3).margin(0.05));
  REQUIRE(w[1] == Approx(-2).margin(0.05));
  REQUIRE(model.bias().at(0) == Approx(1).margin(0.05));
}

TEST_CASE("fit: two runs with the same seeds give bitwise the same losses and weights", "[nn][train]") {
  const Run a = train_quadrants(3);
  const Run b = train_quadrants(3);
  for (std::size_t e = 0; e < a.history.size(); ++e) {
    REQUIRE(a.history[e].train_loss == b.history[e].train_loss);
    REQUIRE(a.history[e].train_accuracy == b.history[e].train_accuracy);
  }
  REQUIRE(a.weights == b.weights);
}

TEST_CASE("fit: gradients left from before the call do not leak into the first update; the last batch's stay",
          "[nn][train]") {
  // Two identical models; one enters fit with a large stale gradient on every parameter.
  auto train_one = [](bool stale) {
    Linear model(2, 1, {.seed = 3});
    if (stale) {
      tg::sum(model(Tensor::full({4, 2}, 100.0f)) * 1000.0).backward();
      tg::active_tape().reset();
    }
    SGD opt(model.named_parameters(), {.lr = 0.1});
    const TensorDataset data = linear_data(64, 4);
    DataLoader loader(data, {.batch_size = 16, .shuffle = false});
    fit(model, opt, loader, {.epochs = 1, .out = nullptr});
    return std::pair{tgtest::snapshot(model), gradient_norms(model)};
  };
  const auto [clean, clean_norms] = train_one(false);
  const auto [stale, stale_norms] = train_one(true);
  REQUIRE(clean == stale);
  REQUIRE(clean_norms.size() == 2);
  REQUIRE(clean_norms[0].norm > 0.0);  // the last batch's gradient, readable after fit
  REQUIRE(clean_norms[0].norm == stale_norms[0].norm);
}

TEST_CASE("evaluate: the confusion matrix sums to the sample count, its trace to the correct ones", "[nn][train]") {
  manual_seed(8);
  auto model = classifier();
  const TensorDataset data = quadrants(101, 3);
  const Evaluation ev = evaluate(*model, data, 16);  // batches of 16: a short last one
  REQUIRE(ev.samples == 101);
  REQUIRE(ev.classes == 2);
  REQUIRE(ev.confusion.size() == 4);
  REQUIRE(std::accumulate(ev.confusion.begin(), ev.confusion.end(), std::int64_t{0}) == 101);
  REQUIRE(static_cast<double>(ev.confusion[0] + ev.confusion[3]) / 101 == Approx(ev.accuracy).epsilon(1e-15));
  // Row i counts the samples of true class i.
  const auto ones = std::count(data.labels().begin(), data.labels().end(), 1);
  REQUIRE(ev.confusion[2] + ev.confusion[3] == ones);
  // The loss is the mean cross-entropy over the whole set, whatever the batching.
  const double whole = cross_entropy((*model)(data.x()), data.labels()).item();
  tg::active_tape().reset();
  REQUIRE(ev.loss == Approx(whole).epsilon(1e-6));
  REQUIRE(ev.format_confusion().find("true\\pred") != std::string::npos);
}

TEST_CASE("evaluate: records no gradient and restores the model's mode", "[nn][train]") {
  manual_seed(8);
  auto model = classifier();
  const TensorDataset data = quadrants(20, 3);
  model->train();
  evaluate(*model, data);
  REQUIRE(model->is_training());
  for (const Tensor& p : model->parameters()) {
    for (double g : p.grad().to_vector()) REQUIRE(g == 0.0);
  }
  model->eval();
  evaluate(*model, data);
  REQUIRE_FALSE(model->is_training());
  REQUIRE_THROWS_SAYING(evaluate(*model, data, 0), tg::ValueError, "batch_size");
}

TEST_CASE("evaluate: a regression set's loss is the mean squared error over all of it", "[nn][train]") {
  Linear model(2, 1, {.seed = 3});
  const TensorDataset data = linear_data(50, 6);
  const Evaluation ev = evaluate(model, data, 7);
  const double whole = mse_loss(model(data.x()), data.y()).item();
  tg::active_tape().reset();
  REQUIRE(ev.loss == Approx(whole).epsilon(1e-6));
  REQUIRE(ev.classes == 0);
  REQUIRE(ev.confusion.empty());
}

TEST_CASE("fit: plain per-epoch lines when not on a terminal, a progress bar when asked", "[nn][train]") {
  manual_seed(5);
  auto model = classifier();
  SGD opt(model->named_parameters(), {.lr = 0.05});
  const TensorDataset data = quadrants(64, 1);
  DataLoader loader(data, {.batch_size = 16, .seed = 9});
  std::FILE* plain = std::tmpfile();
  REQUIRE(plain != nullptr);
  fit(*model, opt, loader, {.epochs = 2, .out = plain});
  const std::string lines = read_all(plain);
  std::fclose(plain);
  INFO(lines);
  REQUIRE(lines.find("epoch 1/2  loss ") == 0);
  REQUIRE(lines.find("\nepoch 2/2  loss ") != std::string::npos);
  REQUIRE(lines.find("acc ") != std::string::npos);
  REQUIRE(lines.find('\r') == std::string::npos);
  REQUIRE(std::count(lines.begin(), lines.end(), '\n') == 2);

  std::FILE* bar = std::tmpfile();
  REQUIRE(bar != nullptr);
  fit(*model, opt, loader, {.epochs = 1, .progress = true, .out = bar});
  const std::string drawn = read_all(bar);
  std::fclose(bar);
  REQUIRE(drawn.find('\r') != std::string::npos);
  REQUIRE(drawn.find("100%") != std::string::npos);
}

TEST_CASE("fit: on_epoch runs after every epoch, e.g. a schedule's step", "[nn][train]") {
  manual_seed(5);
  auto model = classifier();
  SGD opt(model->named_parameters(), {.lr = 0.1});
  StepLR schedule(opt, 1, 0.5);
  const TensorDataset data = quadrants(32, 1);
  DataLoader loader(data, {.batch_size = 16});
  std::vector<int> seen;
  const auto history = fit(*model, opt, loader, {.epochs = 3, .out = nullptr, .on_epoch = [&](const EpochStats& s) {
                                                   seen.push_back(s.epoch);
                                                   schedule.step();
                                                 }});
  REQUIRE(seen == std::vector<int>{1, 2, 3});
  REQUIRE(history[0].learning_rate == 0.1);
  REQUIRE(history[1].learning_rate == 0.05);
  REQUIRE(history[2].learning_rate == 0.025);
}

TEST_CASE("fit: a diverging loss is a ValueError naming the epoch and the learning rate", "[nn][train]") {
  Linear model(2, 1, {.seed = 3});
  SGD opt(model.named_parameters(), {.lr = 1e30});
  const TensorDataset data = linear_data(64, 4);
  DataLoader loader(data, {.batch_size = 16});
  REQUIRE_THROWS_SAYING(fit(model, opt, loader, {.epochs = 3, .out = nullptr}), tg::ValueError, "epoch", "1e+30");
  CHECK(tg::active_tape().size() == 1);  // the failed batch's recording is gone: only the sink
  CHECK(std::isfinite(model.weight().data<float>()[0]));  // the update was not applied
}

// ---- Diagnostics ------------------------------------------------------------------------------

namespace {
// 3 -> 6 ReLU units -> 2; units 0..2 have a bias of -100 (dead for any input in [-1, 1)^3), units
// 3..5 one of +100 (always alive).
std::shared_ptr<Sequential> half_dead() {
  auto first = std::make_shared<Linear>(3, 6, LinearOptions{.seed = 1, .dtype = Dtype::f64});
  first->bias().copy_(tgtest::tensor64({-100, -100, -100, 100, 100, 100}, {6}));
  return tgtest::sequential({
      first, std::make_shared<ReLU>(), std::make_shared<Linear>(6, 2, LinearOptions{.seed = 2, .dtype = Dtype::f64})});
}
}  // namespace

TEST_CASE("dead_units: ReLU units with a large negative bias are reported dead", "[nn][diagnostics]") {
  auto model = half_dead();
  track_units(*model, true);
  for (std::uint64_t seed = 0; seed < 3; ++seed) (*model)(Tensor::rand({16, 3}, seed, Dtype::f64, -1, 1));
  tg::active_tape().reset();
  const std::vector<DeadUnits> rows = dead_units(*model);
  REQUIRE(rows.size() == 1);
  REQUIRE(rows[0].name == "1");
  REQUIRE(rows[0].layer == "ReLU");
  REQUIRE(rows[0].units == 6);
  REQUIRE(rows[0].dead == 3);
  REQUIRE(rows[0].fraction == 0.5);
  const std::string table = format_dead_units(rows);
  REQUIRE(table.find("0.500") != std::string::npos);
  // Dead means no gradient: the first layer's weight rows of units 0..2 get nothing.
  tg::sum((*model)(Tensor::rand({16, 3}, 9, Dtype::f64, -1, 1))).backward();
  tg::active_tape().reset();
  const std::vector<double> g = dynamic_cast<Linear&>((*model)[0]).weight().grad().to_vector();
  for (std::size_t i = 0; i < 9; ++i) REQUIRE(g[i] == 0.0);
  REQUIRE(std::any_of(g.begin() + 9, g.end(), [](double v) { return v != 0.0; }));
}

TEST_CASE("dead_units: a unit alive in any batch is alive, reset and tracking off", "[nn][diagnostics]") {
  auto model = half_dead();
  track_units(*model, true);
  (*model)(Tensor::rand({4, 3}, 1, Dtype::f64, -1, 1));
  auto& first = dynamic_cast<Linear&>((*model)[0]);
  first.bias().copy_(tgtest::tensor64({100, -100, -100, 100, 100, 100}, {6}));  // unit 0 comes alive
  (*model)(Tensor::rand({4, 3}, 2, Dtype::f64, -1, 1));
  tg::active_tape().reset();
  REQUIRE(dead_units(*model)[0].dead == 2);
  auto& relu = dynamic_cast<ReLU&>((*model)[1]);
  REQUIRE(relu.unit_stats().samples == 8);
  reset_unit_stats(*model);
  REQUIRE(dead_units(*model)[0].units == 0);
  track_units(*model, false);
  (*model)(Tensor::rand({4, 3}, 3, Dtype::f64, -1, 1));
  tg::active_tape().reset();
  REQUIRE(dead_units(*model)[0].units == 0);  // not tracked
  REQUIRE_FALSE(relu.tracking_units());
}

TEST_CASE("gradient_norms: the 2-norm of each parameter's gradient, by name (hand example)", "[nn][diagnostics]") {
  // sum(x W^T + b) over x = [[1, 2], [3, 4]]: dW = [4, 6] (column sums), db = [2] (the batch size).
  Linear lin(2, 1, {.dtype = Dtype::f64});
  tg::sum(lin(tgtest::tensor64({1, 2, 3, 4}, {2, 2}))).backward();
  tg::active_tape().reset();
  const std::vector<GradNorm> norms = gradient_norms(lin);
  REQUIRE(norms.size() == 2);
  REQUIRE(norms[0].name == "weight");
  REQUIRE(norms[0].norm == Approx(std::sqrt(52.0)).epsilon(1e-15));
  REQUIRE(norms[1].name == "bias");
  REQUIRE(norms[1].norm == 2.0);
  const std::string table = format_gradient_norms(norms);
  REQUIRE(table.find("weight") != std::string::npos);
  REQUIRE(table.find("7.2111e+00") != std::string::npos);  // sqrt(52) = 7.2111...
  // The same in float.
  Linear lin32(2, 1);
  tg::sum(lin32(Tensor::from_values({1, 2, 3, 4}, {2, 2}))).backward();
  tg::active_tape().reset();
  const std::vector<GradNorm> norms32 = gradient_norms(lin32);
  REQUIRE(norms32[0].norm == Approx(std::sqrt(52.0)).epsilon(1e-7));
  REQUIRE(norms32[1].norm == 2.0);
}

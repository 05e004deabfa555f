// Optimizers: SGD's update W* = W - alpha dE/dW on a hand example, then three steps of every
// variant against values computed independently (NumPy, below); the options they reject; the
// learning-rate schedules per epoch; clipping by global norm; saving and restoring the state.
#include "nn_test_util.hpp"

#include <nn/layers.hpp>
#include <nn/loss.hpp>
#include <nn/optim.hpp>

#include <autodiff/tensor_reduce.hpp>

#include <cmath>
#include <functional>
#include <memory>

using tg::Dtype;
using tg::Shape;
using tg::Tensor;
using namespace tg::nn;

namespace {

// The fixed problem of the three-step tests: w0 and the gradients of steps 1, 2, 3 (set by hand,
// so that the expected values depend on the update rule only). The expected values come from this
// NumPy program (PyTorch's definitions of each optimizer):
//
//   import numpy as np
//   w0 = np.array([0.5, -1.5, 2.0])
//   gs = [np.array([0.1, -0.2, 0.3]), np.array([-0.4, 0.5, 0.05]), np.array([0.2, 0.2, -0.6])]
//   def sgd(lr, mom=0.0, damp=0.0, nest=False, wd=0.0):
//       w = w0.copy(); v = None
//       for g in gs:
//           g = g + wd * w
//           if mom:
//               v = g.copy() if v is None else mom * v + (1 - damp) * g
//               g = g + mom * v if nest else v
//           w = w - lr * g
//       return w
//   def adam(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
//       w = w0.copy(); m = np.zeros(3); v = np.zeros(3)
//       for t, g in enumerate(gs, 1):
//           if decoupled: w = w - lr * wd * w
//           else: g = g + wd * w
//           m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g
//           w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
//       return w
const std::vector<double> kW0{0.5, -1.5, 2.0};
const std::vector<std::vector<double>> kGrads{{0.1, -0.2, 0.3}, {-0.4, 0.5, 0.05}, {0.2, 0.2, -0.6}};

using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(std::vector<NamedTensor>)>;

// w after three steps of the optimizer from kW0 with kGrads.
std::vector<double> three_steps(const MakeOptimizer& make) {
  Tensor w = Tensor::from_values(std::span<const double>(kW0), {3}, Dtype::f64);
  w.requires_grad();
  std::unique_ptr<Optimizer> opt = make({{"w", w}});
  for (const std::vector<double>& g : kGrads) {
    w.grad().copy_(Tensor::from_values(std::span<const double>(g), {3}, Dtype::f64));
    opt->step();
  }
  REQUIRE(opt->steps() == 3);
  return w.to_vector();
}

void require_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    REQUIRE(got[i] == Approx(want[i]).epsilon(1e-12));
  }
}

template <class O, class Options>
MakeOptimizer make(Options o) {
  return [o](std::vector<NamedTensor> p) -> std::unique_ptr<Optimizer> { return std::make_unique<O>(std::move(p), o); };
}

}  // namespace

// ---- SGD ---------------------------------------------------------------------------------------

TEST_CASE("SGD: one step is exactly W* = W - alpha dE/dW (hand example)", "[nn][optim]") {
  // E(w) = (w . x - 10)^2 with w = [1, 2], x = [3, 4]: w . x = 11, dE/dw = 2 (11 - 10) x = [6, 8].
  Tensor w = tgtest::param({1, 2}, {2});
  const Tensor x = tgtest::tensor64({3, 4}, {2});
  const Tensor e = mse_loss(tg::sum(w * x), tgtest::tensor64({10}, {}), Reduction::sum);
  REQUIRE(e.item() == 1.0);
  e.backward();
  tg::active_tape().reset();
  REQUIRE(w.grad().to_vector() == std::vector<double>{6, 8});
  SGD sgd({{"w", w}}, {.lr = 0.1});
  sgd.step();
  REQUIRE(w.to_vector() == std::vector<double>{1.0 - 0.1 * 6.0, 2.0 - 0.1 * 8.0});
  REQUIRE(sgd.kind() == "sgd");
}

TEST_CASE("SGD: plain steps follow the gradient, float parameters too", "[nn][optim]") {
  Tensor w = Tensor::from_values({0.5, -1.5}, {2}, Dtype::f32);
  w.requires_grad();
  SGD sgd({{"w", w}}, {.lr = 0.25});
  w.grad().copy_(Tensor::from_values({2.0, -4.0}, {2}, Dtype::f32));
  sgd.step();
  REQUIRE(w.to_vector() == std::vector<double>{0.0, -0.5});
  sgd.zero_grad();
  REQUIRE(w.grad().to_vector() == std::vector<double>{0.0, 0.0});
}

TEST_CASE("SGD: momentum, three steps against NumPy", "[nn][optim]") {
  require_close(three_steps(make<SGD>(SGDOptions{.lr = 0.1, .momentum = 0.9})), {0.5289, -1.5608, 1.9691999999999998});
}

TEST_CASE("SGD: momentum with dampening, three steps against NumPy", "[nn][optim]") {
  require_close(three_steps(make<SGD>(SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.5})),
                {0.5009, -1.5032999999999999, 1.9439499999999998});
}

TEST_CASE("SGD: Nesterov momentum, three steps against NumPy", "[nn][optim]") {
  require_close(three_steps(make<SGD>(SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true})),
                {0.53601, -1.60472, 1.99728});
}

TEST_CASE("SGD: weight decay, without and with momentum, three steps against NumPy", "[nn][optim]") {
  require_close(three_steps(make<SGD>(SGDOptions{.lr = 0.1, .weight_decay = 0.01})),
                {0.5084814895, -1.5454944785, 2.019070968});
  require_close(three_steps(make<SGD>(SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1})),
                {0.5010685, -1.4776265, 1.859145});
}

TEST_CASE("SGD: invalid options are a ValueError naming the option", "[nn][optim]") {
  Tensor w = tgtest::param({1, 2}, {2});
  const std::vector<NamedTensor> p{{"w", w}};
  REQUIRE_THROWS_SAYING(SGD(p, {.lr = -0.1}), tg::ValueError, "learning rate", "-0.1");
  REQUIRE_THROWS_SAYING(SGD(p, {.lr = std::nan("")}), tg::ValueError, "learning rate");
  REQUIRE_THROWS_SAYING(SGD(p, {.momentum = -0.5}), tg::ValueError, "momentum");
  REQUIRE_THROWS_SAYING(SGD(p, {.dampening = INFINITY}), tg::ValueError, "dampening");
  REQUIRE_THROWS_SAYING(SGD(p, {.weight_decay = -1}), tg::ValueError, "weight_decay");
  REQUIRE_THROWS_SAYING(SGD(p, {.nesterov = true}), tg::ValueError, "Nesterov");
  REQUIRE_THROWS_SAYING(SGD(p, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}), tg::ValueError, "Nesterov");
  SGD ok(p, {});
  REQUIRE_THROWS_SAYING(ok.set_learning_rate(-1), tg::ValueError, "set_learning_rate");
}

TEST_CASE("Optimizer: a tensor that is not a parameter is a ValueError naming it", "[nn][optim]") {
  const Tensor constant = tgtest::tensor64({1, 2}, {2});
  REQUIRE_THROWS_SAYING(SGD({{"frozen", constant}}), tg::ValueError, "'frozen'");
  Tensor w = tgtest::param({1, 2}, {2});
  const Tensor recorded = w * 2.0;
  REQUIRE_THROWS_SAYING(Adam({{"recorded", recorded}}), tg::ValueError, "'recorded'");
  tg::active_tape().reset();
}

// ---- Adam, AdamW -------------------------------------------------------------------------------

TEST_CASE("Adam: default betas and eps, three steps against NumPy", "[nn][optim]") {
  require_close(three_steps(make<Adam>(AdamOptions{.lr = 0.01})),
                {0.49669677234642673, -1.4998515828128194, 1.9851302413110195});
  require_close(three_steps(make<Adam>(AdamOptions{.lr = 0.05, .beta1 = 0.5, .beta2 = 0.9, .eps = 1e-3})),
                {0.48680985826330386, -1.518921826848799, 1.954077853373347});
}

TEST_CASE("Adam: weight decay is L2 added to the gradient, three steps against NumPy", "[nn][optim]") {
  require_close(three_steps(make<Adam>(AdamOptions{.lr = 0.01, .weight_decay = 0.1})),
                {0.49344007773318244, -1.4916098703201714, 1.9785740039643804});
}

TEST_CASE("AdamW: decoupled weight decay, three steps against NumPy, default decay 0.01", "[nn][optim]") {
  require_close(three_steps(make<AdamW>(AdamOptions{.lr = 0.01, .weight_decay = 0.1})),
                {0.4952126668096792, -1.495371649159298, 1.9791640625834714});
  // The default options of AdamW decay by 0.01 (not Adam's 0): the same as asking for it.
  const auto by_default = three_steps([](std::vector<NamedTensor> p) { return std::make_unique<AdamW>(std::move(p)); });
  const auto asked = three_steps(make<AdamW>(AdamOptions{.weight_decay = 0.01}));
  const auto none = three_steps(make<AdamW>(AdamOptions{.weight_decay = 0.0}));
  REQUIRE(by_default == asked);
  REQUIRE(by_default != none);
  Tensor w = tgtest::param({1}, {1});
  REQUIRE(AdamW({{"w", w}}).kind() == "adamw");
  REQUIRE(Adam({{"w", w}}).kind() == "adam");
}

TEST_CASE("Adam: invalid options are a ValueError naming the option", "[nn][optim]") {
  Tensor w = tgtest::param({1, 2}, {2});
  const std::vector<NamedTensor> p{{"w", w}};
  REQUIRE_THROWS_SAYING(Adam(p, {.beta1 = 1.0}), tg::ValueError, "betas");
  REQUIRE_THROWS_SAYING(Adam(p, {.beta2 = -0.1}), tg::ValueError, "betas");
  REQUIRE_THROWS_SAYING(Adam(p, {.eps = 0}), tg::ValueError, "eps");
  REQUIRE_THROWS_SAYING(Adam(p, {.weight_decay = -0.01}), tg::ValueError, "weight_decay");
  REQUIRE_THROWS_SAYING(AdamW(p, {.lr = INFINITY}), tg::ValueError, "learning rate");
}

// ---- Schedules and clipping --------------------------------------------------------------------

TEST_CASE("StepLR: the rate is multiplied by gamma every step_size epochs", "[nn][optim][schedule]") {
  Tensor w = tgtest::param({1}, {1});
  SGD sgd({{"w", w}}, {.lr = 0.1});
  StepLR sched(sgd, 2, 0.5);
  const std::vector<double> want{0.1, 0.05, 0.05, 0.025, 0.025, 0.0125};  // after epochs 1..6
  for (std::size_t e = 0; e < want.size(); ++e) {
    sched.step();
    INFO("after epoch " << e + 1);
    REQUIRE(sgd.learning_rate() == Approx(want[e]).epsilon(1e-15));
    REQUIRE(sched.learning_rate() == sgd.learning_rate());
  }
  REQUIRE_THROWS_SAYING(StepLR(sgd, 0), tg::ValueError, "step_size");
  REQUIRE_THROWS_SAYING(StepLR(sgd, 1, -0.5), tg::ValueError, "gamma");
}

TEST_CASE("CosineLR: eta_min + (base - eta_min)(1 + cos(pi e / T)) / 2, then stays at eta_min", "[nn][optim][schedule]") {
  Tensor w = tgtest::param({1}, {1});
  SGD sgd({{"w", w}}, {.lr = 0.1});
  CosineLR sched(sgd, 4, 0.01);
  // Python: [0.01 + 0.09 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(1, 5)]
  const std::vector<double> want{0.08681980515339464, 0.05500000000000001, 0.023180194846605363, 0.01, 0.01, 0.01};
  for (std::size_t e = 0; e < want.size(); ++e) {
    sched.step();
    INFO("after epoch " << e + 1);
    REQUIRE(sgd.learning_rate() == Approx(want[e]).epsilon(1e-14));
  }
  REQUIRE_THROWS_SAYING(CosineLR(sgd, 0), tg::ValueError, "t_max");
  REQUIRE_THROWS_SAYING(CosineLR(sgd, 3, -1), tg::ValueError, "eta_min");
}

TEST_CASE("clip_grad_norm: returns the norm before clipping and scales all gradients to max_norm", "[nn][optim]") {
  Tensor a = tgtest::param({0, 0}, {2});
  Tensor b = Tensor::zeros({1}, Dtype::f32);
  b.requires_grad();
  a.grad().copy_(tgtest::tensor64({3, 4}, {2}));
  b.grad().copy_(Tensor::from_values({12.0}, {1}, Dtype::f32));
  REQUIRE(clip_grad_norm({a, b}, 6.5) == 13.0);  // sqrt(9 + 16 + 144)
  REQUIRE(a.grad().to_vector() == std::vector<double>{1.5, 2.0});
  REQUIRE(b.grad().to_vector() == std::vector<double>{6.0});
  // Under the limit: the norm is reported and nothing changes.
  REQUIRE(clip_grad_norm({a, b}, 100) == Approx(6.5).epsilon(1e-15));
  REQUIRE(a.grad().to_vector() == std::vector<double>{1.5, 2.0});
  REQUIRE_THROWS_SAYING(clip_grad_norm({a, b}, -1), tg::ValueError, "max_norm");
}

// ---- State -------------------------------------------------------------------------------------

namespace {

// A small f64 regression network and its data; step() is one steady training iteration.
struct Problem {
  std::shared_ptr<Sequential> model;
  Tensor x = Tensor::rand({5, 3}, 31, Dtype::f64, -1, 1);
  Tensor y = Tensor::rand({5, 2}, 32, Dtype::f64, -1, 1);

  explicit Problem(std::uint64_t seed)
      : model(tgtest::sequential({
            std::make_shared<Linear>(3, 4, LinearOptions{.seed = seed, .dtype = Dtype::f64}),
            std::make_shared<Tanh>(),
            std::make_shared<Linear>(4, 2, LinearOptions{.seed = seed + 1, .dtype = Dtype::f64}),
        })) {}

  void step(Optimizer& opt) const {
    tg::active_tape().reset();
    mse_loss((*model)(x), y).backward();
    opt.step();
    opt.zero_grad();
    tg::active_tape().reset();
  }
};

// Six steps in one go against three, a save of the state, a fresh optimizer (and model copy)
// that loads it, and three more: bitwise the same parameters.
void require_resumes_identically(const MakeOptimizer& make_opt) {
  Problem straight(1);
  auto opt = make_opt(straight.model->named_parameters());
  for (int i = 0; i < 6; ++i) straight.step(*opt);

  Problem first(1);
  auto opt1 = make_opt(first.model->named_parameters());
  for (int i = 0; i < 3; ++i) first.step(*opt1);
  std::vector<NamedTensor> saved;
  for (const NamedTensor& t : opt1->state_tensors()) saved.push_back({t.name, t.tensor.clone()});
  const std::map<std::string, std::string> scalars = opt1->state_scalars();

  Problem resumed(100);  // other initial weights, overwritten below
  for (std::size_t i = 0; i < resumed.model->parameters().size(); ++i) {
    Tensor p = resumed.model->parameters()[i];
    p.copy_(first.model->parameters()[i]);
  }
  auto opt2 = make_opt(resumed.model->named_parameters());
  opt2->load_state(saved, scalars);
  REQUIRE(opt2->steps() == 3);
  for (int i = 0; i < 3; ++i) resumed.step(*opt2);
  REQUIRE(tgtest::snapshot(*resumed.model) == tgtest::snapshot(*straight.model));
  REQUIRE(opt2->steps() == 6);
}

}  // namespace

TEST_CASE("optimizer state: buffers are named <parameter>.<buffer>", "[nn][optim][state]") {
  Problem p(1);
  SGD sgd(p.model->named_parameters(), {.momentum = 0.9});
  REQUIRE(sgd.state_tensors().empty());  // no buffer before the first step
  p.step(sgd);
  std::vector<std::string> names;
  for (const NamedTensor& t : sgd.state_tensors()) names.push_back(t.name);
  REQUIRE(names == std::vector<std::string>{"0.weight.momentum", "0.bias.momentum", "2.weight.momentum",
                                            "2.bias.momentum"});
  Adam adam(p.model->named_parameters());
  p.step(adam);
  REQUIRE(adam.state_tensors().size() == 8);
  REQUIRE(adam.state_tensors()[1].name == "0.weight.exp_avg_sq");
  REQUIRE(adam.state_scalars().at("kind") == "adam");
  REQUIRE(adam.state_scalars().at("steps") == "1");
}

TEST_CASE("optimizer state: a restored optimizer continues exactly like an uninterrupted one", "[nn][optim][state]") {
  SECTION("SGD with momentum, Nesterov, weight decay") {
    require_resumes_identically(make<SGD>(SGDOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01}));
  }
  SECTION("SGD with dampened momentum") {
    require_resumes_identically(make<SGD>(SGDOptions{.lr = 0.05, .momentum = 0.5, .dampening = 0.3}));
  }
  SECTION("Adam") { require_resumes_identically(make<Adam>(AdamOptions{.lr = 0.01})); }
  SECTION("AdamW") { require_resumes_identically(make<AdamW>(AdamOptions{.lr = 0.01, .weight_decay = 0.1})); }
}

TEST_CASE("optimizer state: the learning rate round-trips exactly", "[nn][optim][state]") {
  Tensor w = tgtest::param({1}, {1});
  SGD a({{"w", w}});
  a.set_learning_rate(0.1 * std::cos(0.3));
  SGD b({{"w", w}});
  b.load_state(a.state_tensors(), a.state_scalars());
  REQUIRE(b.learning_rate() == a.learning_rate());
}

TEST_CASE("optimizer state: a mismatched state is a ValueError and changes nothing", "[nn][optim][state]") {
  Problem p(1);
  Adam adam(p.model->named_parameters(), {.lr = 0.02});
  p.step(adam);
  const std::vector<double> m_before = adam.state_tensors()[0].tensor.to_vector();
  SGD sgd(p.model->named_parameters(), {.momentum = 0.9});
  p.step(sgd);
  p.step(sgd);
  const auto adam_state = adam.state_tensors();
  const auto adam_scalars = adam.state_scalars();

  REQUIRE_THROWS_SAYING(adam.load_state(sgd.state_tensors(), sgd.state_scalars()), tg::ValueError, "'sgd'", "'adam'");
  auto wrong_shape = adam_state;
  wrong_shape[2].tensor = Tensor::zeros({7}, Dtype::f64);
  REQUIRE_THROWS_SAYING(adam.load_state(wrong_shape, adam_scalars), tg::ValueError, wrong_shape[2].name, "[7]");
  auto unknown = adam_state;
  unknown.push_back({"3.weight.exp_avg", Tensor::zeros({2, 4}, Dtype::f64)});
  REQUIRE_THROWS_SAYING(adam.load_state(unknown, adam_scalars), tg::ValueError, "'3.weight.exp_avg'");
  auto bad_steps = adam_scalars;
  bad_steps["steps"] = "three";
  REQUIRE_THROWS_SAYING(adam.load_state(adam_state, bad_steps), tg::ValueError, "'three'");
  auto no_lr = adam_scalars;
  no_lr.erase("lr");
  REQUIRE_THROWS_SAYING(adam.load_state(adam_state, no_lr), tg::ValueError, "'lr'");

  REQUIRE(adam.steps() == 1);
  REQUIRE(adam.learning_rate() == 0.02);
  REQUIRE(adam.state_tensors().size() == 8);
  REQUIRE(adam.state_tensors()[0].tensor.to_vector() == m_before);
}

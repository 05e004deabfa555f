// Modules and Linear: parameter lists with dotted names, shared storage, zero_grad, train/eval,
// counts and the summary; Linear's shapes, its forward worked by hand and its shape errors.
#include "nn_test_util.hpp"

#include <nn/layers.hpp>

#include <autodiff/tensor_reduce.hpp>

#include <memory>

using tg::Dtype;
using tg::Shape;
using tg::Tensor;
using namespace tg::nn;

namespace {

// A custom module with its own parameter and a Sequential child called "layers".
class Net : public Module {
 public:
  Net() {
    scale_ = register_parameter("scale", Tensor::ones({1}, Dtype::f64));
    layers_ = register_module("layers", tgtest::sequential({
                                            std::make_shared<Linear>(3, 4, LinearOptions{.seed = 1, .dtype = Dtype::f64}),
                                            std::make_shared<ReLU>(),
                                            std::make_shared<Linear>(4, 2, LinearOptions{.seed = 2, .dtype = Dtype::f64}),
                                        }));
  }
  Tensor forward(const Tensor& x) override { return layers_->forward(x) * scale_; }
  std::string describe() const override { return "Net"; }
  Sequential& layers() { return *layers_; }

 private:
  Tensor scale_;
  std::shared_ptr<Sequential> layers_;
};

// Registers the same parameter name twice.
class Twice : public Module {
 public:
  Twice() {
    register_parameter("w", Tensor::zeros({2}));
    register_parameter("w", Tensor::zeros({2}));
  }
  Tensor forward(const Tensor& x) override { return x; }
  std::string describe() const override { return "Twice"; }
};

Tensor batch3() { return tgtest::tensor64({0.5, -1.0, 2.0, 1.5, 0.25, -0.75}, {2, 3}); }

}  // namespace

// ---- Module ------------------------------------------------------------------------------------

TEST_CASE("named_parameters: own parameters first, then children depth first, with dotted names", "[nn][module]") {
  Net net;
  std::vector<std::string> names;
  for (const NamedTensor& p : net.named_parameters()) names.push_back(p.name);
  REQUIRE(names == std::vector<std::string>{"scale", "layers.0.weight", "layers.0.bias", "layers.2.weight",
                                            "layers.2.bias"});
  REQUIRE(net.parameters().size() == 5);
  for (const Tensor& p : net.parameters()) REQUIRE(p.has_grad());
}

TEST_CASE("named_modules: every module with its dotted path, this one first", "[nn][module]") {
  Net net;
  std::vector<std::string> names;
  for (const auto& [name, m] : net.named_modules()) names.push_back(name + "=" + m->describe());
  REQUIRE(names == std::vector<std::string>{"=Net", "layers=Sequential", "layers.0=Linear(in=3, out=4, bias=true)",
                                            "layers.1=ReLU", "layers.2=Linear(in=4, out=2, bias=true)"});
}

TEST_CASE("parameters share data and gradient with the layer's own tensors", "[nn][module]") {
  Net net;
  auto& first = dynamic_cast<Linear&>(net.layers()[0]);
  const NamedTensor listed = net.named_parameters()[1];
  REQUIRE(listed.name == "layers.0.weight");
  REQUIRE(listed.tensor.data<double>() == first.weight().data<double>());
  Tensor handle = listed.tensor;
  handle.fill_(0.25);  // writes through the list's handle show in the layer
  REQUIRE(first.weight().at(5) == 0.25);
  // A sweep's gradient is visible through both handles.
  tg::sum(net(batch3())).backward();
  REQUIRE(listed.tensor.grad().data<double>() == first.weight().grad().data<double>());
  tg::active_tape().reset();
}

TEST_CASE("zero_grad zeroes every parameter's gradient, children included", "[nn][module]") {
  Net net;
  tg::sum(net(batch3())).backward();
  tg::active_tape().reset();
  double before = 0;
  for (const Tensor& p : net.parameters()) {
    for (double g : p.grad().to_vector()) before += std::abs(g);
  }
  REQUIRE(before > 0);
  net.zero_grad();
  for (const NamedTensor& p : net.named_parameters()) {
    INFO(p.name);
    for (double g : p.tensor.grad().to_vector()) REQUIRE(g == 0.0);
  }
}

TEST_CASE("gradients accumulate over sweeps until zero_grad", "[nn][module]") {
  Net net;
  tg::sum(net(batch3())).backward();
  tg::active_tape().reset();
  const std::vector<double> once = net.parameters()[0].grad().to_vector();
  tg::sum(net(batch3())).backward();
  tg::active_tape().reset();
  // The second sweep's GEMM adds into the first gradient (beta = 1), fused in float: equal to
  // 2 * once up to float rounding, not bit for bit.
  REQUIRE(net.parameters()[0].grad().to_vector()[0] == Approx(2 * once[0]).epsilon(1e-6));
}

TEST_CASE("train() and eval() reach every module below", "[nn][module]") {
  Net net;
  REQUIRE(net.is_training());
  net.eval();
  for (const auto& [name, m] : net.named_modules()) {
    INFO(name);
    REQUIRE_FALSE(m->is_training());
  }
  net.train();
  for (const auto& [name, m] : net.named_modules()) {
    INFO(name);
    REQUIRE(m->is_training());
  }
  net.layers().eval();  // a child only: the parent keeps its mode
  REQUIRE(net.is_training());
  REQUIRE_FALSE(net.layers()[2].is_training());
}

TEST_CASE("parameter_count counts every scalar parameter", "[nn][module]") {
  Net net;
  REQUIRE(net.parameter_count() == 1 + (3 * 4 + 4) + (4 * 2 + 2));
  REQUIRE(Linear(5, 7, {.bias = false}).parameter_count() == 35);
}

TEST_CASE("summary: one indented line per module, then the parameter count", "[nn][module]") {
  Net net;
  REQUIRE(net.summary() ==
          "Net\n"
          "  layers: Sequential\n"
          "    0: Linear(in=3, out=4, bias=true)\n"
          "    1: ReLU\n"
          "    2: Linear(in=4, out=2, bias=true)\n"
          "27 parameters\n");
}

TEST_CASE("register_parameter: a repeated name is a ValueError naming it", "[nn][module]") {
  REQUIRE_THROWS_SAYING(Twice(), tg::ValueError, "'w'");
}

TEST_CASE("Sequential: applies its modules in order, rejects a null module", "[nn][module]") {
  Sequential s;
  REQUIRE_THROWS_AS(s.add(nullptr), tg::ValueError);
  auto lin = std::make_shared<Linear>(3, 2, LinearOptions{.seed = 3, .dtype = Dtype::f64});
  s.add(lin).add(std::make_shared<Tanh>());
  REQUIRE(s.size() == 2);
  const Tensor x = batch3();
  const std::vector<double> direct = tg::tanh((*lin)(x)).to_vector();
  REQUIRE(s(x).to_vector() == direct);
  tg::active_tape().reset();
}

// ---- Linear ------------------------------------------------------------------------------------

TEST_CASE("Linear: weight [out, in], bias [out], output [batch, out]", "[nn][linear]") {
  Linear lin(3, 5);
  REQUIRE(lin.weight().shape() == Shape{5, 3});
  REQUIRE(lin.bias().shape() == Shape{5});
  REQUIRE(lin.in_features() == 3);
  REQUIRE(lin.out_features() == 5);
  REQUIRE(lin(Tensor::ones({7, 3})).shape() == Shape{7, 5});
  tg::active_tape().reset();
  for (double b : lin.bias().to_vector()) REQUIRE(b == 0.0);  // biases start at zero
}

TEST_CASE("Linear: forward is x W^T + b, worked by hand", "[nn][linear]") {
  Linear lin(3, 2, {.dtype = Dtype::f64});
  lin.weight().copy_(tgtest::tensor64({1, 2, 3, -1, 0.5, 4}, {2, 3}));
  lin.bias().copy_(tgtest::tensor64({0.5, -2}, {2}));
  const Tensor y = lin(batch3());  // x = [[0.5, -1, 2], [1.5, 0.25, -0.75]]
  // row 0: 0.5 - 2 + 6 + 0.5 = 5;   -0.5 - 0.5 + 8 - 2 = 5
  // row 1: 1.5 + 0.5 - 2.25 + 0.5 = 0.25;   -1.5 + 0.125 - 3 - 2 = -6.375
  const std::vector<double> want{5, 5, 0.25, -6.375};
  const std::vector<double> got = y.to_vector();
  for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(got[i] == Approx(want[i]).margin(1e-14));
  tg::active_tape().reset();
}

TEST_CASE("Linear: gradients of sum(y) are the column sums of x and the batch size", "[nn][linear]") {
  Linear lin(3, 2, {.seed = 4, .dtype = Dtype::f64});
  tg::sum(lin(batch3())).backward();
  tg::active_tape().reset();
  const std::vector<double> gw = lin.weight().grad().to_vector();
  const std::vector<double> col{0.5 + 1.5, -1.0 + 0.25, 2.0 - 0.75};
  for (std::size_t o = 0; o < 2; ++o) {
    for (std::size_t i = 0; i < 3; ++i) REQUIRE(gw[o * 3 + i] == Approx(col[i]).margin(1e-14));
  }
  REQUIRE(lin.bias().grad().to_vector() == std::vector<double>{2, 2});
}

TEST_CASE("Linear: an input of the wrong shape is a ShapeError naming both shapes", "[nn][linear]") {
  Linear lin(3, 2);
  REQUIRE_THROWS_SAYING(lin(Tensor::zeros({4, 5})), tg::ShapeError, "[batch, 3]", "[4, 5]");
  REQUIRE_THROWS_SAYING(lin(Tensor::zeros({3})), tg::ShapeError, "[batch, 3]", "[3]");
}

TEST_CASE("Linear: without bias it has only a weight, and bias() is a ValueError", "[nn][linear]") {
  Linear lin(3, 2, {.bias = false, .dtype = Dtype::f64});
  REQUIRE(lin.named_parameters().size() == 1);
  REQUIRE(lin.named_parameters()[0].name == "weight");
  REQUIRE_THROWS_AS(lin.bias(), tg::ValueError);
  REQUIRE(lin.describe() == "Linear(in=3, out=2, bias=false)");
  const Tensor y = lin(batch3());
  const std::vector<double> w = lin.weight().to_vector();
  REQUIRE(y.at(0) == Approx(0.5 * w[0] - 1.0 * w[1] + 2.0 * w[2]).margin(1e-14));
  tg::active_tape().reset();
}

TEST_CASE("Linear: non-positive sizes are a ValueError", "[nn][linear]") {
  REQUIRE_THROWS_SAYING(Linear(0, 3), tg::ValueError, "in = 0");
  REQUIRE_THROWS_SAYING(Linear(3, -1), tg::ValueError, "out = -1");
}

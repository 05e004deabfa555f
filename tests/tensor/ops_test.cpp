// Elementwise operations, broadcasting and matmul on tensors: tg::gradcheck for every unary
// primitive, for every binary one under every broadcasting pattern, for matmul with every transpose
// combination, for views and dtype conversion; and the backward of a broadcast, worked by hand.
#include "tensor_check.hpp"

#include <array>

using tg::Shape;
using tg::Tensor;
using tgtest::require_gradcheck;
using tgtest::uniform;
using In = std::span<const Tensor>;

namespace {

using UnaryFn = std::function<Tensor(const Tensor&)>;

// gradcheck of f on tensors of shape [3, 4], [2, 3, 2] and [] drawn from [lo, hi).
void check_unary(std::string_view name, const UnaryFn& f, double lo, double hi) {
  const std::uint64_t seed = std::hash<std::string_view>{}(name);
  for (const Shape& shape : {Shape{3, 4}, Shape{2, 3, 2}, Shape{}}) {
    INFO(fmt::format("{} on shape {}", name, shape.str()));
    // A single element may well sit where the derivative is 0 (relu of a negative number).
    require_gradcheck(name, [&](In in) { return f(in[0]); }, {uniform(shape, seed, lo, hi)},
                      {.zero_allowed = shape.rank() == 0});
  }
}

using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;

// Every broadcasting pattern: same shape, scalar on either side, row and column vectors, both sides
// broadcast, a leading dimension added to the shorter operand.
const std::array<std::array<Shape, 2>, 11> kPatterns{{
    {Shape{3, 4}, Shape{3, 4}},     // same shape
    {Shape{3, 4}, Shape{}},         // scalar right
    {Shape{}, Shape{3, 4}},         // scalar left
    {Shape{3, 4}, Shape{4}},        // row vector, rank difference
    {Shape{3, 4}, Shape{1, 4}},     // row vector, same rank
    {Shape{3, 4}, Shape{3, 1}},     // column vector
    {Shape{3, 1}, Shape{1, 4}},     // both sides broadcast
    {Shape{2, 3, 4}, Shape{3, 4}},  // leading dimension
    {Shape{3, 4}, Shape{2, 1, 4}},  // leading dimension on the left operand's side
    {Shape{2, 3, 1}, Shape{3, 4}},  // leading dimension and both sides broadcast
    {Shape{1, 3, 1}, Shape{2, 1, 4}},
}};

// gradcheck of f under every pattern, operands drawn from [lo, hi); then with a plain number.
void check_binary(std::string_view name, const BinaryFn& f, double lo, double hi) {
  const std::uint64_t seed = std::hash<std::string_view>{}(name);
  for (const auto& [sa, sb] : kPatterns) {
    INFO(fmt::format("{}: {} with {}", name, sa.str(), sb.str()));
    require_gradcheck(name, [&](In in) { return f(in[0], in[1]); },
                      {uniform(sa, seed, lo, hi), uniform(sb, seed + 1, lo, hi)});
  }
}

}  // namespace

// ---- Unary primitives --------------------------------------------------------------------------

TEST_CASE("unary primitives: gradcheck on tensors", "[tensor][gradcheck]") {
  check_unary("neg", [](const Tensor& a) { return -a; }, -2, 2);
  check_unary("exp", [](const Tensor& a) { return tg::exp(a); }, -2, 2);
  check_unary("expm1", [](const Tensor& a) { return tg::expm1(a); }, -2, 2);
  check_unary("log", [](const Tensor& a) { return tg::log(a); }, 0.2, 3);
  check_unary("log1p", [](const Tensor& a) { return tg::log1p(a); }, -0.5, 3);
  check_unary("sqrt", [](const Tensor& a) { return tg::sqrt(a); }, 0.2, 3);
  check_unary("pow(a, 2.5)", [](const Tensor& a) { return tg::pow(a, 2.5); }, 0.2, 2);
  check_unary("pow(1.7, a)", [](const Tensor& a) { return tg::pow(1.7, a); }, -2, 2);
  check_unary("sin", [](const Tensor& a) { return tg::sin(a); }, -3, 3);
  check_unary("cos", [](const Tensor& a) { return tg::cos(a); }, -3, 3);
  check_unary("tan", [](const Tensor& a) { return tg::tan(a); }, -1.2, 1.2);
  check_unary("tanh", [](const Tensor& a) { return tg::tanh(a); }, -3, 3);
  check_unary("sigmoid", [](const Tensor& a) { return tg::sigmoid(a); }, -4, 4);
  check_unary("softplus", [](const Tensor& a) { return tg::softplus(a); }, -4, 4);
  check_unary("gelu", [](const Tensor& a) { return tg::gelu(a); }, -3, 3);
}

TEST_CASE("non-smooth unary primitives: gradcheck away from their kinks", "[tensor][gradcheck]") {
  check_unary("relu", [](const Tensor& a) { return tg::relu(a); }, -2, 2);
  check_unary("leaky_relu", [](const Tensor& a) { return tg::leaky_relu(a, 0.1); }, -2, 2);
  check_unary("elu", [](const Tensor& a) { return tg::elu(a, 0.7); }, -2, 2);
  check_unary("abs", [](const Tensor& a) { return tg::abs(a); }, -2, 2);
  check_unary("clamp", [](const Tensor& a) { return tg::clamp(a, -0.5, 0.8); }, -2, 2);
  check_unary("maximum(a, 0.3)", [](const Tensor& a) { return tg::maximum(a, 0.3); }, -2, 2);
  check_unary("minimum(a, 0.3)", [](const Tensor& a) { return tg::minimum(a, 0.3); }, -2, 2);
}

TEST_CASE("arithmetic with plain numbers: gradcheck on both sides", "[tensor][gradcheck]") {
  check_unary("a + 2.5", [](const Tensor& a) { return a + 2.5; }, -2, 2);
  check_unary("2.5 + a", [](const Tensor& a) { return 2.5 + a; }, -2, 2);
  check_unary("a - 2.5", [](const Tensor& a) { return a - 2.5; }, -2, 2);
  check_unary("2.5 - a", [](const Tensor& a) { return 2.5 - a; }, -2, 2);
  check_unary("a * 2.5", [](const Tensor& a) { return a * 2.5; }, -2, 2);
  check_unary("2.5 * a", [](const Tensor& a) { return 2.5 * a; }, -2, 2);
  check_unary("a / 2.5", [](const Tensor& a) { return a / 2.5; }, -2, 2);
  check_unary("2.5 / a", [](const Tensor& a) { return 2.5 / a; }, 0.5, 2);
}

// ---- Binary primitives under broadcasting ----------------------------------------------------------

TEST_CASE("add, sub: gradcheck under every broadcasting pattern", "[tensor][broadcast]") {
  check_binary("add", [](const Tensor& a, const Tensor& b) { return a + b; }, -2, 2);
  check_binary("sub", [](const Tensor& a, const Tensor& b) { return a - b; }, -2, 2);
}

TEST_CASE("mul, div: gradcheck under every broadcasting pattern", "[tensor][broadcast]") {
  check_binary("mul", [](const Tensor& a, const Tensor& b) { return a * b; }, -2, 2);
  check_binary("div", [](const Tensor& a, const Tensor& b) { return a / b; }, 0.5, 2);
}

TEST_CASE("pow, maximum, minimum: gradcheck under every broadcasting pattern", "[tensor][broadcast]") {
  check_binary("pow", [](const Tensor& a, const Tensor& b) { return tg::pow(a, b); }, 0.5, 2);
  check_binary("maximum", [](const Tensor& a, const Tensor& b) { return tg::maximum(a, b); }, -2, 2);
  check_binary("minimum", [](const Tensor& a, const Tensor& b) { return tg::minimum(a, b); }, -2, 2);
}

TEST_CASE("broadcast backward sums over the broadcast axes", "[tensor][broadcast]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor a = tgtest::f64({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad();
  Tensor row = tgtest::f64({10, 20, 30}, {3}).requires_grad();
  Tensor col = tgtest::f64({-1, 1}, {2, 1}).requires_grad();
  // loss = sum_ij (a_ij + row_j) col_i^2 + row_j, over the broadcast shape [2, 3]:
  //   d/d row_j = sum_i (col_i^2 + 1) = 4,  d/d col_i = 2 col_i sum_j (a_ij + row_j),  d/d a_ij = col_i^2.
  tg::sum((a + row) * col * col + row).backward();
  REQUIRE(row.grad().to_vector() == std::vector<double>{4, 4, 4});
  REQUIRE(col.grad().to_vector() == std::vector<double>{-2 * (11 + 22 + 33), 2 * (14 + 25 + 36)});
  REQUIRE(a.grad().to_vector() == std::vector<double>{1, 1, 1, 1, 1, 1});
}

TEST_CASE("broadcasting: incompatible shapes name the operation and both shapes", "[tensor][error]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor a = Tensor::zeros({2, 3});
  const Tensor b = Tensor::zeros({4});
  const std::string m = tgtest::error_message<tg::ShapeError>([&] { (void)(a * b); });
  REQUIRE_THAT(m, Catch::StartsWith("mul:") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  const std::string d = tgtest::error_message<tg::ValueError>([&] { (void)(a + Tensor::zeros({2, 3}, tg::Dtype::f64)); });
  REQUIRE_THAT(d, Catch::StartsWith("add:") && Catch::Contains("f32") && Catch::Contains("f64"));
}

// ---- matmul ----------------------------------------------------------------------------------------

TEST_CASE("matmul: gradcheck with every transpose combination", "[tensor][matmul]") {
  // op(a) is [3, 5], op(b) is [5, 4]; stored transposed when the flag says so.
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      INFO(fmt::format("transpose_a {}, transpose_b {}", ta, tb));
      const Tensor a = uniform(ta ? Shape{5, 3} : Shape{3, 5}, 11);
      const Tensor b = uniform(tb ? Shape{4, 5} : Shape{5, 4}, 12);
      require_gradcheck("matmul", [=](In in) { return tg::matmul(in[0], in[1], ta, tb); }, {a, b});
    }
  }
}

TEST_CASE("matmul: values, and an inner dimension that differs names both shapes", "[tensor][matmul]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const Tensor a = tgtest::f64({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = tgtest::f64({1, 0, -1, 2, 0.5, 1}, {3, 2});
  REQUIRE(tg::matmul(a, b).to_vector() == std::vector<double>{0.5, 7, 2, 16});
  REQUIRE(tg::matmul(a, a, false, true).to_vector() == std::vector<double>{14, 32, 32, 77});
  const std::string m = tgtest::error_message<tg::ShapeError>([&] { (void)tg::matmul(a, a); });
  REQUIRE_THAT(m, Catch::StartsWith("matmul:") && Catch::Contains("[2, 3]"));
}

// ---- Views and dtype -----------------------------------------------------------------------------------

TEST_CASE("rows view: the gradient flows into the selected rows of a parameter only", "[tensor][view]") {
  require_gradcheck("rows", [](In in) { return tg::sin(in[0].rows(1, 3)) * 2.0; }, {uniform({4, 3}, 21)});

  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor w = uniform({4, 3}, 22).requires_grad();
  tg::sum(w.rows(1, 3) * 3.0).backward();
  REQUIRE(w.grad().to_vector() == std::vector<double>{0, 0, 0, 3, 3, 3, 3, 3, 3, 0, 0, 0});
  REQUIRE(w.grad().rows(1, 2).to_vector() == std::vector<double>{3, 3, 3});
}

TEST_CASE("reshape view: gradcheck, and the gradient keeps the parameter's layout", "[tensor][view]") {
  require_gradcheck("reshape", [](In in) { return tg::matmul(in[0].reshape({3, 4}), in[1]); },
                    {uniform({2, 6}, 23), uniform({4, 2}, 24)});
  require_gradcheck("reshape of a result", [](In in) { return tg::exp(in[0] * 0.5).reshape({-1}).rows(2, 5); },
                    {uniform({2, 3}, 25)});

  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor w = tgtest::f64({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad();
  tg::sum(w.reshape({3, 2}).rows(2, 3) * w.reshape({3, 2}).rows(0, 1)).backward();
  // rows(2, 3) of the [3, 2] view is (5, 6), rows(0, 1) is (1, 2): d/dw = (5, 6, 0, 0, 1, 2).
  REQUIRE(w.grad().to_vector() == std::vector<double>{5, 6, 0, 0, 1, 2});

  REQUIRE(w.reshape({-1, 2}).shape() == Shape{3, 2});
  REQUIRE(w.reshape({6, -1}).shape() == Shape{6, 1});
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)w.reshape({4, -1}); }),
               Catch::StartsWith("reshape:") && Catch::Contains("[2, 3]") && Catch::Contains("[4, -1]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)w.reshape({-1, -1}); }),
               Catch::StartsWith("reshape:") && Catch::Contains("[-1, -1]"));
  REQUIRE_THAT(tgtest::error_message<tg::ShapeError>([&] { (void)w.reshape(Shape{4}); }),
               Catch::StartsWith("reshape:") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
}

TEST_CASE("to(Dtype): gradients flow back converted", "[tensor][dtype]") {
  tgtest::CheckOptions loose;
  loose.gradcheck = {.step = 1e-2, .rtol = 1e-4, .atol = 1e-4};  // the middle is float arithmetic
  require_gradcheck("to f32 and back", [](In in) { return (in[0].to(tg::Dtype::f32) * 3.0f).to(tg::Dtype::f64); },
                    {uniform({2, 3}, 31)}, loose);

  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor x = Tensor::from_values({0.5, -1.25}, {2}, tg::Dtype::f32).requires_grad();
  const Tensor y = x.to(tg::Dtype::f64);
  REQUIRE(y.dtype() == tg::Dtype::f64);
  tg::sum(y * y).backward();
  REQUIRE(x.grad().dtype() == tg::Dtype::f32);
  REQUIRE(x.grad().to_vector() == std::vector<double>{1.0, -2.5});
}

// tg::gradcheck for tensor functions: it must catch a wrong derivative, in any element of any input
// and of any output element, and say which; reject float tensors and non-finite inputs; and leave
// the caller's tape and tensors alone.
#include "tensor_check.hpp"

#include <array>
#include <limits>

using tg::Tensor;
using tgtest::f64;
using In = std::span<const Tensor>;

namespace {
/// a^2 with a wrong derivative where a > 1: 2a + 1 there (right: 2a).
struct SquareWrongAboveOne {
  static constexpr std::string_view name = "square_wrong_above_one";
  template <class T> T value(T a) const { return a * a; }
  template <class T> T derivative(T a, T) const { return T(2) * a + (a > T(1) ? T(1) : T(0)); }
};
}  // namespace

TEST_CASE("tensor gradcheck passes correct gradients and reports every element", "[tensor][gradcheck]") {
  const tg::TensorGradcheckReport r = tg::gradcheck(
      [](In in) { return tg::matmul(tg::tanh(in[0]), in[1]); }, {tgtest::uniform({2, 3}, 1), tgtest::uniform({3, 1}, 2)});
  REQUIRE(r.ok());
  REQUIRE(r.entries.size() == 9);
  REQUIRE(r.shapes.size() == 2);
  REQUIRE(r.entries[7].tensor == 1);
  REQUIRE(r.entries[7].index == std::vector<std::int64_t>{1, 0});
  REQUIRE(r.entries[4].index == std::vector<std::int64_t>{1, 1});
  REQUIRE(r.summary() == "all 9 elements of 2 inputs agree\n");
}

TEST_CASE("tensor gradcheck names the input and the element of a wrong derivative", "[tensor][gradcheck]") {
  const Tensor a = f64({0.5, -0.3, 0.2, 0.9}, {2, 2});
  const Tensor b = f64({0.1, 0.4, 0.7, 1.6, -0.2, 0.3}, {3, 2});  // only b[1, 1] is above 1
  const tg::TensorGradcheckReport r = tg::gradcheck(
      [](In in) { return tg::sum(in[0]) + tg::sum(tg::apply(SquareWrongAboveOne{}, in[1])); }, {a, b});
  REQUIRE_FALSE(r.ok());
  const std::vector<tg::TensorGradcheckEntry> bad = r.failures();
  REQUIRE(bad.size() == 1);
  REQUIRE(bad[0].tensor == 1);
  REQUIRE(bad[0].index == std::vector<std::int64_t>{1, 1});
  REQUIRE(bad[0].check.ad == Approx(2 * 1.6 + 1));
  REQUIRE(bad[0].check.fd == Approx(2 * 1.6).epsilon(1e-6));
  REQUIRE_THAT(r.summary(), Catch::StartsWith("input 1 [1, 1] of shape [3, 2] (x = 1.6)"));
}

TEST_CASE("tensor gradcheck sees a wrong derivative of any single output element", "[tensor][gradcheck]") {
  // A non-scalar result is checked through a random projection: each element counts.
  for (std::int64_t k = 0; k < 6; ++k) {
    std::vector<double> x(6, 0.5);
    x[static_cast<std::size_t>(k)] = 1.5;
    const tg::TensorGradcheckReport r =
        tg::gradcheck([](In in) { return tg::apply(SquareWrongAboveOne{}, in[0]); },
                      {Tensor::from_values(x, {2, 3}, tg::Dtype::f64)});
    REQUIRE(r.failures().size() == 1);
    REQUIRE(r.failures()[0].index == std::vector<std::int64_t>{k / 3, k % 3});
  }
}

TEST_CASE("tensor gradcheck: a function that ignores its inputs has zero derivatives", "[tensor][gradcheck]") {
  const tg::TensorGradcheckReport r = tgtest::require_gradcheck(
      "constant", [](In) { return Tensor::ones({2}, tg::Dtype::f64) * 3.0; }, {f64({1, 2}, {2})},
      {.zero_allowed = true});
  for (const tg::TensorGradcheckEntry& e : r.entries) REQUIRE(e.check.ad == 0);
}

TEST_CASE("tensor gradcheck rejects float tensors and non-finite inputs", "[tensor][gradcheck][error]") {
  const Tensor good = f64({1, 2}, {2});
  auto identity = [](In in) { return in[0] * 1.0; };
  REQUIRE_THAT(tgtest::error_message<tg::ValueError>([&] { (void)tg::gradcheck(identity, {Tensor::ones({2})}); }),
               Catch::StartsWith("gradcheck:") && Catch::Contains("input 0") && Catch::Contains("f32"));
  REQUIRE_THAT(tgtest::error_message<tg::ValueError>(
                   [&] { (void)tg::gradcheck([](In in) { return in[0].to(tg::Dtype::f32); }, {good}); }),
               Catch::StartsWith("gradcheck:") && Catch::Contains("result") && Catch::Contains("f32"));
  const Tensor nan = f64({1, std::numeric_limits<double>::quiet_NaN()}, {2});
  REQUIRE_THAT(tgtest::error_message<tg::ValueError>([&] { (void)tg::gradcheck(identity, {good, nan}); }),
               Catch::StartsWith("gradcheck:") && Catch::Contains("element 1 of input 1"));
  REQUIRE_THAT(tgtest::error_message<tg::ValueError>(
                   [&] { (void)tg::gradcheck(identity, {good}, {.step = 0}); }),
               Catch::StartsWith("gradcheck:"));
}

TEST_CASE("tensor gradcheck leaves the caller's tape and tensors alone", "[tensor][gradcheck]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor w = f64({0.3, -0.6}, {2}).requires_grad();
  const Tensor h = tg::exp(w);
  const std::size_t size = tape.size();
  const std::size_t callbacks = tape.stats().callbacks;
  REQUIRE(tg::gradcheck([](In in) { return tg::sin(in[0]) * in[1]; }, {h, w}).ok());
  REQUIRE(&tg::active_tape() == &tape);
  REQUIRE(tape.size() == size);
  REQUIRE(tape.stats().callbacks == callbacks);
  REQUIRE(w.grad().to_vector() == std::vector<double>{0, 0});
  tg::sum(h).backward();  // the recording still works
  REQUIRE(w.grad().to_vector() == std::vector<double>{std::exp(0.3), std::exp(-0.6)});
}

TEST_CASE("the scalar gradcheck still takes a generic lambda beside the tensor overloads", "[tensor][gradcheck]") {
  // The tensor overloads must not look into a lambda meant for Vars (its body would not compile
  // with tensors): overload resolution goes by the inputs.
  const std::array<double, 2> at{0.7, 0.4};
  REQUIRE(tg::gradcheck([](auto v) { return tg::sin(v[0]) * v[1]; }, at).ok());
}

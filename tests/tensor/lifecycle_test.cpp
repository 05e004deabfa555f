// The life of tensors on a tape: a stale tensor (recorded before Tape::reset) is refused by every
// operation with a tg::TapeError naming it; parameter gradients accumulate over sweeps until
// zero_grad; NoGrad records nothing; fmt prints values, shape and dtype.
#include "tensor_check.hpp"

using tg::Tensor;

namespace {
// The message of the tg::TapeError that `op` throws for a stale operand must start with its name.
void require_stale(std::string_view name, const std::function<void()>& op) {
  INFO(name);
  const std::string m = tgtest::error_message<tg::TapeError>(op);
  REQUIRE_THAT(m, Catch::StartsWith(std::string(name) + ":") && Catch::Contains("another recording"));
}
}  // namespace

TEST_CASE("a tensor recorded before Tape::reset is refused by every operation", "[tensor][tape][error]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor w = tgtest::f64({1, 2, 3, 4}, {2, 2}).requires_grad();
  const Tensor y = w * 2.0;
  const Tensor live = tgtest::f64({1, 1, 1, 1}, {2, 2});
  tape.reset();
  require_stale("add", [&] { (void)(y + live); });
  require_stale("add", [&] { (void)(y + 1.0); });
  require_stale("exp", [&] { (void)tg::exp(y); });
  require_stale("relu", [&] { (void)tg::relu(y); });
  require_stale("matmul", [&] { (void)tg::matmul(live, y); });
  require_stale("sum", [&] { (void)tg::sum(y); });
  require_stale("sum", [&] { (void)tg::sum(y, {0}); });
  require_stale("mean", [&] { (void)tg::mean(y, {1}, true); });
  require_stale("max", [&] { (void)tg::max(y); });
  require_stale("softmax", [&] { (void)tg::softmax(y); });
  require_stale("log_softmax", [&] { (void)tg::log_softmax(y, 0); });
  require_stale("transpose", [&] { (void)tg::transpose(y); });
  require_stale("permute", [&] { (void)tg::permute(y, {1, 0}); });
  require_stale("concat", [&] { (void)tg::concat({live, y}); });
  require_stale("index_select", [&] { (void)tg::index_select(y, {1}); });
  require_stale("gather", [&] { (void)tg::gather(y, {1, 0}); });
  require_stale("to", [&] { (void)y.to(tg::Dtype::f32); });
  require_stale("to_var", [&] { (void)tg::to_var(y); });
  require_stale("reshape", [&] { (void)y.reshape({4}); });
  require_stale("to_vector", [&] { (void)y.to_vector(); });
  // The parameter itself is owned: still fine.
  REQUIRE(tg::sum(w * 2.0).item() == 20);
}

TEST_CASE("a tensor from another tape is refused", "[tensor][tape][error]") {
  tg::Tape other;
  Tensor foreign;
  {
    tg::TapeScope scope(other);
    foreign = Tensor::ones({2}, tg::Dtype::f64) * 3.0;
  }
  tg::Tape tape;
  tg::TapeScope scope(tape);
  require_stale("softmax", [&] { (void)tg::softmax(foreign); });
  require_stale("gather", [&] { (void)tg::gather(foreign, {1}); });
}

TEST_CASE("parameter gradients accumulate over backward calls until zero_grad", "[tensor][tape]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor w = tgtest::f64({1, -2, 3}, {3}).requires_grad();
  for (int step = 0; step < 2; ++step) {
    tape.reset();
    tg::sum(w * w * 1.5).backward();  // d/dw = 3 w
  }
  REQUIRE(w.grad().to_vector() == std::vector<double>{6, -12, 18});
  w.zero_grad();
  REQUIRE(w.grad().to_vector() == std::vector<double>{0, 0, 0});
  tg::sum(tg::softmax(w) * w).backward();
  REQUIRE(w.grad().to_vector() != std::vector<double>{0, 0, 0});
}

TEST_CASE("a recorded result's gradient comes from the latest sweep only", "[tensor][tape]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor w = tgtest::f64({1, 2}, {2}).requires_grad();
  const Tensor h = tg::exp(w);
  const Tensor loss = tg::sum(h * 2.0);
  loss.backward();
  REQUIRE(h.grad().to_vector() == std::vector<double>{2, 2});
  loss.backward();  // not accumulated across sweeps, unlike the parameter's
  REQUIRE(h.grad().to_vector() == std::vector<double>{2, 2});
  REQUIRE(w.grad().to_vector() == std::vector<double>{4 * std::exp(1.0), 4 * std::exp(2.0)});
}

TEST_CASE("NoGrad: tensor operations compute values and record nothing", "[tensor][tape]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  Tensor w = tgtest::f64({1, 2, 3, 4}, {2, 2}).requires_grad();
  const std::size_t callbacks = tape.stats().callbacks;
  tg::NoGrad no_grad;
  const Tensor y = tg::log_softmax(tg::max(tg::concat({w, tg::transpose(w)}), {0}, true) * w);
  REQUIRE_FALSE(y.has_grad());
  REQUIRE(tape.stats().callbacks == callbacks);
  REQUIRE(std::isfinite(tg::sum(y).item()));
}

TEST_CASE("fmt prints a tensor's values, shape and dtype", "[tensor][fmt]") {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  REQUIRE(fmt::format("{}", Tensor::from_values({1, 2, 3, 4, 5, 6}, {2, 3})) ==
          "tensor([[1, 2, 3], [4, 5, 6]], shape=[2, 3], dtype=f32)");
  REQUIRE(fmt::format("{}", tg::sum(tgtest::f64({1, 1.5}, {2}))) == "tensor(2.5, shape=[], dtype=f64)");
  REQUIRE(fmt::format("{}", Tensor::arange(10)) ==
          "tensor([0, 1, 2, ..., 7, 8, 9], shape=[10], dtype=f32)");
  REQUIRE(fmt::format("{}", tg::transpose(Tensor::arange(4, tg::Dtype::f64).reshape({2, 2}))) ==
          "tensor([[0, 2], [1, 3]], shape=[2, 2], dtype=f64)");
}

// A steady record/backward/reset loop allocates nothing on the heap after its first iteration.
// It counts allocations with tests/support/allocation_counter (which replaces the global operator
// new and delete), so this executable holds no other test.
#include <array>
#include <autodiff/var.hpp>
#include <catch2/catch.hpp>

#include "support/allocation_counter.hpp"

using tgtest::allocations_during;

namespace {
// One iteration: record a program that uses every kind of tape storage (inputs one by one and in
// bulk, statements, n-ary statements, a kink event, a backward closure with captured state, anomaly
// names), sweep it twice, read the gradients, reset.
double record_backward_reset(tg::Tape& tape, bool anomaly) {
  tape.set_anomaly(anomaly);
  const tg::Var x = 1.5, y = -2.0, zero = 0.0;
  const std::array<double, 2> values{0.25, -0.75};
  std::array<tg::Var, 2> more;
  tg::inputs(values, more);
  tg::Var f = tg::relu(x * y + 3.0) + tg::elu(y, 0.5) * tg::leaky_relu(x, 0.01) + more[0] * more[1];
  f = f + tg::relu(zero) + tg::max(x, tg::exp(y));
  const std::array<tg::Var, 3> terms{f, tg::sigmoid(x), tg::pow(y, 2.0)};
  const std::array<double, 3> weights{1.0, 2.0, 0.5};
  tg::Var g = tg::dot(terms, weights);
  const tg::Index out = tape.push_input();
  const std::array<double, 4> captured{2.0, 0.0, 0.0, 0.0};  // 32 bytes of closure state
  tape.record_backward([from = g.index(), out, captured](tg::Tape& t) {
    t.add_adjoint(from, captured[0] * t.adjoint(out));
  });
  g = tg::Var::recorded(2.0 * g.value(), out, tape) + tg::sum(terms);
  const auto [dx, dy] = tg::gradient(g, x, y);
  g.backward();
  const double total = dx + dy + x.grad() + y.grad() + zero.grad();
  tape.set_anomaly(false);
  tape.reset();
  return total;
}
}  // namespace

TEST_CASE("a steady record/backward/reset loop makes zero heap allocations after the first",
          "[autodiff][tape][allocation]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  double first_total = 0.0;
  const std::size_t first =
      allocations_during([&] { first_total = record_backward_reset(tape, false); });
  REQUIRE(first > 0);  // the counter sees the tape's buffers grow: the check below can fail
  for (int round = 0; round < 3; ++round) {
    double total = 0.0;
    const std::size_t steady = allocations_during([&] {
      for (int i = 0; i < 100; ++i) total = record_backward_reset(tape, false);
    });
    REQUIRE(steady == 0);
    REQUIRE(total == first_total);
  }
}

TEST_CASE("in anomaly mode the steady loop also allocates nothing after the first iteration",
          "[autodiff][tape][allocation][anomaly]") {
  tg::Tape tape;
  tg::TapeScope active(tape);
  (void)allocations_during([&] { (void)record_backward_reset(tape, true); });
  const std::size_t steady = allocations_during([&] {
    for (int i = 0; i < 100; ++i) (void)record_backward_reset(tape, true);
  });
  REQUIRE(steady == 0);
}

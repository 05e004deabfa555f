// A steady training-shaped loop over the tensor operations of tensor_reduce and tensor_index
// (shuffled rows, reductions over axes, max, softmax, gather, one_hot, concat, permute, reshape)
// allocates nothing on the heap after its first iteration: their results, index copies and backward
// state live in the tape's arena. It counts allocations with tests/support/allocation_counter
// (which replaces the global operator new and delete), so this executable holds no other test.
#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>

#include "support/allocation_counter.hpp"

#include <array>

using tgtest::allocations_during;

TEST_CASE("tensor reductions and index operations: a steady loop allocates nothing after the first", "[tensor][allocation]") {
  using tg::Tensor;
  tg::Tape tape;
  tg::TapeScope active(tape);
  const Tensor data = Tensor::rand({12, 4}, 1);
  Tensor w = Tensor::randn({4, 3}, 2).requires_grad();
  Tensor b = Tensor::zeros({3}).requires_grad();
  const std::array<std::int64_t, 12> shuffle{5, 2, 11, 0, 7, 3, 9, 1, 10, 4, 8, 6};
  const std::array<std::int64_t, 4> labels{2, 0, 1, 1};
  double loss_value = 0;

  auto step = [&](std::size_t batch) {
    tape.reset();
    const std::span<const std::int64_t> rows(shuffle.data() + 4 * batch, 4);
    const Tensor x = tg::index_select(data, rows);
    const Tensor z = tg::matmul(x, w) + b;
    const Tensor centred = z - tg::mean(z, {0}, true) - tg::max(z, {1}, true) * 0.1f;
    const Tensor both = tg::concat({centred, tg::permute(centred.reshape({4, 3, 1}), {0, 2, 1}).reshape({4, 3})}, 1);
    const Tensor ce = -tg::mean(tg::gather(tg::log_softmax(both.rows(0, 4).reshape({4, 6}), -1), labels));
    const Tensor reg = tg::sum(tg::one_hot(labels, 6) * tg::softmax(both, 1), {0, 1});
    const Tensor loss = ce + reg;
    loss.backward();
    loss_value = loss.item();
    w.zero_grad();
    b.zero_grad();
  };

  const std::size_t first = allocations_during([&] { step(0); });
  REQUIRE(first > 0);  // the counter sees the arena and the gradients grow: the check below can fail
  for (int round = 0; round < 3; ++round) {
    const std::size_t steady = allocations_during([&] {
      for (int i = 0; i < 30; ++i) step(static_cast<std::size_t>(i % 3));
    });
    REQUIRE(steady == 0);
    REQUIRE(std::isfinite(loss_value));
  }
  tape.reset();
}

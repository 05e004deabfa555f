// A steady training loop (tape reset, forward, loss, backward, optimizer step, zero_grad) does no
// heap allocation after its first iterations: the tape's arena and buffers, the optimizer's state
// and the loader's batch buffers are all reused. It counts allocations with
// tests/support/allocation_counter (which replaces the global operator new and delete), so this
// executable holds no other test.
#include <nn/data.hpp>
#include <nn/layers.hpp>
#include <nn/loss.hpp>
#include <nn/optim.hpp>

#include <catch2/catch.hpp>

#include "support/allocation_counter.hpp"

#include <atomic>
#include <memory>

using tgtest::steady_allocations;

using tg::Dtype;
using tg::Tensor;
using namespace tg::nn;

TEST_CASE("the counter sees allocations (the test can fail)", "[nn][allocation]") {
  // The pointer escapes into `seen`: otherwise the compiler may drop the new/delete pair.
  static std::atomic<int*> seen{nullptr};
  const std::size_t n = steady_allocations(
      [] {
        auto p = std::make_unique<int>(1);
        seen.store(p.get());
      },
      0, 5);
  REQUIRE(n == 5);
}

TEST_CASE("steady loop: ReLU MLP, cross-entropy, SGD with momentum allocates nothing", "[nn][allocation]") {
  tg::Tape& tape = tg::active_tape();
  Sequential model{std::make_shared<Linear>(8, 32, LinearOptions{.seed = 1}), std::make_shared<ReLU>(),
                   std::make_shared<Linear>(32, 4, LinearOptions{.seed = 2})};
  SGD opt(model.named_parameters(), {.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-4});
  const Tensor x = Tensor::rand({16, 8}, 3);
  const std::vector<std::int64_t> labels{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
  const std::size_t n = steady_allocations([&] {
    tape.reset();
    const Tensor loss = cross_entropy(model(x), labels);
    loss.backward();
    opt.step();
    opt.zero_grad();
  });
  tape.reset();
  REQUIRE(n == 0);
}

TEST_CASE("steady loop: tanh MLP in double, MSE, Adam allocates nothing", "[nn][allocation]") {
  tg::Tape& tape = tg::active_tape();
  Sequential model{std::make_shared<Linear>(2, 16, LinearOptions{.seed = 1, .dtype = Dtype::f64}),
                   std::make_shared<Tanh>(),
                   std::make_shared<Linear>(16, 16, LinearOptions{.seed = 2, .dtype = Dtype::f64}),
                   std::make_shared<Tanh>(),
                   std::make_shared<Linear>(16, 1, LinearOptions{.seed = 3, .dtype = Dtype::f64})};
  Adam opt(model.named_parameters(), {.lr = 1e-3, .weight_decay = 1e-2});
  const Tensor x = Tensor::rand({32, 2}, 4, Dtype::f64);
  const Tensor y = Tensor::rand({32, 1}, 5, Dtype::f64);
  const std::size_t n = steady_allocations([&] {
    tape.reset();
    mse_loss(model(x), y).backward();
    opt.step();
    opt.zero_grad();
  });
  tape.reset();
  REQUIRE(n == 0);
}

TEST_CASE("steady loop: shuffled loader batches, dropout, AdamW allocate nothing within an epoch", "[nn][allocation]") {
  tg::Tape& tape = tg::active_tape();
  Sequential model{std::make_shared<Linear>(6, 24, LinearOptions{.seed = 1}), std::make_shared<ReLU>(),
                   std::make_shared<Dropout>(0.25, 7), std::make_shared<Linear>(24, 3, LinearOptions{.seed = 2})};
  AdamW opt(model.named_parameters(), {.lr = 1e-3});
  std::vector<std::int64_t> labels(200);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 3);
  const TensorDataset data(Tensor::rand({200, 6}, 8), labels);
  DataLoader loader(data, {.batch_size = 16, .shuffle = true, .seed = 1, .drop_last = true});
  auto batches = loader.epoch(0);
  auto it = batches.begin();
  const std::size_t n = steady_allocations([&] {
    const Batch& b = *it;
    tape.reset();
    cross_entropy(model(b.x), b.labels).backward();
    opt.step();
    opt.zero_grad();
    ++it;
  }, 2, 10);
  tape.reset();
  REQUIRE(n == 0);
}

TEST_CASE("steady loop: whole epochs of a shuffled loader allocate nothing after the first", "[nn][allocation]") {
  tg::Tape& tape = tg::active_tape();
  Sequential model{std::make_shared<Linear>(6, 12, LinearOptions{.seed = 1}), std::make_shared<Tanh>(),
                   std::make_shared<Linear>(12, 3, LinearOptions{.seed = 2})};
  SGD opt(model.named_parameters(), {.lr = 0.01, .momentum = 0.9});
  std::vector<std::int64_t> labels(50);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 3);
  const TensorDataset data(Tensor::rand({50, 6}, 8), labels);
  DataLoader loader(data, {.batch_size = 16, .shuffle = true, .seed = 1});
  std::int64_t epoch = 0;
  const std::size_t n = steady_allocations([&] {
    for (const Batch& b : loader.epoch(epoch++)) {
      tape.reset();
      cross_entropy(model(b.x), b.labels).backward();
      opt.step();
      opt.zero_grad();
    }
  }, 2, 5);
  tape.reset();
  REQUIRE(n == 0);
}

TEST_CASE("steady loop: clip_grad_norm between backward and step allocates nothing", "[nn][allocation]") {
  tg::Tape& tape = tg::active_tape();
  Sequential model{std::make_shared<Linear>(4, 8, LinearOptions{.seed = 1}), std::make_shared<ReLU>(),
                   std::make_shared<Linear>(8, 2, LinearOptions{.seed = 2})};
  SGD opt(model.named_parameters(), {.lr = 0.01});
  const std::vector<Tensor> params = model.parameters();
  const Tensor x = Tensor::rand({8, 4}, 3);
  const Tensor y = Tensor::rand({8, 2}, 4);
  const std::size_t n = steady_allocations([&] {
    tape.reset();
    mse_loss(model(x), y).backward();
    clip_grad_norm(params, 0.1);
    opt.step();
    opt.zero_grad();
  });
  tape.reset();
  REQUIRE(n == 0);
}

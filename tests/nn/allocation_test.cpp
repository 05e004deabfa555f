// A steady training loop (tape reset, forward, loss, backward, optimizer step, zero_grad) does no
// heap allocation after its first iterations: the tape's arena and buffers, the optimizer's state
// and the loader's batch buffers are all reused. This executable replaces the global operator new
// and delete to count allocations, so it holds no other test.
#include <nn/data.hpp>
#include <nn/layers.hpp>
#include <nn/loss.hpp>
#include <nn/optim.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>

namespace {
std::atomic<bool> counting{false};
std::atomic<std::size_t> allocations{0};

void* allocate(std::size_t size, std::size_t align) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  void* p = nullptr;
  if (align <= alignof(std::max_align_t)) {
    p = std::malloc(size);
  } else if (posix_memalign(&p, align, size) != 0) {
    p = nullptr;
  }
  return p;
}

void* allocate_or_throw(std::size_t size, std::size_t align) {
  void* p = allocate(size, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// Runs `iteration` `warmup` times, then counts the heap allocations of `measured` more runs.
template <class F>
std::size_t steady_allocations(F&& iteration, int warmup = 3, int measured = 20) {
  for (int i = 0; i < warmup; ++i) iteration();
  allocations.store(0);
  counting.store(true);
  for (int i = 0; i < measured; ++i) iteration();
  counting.store(false);
  return allocations.load();
}
}  // namespace

// NOLINTBEGIN(misc-new-delete-overloads): every form is replaced, all on malloc/free.
void* operator new(std::size_t n) { return allocate_or_throw(n, alignof(std::max_align_t)); }
void* operator new[](std::size_t n) { return allocate_or_throw(n, alignof(std::max_align_t)); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, alignof(std::max_align_t)); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, alignof(std::max_align_t)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
// NOLINTEND(misc-new-delete-overloads)

using tg::Dtype;
using tg::Tensor;
using namespace tg::nn;

TEST_CASE("the counter sees allocations (the test can fail)", "[nn][allocation]") {
  const std::size_t n = steady_allocations([] { auto p = std::make_unique<int>(1); }, 0, 5);
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

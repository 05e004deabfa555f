// Checkpoints: save and load of a model and its optimizer, round trip and resumption; every way a
// file can fail to fit the model (shape, dtype, missing name, extra name, optimizer state) or be
// malformed gives an error and leaves the model and the optimizer exactly as they were.
#include "io/io_test_util.hpp"
#include "nn_test_util.hpp"

#include <nn/checkpoint.hpp>
#include <nn/data.hpp>
#include <nn/io/safetensors.hpp>
#include <nn/layers.hpp>
#include <nn/loss.hpp>
#include <nn/optim.hpp>
#include <nn/train.hpp>

#include <memory>

using tg::Dtype;
using tg::Shape;
using tg::Tensor;
using tgtest::ScratchDir;
using tgtest::snapshot;
using namespace tg::nn;

namespace {

// 3 -> hidden -> 2 (or 3 -> hidden only, without the last layer).
std::shared_ptr<Sequential> mlp(std::uint64_t seed, std::int64_t hidden = 4, bool last = true, Dtype dtype = Dtype::f32) {
  auto m = std::make_shared<Sequential>();
  m->add(std::make_shared<Linear>(3, hidden, LinearOptions{.seed = seed, .dtype = dtype}));
  m->add(std::make_shared<Tanh>());
  if (last) m->add(std::make_shared<Linear>(hidden, 2, LinearOptions{.seed = seed + 1, .dtype = dtype}));
  return m;
}

void train_step(Module& model, Optimizer& opt) {
  tg::active_tape().reset();
  const Tensor x = Tensor::rand({5, 3}, 77, Dtype::f32, -1, 1);
  const Tensor y = Tensor::rand({5, 2}, 78, Dtype::f32, -1, 1);
  mse_loss(model(x), y).backward();
  opt.step();
  opt.zero_grad();
  tg::active_tape().reset();
}

// The optimizer's state as plain values, to compare before and after.
std::vector<std::pair<std::string, std::vector<double>>> state_of(const Optimizer& opt) {
  std::vector<std::pair<std::string, std::vector<double>>> s;
  for (const NamedTensor& t : opt.state_tensors()) s.emplace_back(t.name, t.tensor.to_vector());
  s.emplace_back("steps", std::vector<double>{static_cast<double>(opt.steps())});
  s.emplace_back("lr", std::vector<double>{opt.learning_rate()});
  return s;
}

}  // namespace

TEST_CASE("checkpoint: model and optimizer round trip, and training resumes identically", "[nn][checkpoint]") {
  ScratchDir dir;
  auto model = mlp(1);
  Adam adam(model->named_parameters(), {.lr = 0.01});
  train_step(*model, adam);
  train_step(*model, adam);
  save_checkpoint(dir / "ckpt.safetensors", *model, &adam, {{"epoch", "2"}});

  auto other = mlp(50);  // other weights, overwritten by the load
  Adam other_adam(other->named_parameters(), {.lr = 0.5});
  REQUIRE_FALSE(snapshot(*other) == snapshot(*model));
  const auto meta = load_checkpoint(dir / "ckpt.safetensors", *other, &other_adam);
  REQUIRE(meta.at("epoch") == "2");
  REQUIRE(meta.count("optimizer.kind") == 0);  // the optimizer's entries are not the caller's metadata
  REQUIRE(snapshot(*other) == snapshot(*model));
  REQUIRE(state_of(other_adam) == state_of(adam));

  train_step(*model, adam);
  train_step(*other, other_adam);
  REQUIRE(snapshot(*other) == snapshot(*model));
}

TEST_CASE("checkpoint: fit resumed at first_epoch from a checkpoint matches an uninterrupted fit", "[nn][checkpoint][train]") {
  ScratchDir dir;
  std::vector<std::int64_t> labels(48);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 2);
  const TensorDataset data(Tensor::rand({48, 3}, 5, Dtype::f32, -1, 1), labels);

  auto straight = mlp(1);
  SGD sgd(straight->named_parameters(), {.lr = 0.1, .momentum = 0.9});
  DataLoader loader(data, {.batch_size = 8, .seed = 4});
  const auto all = fit(*straight, sgd, loader, {.epochs = 4, .out = nullptr});

  auto first = mlp(1);
  SGD sgd1(first->named_parameters(), {.lr = 0.1, .momentum = 0.9});
  DataLoader loader1(data, {.batch_size = 8, .seed = 4});
  fit(*first, sgd1, loader1, {.epochs = 2, .out = nullptr});
  save_checkpoint(dir / "epoch2.safetensors", *first, &sgd1, {{"epoch", "2"}});

  auto resumed = mlp(30);
  SGD sgd2(resumed->named_parameters(), {.lr = 0.1, .momentum = 0.9});
  const auto meta = load_checkpoint(dir / "epoch2.safetensors", *resumed, &sgd2);
  DataLoader loader2(data, {.batch_size = 8, .seed = 4});
  const auto rest = fit(*resumed, sgd2, loader2, {.epochs = 4, .first_epoch = std::stoi(meta.at("epoch")) + 1, .out = nullptr});
  REQUIRE(rest.size() == 2);
  REQUIRE(rest[0].epoch == 3);
  REQUIRE(rest[1].train_loss == all[3].train_loss);
  REQUIRE(snapshot(*resumed) == snapshot(*straight));
}

TEST_CASE("checkpoint: the file is safetensors with dotted names and the optimizer under optimizer.", "[nn][checkpoint]") {
  ScratchDir dir;
  auto model = mlp(1);
  SGD sgd(model->named_parameters(), {.lr = 0.1, .momentum = 0.9});
  train_step(*model, sgd);
  save_checkpoint(dir / "c.safetensors", *model, &sgd);
  const tg::io::SafetensorsFile f = tg::io::load_safetensors(dir / "c.safetensors");
  std::vector<std::string> names;
  for (const auto& [name, a] : f.tensors) names.push_back(name);
  REQUIRE(names == std::vector<std::string>{"0.bias", "0.weight", "2.bias", "2.weight", "optimizer.0.bias.momentum",
                                            "optimizer.0.weight.momentum", "optimizer.2.bias.momentum",
                                            "optimizer.2.weight.momentum"});
  REQUIRE(f.at("0.weight").dtype == tg::io::Dtype::F32);
  REQUIRE(f.at("0.weight").shape == std::vector<std::uint64_t>{4, 3});
  const std::vector<float> w = f.at("2.weight").to_vector<float>();
  const std::vector<double> want = dynamic_cast<Linear&>((*model)[2]).weight().to_vector();
  REQUIRE(std::vector<double>(w.begin(), w.end()) == want);
  REQUIRE(f.metadata.at("optimizer.kind") == "sgd");
  REQUIRE(f.metadata.at("optimizer.steps") == "1");
}

TEST_CASE("checkpoint: a model-only file loads without an optimizer, not with one", "[nn][checkpoint]") {
  ScratchDir dir;
  auto model = mlp(1);
  save_checkpoint(dir / "m.safetensors", *model);
  auto other = mlp(9);
  load_checkpoint(dir / "m.safetensors", *other);
  REQUIRE(snapshot(*other) == snapshot(*model));

  auto third = mlp(20);
  SGD sgd(third->named_parameters(), {.momentum = 0.9});
  train_step(*third, sgd);
  const auto before = snapshot(*third);
  const auto opt_before = state_of(sgd);
  REQUIRE_THROWS_SAYING(load_checkpoint(dir / "m.safetensors", *third, &sgd), tg::ValueError, "no optimizer state");
  REQUIRE(snapshot(*third) == before);
  REQUIRE(state_of(sgd) == opt_before);
}

TEST_CASE("checkpoint: a file with optimizer state loads into a model alone", "[nn][checkpoint]") {
  ScratchDir dir;
  auto model = mlp(1);
  Adam adam(model->named_parameters());
  train_step(*model, adam);
  save_checkpoint(dir / "c.safetensors", *model, &adam);
  auto other = mlp(2);
  load_checkpoint(dir / "c.safetensors", *other);
  REQUIRE(snapshot(*other) == snapshot(*model));
}

TEST_CASE("checkpoint: a parameter of another shape is a ValueError, leaving the model unchanged", "[nn][checkpoint]") {
  ScratchDir dir;
  save_checkpoint(dir / "c.safetensors", *mlp(1, 4));
  auto wider = mlp(2, 5);
  const auto before = snapshot(*wider);
  REQUIRE_THROWS_SAYING(load_checkpoint(dir / "c.safetensors", *wider), tg::ValueError, "'0.weight'", "[4, 3]", "[5, 3]");
  REQUIRE(snapshot(*wider) == before);
}

TEST_CASE("checkpoint: a parameter of another dtype is a ValueError, leaving the model unchanged", "[nn][checkpoint]") {
  ScratchDir dir;
  save_checkpoint(dir / "c.safetensors", *mlp(1, 4, true, Dtype::f64));
  auto model = mlp(2);
  const auto before = snapshot(*model);
  REQUIRE_THROWS_SAYING(load_checkpoint(dir / "c.safetensors", *model), tg::ValueError, "F64", "F32");
  REQUIRE(snapshot(*model) == before);
}

TEST_CASE("checkpoint: a parameter missing from the file is a ValueError, leaving the model unchanged", "[nn][checkpoint]") {
  ScratchDir dir;
  save_checkpoint(dir / "c.safetensors", *mlp(1, 4, false));  // no layer 2
  auto model = mlp(2);
  const auto before = snapshot(*model);
  REQUIRE_THROWS_SAYING(load_checkpoint(dir / "c.safetensors", *model), tg::ValueError, "no parameter '2.weight'");
  REQUIRE(snapshot(*model) == before);
}

TEST_CASE("checkpoint: a tensor the model does not have is a ValueError, leaving the model unchanged", "[nn][checkpoint]") {
  ScratchDir dir;
  save_checkpoint(dir / "c.safetensors", *mlp(1));
  auto smaller = mlp(2, 4, false);
  const auto before = snapshot(*smaller);
  REQUIRE_THROWS_SAYING(load_checkpoint(dir / "c.safetensors", *smaller), tg::ValueError, "'2.", "does not have");
  REQUIRE(snapshot(*smaller) == before);
}

TEST_CASE("checkpoint: another optimizer's state is a ValueError, leaving model and optimizer unchanged", "[nn][checkpoint]") {
  ScratchDir dir;
  auto model = mlp(1);
  SGD sgd(model->named_parameters(), {.momentum = 0.9});
  train_step(*model, sgd);
  save_checkpoint(dir / "c.safetensors", *model, &sgd);
  auto other = mlp(2);
  Adam adam(other->named_parameters());
  train_step(*other, adam);
  const auto before = snapshot(*other);
  const auto opt_before = state_of(adam);
  REQUIRE_THROWS_SAYING(load_checkpoint(dir / "c.safetensors", *other, &adam), tg::ValueError, "'sgd'", "'adam'");
  REQUIRE(snapshot(*other) == before);
  REQUIRE(state_of(adam) == opt_before);
}

TEST_CASE("checkpoint: optimizer state of the wrong shape or for no parameter is a ValueError", "[nn][checkpoint]") {
  ScratchDir dir;
  auto model = mlp(1);
  const std::vector<float> w(12, 0.5F), b(4, 0.25F), w2(8, 1.0F), b2(2, 2.0F), bad(5, 3.0F);
  const std::map<std::string, std::string> meta{{"optimizer.kind", "sgd"}, {"optimizer.steps", "1"}, {"optimizer.lr", "0.1"}};
  const auto write = [&](const std::string& extra_name, std::vector<std::uint64_t> extra_shape,
                         const std::vector<float>& extra) {
    tg::io::save_safetensors(dir / "c.safetensors",
                             {tg::io::TensorView::of("0.weight", {4, 3}, w), tg::io::TensorView::of("0.bias", {4}, b),
                              tg::io::TensorView::of("2.weight", {2, 4}, w2), tg::io::TensorView::of("2.bias", {2}, b2),
                              tg::io::TensorView::of(extra_name, std::move(extra_shape), extra)},
                             meta);
  };
  SGD sgd(model->named_parameters(), {.momentum = 0.9});
  const auto before = snapshot(*model);

  write("optimizer.0.bias.momentum", {5}, bad);
  REQUIRE_THROWS_SAYING(load_checkpoint(dir / "c.safetensors", *model, &sgd), tg::ValueError, "optimizer.0.bias.momentum",
                        "[5]", "[4]");
  REQUIRE(snapshot(*model) == before);
  write("optimizer.7.weight.momentum", {5}, bad);
  REQUIRE_THROWS_SAYING(load_checkpoint(dir / "c.safetensors", *model, &sgd), tg::ValueError, "matches no parameter");
  REQUIRE(snapshot(*model) == before);
  write("optimizer.0.bias.velocity", {4}, b);  // a parameter's, but not a buffer SGD has
  REQUIRE_THROWS_SAYING(load_checkpoint(dir / "c.safetensors", *model, &sgd), tg::ValueError, "'0.bias.velocity'");
  REQUIRE(snapshot(*model) == before);
  REQUIRE(sgd.steps() == 0);
}

TEST_CASE("checkpoint: a malformed or missing file is an IoError, leaving the model unchanged", "[nn][checkpoint]") {
  ScratchDir dir;
  auto saved = mlp(1);
  save_checkpoint(dir / "good.safetensors", *saved);
  const std::string bytes = tgtest::read_bytes(dir / "good.safetensors");
  auto model = mlp(2);
  const auto before = snapshot(*model);

  SECTION("truncated data") { tgtest::write_bytes(dir / "bad.safetensors", bytes.substr(0, bytes.size() - 4)); }
  SECTION("header length past the end") {
    std::string b = bytes;
    b[6] = '\x01';
    tgtest::write_bytes(dir / "bad.safetensors", b);
  }
  SECTION("broken JSON") {
    std::string b = bytes;
    b[8] = '[';
    tgtest::write_bytes(dir / "bad.safetensors", b);
  }
  SECTION("empty file") { tgtest::write_bytes(dir / "bad.safetensors", ""); }
  SECTION("no file") {}
  REQUIRE_THROWS_SAYING(load_checkpoint(dir / "bad.safetensors", *model), tg::IoError, "bad.safetensors");
  REQUIRE(snapshot(*model) == before);
}

TEST_CASE("checkpoint: saving replaces the previous file whole and leaves no temporary behind", "[nn][checkpoint]") {
  ScratchDir dir;
  auto a = mlp(1);
  auto b = mlp(2);
  save_checkpoint(dir / "c.safetensors", *a);
  save_checkpoint(dir / "c.safetensors", *b);
  REQUIRE(dir.entries() == std::vector<std::string>{"c.safetensors"});
  auto loaded = mlp(3);
  load_checkpoint(dir / "c.safetensors", *loaded);
  REQUIRE(snapshot(*loaded) == snapshot(*b));
  // A save that cannot happen (no such directory) throws IoError and creates nothing.
  REQUIRE_THROWS_AS(save_checkpoint(dir / "missing" / "c.safetensors", *a), tg::IoError);
  REQUIRE(dir.entries() == std::vector<std::string>{"c.safetensors"});
}

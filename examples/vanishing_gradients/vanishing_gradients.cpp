// vanishing_gradients: deep MLPs (10 and 20 hidden layers) on Fashion-MNIST with sigmoid, tanh,
// ReLU, leaky ReLU and ELU, initialised with He or with Xavier. For each network it measures the
// gradient norm of every layer's weights on a fixed probe batch, at initialisation and after a fixed
// number of plain SGD steps (W* = W - lr dE/dW, the lecture notes' update: no momentum or Adam,
// which would rescale small gradients and hide the effect), and the test loss reached. The lecture
// notes' claim: sigmoid's derivative (at most 1/4) shrinks the gradient at every layer on the way
// back, while ReLU's constant derivative 1 (for positive inputs) passes it through; and the
// initialisation decides whether the signal keeps its size through the layers. Run with --help.
#include "../common/data.hpp"
#include "../common/plot.hpp"

#include <autodiff/autodiff.hpp>
#include <nn/io/atomic_file.hpp>
#include <nn/io/idx.hpp>
#include <nn/nn.hpp>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace tg;

struct Config {
  std::string data = io::kFashionMnistDir;
  std::vector<int> depths{10, 20};
  std::vector<std::string> activations{"sigmoid", "tanh", "relu", "leaky_relu", "elu"};
  std::vector<std::string> inits{"he", "xavier"};
  std::int64_t width = 64;
  int steps = 300;
  std::int64_t batch_size = 64;
  double lr = 0.02;
  std::int64_t train_size = 20000;
  std::int64_t test_size = 2000;
  std::int64_t probe_size = 256;
  int log_every = 10;
  std::uint64_t seed = 1;
  int threads = 1;
  std::string csv = "vanishing_gradients.csv";
  std::string plot = "vanishing_gradients.png";
};

std::shared_ptr<nn::Module> make_activation(const std::string& name) {
  if (name == "sigmoid") return std::make_shared<nn::Sigmoid>();
  if (name == "tanh") return std::make_shared<nn::Tanh>();
  if (name == "relu") return std::make_shared<nn::ReLU>();
  if (name == "leaky_relu") return std::make_shared<nn::LeakyReLU>(0.01);
  if (name == "elu") return std::make_shared<nn::ELU>(1.0);
  throw ValueError(fmt::format("--activations: unknown '{}' (sigmoid, tanh, relu, leaky_relu, elu)", name));
}

// He: U(-b, b) with b = sqrt(2) sqrt(3 / fan_in), variance 2 / fan_in. Xavier: b = sqrt(6 / (fan_in +
// fan_out)), variance 1 / fan_in for a square layer. The same two for every activation, so that the
// activation is the only difference within a column of the table.
nn::Init make_init(const std::string& name) {
  if (name == "he") return nn::Init::kaiming_uniform(nn::relu_gain());
  if (name == "xavier") return nn::Init::xavier_uniform(1.0);
  throw ValueError(fmt::format("--inits: unknown '{}' (he, xavier)", name));
}

// `depth` hidden layers of `width` units, each Linear + activation, then a Linear output layer, all
// initialised with `init` (the output layer too: the whole stack is the experiment).
std::shared_ptr<nn::Sequential> make_model(int depth, const std::string& activation, const std::string& init,
                                           std::int64_t in, std::int64_t out, const Config& c) {
  auto model = std::make_shared<nn::Sequential>();
  for (int l = 0; l < depth; ++l) {
    model->add(std::make_shared<nn::Linear>(l == 0 ? in : c.width, c.width, nn::LinearOptions{.init = make_init(init)}));
    model->add(make_activation(activation));
  }
  model->add(std::make_shared<nn::Linear>(c.width, out, nn::LinearOptions{.init = make_init(init)}));
  return model;
}

// The gradient norm of each Linear layer's weight (biases left out), input layer first, after one
// backward sweep of the mean cross-entropy over the probe batch. Also returns that loss.
std::vector<double> weight_gradient_norms(nn::Module& model, const nn::TensorDataset& probe, double& loss) {
  Tape& tape = active_tape();
  tape.reset();
  model.zero_grad();
  const Tensor l = nn::cross_entropy(model(probe.x()), probe.labels());
  l.backward();
  loss = l.item();
  std::vector<double> norms;
  for (const nn::GradNorm& g : nn::gradient_norms(model)) {
    if (g.name.ends_with(".weight")) norms.push_back(g.norm);
  }
  model.zero_grad();
  tape.reset();
  return norms;
}

struct Run {
  int depth = 0;
  std::string activation, init;
  std::vector<double> norms_init, norms_trained;
  double loss_init = 0;
  std::vector<double> curve_steps, curve_loss;  // mean training loss per log_every steps
  bool diverged = false;
  int steps_done = 0;
  nn::Evaluation test;
};

Run train_one(int depth, const std::string& activation, const std::string& init, const nn::TensorDataset& train,
              const nn::TensorDataset& probe, const nn::TensorDataset& test, std::int64_t classes, const Config& c) {
  nn::manual_seed(c.seed);  // the same initial draws for every network of a given shape
  const auto model_ptr = make_model(depth, activation, init, train.x().shape()[1], classes, c);
  nn::Sequential& model = *model_ptr;
  Run r;
  r.depth = depth;
  r.activation = activation;
  r.init = init;
  r.norms_init = weight_gradient_norms(model, probe, r.loss_init);

  nn::SGD opt(model.named_parameters(), {.lr = c.lr});
  nn::DataLoader loader(train, {.batch_size = c.batch_size, .shuffle = true, .seed = c.seed});
  Tape& tape = active_tape();
  double window = 0;
  for (std::int64_t epoch = 0; r.steps_done < c.steps && !r.diverged; ++epoch) {
    for (const nn::Batch& b : loader.epoch(epoch)) {
      tape.reset();
      const Tensor loss = nn::cross_entropy(model(b.x), b.labels);
      loss.backward();
      opt.step();
      opt.zero_grad();
      const double l = loss.item();
      if (!std::isfinite(l)) {
        r.diverged = true;
        break;
      }
      window += l;
      if (++r.steps_done % c.log_every == 0) {
        r.curve_steps.push_back(r.steps_done);
        r.curve_loss.push_back(window / c.log_every);
        window = 0;
      }
      if (r.steps_done == c.steps) break;
    }
  }
  tape.reset();
  double unused = 0;
  r.norms_trained = weight_gradient_norms(model, probe, unused);
  r.test = nn::evaluate(model, test);
  return r;
}

// The claims, read off the deepest networks run (when the runs they need were selected): sigmoid's
// gradient vanishes and ReLU's does not, ReLU learns where sigmoid does not, He vs Xavier for ReLU.
void print_claims(const std::vector<Run>& runs) {
  int deepest = 0;
  for (const Run& r : runs) deepest = std::max(deepest, r.depth);
  auto find = [&](const std::string& act, const std::string& init) -> const Run* {
    for (const Run& r : runs) {
      if (r.depth == deepest && r.activation == act && r.init == init) return &r;
    }
    return nullptr;
  };
  auto ratio = [](const Run& r) { return r.norms_init.front() / r.norms_init.back(); };
  fmt::print("\n");
  if (const Run *sig = find("sigmoid", "he"), *relu = find("relu", "he"); sig && relu) {
    const bool shown = ratio(*sig) < 1e-3 && ratio(*relu) > 0.1;
    fmt::print("vanishing gradient, {} layers, he init: |g1|/|gout| at init is {:.1e} for sigmoid, {:.1e} for relu: {}\n", deepest,
               ratio(*sig), ratio(*relu), shown ? "shown" : "not shown");
    // ln 10 = 2.303 is the loss of predicting every class with probability 1/10.
    const bool faster = !relu->diverged && relu->test.loss < sig->test.loss - 0.3;
    const bool sigmoid_stuck = sig->test.loss > std::log(10.0) - 0.1;
    fmt::print("training, {} layers, he init: test loss after {} steps {:.3f} for sigmoid, {:.3f} for relu: {}\n", deepest,
               relu->steps_done, sig->test.loss, relu->test.loss,
               !faster ? "no clear difference" : sigmoid_stuck ? "relu learned, sigmoid did not" : "relu learned faster");
  }
  if (const Run *he = find("relu", "he"), *xavier = find("relu", "xavier"); he && xavier) {
    const double factor = he->norms_init.front() / xavier->norms_init.front();
    fmt::print("initialisation, {} layers, relu: |g1| at init is {:.1e} with he, {:.1e} with xavier ({:.0f}x): {}\n", deepest,
               he->norms_init.front(), xavier->norms_init.front(), factor, factor > 100 ? "initialisation matters" : "no clear difference");
  }
}

std::filesystem::path with_suffix(const std::filesystem::path& p, const std::string& suffix) {
  std::filesystem::path out = p;
  return out.replace_filename(p.stem().string() + suffix + p.extension().string());
}

int run(const Config& c) {
  const auto start = std::chrono::steady_clock::now();
  // Options first, before the data is loaded.
  for (const std::string& a : c.activations) make_activation(a);
  for (const std::string& i : c.inits) make_init(i);
  for (int d : c.depths) {
    if (d < 1) throw ValueError(fmt::format("--depths: each depth must be at least 1, got {}", d));
  }
  if (c.depths.empty() || c.activations.empty() || c.inits.empty()) {
    throw ValueError("--depths, --activations and --inits each need at least one value");
  }
  set_num_threads(c.threads);
  const examples::Split data = examples::load_idx(c.data);
  const nn::TensorDataset train = data.train.slice(0, std::min(c.train_size, data.train.size()));
  const nn::TensorDataset test = data.test.slice(0, std::min(c.test_size, data.test.size()));
  const nn::TensorDataset probe = train.slice(0, std::min(c.probe_size, train.size()));
  fmt::print("data: {}; using {} training and {} test images, a probe batch of {}\n", data.description, train.size(),
             test.size(), probe.size());
  fmt::print("networks: {} units per hidden layer; plain SGD, lr {}, batch {}, {} steps, seed {}\n", c.width, c.lr,
             c.batch_size, c.steps, c.seed);
  fmt::print("|g1|, |gout|: gradient norms of the first and of the output layer's weights on the probe batch, at init and\n"
             "at the end of training; ratio = |g1| / |gout|; loss 0: the probe batch's loss at init\n\n");

  const std::string header = fmt::format("{:>5} {:<10} {:<6} {:>10} {:>11} {:>10} {:>10} {:>10} {:>8} {:>9} {:>9}", "depth",
                                         "activation", "init", "|g1| init", "|gout| init", "ratio init", "|g1| end", "ratio end",
                                         "loss 0", "test loss", "test acc");
  fmt::print("{}\n{}\n", header, std::string(header.size(), '-'));
  std::vector<Run> runs;
  std::string csv = "depth,activation,init,layer,grad_norm_init,grad_norm_trained,loss_init,steps,test_loss,test_accuracy,diverged\n";
  for (int depth : c.depths) {
    for (const std::string& init : c.inits) {
      for (const std::string& act : c.activations) {
        const Run r = train_one(depth, act, init, train, probe, test, data.outputs, c);
        const double ratio0 = r.norms_init.front() / r.norms_init.back();
        const double ratio1 = r.norms_trained.front() / r.norms_trained.back();
        fmt::print("{:>5} {:<10} {:<6} {:>10.2e} {:>11.2e} {:>10.2e} {:>10.2e} {:>10.2e} {:>8.4f} {:>9} {:>9.3f}\n", depth, act, init,
                   r.norms_init.front(), r.norms_init.back(), ratio0, r.norms_trained.front(), ratio1, r.loss_init,
                   r.diverged ? fmt::format("diverged@{}", r.steps_done) : fmt::format("{:.4f}", r.test.loss), r.test.accuracy);
        for (std::size_t l = 0; l < r.norms_init.size(); ++l) {
          csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{}\n", depth, act, init, l + 1, r.norms_init[l], r.norms_trained[l],
                             r.loss_init, r.steps_done, r.test.loss, r.test.accuracy, r.diverged ? 1 : 0);
        }
        runs.push_back(r);
      }
    }
  }
  print_claims(runs);
  io::write_file_atomically(c.csv, csv);
  std::string curves = "depth,activation,init,step,train_loss\n";
  for (const Run& r : runs) {
    for (std::size_t i = 0; i < r.curve_steps.size(); ++i) {
      curves += fmt::format("{},{},{},{},{}\n", r.depth, r.activation, r.init, r.curve_steps[i], r.curve_loss[i]);
    }
  }
  io::write_file_atomically(with_suffix(c.csv, "_loss"), curves);
  fmt::print("\ncsv: {} (per-layer gradient norms), {} (training loss)\n", c.csv, with_suffix(c.csv, "_loss").string());

  if (!c.plot.empty()) {
    // One panel per (depth, init): gradient norm per layer, one line per activation; then the same
    // panels with the training loss.
    std::vector<examples::Panel> norms, losses;
    for (int depth : c.depths) {
      for (const std::string& init : c.inits) {
        examples::Panel pn{fmt::format("{} layers, {} init: |dE/dW| at init", depth, init), "layer (1 = input)", "gradient norm", true, {}};
        examples::Panel pl{fmt::format("{} layers, {} init: training loss", depth, init), "SGD step", "cross-entropy", false, {}};
        for (const Run& r : runs) {
          if (r.depth != depth || r.init != init) continue;
          std::vector<double> layer(r.norms_init.size());
          for (std::size_t l = 0; l < layer.size(); ++l) layer[l] = static_cast<double>(l + 1);
          pn.series.push_back({r.activation, layer, r.norms_init, "linespoints"});
          pl.series.push_back({r.activation, r.curve_steps, r.curve_loss, "lines"});
        }
        norms.push_back(pn);
        losses.push_back(pl);
      }
    }
    const int width = 440 * static_cast<int>(norms.size());
    if (examples::plot_png(c.plot, norms, width, 400) && examples::plot_png(with_suffix(c.plot, "_loss"), losses, width, 400)) {
      fmt::print("plot: {} (gradient norms), {} (training loss)\n", c.plot, with_suffix(c.plot, "_loss").string());
    }
  }
  fmt::print("{:.1f} s in all, loading included\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  bool quick = false;
  CLI::App app{"vanishing_gradients: per-layer gradient norms of deep MLPs on Fashion-MNIST with sigmoid, tanh, ReLU,\n"
               "leaky ReLU and ELU, He vs Xavier initialisation, at initialisation and after plain SGD steps."};
  app.get_formatter()->column_width(32);
  app.add_option("--data", c.data, "MNIST-format directory (IDX files, gzipped or not)")->capture_default_str();
  app.add_option("--depths", c.depths, "numbers of hidden layers to compare, e.g. --depths 10,20")->delimiter(',')->capture_default_str();
  app.add_option("--activations", c.activations, "activations to compare: sigmoid, tanh, relu, leaky_relu (slope 0.01), elu (alpha 1)")
      ->delimiter(',')->capture_default_str();
  app.add_option("--inits", c.inits, "initialisations to compare: he (variance 2/fan_in), xavier (2/(fan_in+fan_out))")
      ->delimiter(',')->capture_default_str();
  app.add_option("--width", c.width, "units per hidden layer")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--steps", c.steps, "SGD steps per network")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--batch-size", c.batch_size, "samples per SGD step")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", c.lr, "SGD learning rate, the same for every network")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--train-size", c.train_size, "training images used (the first N of the training set)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--test-size", c.test_size, "test images for the final loss and accuracy (the first N)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--probe-size", c.probe_size, "images in the fixed batch the gradient norms are measured on")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--log-every", c.log_every, "average the training loss over this many steps for the loss plot")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", c.seed, "seed of the initial weights and the batch order")->capture_default_str();
  app.add_option("--threads", c.threads, "threads for matrix products (same seed and threads, same result)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--csv", c.csv, "per-layer gradient norms as CSV; the training loss goes to <name>_loss.csv")->capture_default_str();
  app.add_option("--plot", c.plot, "gradient-norm PNG (via gnuplot), plus <name>_loss.png; empty to skip")->capture_default_str();
  app.add_flag("--quick", quick, "short run for the test suite: 60 steps, 2000 training and 500 test images");
  CLI11_PARSE(app, argc, argv);
  if (quick) {  // options given explicitly win
    if (app.count("--steps") == 0) c.steps = 60;
    if (app.count("--train-size") == 0) c.train_size = 2000;
    if (app.count("--test-size") == 0) c.test_size = 500;
  }
  try {
    return run(c);
  } catch (const std::exception& e) {
    fmt::print(stderr, "vanishing_gradients: {}\n", e.what());
    return 1;
  }
}

// dead_relus: how ReLU units die, and whether leaky ReLU and ELU keep them alive. An MLP on
// Fashion-MNIST is trained with plain SGD in several settings: a baseline, a large learning rate,
// and negative shifts of every hidden bias at initialisation. Every few steps a fixed probe batch goes
// through the network and the program counts, per hidden layer,
//   - inactive units: the unit's input was never positive on any probe image (for ReLU this is a
//     dead unit: its output and its derivative are 0 on every image, so its incoming weights and
//     bias get no gradient and cannot change), and
//   - units without gradient: the gradient of the unit's incoming weights is exactly 0.
// Leaky ReLU (slope 0.01 below 0) and ELU (alpha (exp(x) - 1) below 0) have a non-zero derivative
// for negative inputs, so an inactive unit still gets a gradient and can come back: the lecture
// notes' claim. The program prints a table per setting and activation (inactive and gradient-less
// fractions, the first layer's gradient norm, the final loss), writes the curves to a CSV and plots
// the inactive fraction over time. Run with --help for the options.
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
#include <fmt/format.h>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace tg;

struct Config {
  std::string data = io::kFashionMnistDir;
  std::vector<std::int64_t> layers{128, 128, 128};
  double lr = 0.05;
  double large_lr = 0.3;
  std::vector<double> bias_shifts{1.0, 2.0};
  double leaky_slope = 0.01;
  double elu_alpha = 1.0;
  int steps = 600;
  std::int64_t batch_size = 64;
  int probe_every = 25;
  std::int64_t probe_size = 512;
  std::int64_t train_size = 30000;
  std::int64_t test_size = 2000;
  std::uint64_t seed = 1;
  int threads = 1;
  std::string csv = "dead_relus.csv";
  std::string plot = "dead_relus.png";
};

struct Setting {
  std::string name;
  double lr;
  double bias;  // every hidden bias starts here
};

std::shared_ptr<nn::Module> make_activation(const std::string& name, const Config& c) {
  if (name == "relu") return std::make_shared<nn::ReLU>();
  if (name == "leaky_relu") return std::make_shared<nn::LeakyReLU>(c.leaky_slope);
  return std::make_shared<nn::ELU>(c.elu_alpha);
}

// What a probe pass measured: per hidden layer, the fraction of inactive units and of units whose
// incoming weights got no gradient; the fractions over all hidden units; the gradient norm of the
// first layer's weights; the probe loss.
struct Probe {
  int step = 0;
  std::vector<double> inactive, no_grad;  // per hidden layer
  double inactive_all = 0, no_grad_all = 0;
  double g1 = 0;
  double loss = 0;
};

struct Net {
  std::shared_ptr<nn::Sequential> model = std::make_shared<nn::Sequential>();
  std::vector<nn::Linear*> hidden;  // the Linear layers that feed an activation
};

Net make_net(const std::string& activation, const Setting& s, std::int64_t in, std::int64_t classes, const Config& c) {
  Net net;
  const double gain = activation == "leaky_relu" ? nn::leaky_relu_gain(c.leaky_slope) : nn::relu_gain();
  for (std::int64_t width : c.layers) {
    auto linear = std::make_shared<nn::Linear>(in, width, nn::LinearOptions{.init = nn::Init::kaiming_uniform(gain)});
    linear->bias().fill_(s.bias);
    net.hidden.push_back(linear.get());
    net.model->add(linear);
    net.model->add(make_activation(activation, c));
    in = width;
  }
  net.model->add(std::make_shared<nn::Linear>(in, classes, nn::LinearOptions{.init = nn::Init::xavier_uniform()}));
  return net;
}

// One forward and backward pass over the probe batch, with unit tracking on; leaves no gradient.
Probe probe(Net& net, const nn::TensorDataset& data, int step) {
  Tape& tape = active_tape();
  tape.reset();
  net.model->zero_grad();
  nn::reset_unit_stats(*net.model);
  nn::track_units(*net.model, true);
  const Tensor loss = nn::cross_entropy((*net.model)(data.x()), data.labels());
  loss.backward();
  nn::track_units(*net.model, false);
  Probe p;
  p.step = step;
  p.loss = loss.item();
  std::int64_t units = 0, inactive = 0, no_grad = 0;
  const std::vector<nn::DeadUnits> dead = nn::dead_units(*net.model);
  for (std::size_t l = 0; l < net.hidden.size(); ++l) {
    const Tensor g = net.hidden[l]->weight().grad();
    const std::int64_t rows = g.shape()[0], cols = g.shape()[1];
    const std::vector<double> gv = g.to_vector();
    std::int64_t zero_rows = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      const auto row = gv.begin() + r * cols;
      zero_rows += std::all_of(row, row + cols, [](double v) { return v == 0.0; }) ? 1 : 0;
    }
    p.inactive.push_back(dead[l].fraction);
    p.no_grad.push_back(static_cast<double>(zero_rows) / static_cast<double>(rows));
    units += rows;
    inactive += dead[l].dead;
    no_grad += zero_rows;
  }
  p.inactive_all = static_cast<double>(inactive) / static_cast<double>(units);
  p.no_grad_all = static_cast<double>(no_grad) / static_cast<double>(units);
  p.g1 = nn::gradient_norms(*net.hidden.front()).front().norm;  // "weight" comes first
  net.model->zero_grad();
  nn::reset_unit_stats(*net.model);
  tape.reset();
  return p;
}

struct Run {
  std::string setting, activation;
  std::vector<Probe> probes;
  bool diverged = false;
  int steps_done = 0;
  double train_loss = 0;  // mean over the last probe_every steps
  nn::Evaluation test;
};

Run train_one(const Setting& s, const std::string& activation, const nn::TensorDataset& train, const nn::TensorDataset& probe_set,
              const nn::TensorDataset& test, std::int64_t classes, const Config& c) {
  nn::manual_seed(c.seed);  // the same initial weights (up to the gain) for every activation
  Net net = make_net(activation, s, train.x().shape()[1], classes, c);
  Run r{s.name, activation, {}, false, 0, 0, {}};
  r.probes.push_back(probe(net, probe_set, 0));
  nn::SGD opt(net.model->named_parameters(), {.lr = s.lr});
  nn::DataLoader loader(train, {.batch_size = c.batch_size, .shuffle = true, .seed = c.seed});
  Tape& tape = active_tape();
  double window = 0;
  int in_window = 0;
  for (std::int64_t epoch = 0; r.steps_done < c.steps && !r.diverged; ++epoch) {
    for (const nn::Batch& b : loader.epoch(epoch)) {
      tape.reset();
      const Tensor loss = nn::cross_entropy((*net.model)(b.x), b.labels);
      loss.backward();
      opt.step();
      opt.zero_grad();
      const double l = loss.item();
      if (!std::isfinite(l)) {
        r.diverged = true;
        break;
      }
      window += l;
      ++in_window;
      if (++r.steps_done % c.probe_every == 0 || r.steps_done == c.steps) {
        r.train_loss = window / in_window;
        window = 0;
        in_window = 0;
        r.probes.push_back(probe(net, probe_set, r.steps_done));
      }
      if (r.steps_done == c.steps) break;
    }
  }
  tape.reset();
  if (!r.diverged) r.test = nn::evaluate(*net.model, test);
  return r;
}

int run(const Config& c) {
  const auto start = std::chrono::steady_clock::now();
  if (c.layers.empty()) throw ValueError("--layers: needs at least one hidden layer");
  for (std::int64_t width : c.layers) {
    if (width <= 0) throw ValueError(fmt::format("--layers: sizes must be positive, got {}", width));
  }
  set_num_threads(c.threads);
  const examples::Split data = examples::load_idx(c.data);
  const nn::TensorDataset train = data.train.slice(0, std::min(c.train_size, data.train.size()));
  const nn::TensorDataset test = data.test.slice(0, std::min(c.test_size, data.test.size()));
  // The probe: training images from the far end of the training set, not among those trained on
  // when --train-size leaves room.
  const std::int64_t n = data.train.size();
  const nn::TensorDataset probe_set = data.train.slice(std::max<std::int64_t>(0, n - c.probe_size), n);
  std::vector<Setting> settings{{"baseline", c.lr, 0.0}, {"large lr", c.large_lr, 0.0}};
  for (double shift : c.bias_shifts) settings.push_back({fmt::format("bias {:+g}", -shift), c.lr, -shift});
  const std::vector<std::string> activations{"relu", "leaky_relu", "elu"};
  std::string layers;
  for (std::int64_t w : c.layers) layers += fmt::format("{}-", w);
  fmt::print("data: {}; {} training images, {} test images, a probe batch of {}\n", data.description, train.size(), test.size(),
             probe_set.size());
  fmt::print("network: {}-{}{}, He init; plain SGD, batch {}, {} steps, seed {}\n", data.features, layers, data.outputs,
             c.batch_size, c.steps, c.seed);
  fmt::print("settings: baseline (lr {}), large lr (lr {}), bias -s (every hidden bias starts at -s, lr {})\n", c.lr, c.large_lr,
             c.lr);
  fmt::print("inactive: fraction of hidden units whose input is <= 0 on every probe image, at step 0, at most, at the end, and\n"
             "per layer at the end; no grad: fraction whose incoming weights get an exactly zero gradient on the probe batch,\n"
             "at the end; |g1|: gradient norm of the first layer's weights on the probe batch, at the end.\n\n");

  const std::string header = fmt::format("{:<9} {:<10} {:>6} {:>6} {:>6} {:<16} {:>7} {:>8} {:>7} {:>9} {:>8}", "setting",
                                         "activation", "inact0", "max", "end", "per layer (end)", "no grad", "|g1|", "train", "test loss",
                                         "test acc");
  fmt::print("{}\n{}\n", header, std::string(header.size(), '-'));
  std::vector<Run> runs;
  std::string csv = "setting,activation,step,layer,inactive_fraction,no_grad_fraction,probe_loss\n";
  for (const Setting& s : settings) {
    for (const std::string& act : activations) {
      Run r = train_one(s, act, train, probe_set, test, data.outputs, c);
      double worst_inactive = 0;
      for (const Probe& p : r.probes) {
        worst_inactive = std::max(worst_inactive, p.inactive_all);
        for (std::size_t l = 0; l < p.inactive.size(); ++l) {
          csv += fmt::format("{},{},{},{},{},{},{}\n", s.name, act, p.step, l + 1, p.inactive[l], p.no_grad[l], p.loss);
        }
      }
      const Probe& last = r.probes.back();
      std::string per_layer;
      for (double f : last.inactive) per_layer += fmt::format("{}{:.2f}", per_layer.empty() ? "" : " ", f);
      if (r.diverged) {
        fmt::print("{:<9} {:<10} {:>6.3f} {:>6.3f} {:>6} {:<16} {:>7} {:>8} {:>7} {:>9} {:>8}\n", s.name, act, r.probes.front().inactive_all,
                   worst_inactive, "-", "-", "-", "-", "-", fmt::format("diverged@{}", r.steps_done + 1), "-");
      } else {
        fmt::print("{:<9} {:<10} {:>6.3f} {:>6.3f} {:>6.3f} {:<16} {:>7.3f} {:>8.1e} {:>7.4f} {:>9.4f} {:>8.3f}\n", s.name, act,
                   r.probes.front().inactive_all, worst_inactive, last.inactive_all, per_layer, last.no_grad_all, last.g1, r.train_loss,
                   r.test.loss, r.test.accuracy);
      }
      runs.push_back(std::move(r));
    }
  }
  io::write_file_atomically(c.csv, csv);
  fmt::print("\ncsv: {} (per probe and hidden layer)\n", c.csv);

  // The claim, per setting where ReLU lost units: do leaky ReLU and ELU keep a gradient there, and
  // does it help them learn (a test loss lower than ReLU's by more than 0.1)?
  fmt::print("\n");
  for (const Setting& s : settings) {
    std::vector<const Run*> of;
    for (const Run& r : runs) {
      if (r.setting == s.name) of.push_back(&r);
    }
    const Run& relu = *of[0];
    if (relu.diverged) {
      fmt::print("{:<9} relu diverged\n", s.name);
      continue;
    }
    const double relu_dead = relu.probes.back().no_grad_all;
    if (relu_dead < 0.05) {
      fmt::print("{:<9} relu: {:.3f} of units without gradient at the end: few ReLU units died in this setting\n", s.name, relu_dead);
      continue;
    }
    std::string line = fmt::format("{:<9} relu: {:.3f} of units without gradient at the end, test loss {:.3f};", s.name, relu_dead,
                                   relu.test.loss);
    for (const Run* r : {of[1], of[2]}) {
      if (r->diverged) {
        line += fmt::format(" {}: diverged;", r->activation);
        continue;
      }
      const bool flows = r->probes.back().no_grad_all < relu_dead / 5;
      const bool learns = r->test.loss < relu.test.loss - 0.1;
      line += fmt::format(" {}: {:.3f}, {}, test loss {:.3f}, {};", r->activation, r->probes.back().no_grad_all,
                          flows ? "gradient flows" : "gradient stopped too", r->test.loss, learns ? "learned" : "did not learn more");
    }
    line.back() = '\n';
    fmt::print("{}", line);
  }

  if (!c.plot.empty()) {
    std::vector<examples::Panel> panels;
    for (const Setting& s : settings) {
      examples::Panel panel{fmt::format("{} (lr {})", s.name, s.lr), "SGD step", "inactive fraction of hidden units", false, {}};
      for (const Run& r : runs) {
        if (r.setting != s.name) continue;
        examples::Series series{r.activation, {}, {}, "linespoints"};
        for (const Probe& p : r.probes) {
          series.x.push_back(p.step);
          series.y.push_back(p.inactive_all);
        }
        panel.series.push_back(std::move(series));
      }
      panels.push_back(std::move(panel));
    }
    if (examples::plot_png(c.plot, panels, 460 * static_cast<int>(panels.size()), 400)) fmt::print("plot: {}\n", c.plot);
  }
  fmt::print("{:.1f} s in all, loading included\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  bool quick = false;
  CLI::App app{"dead_relus: the fraction of dead (never active) hidden units over training, for ReLU, leaky ReLU and ELU,\n"
               "on Fashion-MNIST with a baseline, a large learning rate and negative bias shifts."};
  app.get_formatter()->column_width(32);
  app.add_option("--data", c.data, "MNIST-format directory (IDX files, gzipped or not)")->capture_default_str();
  app.add_option("--layers", c.layers, "hidden layer sizes, e.g. --layers 256,256,256")->delimiter(',')->capture_default_str();
  app.add_option("--lr", c.lr, "SGD learning rate of the baseline and bias-shift settings")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--large-lr", c.large_lr, "SGD learning rate of the large-lr setting")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--bias-shifts", c.bias_shifts, "one bias-shift setting per value s: every hidden bias starts at -s")
      ->delimiter(',')->capture_default_str();
  app.add_option("--leaky-slope", c.leaky_slope, "slope of leaky ReLU below 0")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--elu-alpha", c.elu_alpha, "alpha of ELU")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--steps", c.steps, "SGD steps per network")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--batch-size", c.batch_size, "samples per SGD step")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--probe-every", c.probe_every, "steps between two probe passes")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--probe-size", c.probe_size, "images in the probe batch (the last N of the training set)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--train-size", c.train_size, "training images used (the first N of the training set)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--test-size", c.test_size, "test images for the final loss and accuracy (the first N)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", c.seed, "seed of the initial weights and the batch order")->capture_default_str();
  app.add_option("--threads", c.threads, "threads for matrix products (same seed and threads, same result)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--csv", c.csv, "per-probe, per-layer fractions as CSV")->capture_default_str();
  app.add_option("--plot", c.plot, "inactive fraction over time (PNG via gnuplot); empty to skip")->capture_default_str();
  app.add_flag("--quick", quick, "short run for the test suite: 100 steps, 128-128 hidden units, 5000 training images");
  CLI11_PARSE(app, argc, argv);
  if (quick) {  // options given explicitly win
    if (app.count("--steps") == 0) c.steps = 100;
    if (app.count("--layers") == 0) c.layers = {128, 128};
    if (app.count("--train-size") == 0) c.train_size = 5000;
    if (app.count("--test-size") == 0) c.test_size = 500;
  }
  try {
    return run(c);
  } catch (const std::exception& e) {
    fmt::print(stderr, "dead_relus: {}\n", e.what());
    return 1;
  }
}

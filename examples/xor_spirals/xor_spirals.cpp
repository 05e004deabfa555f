// xor_spirals: the smallest problems that need a non-linearity. No straight line separates XOR's
// four points, nor two interleaved spirals, so a linear classifier cannot fit them; nor can a stack
// of Linear layers without an activation between them (a product of linear maps is linear). An MLP
// with a hidden ReLU (or tanh) can. Each model is trained full-batch with Adam on cross-entropy;
// the program prints loss and accuracy per model, writes them to a CSV, and draws the decision
// boundaries of the linear model and the ReLU MLP into a PNG. Run with --help for the options.
#include "../common/plot.hpp"

#include <autodiff/autodiff.hpp>
#include <nn/io/atomic_file.hpp>
#include <nn/nn.hpp>

#include <CLI/CLI.hpp>
#include <cmath>
#include <fmt/format.h>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace tg;

struct Config {
  int points = 200;  // per class, per spiral data set
  double turns = 1.5;
  double noise = 0.03;
  std::int64_t width = 32;
  int hidden_layers = 2;
  int steps = 1500;
  double lr = 0.01;
  int grid = 120;
  std::uint64_t seed = 1;
  std::string csv = "xor_spirals.csv";
  std::string plot = "xor_spirals.png";
};

// A 2-D point set with class labels 0/1, kept as plain numbers for plotting, and as a dataset.
struct Points {
  std::vector<double> x, y;
  std::vector<std::int64_t> label;
  nn::TensorDataset dataset() const {
    std::vector<double> xy;
    for (std::size_t i = 0; i < x.size(); ++i) xy.insert(xy.end(), {x[i], y[i]});
    return {Tensor::from_values(std::span<const double>(xy), {static_cast<std::int64_t>(x.size()), 2}), label};
  }
};

Points make_xor() { return {{0, 0, 1, 1}, {0, 1, 0, 1}, {0, 1, 1, 0}}; }

// Two spirals: class c's point i sits at radius u = (i + 0.5) / n and angle u * turns * 2 pi + c pi,
// plus Gaussian noise; a different seed gives a different sample of the same spirals.
Points make_spirals(int n, double turns, double noise, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> jitter(0.0, noise);
  Points p;
  for (int c = 0; c < 2; ++c) {
    for (int i = 0; i < n; ++i) {
      const double u = (i + 0.5) / n;
      const double angle = u * turns * 2 * std::numbers::pi + c * std::numbers::pi;
      p.x.push_back(u * std::cos(angle) + jitter(gen));
      p.y.push_back(u * std::sin(angle) + jitter(gen));
      p.label.push_back(c);
    }
  }
  return p;
}

// The models compared: one Linear layer (logistic regression), a stack of Linear layers with no
// activation, and MLPs with a hidden ReLU or tanh after every hidden Linear layer.
struct ModelKind {
  std::string name;
  std::string activation;  // "" for none
  bool hidden = true;
};
const std::vector<ModelKind> kModels{
    {"linear", "", false}, {"linear stack", "", true}, {"ReLU MLP", "relu", true}, {"tanh MLP", "tanh", true}};

std::shared_ptr<nn::Sequential> make_model(const ModelKind& kind, const Config& c) {
  auto model = std::make_shared<nn::Sequential>();
  std::int64_t in = 2;
  if (kind.hidden) {
    const nn::Init init = kind.activation == "relu" ? nn::Init::kaiming_uniform() : nn::Init::xavier_uniform();
    for (int l = 0; l < c.hidden_layers; ++l) {
      model->add(std::make_shared<nn::Linear>(in, c.width, nn::LinearOptions{.init = init}));
      if (kind.activation == "relu") model->add(std::make_shared<nn::ReLU>());
      if (kind.activation == "tanh") model->add(std::make_shared<nn::Tanh>());
      in = c.width;
    }
  }
  model->add(std::make_shared<nn::Linear>(in, 2, nn::LinearOptions{.init = nn::Init::xavier_uniform()}));
  return model;
}

// Full-batch training: the whole point set is one batch, one Adam step per iteration.
void train(nn::Module& model, const nn::TensorDataset& data, const Config& c) {
  nn::Adam opt(model.named_parameters(), {.lr = c.lr});
  Tape& tape = active_tape();
  for (int step = 0; step < c.steps; ++step) {
    tape.reset();
    const Tensor loss = nn::cross_entropy(model(data.x()), data.labels());
    loss.backward();
    opt.step();
    opt.zero_grad();
  }
  tape.reset();
}

// P(class 1) over a grid covering [x0, x1] x [y0, y1], with the points on top.
examples::Field decision_field(nn::Module& model, const Points& p, double lo, double hi, int n, std::string title) {
  examples::Field f{std::move(title), lo, hi, lo, hi, n, n, {}, p.x, p.y, {}};
  std::vector<double> xy;
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < n; ++i) xy.insert(xy.end(), {lo + (hi - lo) * (i + 0.5) / n, lo + (hi - lo) * (j + 0.5) / n});
  }
  Tape& tape = active_tape();
  tape.reset();
  {
    NoGrad no_grad;
    const std::vector<double> logits = model(Tensor::from_values(std::span<const double>(xy), {n * n, 2})).to_vector();
    for (int k = 0; k < n * n; ++k) f.grid.push_back(1.0 / (1.0 + std::exp(logits[2 * k] - logits[2 * k + 1])));
  }
  tape.reset();
  for (std::int64_t l : p.label) f.label.push_back(static_cast<int>(l));
  return f;
}

int run(const Config& c) {
  struct Task {
    std::string name;
    Points train, test;
    double lo, hi;  // plot range
  };
  const std::vector<Task> tasks{
      {"xor", make_xor(), make_xor(), -0.5, 1.5},
      {"spirals", make_spirals(c.points, c.turns, c.noise, c.seed), make_spirals(c.points, c.turns, c.noise, c.seed + 1000), -1.2, 1.2}};
  fmt::print("xor: the 4 points of XOR (test = train). spirals: {} points per class, {} turns, noise {}; test set: {} more per class\n",
             c.points, c.turns, c.noise, c.points);
  fmt::print("models: hidden layers {} x {} units; full-batch Adam, lr {}, {} steps, seed {}\n\n", c.hidden_layers, c.width, c.lr,
             c.steps, c.seed);

  const std::string header = fmt::format("{:<8} {:<13} {:>7} {:>11} {:>10} {:>10} {:>10}", "task", "model", "params",
                                         "train loss", "train acc", "test loss", "test acc");
  fmt::print("{}\n{}\n", header, std::string(header.size(), '-'));
  std::string csv = "task,model,activation,hidden_layers,width,parameters,steps,train_loss,train_accuracy,test_loss,test_accuracy\n";
  std::vector<examples::Field> fields;
  for (const Task& task : tasks) {
    const nn::TensorDataset train_set = task.train.dataset();
    const nn::TensorDataset test_set = task.test.dataset();
    double linear_acc = 0, relu_acc = 0;
    for (const ModelKind& kind : kModels) {
      nn::manual_seed(c.seed);  // every model starts from the same seed, whatever ran before it
      const auto model = make_model(kind, c);
      train(*model, train_set, c);
      const nn::Evaluation tr = nn::evaluate(*model, train_set);
      const nn::Evaluation te = nn::evaluate(*model, test_set);
      fmt::print("{:<8} {:<13} {:>7} {:>11.4f} {:>10.3f} {:>10.4f} {:>10.3f}\n", task.name, kind.name, model->parameter_count(),
                 tr.loss, tr.accuracy, te.loss, te.accuracy);
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{}\n", task.name, kind.name, kind.activation.empty() ? "none" : kind.activation,
                         kind.hidden ? c.hidden_layers : 0, kind.hidden ? c.width : 0, model->parameter_count(), c.steps, tr.loss,
                         tr.accuracy, te.loss, te.accuracy);
      if (kind.name == "linear") linear_acc = tr.accuracy;
      if (kind.name == "ReLU MLP") relu_acc = tr.accuracy;
      if (kind.name == "linear" || kind.name == "ReLU MLP") {
        fields.push_back(decision_field(*model, task.train, task.lo, task.hi, c.grid,
                                        fmt::format("{}: {} (train acc {:.2f})", task.name, kind.name, tr.accuracy)));
      }
    }
    fmt::print("{:<8} train accuracy, linear {:.3f} vs ReLU MLP {:.3f}: the non-linearity {}\n", task.name, linear_acc, relu_acc,
               relu_acc > linear_acc + 0.15 ? "is needed" : "made no clear difference in this run");
  }
  io::write_file_atomically(c.csv, csv);
  fmt::print("\ncsv: {}\n", c.csv);
  if (!c.plot.empty() && examples::plot_fields_png(c.plot, fields, 360)) fmt::print("plot: {}\n", c.plot);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  bool quick = false;
  CLI::App app{"xor_spirals: XOR and two spirals need a non-linearity. Trains a linear model, a stack of Linear layers\n"
               "without activation, and MLPs with ReLU and tanh; prints loss and accuracy, draws the decision boundaries."};
  app.get_formatter()->column_width(30);
  app.add_option("--points", c.points, "spiral points per class (train; the test set has as many)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--turns", c.turns, "turns of each spiral (more is harder)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--noise", c.noise, "standard deviation of the Gaussian noise added to spiral points")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--width", c.width, "units per hidden layer")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--hidden-layers", c.hidden_layers, "hidden layers of the MLPs and the linear stack")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--steps", c.steps, "full-batch Adam steps per model")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--lr", c.lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--grid", c.grid, "resolution of the decision-boundary picture (cells per side)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", c.seed, "seed of the spiral points and the initial weights")->capture_default_str();
  app.add_option("--csv", c.csv, "where to write the table as CSV")->capture_default_str();
  app.add_option("--plot", c.plot, "decision-boundary PNG (via gnuplot); empty to skip")->capture_default_str();
  app.add_flag("--quick", quick, "short run for the test suite: 100 points per class, 400 steps, a 40x40 grid");
  CLI11_PARSE(app, argc, argv);
  if (quick) {  // options given explicitly win
    if (app.count("--points") == 0) c.points = 100;
    if (app.count("--steps") == 0) c.steps = 400;
    if (app.count("--grid") == 0) c.grid = 40;
  }
  try {
    return run(c);
  } catch (const std::exception& e) {
    fmt::print(stderr, "xor_spirals: {}\n", e.what());
    return 1;
  }
}

// tapegrad-train: trains a multilayer perceptron from the command line, on Fashion-MNIST (Debian's
// dataset-fashion-mnist) by default, on any MNIST-format directory (--data), or on a numeric CSV
// file (--csv FILE --target COLUMN). Run with --help for every option.
#include "../common/data.hpp"
#include "../common/plot.hpp"

#include <nn/io/idx.hpp>

#include <autodiff/autodiff.hpp>
#include <nn/io/atomic_file.hpp>
#include <nn/nn.hpp>

#include <CLI/CLI.hpp>
#include <chrono>
#include <charconv>
#include <fmt/format.h>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace tg;

struct Config {
  std::string data = io::kFashionMnistDir;
  std::string csv;
  std::string target;
  std::string task = "auto";
  double test_split = 0.2;
  std::vector<std::int64_t> layers{256, 128};
  std::string activation = "relu";
  std::optional<double> relu_at_zero;
  std::string init = "auto";
  std::string optimizer = "adam";
  std::optional<double> lr;
  double momentum = 0.9;
  double weight_decay = 0.0;
  std::string schedule = "cosine";
  int epochs = 12;
  std::int64_t batch_size = 128;
  std::uint64_t seed = 1;
  int threads = 1;
  double val_split = 0.0;
  std::int64_t train_limit = 0;  // 0: every training sample
  std::int64_t test_limit = 0;
  std::string checkpoint;
  std::string resume;
  std::string metrics = "tapegrad-train.csv";
  std::string plot = "tapegrad-train.png";
  std::string progress = "auto";
};

// "relu", "leaky_relu:0.01", "elu:1.0", "sigmoid", "tanh", "gelu" -> a module factory and the gain
// for He initialisation (0 for Xavier).
struct ActivationSpec {
  std::string name;
  double parameter = 0;
};

ActivationSpec parse_activation(const std::string& s) {
  const auto colon = s.find(':');
  ActivationSpec a{s.substr(0, colon), 0};
  const bool takes = a.name == "leaky_relu" || a.name == "elu";
  if (colon != std::string::npos) {
    if (!takes) throw ValueError(fmt::format("--activation {}: only leaky_relu and elu take a parameter", s));
    const std::string v = s.substr(colon + 1);
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), a.parameter);
    if (ec != std::errc{} || p != v.data() + v.size()) throw ValueError(fmt::format("--activation {}: '{}' is not a number", s, v));
  } else {
    a.parameter = a.name == "leaky_relu" ? 0.01 : 1.0;
  }
  for (const char* known : {"relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu"}) {
    if (a.name == known) return a;
  }
  throw ValueError(fmt::format("--activation {}: unknown (relu, leaky_relu[:scale], elu[:alpha], sigmoid, tanh, gelu)", s));
}

std::shared_ptr<nn::Module> make_activation(const ActivationSpec& a) {
  if (a.name == "relu") return std::make_shared<nn::ReLU>();
  if (a.name == "leaky_relu") return std::make_shared<nn::LeakyReLU>(a.parameter);
  if (a.name == "elu") return std::make_shared<nn::ELU>(a.parameter);
  if (a.name == "sigmoid") return std::make_shared<nn::Sigmoid>();
  if (a.name == "tanh") return std::make_shared<nn::Tanh>();
  return std::make_shared<nn::GELU>();
}

nn::Init make_init(const std::string& init, const ActivationSpec& a) {
  const bool relu_family = a.name == "relu" || a.name == "leaky_relu" || a.name == "elu" || a.name == "gelu";
  if (init == "he" || (init == "auto" && relu_family)) {
    return nn::Init::kaiming_uniform(a.name == "leaky_relu" ? nn::leaky_relu_gain(a.parameter) : nn::relu_gain());
  }
  if (init == "xavier" || init == "auto") return nn::Init::xavier_uniform(a.name == "tanh" ? nn::tanh_gain() : 1.0);
  throw ValueError(fmt::format("--init {}: unknown (auto, he, xavier)", init));
}

std::unique_ptr<nn::Optimizer> make_optimizer(const Config& c, const std::vector<nn::NamedTensor>& params) {
  if (c.optimizer == "sgd") return std::make_unique<nn::SGD>(params, nn::SGDOptions{.lr = c.lr.value_or(0.1), .weight_decay = c.weight_decay});
  if (c.optimizer == "momentum") {
    return std::make_unique<nn::SGD>(params, nn::SGDOptions{.lr = c.lr.value_or(0.05), .momentum = c.momentum, .weight_decay = c.weight_decay});
  }
  if (c.optimizer == "adam") return std::make_unique<nn::Adam>(params, nn::AdamOptions{.lr = c.lr.value_or(1e-3), .weight_decay = c.weight_decay});
  throw ValueError(fmt::format("--optimizer {}: unknown (sgd, momentum, adam)", c.optimizer));
}

// Learning-rate schedule, stepped after each epoch: none, cosine, or step:EVERY:GAMMA.
struct Schedule {
  std::unique_ptr<nn::StepLR> step;
  std::unique_ptr<nn::CosineLR> cosine;
  void advance() {
    if (step) step->step();
    if (cosine) cosine->step();
  }
};

Schedule make_schedule(const std::string& s, nn::Optimizer& opt, int epochs) {
  Schedule out;
  if (s == "none") return out;
  if (s == "cosine") {
    out.cosine = std::make_unique<nn::CosineLR>(opt, std::max(epochs, 1));
    return out;
  }
  int every = 0;
  double gamma = 0;
  if (s.starts_with("step:")) {
    const auto second = s.find(':', 5);
    const std::string a = s.substr(5, second == std::string::npos ? std::string::npos : second - 5);
    const std::string b = second == std::string::npos ? "0.1" : s.substr(second + 1);
    const bool ok = std::from_chars(a.data(), a.data() + a.size(), every).ec == std::errc{} &&
                    std::from_chars(b.data(), b.data() + b.size(), gamma).ec == std::errc{};
    if (ok) {
      out.step = std::make_unique<nn::StepLR>(opt, every, gamma);
      return out;
    }
  }
  throw ValueError(fmt::format("--schedule {}: unknown (none, cosine, step:EVERY[:GAMMA])", s));
}

int run(const Config& c) {
  const auto start = std::chrono::steady_clock::now();
  set_num_threads(c.threads);
  nn::manual_seed(c.seed);
  std::optional<SubgradientScope> relu_kink;
  if (c.relu_at_zero) relu_kink.emplace(Kink::relu, *c.relu_at_zero);

  // Data.
  examples::Task task = examples::Task::automatic;
  if (c.task == "classification") task = examples::Task::classification;
  else if (c.task == "regression") task = examples::Task::regression;
  else if (c.task != "auto") throw ValueError(fmt::format("--task {}: unknown (auto, classification, regression)", c.task));
  if (!c.csv.empty() && c.target.empty()) throw ValueError("--csv needs --target COLUMN (the column to predict)");
  examples::Split data = c.csv.empty() ? examples::load_idx(c.data)
                                       : examples::load_csv(c.csv, c.target, task, c.test_split, c.seed);
  if (c.train_limit > 0 && c.train_limit < data.train.size()) data.train = data.train.slice(0, c.train_limit);
  if (c.test_limit > 0 && c.test_limit < data.test.size()) data.test = data.test.slice(0, c.test_limit);
  nn::TensorDataset train = data.train;
  std::optional<nn::TensorDataset> validation;
  if (c.val_split > 0) {
    auto [t, v] = data.train.split(c.val_split, c.seed);
    train = t;
    validation = v;
  }
  fmt::print("data: {}\n", data.description);
  if (c.train_limit > 0 || c.test_limit > 0) {
    fmt::print("using {} training and {} test samples (--train-limit, --test-limit)\n", data.train.size(), data.test.size());
  }

  // Model.
  const ActivationSpec act = parse_activation(c.activation);
  const nn::Init init = make_init(c.init, act);
  nn::Sequential model;
  std::int64_t width = data.features;
  for (std::int64_t h : c.layers) {
    if (h <= 0) throw ValueError(fmt::format("--layers: sizes must be positive, got {}", h));
    model.add(std::make_shared<nn::Linear>(width, h, nn::LinearOptions{.init = init}));
    model.add(make_activation(act));
    width = h;
  }
  // The output layer: Xavier, as it feeds a softmax or a linear regression output.
  model.add(std::make_shared<nn::Linear>(width, data.outputs, nn::LinearOptions{.init = nn::Init::xavier_uniform()}));
  nn::track_units(model, true);
  std::unique_ptr<nn::Optimizer> opt = make_optimizer(c, model.named_parameters());
  fmt::print("model: {} parameters, {}, init {}, optimizer {} (lr {}), batch {}, {} epochs, {} thread{}\n",
             model.parameter_count(), c.activation, init.describe(), c.optimizer, opt->learning_rate(), c.batch_size,
             c.epochs, c.threads, c.threads == 1 ? "" : "s");
  if (c.relu_at_zero) fmt::print("relu'(0) = {} for this run\n", *c.relu_at_zero);

  int first_epoch = 1;
  if (!c.resume.empty()) {
    const auto meta = nn::load_checkpoint(c.resume, model, opt.get());
    const auto it = meta.find("epoch");
    if (it == meta.end() || std::from_chars(it->second.data(), it->second.data() + it->second.size(), first_epoch).ec != std::errc{}) {
      throw ValueError(fmt::format("--resume {}: the checkpoint has no epoch number", c.resume));
    }
    ++first_epoch;
    fmt::print("resumed from {} after epoch {}\n", c.resume, first_epoch - 1);
  }
  Schedule schedule = make_schedule(c.schedule, *opt, c.epochs);
  for (int e = 1; e < first_epoch; ++e) schedule.advance();  // the rate where the run left off

  nn::DataLoader loader(train, {.batch_size = c.batch_size, .shuffle = true, .seed = c.seed});
  const nn::TensorDataset& report_set = validation ? *validation : data.test;
  std::string metrics = "epoch,train_loss,train_accuracy,eval_loss,eval_accuracy,seconds,samples_per_second,learning_rate\n";
  std::vector<double> xs, train_loss, eval_loss, eval_acc;
  nn::FitOptions fo;
  fo.epochs = c.epochs;
  fo.first_epoch = first_epoch;
  fo.validation = &report_set;
  fo.validation_name = validation ? "val" : "test";
  if (c.progress != "auto") fo.progress = c.progress == "on";
  fo.on_epoch = [&](const nn::EpochStats& s) {
    const nn::Evaluation& ev = *s.validation;
    metrics += fmt::format("{},{},{},{},{},{},{},{}\n", s.epoch, s.train_loss, s.train_accuracy, ev.loss, ev.accuracy,
                           s.seconds, s.samples_per_second, s.learning_rate);
    xs.push_back(s.epoch);
    train_loss.push_back(s.train_loss);
    eval_loss.push_back(ev.loss);
    eval_acc.push_back(ev.accuracy);
    schedule.advance();
    if (!c.metrics.empty()) io::write_file_atomically(c.metrics, metrics);
    if (!c.checkpoint.empty()) nn::save_checkpoint(c.checkpoint, model, opt.get(), {{"epoch", std::to_string(s.epoch)}});
    if (s.epoch < c.epochs) nn::reset_unit_stats(model);  // the report covers the last epoch
  };
  nn::fit(model, *opt, loader, fo);

  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const nn::Evaluation final_eval = nn::evaluate(model, data.test);
  if (data.classification) {
    fmt::print("\ntest accuracy {:.4f}  test loss {:.4f}  ({:.1f} s in all, loading included)\n\nconfusion matrix (rows: true class)\n{}",
               final_eval.accuracy, final_eval.loss, total, final_eval.format_confusion());
  } else {
    fmt::print("\ntest mse {:.6g}  ({:.1f} s in all, loading included)\n", final_eval.loss, total);
  }
  fmt::print("\ndead units over the last epoch (input never positive)\n{}", nn::format_dead_units(nn::dead_units(model)));
  if (!c.plot.empty() && !xs.empty()) {
    std::vector<examples::Panel> panels{{"loss", "epoch", "loss", false,
                                         {{"train", xs, train_loss, "linespoints"}, {validation ? "validation" : "test", xs, eval_loss, "linespoints"}}}};
    if (data.classification) panels.push_back({"accuracy", "epoch", "accuracy", false, {{validation ? "validation" : "test", xs, eval_acc, "linespoints"}}});
    if (examples::plot_png(c.plot, panels)) fmt::print("\nplot: {}\n", c.plot);
  }
  if (!c.metrics.empty()) fmt::print("metrics: {}\n", c.metrics);
  if (!c.checkpoint.empty()) fmt::print("checkpoint: {}\n", c.checkpoint);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app{"tapegrad-train: trains a multilayer perceptron (classifier or regressor) with tapegrad.\n"
               "Default: Fashion-MNIST from Debian's dataset-fashion-mnist, 784-256-128-10 ReLU, Adam, 12 epochs."};
  app.get_formatter()->column_width(34);
  app.add_option("--data", c.data, "MNIST-format directory (IDX files, gzipped or not)")->capture_default_str();
  app.add_option("--csv", c.csv, "numeric CSV file with a header row, instead of --data");
  app.add_option("--target", c.target, "with --csv: the column to predict");
  app.add_option("--task", c.task, "with --csv: auto, classification or regression (auto: integer targets in [0, 1000) are classes)")->capture_default_str();
  app.add_option("--test-split", c.test_split, "with --csv: fraction of rows held out as the test set")->capture_default_str();
  app.add_option("--layers", c.layers, "hidden layer sizes, e.g. --layers 256 128 (or 256,128)")->delimiter(',')->capture_default_str();
  app.add_option("--activation", c.activation, "relu, leaky_relu[:scale], elu[:alpha], sigmoid, tanh, gelu")->capture_default_str();
  app.add_option("--relu-at-zero", c.relu_at_zero, "the subgradient relu'(0) used for the whole run (default 0, PyTorch's)");
  app.add_option("--init", c.init, "weight initialisation: auto (He for the ReLU family, Xavier otherwise), he, xavier")->capture_default_str();
  app.add_option("--optimizer", c.optimizer, "sgd, momentum (SGD with momentum) or adam")->capture_default_str();
  app.add_option("--lr", c.lr, "learning rate (default: 0.1 sgd, 0.05 momentum, 0.001 adam)");
  app.add_option("--momentum", c.momentum, "momentum of --optimizer momentum")->capture_default_str();
  app.add_option("--weight-decay", c.weight_decay, "L2 weight decay")->capture_default_str();
  app.add_option("--schedule", c.schedule, "learning-rate schedule: none, cosine, step:EVERY[:GAMMA]")->capture_default_str();
  app.add_option("--epochs", c.epochs, "training epochs")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--batch-size", c.batch_size, "samples per batch")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", c.seed, "seed of initialisation, shuffling and splits (same seed and threads, same result)")->capture_default_str();
  app.add_option("--threads", c.threads, "threads for matrix products")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--val-split", c.val_split, "fraction of the training set held out for per-epoch validation (0: report the test set)")->capture_default_str();
  app.add_option("--train-limit", c.train_limit, "use only the first N training samples (0: all), for quick runs")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--test-limit", c.test_limit, "use only the first N test samples (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--checkpoint", c.checkpoint, "save model and optimizer (safetensors) after every epoch to this path");
  app.add_option("--resume", c.resume, "continue from a checkpoint written by --checkpoint");
  app.add_option("--metrics", c.metrics, "per-epoch figures, written to this CSV file after every epoch; empty to skip")->capture_default_str();
  app.add_option("--plot", c.plot, "loss/accuracy plot (PNG, via gnuplot); empty to skip")->capture_default_str();
  app.add_option("--progress", c.progress, "progress bar: auto (on a terminal), on, off")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return run(c);
  } catch (const std::exception& e) {
    fmt::print(stderr, "tapegrad-train: {}\n", e.what());
    return 1;
  }
}

// convergence_race: the same deep MLP (6 hidden layers by default) trained on a Fashion-MNIST
// subset once with each activation, sigmoid, tanh, ReLU, leaky ReLU, ELU and GELU, from the same
// seeds, with the same batches and the same plain SGD (W* = W - lr dE/dW, the lecture notes'
// update). How many steps (and epochs, and seconds) does each need to bring the training loss
// down to a target? The lecture notes claim ReLU "speeds up the convergence of neural networks,
// compared to other activation functions"; Clevert et al. (2015) claim ELU learns faster than ReLU
// and leaky ReLU. Each activation gets its usual initialisation (He for the ReLU family and GELU,
// Xavier for sigmoid and tanh), so that the activation, not a mismatched initialisation, is what
// is compared. Run with --help for the options.
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
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace tg;

struct Config {
  std::string data = io::kFashionMnistDir;
  std::vector<std::string> activations{"sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu"};
  int depth = 6;
  std::int64_t width = 64;
  int steps = 600;
  std::int64_t batch_size = 100;
  double lr = 0.05;
  double target = 0.6;
  int window = 20;
  std::int64_t train_size = 10000;
  std::int64_t test_size = 2000;
  std::uint64_t seed = 1;
  int seeds = 3;
  int threads = 1;
  std::string csv = "convergence_race.csv";
  std::string plot = "convergence_race.png";
};

std::shared_ptr<nn::Module> make_activation(const std::string& name) {
  if (name == "sigmoid") return std::make_shared<nn::Sigmoid>();
  if (name == "tanh") return std::make_shared<nn::Tanh>();
  if (name == "relu") return std::make_shared<nn::ReLU>();
  if (name == "leaky_relu") return std::make_shared<nn::LeakyReLU>(0.01);
  if (name == "elu") return std::make_shared<nn::ELU>(1.0);
  if (name == "gelu") return std::make_shared<nn::GELU>();
  throw ValueError(fmt::format("--activations: unknown '{}' (sigmoid, tanh, relu, leaky_relu, elu, gelu)", name));
}

// He uniform for the ReLU family and GELU (leaky ReLU with its own gain), Xavier uniform for sigmoid
// and tanh (tanh with its gain 5/3), as PyTorch's calculate_gain recommends.
nn::Init make_init(const std::string& name) {
  if (name == "sigmoid") return nn::Init::xavier_uniform(1.0);
  if (name == "tanh") return nn::Init::xavier_uniform(nn::tanh_gain());
  if (name == "leaky_relu") return nn::Init::kaiming_uniform(nn::leaky_relu_gain(0.01));
  return nn::Init::kaiming_uniform(nn::relu_gain());
}
std::string init_name(const std::string& activation) {
  if (activation == "sigmoid") return "Xavier";
  if (activation == "tanh") return "Xavier 5/3";
  return "He";
}

// `depth` hidden layers (Linear + activation) of `width` units and a Xavier-initialised output layer.
// The same seed gives every activation the same stream of initialisation seeds.
std::shared_ptr<nn::Sequential> make_model(const std::string& activation, std::int64_t in, std::int64_t out, std::uint64_t seed,
                                           const Config& c) {
  nn::manual_seed(seed);
  auto model = std::make_shared<nn::Sequential>();
  for (int l = 0; l < c.depth; ++l) {
    model->add(std::make_shared<nn::Linear>(l == 0 ? in : c.width, c.width, nn::LinearOptions{.init = make_init(activation)}));
    model->add(make_activation(activation));
  }
  model->add(std::make_shared<nn::Linear>(c.width, out, nn::LinearOptions{.init = nn::Init::xavier_uniform()}));
  return model;
}

struct Run {
  std::vector<double> curve;           // curve[i]: mean training loss over steps i + 2 - window .. i + 1
  std::optional<int> steps_to_target;  // first step at which that mean is <= target
  double seconds_to_target = 0;
  double seconds = 0;                  // training time, all steps
  int steps_done = 0;
  bool diverged = false;
  nn::Evaluation test;

  double final_loss() const { return curve.empty() ? std::numeric_limits<double>::quiet_NaN() : curve.back(); }
  double ms_per_step() const { return steps_done > 0 ? 1000 * seconds / steps_done : 0.0; }
};

// Trains one network for c.steps SGD steps (epochs of the training subset, reshuffled each epoch).
Run race(const std::string& activation, std::uint64_t seed, const nn::TensorDataset& train, const nn::TensorDataset& test,
         std::int64_t classes, const Config& c) {
  const auto model = make_model(activation, train.x().shape()[1], classes, seed, c);
  nn::SGD opt(model->named_parameters(), {.lr = c.lr});
  nn::DataLoader loader(train, {.batch_size = c.batch_size, .shuffle = true, .seed = seed});
  Tape& tape = active_tape();
  Run r;
  std::vector<double> losses;
  double sum = 0, elapsed = 0;
  for (std::int64_t epoch = 0; r.steps_done < c.steps && !r.diverged; ++epoch) {
    for (const nn::Batch& b : loader.epoch(epoch)) {
      const auto t0 = std::chrono::steady_clock::now();
      tape.reset();
      const Tensor loss = nn::cross_entropy((*model)(b.x), b.labels);
      loss.backward();
      opt.step();
      opt.zero_grad();
      elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double l = loss.item();
      if (!std::isfinite(l)) {
        r.diverged = true;
        break;
      }
      losses.push_back(l);
      sum += l;
      if (++r.steps_done > c.window) sum -= losses[static_cast<std::size_t>(r.steps_done - c.window - 1)];
      r.curve.push_back(sum / std::min(r.steps_done, c.window));
      if (!r.steps_to_target && r.steps_done >= c.window && r.curve.back() <= c.target) {
        r.steps_to_target = r.steps_done;
        r.seconds_to_target = elapsed;
      }
      if (r.steps_done == c.steps) break;
    }
  }
  tape.reset();
  r.seconds = elapsed;
  r.test = nn::evaluate(*model, test);
  return r;
}

// One activation over all seeds: the median of the steps to target (a run that never reached it
// counts as slower than any that did), and means of the rest.
struct Summary {
  std::string activation;
  std::vector<Run> runs;

  int reached() const {
    return static_cast<int>(std::count_if(runs.begin(), runs.end(), [](const Run& r) { return r.steps_to_target.has_value(); }));
  }
  // The run whose steps to target are the median (the lower middle one for an even count).
  const Run& median() const {
    std::vector<const Run*> sorted;
    for (const Run& r : runs) sorted.push_back(&r);
    std::sort(sorted.begin(), sorted.end(), [](const Run* a, const Run* b) { return key(*a) < key(*b); });
    return *sorted[(sorted.size() - 1) / 2];
  }
  static int key(const Run& r) { return r.steps_to_target.value_or(std::numeric_limits<int>::max()); }
  double mean(double (*f)(const Run&)) const {
    double s = 0;
    for (const Run& r : runs) s += f(r);
    return s / static_cast<double>(runs.size());
  }
  // The loss curve averaged over the seeds (runs that diverged end early: averaged while all last).
  std::vector<double> mean_curve() const {
    std::size_t n = runs.front().curve.size();
    for (const Run& r : runs) n = std::min(n, r.curve.size());
    std::vector<double> out(n, 0.0);
    for (const Run& r : runs) {
      for (std::size_t i = 0; i < n; ++i) out[i] += r.curve[i] / static_cast<double>(runs.size());
    }
    return out;
  }
};

std::filesystem::path with_suffix(const std::filesystem::path& p, const std::string& suffix) {
  std::filesystem::path out = p;
  return out.replace_filename(p.stem().string() + suffix + p.extension().string());
}

int run(const Config& c) {
  const auto start = std::chrono::steady_clock::now();
  set_num_threads(c.threads);
  if (c.window > c.steps) throw ValueError(fmt::format("--window {} is longer than --steps {}", c.window, c.steps));
  for (const std::string& a : c.activations) (void)make_activation(a);  // reject a bad name before any training
  const examples::Split data = examples::load_idx(c.data);
  const nn::TensorDataset train = data.train.slice(0, std::min(c.train_size, data.train.size()));
  const nn::TensorDataset test = data.test.slice(0, std::min(c.test_size, data.test.size()));
  const double steps_per_epoch = std::ceil(static_cast<double>(train.size()) / static_cast<double>(c.batch_size));
  fmt::print("data: {}; using {} training and {} test images\n", data.description, train.size(), test.size());
  fmt::print("network: {} hidden layers of {} units; plain SGD, lr {}, batch {}, {} steps ({:.1f} epochs); seeds {}..{}\n",
             c.depth, c.width, c.lr, c.batch_size, c.steps, c.steps / steps_per_epoch, c.seed, c.seed + c.seeds - 1);
  fmt::print("target: training loss, averaged over the last {} steps, <= {}. Steps, epochs and seconds to target are the\n"
             "median over the seeds [fastest, slowest]; losses and accuracy are means; seconds: training time on this machine\n\n",
             c.window, c.target);

  const std::string header = fmt::format("{:<10} {:<11} {:>7} {:>20} {:>7} {:>8} {:>10} {:>9} {:>8} {:>7}", "activation", "init",
                                         "reached", "steps to target", "epochs", "seconds", "final loss", "test loss", "test acc",
                                         "ms/step");
  fmt::print("{}\n{}\n", header, std::string(header.size(), '-'));
  std::vector<Summary> summaries;
  std::string csv = "activation,init,seed,steps_to_target,epochs_to_target,seconds_to_target,final_train_loss,test_loss,"
                    "test_accuracy,ms_per_step,steps,diverged\n";
  for (const std::string& a : c.activations) {
    Summary s{a, {}};
    for (int k = 0; k < c.seeds; ++k) {
      const std::uint64_t seed = c.seed + static_cast<std::uint64_t>(k);
      const Run& r = s.runs.emplace_back(race(a, seed, train, test, data.outputs, c));
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{}\n", a, init_name(a), seed,
                         r.steps_to_target ? fmt::format("{}", *r.steps_to_target) : "",
                         r.steps_to_target ? fmt::format("{}", *r.steps_to_target / steps_per_epoch) : "",
                         r.steps_to_target ? fmt::format("{}", r.seconds_to_target) : "", r.final_loss(), r.test.loss,
                         r.test.accuracy, r.ms_per_step(), r.steps_done, r.diverged ? 1 : 0);
    }
    const Run& med = s.median();
    auto steps = [](const Run& r) { return r.steps_to_target ? fmt::format("{}", *r.steps_to_target) : std::string("-"); };
    const auto [fastest, slowest] = std::minmax_element(s.runs.begin(), s.runs.end(),
                                                        [](const Run& x, const Run& y) { return Summary::key(x) < Summary::key(y); });
    const std::string to_target = med.steps_to_target ? fmt::format("{} [{}, {}]", steps(med), steps(*fastest), steps(*slowest))
                                  : med.diverged      ? std::string("diverged")
                                                      : std::string("not reached");
    fmt::print("{:<10} {:<11} {:>7} {:>20} {:>7} {:>8} {:>10.4g} {:>9.4g} {:>8.3f} {:>7.2f}\n", a, init_name(a),
               fmt::format("{}/{}", s.reached(), c.seeds), to_target,
               med.steps_to_target ? fmt::format("{:.2f}", *med.steps_to_target / steps_per_epoch) : "-",
               med.steps_to_target ? fmt::format("{:.2f}", med.seconds_to_target) : "-",
               s.mean([](const Run& r) { return r.final_loss(); }), s.mean([](const Run& r) { return r.test.loss; }),
               s.mean([](const Run& r) { return r.test.accuracy; }),
               s.mean([](const Run& r) { return r.ms_per_step(); }));
    summaries.push_back(std::move(s));
  }

  // The order of arrival (by median), then the two claims read off it.
  std::vector<const Summary*> order;
  for (const Summary& s : summaries) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(),
                   [](const Summary* a, const Summary* b) { return Summary::key(a->median()) < Summary::key(b->median()); });
  std::string ranking;
  for (const Summary* s : order) {
    const Run& m = s->median();
    ranking += fmt::format("{}{} ({})", ranking.empty() ? "" : ", ", s->activation,
                           m.steps_to_target ? fmt::format("{}", *m.steps_to_target) : "-");
  }
  fmt::print("\norder of arrival at loss {} (median steps): {}\n", c.target, ranking);
  auto find = [&](const std::string& a) -> const Summary* {
    for (const Summary& s : summaries) {
      if (s.activation == a) return &s;
    }
    return nullptr;
  };
  // A claim "A is faster than B" holds here when A's median needs at most 90% of B's steps; within
  // 10% either way the two are called even (the seeds' spread is usually wider than that).
  auto steps = [](const Summary* s) {
    const Run& m = s->median();
    return m.steps_to_target ? fmt::format("{}", *m.steps_to_target) : std::string("not reached");
  };
  auto versus = [&](const Summary* who, const Summary* other) {
    const double a = Summary::key(who->median()), b = Summary::key(other->median());
    const char* verdict = !who->median().steps_to_target && !other->median().steps_to_target ? "neither reached"
                          : a <= 0.9 * b                                                      ? "faster"
                          : b <= 0.9 * a                                                      ? "slower"
                                                                                              : "even (within 10%)";
    return fmt::format("vs {} ({}): {}", other->activation, steps(other), verdict);
  };
  auto claim = [&](const char* who_said, const std::string& name, std::initializer_list<const char*> others) {
    const Summary* who = find(name);
    if (who == nullptr) return;
    std::string line = fmt::format("{}: {} ({})", who_said, name, steps(who));
    for (const char* o : others) {
      if (const Summary* other = find(o)) line += "; " + versus(who, other);
    }
    fmt::print("{}\n", line);
  };
  claim("lecture notes, relu converges faster", "relu", {"sigmoid", "tanh"});
  claim("Clevert et al., elu learns faster", "elu", {"relu", "leaky_relu"});

  io::write_file_atomically(c.csv, csv);
  std::string curves = "activation,step,mean_train_loss_over_seeds\n";
  for (const Summary& s : summaries) {
    const std::vector<double> m = s.mean_curve();
    for (std::size_t i = 0; i < m.size(); ++i) curves += fmt::format("{},{},{}\n", s.activation, i + 1, m[i]);
  }
  io::write_file_atomically(with_suffix(c.csv, "_loss"), curves);
  fmt::print("\ncsv: {} (one row per activation and seed), {} (loss curves)\n", c.csv, with_suffix(c.csv, "_loss").string());
  if (!c.plot.empty()) {
    examples::Panel p{fmt::format("{} hidden layers of {}, SGD lr {}, mean of {} seeds", c.depth, c.width, c.lr, c.seeds),
                      "SGD step", fmt::format("training loss, mean over the last {} steps", c.window), true, {}};
    for (const Summary& s : summaries) {
      const std::vector<double> m = s.mean_curve();
      examples::Series line{s.activation, {}, {}, "lines"};
      for (std::size_t i = static_cast<std::size_t>(c.window) - 1; i < m.size(); ++i) {
        line.x.push_back(static_cast<double>(i + 1));
        line.y.push_back(m[i]);
      }
      p.series.push_back(std::move(line));
    }
    p.series.push_back({fmt::format("target {}", c.target), {0.0, static_cast<double>(c.steps)}, {c.target, c.target}, "lines dt 2"});
    if (examples::plot_png(c.plot, {p}, 800, 480)) fmt::print("plot: {}\n", c.plot);
  }
  fmt::print("{:.1f} s in all, loading included\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  bool quick = false;
  CLI::App app{"convergence_race: one deep MLP on Fashion-MNIST trained with sigmoid, tanh, ReLU, leaky ReLU, ELU and GELU;\n"
               "steps, epochs and seconds until the training loss reaches a target, final and test loss."};
  app.get_formatter()->column_width(32);
  app.add_option("--data", c.data, "MNIST-format directory (IDX files, gzipped or not)")->capture_default_str();
  app.add_option("--activations", c.activations, "activations to race (sigmoid, tanh, relu, leaky_relu, elu, gelu)")->delimiter(',')->capture_default_str();
  app.add_option("--depth", c.depth, "hidden layers")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--width", c.width, "units per hidden layer")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--steps", c.steps, "SGD steps per activation")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", c.batch_size, "images per batch")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", c.lr, "SGD learning rate, the same for every activation")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--target", c.target, "the training loss to reach (cross-entropy; log(10) = 2.30 is chance)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--window", c.window, "the training loss is averaged over this many last steps, for the curve and the target")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--train-size", c.train_size, "training images used (the first N)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--test-size", c.test_size, "test images used for the final test loss (the first N)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", c.seed, "first seed of the initial weights and the batch order (the same for every activation)")->capture_default_str();
  app.add_option("--seeds", c.seeds, "runs per activation, with seeds seed, seed + 1, ...")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", c.threads, "threads for matrix products")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--csv", c.csv, "where to write the table as CSV (the loss curves go to <name>_loss.csv)")->capture_default_str();
  app.add_option("--plot", c.plot, "loss-vs-step PNG (via gnuplot); empty to skip")->capture_default_str();
  app.add_flag("--quick", quick, "short run for the test suite: 200 steps, 3000 training and 500 test images, 1 seed");
  CLI11_PARSE(app, argc, argv);
  if (quick) {  // options given explicitly win
    if (app.count("--steps") == 0) c.steps = 200;
    if (app.count("--train-size") == 0) c.train_size = 3000;
    if (app.count("--test-size") == 0) c.test_size = 500;
    if (app.count("--seeds") == 0) c.seeds = 1;
  }
  try {
    return run(c);
  } catch (const std::exception& e) {
    fmt::print(stderr, "convergence_race: {}\n", e.what());
    return 1;
  }
}

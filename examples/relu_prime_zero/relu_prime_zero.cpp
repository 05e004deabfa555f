// relu_prime_zero: does the value chosen for relu'(0) change what backpropagation returns? In exact
// arithmetic almost never: a pre-activation is exactly 0 with probability zero. In floating point it
// can be, and then relu'(0) = 0 and relu'(0) = 1 give different gradients. The experiment of Bertoin
// et al., "Numerical influence of ReLU'(0) on backpropagation" (NeurIPS 2021): train an MLP on
// Fashion-MNIST with plain SGD (relu'(0) = 0, the default); at every step compute the same batch's
// gradient a second time with relu'(0) = 1 and compare the first layer's weight gradient bitwise.
// Done in float32 and in float64 (the same initial weights and batches), for several widths and
// depths. The tape's kink-hit count (pre-activations exactly 0 met by the backward sweep) says why
// a gradient differed.
//
// Second part, on tg::Var: relu(x) - relu(-x) = x for every x, so its derivative is 1; backprop
// gives relu'(0) + relu'(0) at x = 0 (Kakade and Lee 2018). Run with --help for the options.
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
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace tg;

struct Config {
  std::string data = io::kFashionMnistDir;
  std::vector<std::int64_t> widths{64, 256, 1024};
  std::int64_t width = 256;            // of the depth sweep
  std::vector<int> depths{1, 2, 4, 8};
  int depth = 2;                       // of the width sweep
  int batches = 40;
  std::int64_t batch_size = 128;
  double lr = 0.05;
  std::uint64_t seed = 1;
  int threads = 1;
  std::string csv = "relu_prime_zero.csv";
  std::string plot = "relu_prime_zero.png";
};

// `depth` hidden layers of `width` units (Linear + ReLU), then a Linear output layer, in `dtype`.
// manual_seed before it: the same seed gives the same initial weights in float32 and float64 (the
// initialiser draws in double and rounds).
std::shared_ptr<nn::Sequential> make_model(int depth, std::int64_t width, Dtype dtype, std::uint64_t seed) {
  nn::manual_seed(seed);
  auto model = std::make_shared<nn::Sequential>();
  std::int64_t in = 784;
  for (int l = 0; l < depth; ++l) {
    model->add(std::make_shared<nn::Linear>(in, width, nn::LinearOptions{.dtype = dtype}));
    model->add(std::make_shared<nn::ReLU>());
    in = width;
  }
  model->add(std::make_shared<nn::Linear>(in, 10, nn::LinearOptions{.init = nn::Init::xavier_uniform(), .dtype = dtype}));
  return model;
}

// One backward sweep over a batch with relu'(0) = at_zero (a SubgradientScope: every ReLU of the
// model is recorded under it). Returns the first layer's weight gradient and the relu kink hits.
struct Backprop {
  Tensor grad;  // owned copy
  std::uint64_t kink_hits = 0;
};
Backprop backprop(nn::Sequential& model, const nn::Batch& b, double at_zero) {
  Tape& tape = active_tape();
  tape.reset();
  tape.reset_kink_hits();
  model.zero_grad();
  SubgradientScope scope(Kink::relu, at_zero);
  nn::cross_entropy(model(b.x), b.labels).backward();
  auto& first = dynamic_cast<nn::Linear&>(model[0]);
  return {first.weight().grad().clone(), tape.kink_hits()[Kink::relu]};
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const auto bytes = static_cast<std::size_t>(a.numel()) * dtype_size(a.dtype());
  const void* pa = a.dtype() == Dtype::f32 ? static_cast<const void*>(a.data<float>()) : a.data<double>();
  const void* pb = b.dtype() == Dtype::f32 ? static_cast<const void*>(b.data<float>()) : b.data<double>();
  return std::memcmp(pa, pb, bytes) == 0;
}

// Elements that differ, and the largest difference relative to the largest gradient element.
void compare(const Tensor& a, const Tensor& b, std::int64_t& differing, double& relative) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double scale = 0, diff = 0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    if (va[i] != vb[i]) ++differing;
    scale = std::max(scale, std::abs(va[i]));
    diff = std::max(diff, std::abs(va[i] - vb[i]));
  }
  relative = std::max(relative, scale > 0 ? diff / scale : 0.0);
}

struct Row {
  std::string sweep;  // "width" or "depth"
  Dtype dtype = Dtype::f32;
  std::int64_t width = 0;
  int depth = 0;
  int batches = 0;
  int differ = 0;                // batches whose first-layer gradient differs bitwise
  int with_hits = 0;             // batches whose sweep met a relu at its kink
  int differ_without_hits = 0;   // should stay 0: a difference needs a kink hit
  std::uint64_t kink_hits = 0;   // over all batches (one sweep each)
  std::uint64_t preacts = 0;     // hidden pre-activations the sweeps went through, over all batches
  std::int64_t elements = 0;     // differing gradient elements, over all batches
  double max_relative = 0;       // largest |g0 - g1| / max |g0| over the batches
  double final_loss = 0;
};

// Trains with plain SGD and relu'(0) = 0 over c.batches batches; at each step also backpropagates
// with relu'(0) = 1 at the same weights and compares.
Row measure(const std::string& sweep, int depth, std::int64_t width, Dtype dtype, const nn::TensorDataset& data,
            const Config& c) {
  const auto model_ptr = make_model(depth, width, dtype, c.seed);
  nn::Sequential& model = *model_ptr;
  nn::SGD opt(model.named_parameters(), {.lr = c.lr});
  nn::DataLoader loader(data, {.batch_size = c.batch_size, .shuffle = true, .seed = c.seed});
  Row r{sweep, dtype, width, depth};
  for (const nn::Batch& b : loader.epoch(0)) {
    if (r.batches == c.batches) break;
    const Backprop one = backprop(model, b, 1.0);
    const Backprop zero = backprop(model, b, 0.0);  // its gradients stay in the parameters for the step
    const bool same = bitwise_equal(zero.grad, one.grad);
    ++r.batches;
    r.kink_hits += zero.kink_hits;
    r.preacts += static_cast<std::uint64_t>(b.size() * width * depth);
    if (zero.kink_hits > 0) ++r.with_hits;
    if (!same) {
      ++r.differ;
      if (zero.kink_hits == 0) ++r.differ_without_hits;
      compare(zero.grad, one.grad, r.elements, r.max_relative);
    }
    opt.step();
  }
  // The loss after training, on the epoch's first batch (a sanity check that SGD did train).
  Tape& tape = active_tape();
  tape.reset();
  {
    NoGrad no_grad;
    const nn::Batch& b = loader.batch(0);
    r.final_loss = nn::cross_entropy(model(b.x), b.labels).item();
  }
  tape.reset();
  return r;
}

// relu(x) - relu(-x) = x: d/dx at x for a given relu'(0), by backprop on tg::Var.
double identity_slope(double x, double at_zero) {
  Tape& tape = active_tape();
  tape.reset();
  const Var v = x;
  const Var f = relu(v, {.at_zero = at_zero}) - relu(-v, {.at_zero = at_zero});
  const double d = gradient(f, v)[0];
  tape.reset();
  return d;
}

int run(const Config& c) {
  const auto start = std::chrono::steady_clock::now();
  set_num_threads(c.threads);
  const examples::Split split = examples::load_idx(c.data);
  const std::int64_t n = std::min<std::int64_t>(split.train.size(), c.batches * c.batch_size);
  // The same images in both precisions (float64 holds every float32 exactly).
  const nn::TensorDataset data32 = split.train.slice(0, n);
  const Tensor x64 = Tensor::zeros(data32.x().shape(), Dtype::f64).copy_(data32.x());
  const nn::TensorDataset data64(x64, std::vector<std::int64_t>(data32.labels().begin(), data32.labels().end()));
  fmt::print("data: {}; the first {} training images\n", split.description, n);
  fmt::print("each row: plain SGD (lr {}, relu'(0) = 0) over {} batches of {}; at every step the batch is backpropagated\n"
             "with relu'(0) = 0 and with relu'(0) = 1 and the first layer's weight gradients compared bitwise; seed {}\n\n",
             c.lr, c.batches, c.batch_size, c.seed);

  const std::string header = fmt::format("{:<7} {:>6} {:>5} {:>7} {:>7} {:>8} {:>9} {:>10} {:>9} {:>10} {:>9} {:>9}",
                                         "dtype", "width", "depth", "batches", "differ", "differ %", "pre-acts", "kink hits",
                                         "hit bat.", "elem.diff", "max rel.", "end loss");
  fmt::print("{}\n{}\n", header, std::string(header.size(), '-'));
  std::vector<Row> rows;
  std::string csv = "sweep,dtype,width,depth,batches,differ,differ_fraction,pre_activations,batches_with_kink_hits,kink_hits,"
                    "differing_elements,max_relative_difference,differ_without_kink_hits,final_loss\n";
  auto one = [&](const std::string& sweep, int depth, std::int64_t width) {
    for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
      const Row r = measure(sweep, depth, width, dtype, dtype == Dtype::f32 ? data32 : data64, c);
      const double fraction = r.batches > 0 ? static_cast<double>(r.differ) / r.batches : 0.0;
      fmt::print("{:<7} {:>6} {:>5} {:>7} {:>7} {:>8.1f} {:>9.2e} {:>10} {:>9} {:>10} {:>9.2e} {:>9.4f}\n",
                 dtype == Dtype::f32 ? "float32" : "float64", r.width, r.depth, r.batches, r.differ, 100 * fraction,
                 static_cast<double>(r.preacts), r.kink_hits, r.with_hits, r.elements, r.max_relative, r.final_loss);
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", sweep, dtype_name(dtype), r.width, r.depth, r.batches,
                         r.differ, fraction, r.preacts, r.with_hits, r.kink_hits, r.elements, r.max_relative, r.differ_without_hits,
                         r.final_loss);
      rows.push_back(r);
    }
  };
  for (std::int64_t w : c.widths) one("width", c.depth, w);
  for (int d : c.depths) one("depth", d, c.width);

  // The totals per precision: how often, and whether the kink hits account for every difference.
  fmt::print("\n");
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    int batches = 0, differ = 0, with_hits = 0, unexplained = 0;
    std::uint64_t preacts = 0, hits = 0;
    for (const Row& r : rows) {
      if (r.dtype != dtype) continue;
      batches += r.batches;
      differ += r.differ;
      with_hits += r.with_hits;
      unexplained += r.differ_without_hits;
      preacts += r.preacts;
      hits += r.kink_hits;
    }
    fmt::print("{}: the gradient differed in {} of {} batches; {} of {:.3g} pre-activations were exactly 0 (kink hits), in {} "
               "batches; differences without a kink hit: {}\n",
               dtype == Dtype::f32 ? "float32" : "float64", differ, batches, hits, static_cast<double>(preacts), with_hits,
               unexplained);
  }

  // relu(x) - relu(-x) = x.
  fmt::print("\nrelu(x) - relu(-x) = x, so d/dx = 1 everywhere; backprop on tg::Var gives at x = 0 relu'(0) + relu'(0):\n");
  const std::string header2 = fmt::format("{:>9} {:>12} {:>12} {:>12} {:>6}", "relu'(0)", "d/dx at -1", "d/dx at 0", "d/dx at 1", "true");
  fmt::print("{}\n{}\n", header2, std::string(header2.size(), '-'));
  std::string identity_csv = "relu_prime_zero,slope_at_minus_1,slope_at_0,slope_at_1\n";
  for (double s : {0.0, 0.5, 1.0}) {
    const double left = identity_slope(-1.0, s), at = identity_slope(0.0, s), right = identity_slope(1.0, s);
    fmt::print("{:>9} {:>12} {:>12} {:>12} {:>6}\n", s, left, at, right, 1);
    identity_csv += fmt::format("{},{},{},{}\n", s, left, at, right);
  }

  io::write_file_atomically(c.csv, csv + "\n" + identity_csv);
  fmt::print("\ncsv: {}\n", c.csv);
  if (!c.plot.empty()) {
    auto series = [&](const std::string& sweep, Dtype dtype) {
      examples::Series s{dtype == Dtype::f32 ? "float32" : "float64", {}, {}, "linespoints"};
      for (const Row& r : rows) {
        if (r.sweep != sweep || r.dtype != dtype) continue;
        s.x.push_back(sweep == "width" ? static_cast<double>(r.width) : r.depth);
        s.y.push_back(r.batches > 0 ? 100.0 * r.differ / r.batches : 0.0);
      }
      return s;
    };
    // For scale: the abstract of Bertoin et al. reports differences "around half of the time" in 32 bits
    // (their networks and data, not these): a dashed line at 50% across each panel's range.
    auto reference = [&](const examples::Series& s) {
      const auto [lo, hi] = std::minmax_element(s.x.begin(), s.x.end());
      return examples::Series{"Bertoin et al.: about half, 32 bits", {*lo, *hi}, {50.0, 50.0}, "lines dt 2"};
    };
    const examples::Series w32 = series("width", Dtype::f32), d32 = series("depth", Dtype::f32);
    const std::vector<examples::Panel> panels{
        {fmt::format("{} hidden layer(s), width varies", c.depth), "units per hidden layer", "% of batches where the gradient differs",
         false, {w32, series("width", Dtype::f64), reference(w32)}},
        {fmt::format("{} units per layer, depth varies", c.width), "hidden layers", "% of batches where the gradient differs", false,
         {d32, series("depth", Dtype::f64), reference(d32)}}};
    if (examples::plot_png(c.plot, panels, 1000, 420)) fmt::print("plot: {}\n", c.plot);
  }
  fmt::print("{:.1f} s in all, loading included\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  bool quick = false;
  CLI::App app{"relu_prime_zero: how often relu'(0) = 0 and relu'(0) = 1 give different gradients for an MLP on Fashion-MNIST,\n"
               "in float32 and float64, as width and depth grow (Bertoin et al. 2021); and relu(x) - relu(-x) = x, whose\n"
               "backprop at 0 is 2 relu'(0) (Kakade and Lee 2018)."};
  app.get_formatter()->column_width(32);
  app.add_option("--data", c.data, "MNIST-format directory (IDX files, gzipped or not)")->capture_default_str();
  app.add_option("--widths", c.widths, "hidden-layer widths of the width sweep, e.g. --widths 64,256,1024")->delimiter(',')->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--depth", c.depth, "hidden layers of the width sweep")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--depths", c.depths, "hidden-layer counts of the depth sweep, e.g. --depths 1,2,4,8")->delimiter(',')->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--width", c.width, "units per hidden layer of the depth sweep")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batches", c.batches, "SGD steps per network (each batch is backpropagated twice)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", c.batch_size, "images per batch")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", c.lr, "SGD learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", c.seed, "seed of the initial weights and the batch order")->capture_default_str();
  app.add_option("--threads", c.threads, "threads for matrix products")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--csv", c.csv, "where to write the tables as CSV")->capture_default_str();
  app.add_option("--plot", c.plot, "PNG of the fraction of differing batches vs width and depth (via gnuplot); empty to skip")->capture_default_str();
  app.add_flag("--quick", quick, "short run for the test suite: widths 32,128, depths 1,3 at width 64, 10 batches");
  CLI11_PARSE(app, argc, argv);
  if (quick) {  // options given explicitly win
    if (app.count("--widths") == 0) c.widths = {32, 128};
    if (app.count("--depths") == 0) c.depths = {1, 3};
    if (app.count("--width") == 0) c.width = 64;
    if (app.count("--batches") == 0) c.batches = 10;
  }
  try {
    return run(c);
  } catch (const std::exception& e) {
    fmt::print(stderr, "relu_prime_zero: {}\n", e.what());
    return 1;
  }
}

// tapegrad_bench_train: one training step (forward, loss, backward, SGD update, zero-grad) of four
// multilayer perceptrons in float32 on a fixed in-memory batch, with
//
//   <net>/tapegrad/<n>t   tapegrad's public nn API, as a user writes it: nn::Sequential of
//                         nn::Linear and nn::ReLU / nn::Tanh, nn::mse_loss or nn::cross_entropy,
//                         backward(), nn::SGD step() and zero_grad(), a tape reset per step
//   <net>/hand/<n>t       the floor: the same math in plain loops around tg::detail::gemm, the
//                         backward written out by hand (no tape), same GEMM, same threads
//   <net>/torch/<n>t      LibTorch: torch::nn::Sequential, torch::optim::SGD
//                         (-DTAPEGRAD_BENCH_TORCH=ON, train_torch.cpp)
//
// at n = 1 and 2 threads, followed by a summary: median (and fastest) wall time per step, the
// tapegrad/LibTorch ratios and the targets of issue 4 (docs/benchmarks.md, "Training step").
// Every tool starts from the same weights and batch; before timing, each one's loss at step 1 and
// at step kCheckSteps is compared with the floor's and a benchmark that disagrees is skipped.
#include "train_bench.hpp"
#include "bench_main.hpp"

#include <algorithm>
#include <autodiff/autodiff.hpp>
#include <autodiff/gemm.hpp>
#include <autodiff/vmath.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nn/nn.hpp>
#include <optional>
#include <random>
#include <span>

namespace tgbench::train {

// ---- The networks and their data ----------------------------------------------------------------

std::vector<Net> networks() {
  return {
      {"N1_tiny", 2, {16, 16}, 1, Act::tanh, Loss::mse, 32},
      {"N2_mnist", 784, {256, 128}, 10, Act::relu, Loss::cross_entropy, 64},
      {"N3_wide", 1024, {1024, 1024}, 1024, Act::relu, Loss::mse, 256},
      {"N4_deep", 64, std::vector<std::int64_t>(32, 64), 1, Act::relu, Loss::mse, 64},
  };
}

namespace {

std::vector<std::int64_t> widths_of(const Net& n) {
  std::vector<std::int64_t> w{n.inputs};
  w.insert(w.end(), n.hidden.begin(), n.hidden.end());
  w.push_back(n.outputs);
  return w;
}

constexpr std::uint64_t kWeightSeed = 1000;  // layer l: kWeightSeed + l

/// The model as a user builds it: Linear layers with the activation between them. Tanh networks
/// use the Xavier initialisation nn::LinearOptions recommends for them, ReLU ones the default He
/// initialisation; fixed seeds, so every call gives the same weights.
std::shared_ptr<tg::nn::Sequential> build_model(const Net& n) {
  auto model = std::make_shared<tg::nn::Sequential>();
  const std::vector<std::int64_t> w = widths_of(n);
  const std::size_t layers = w.size() - 1;
  for (std::size_t l = 0; l < layers; ++l) {
    tg::nn::LinearOptions o;
    o.seed = kWeightSeed + l;
    if (n.act == Act::tanh) o.init = tg::nn::Init::xavier_uniform(tg::nn::tanh_gain());
    model->add(std::make_shared<tg::nn::Linear>(w[l], w[l + 1], o));
    if (l + 1 < layers) {
      if (n.act == Act::relu) model->add(std::make_shared<tg::nn::ReLU>());
      else model->add(std::make_shared<tg::nn::Tanh>());
    }
  }
  return model;
}

// ---- The floor: the same step by hand ------------------------------------------------------------

/// Forward and backward written out over float buffers, products through tg::detail::gemm (the
/// GEMM tapegrad's matmul calls, at the same thread count), tanh and exp from autodiff/vmath.hpp
/// (the vectorisable float versions tapegrad's rules use). Per layer l: Z = A W^T + b, A' = f(Z)
/// (in place; none after the last layer); backward dW = dZ^T A, db = column sums of dZ,
/// dA = dZ W, dZ_prev = dA * f'(Z_prev), then W -= lr dW, b -= lr db. Gradients are written
/// (beta = 0), so there is nothing to zero.
class HandNet {
 public:
  explicit HandNet(const Problem& p)
      : p_(p), widths_(p.widths), w_(p.weights), b_(p.biases), batch_(p.net.batch) {
    const std::size_t layers = widths_.size() - 1;
    h_.resize(layers);
    g_.resize(layers);
    dw_.resize(layers);
    db_.resize(layers);
    for (std::size_t l = 0; l < layers; ++l) {
      const auto out = static_cast<std::size_t>(widths_[l + 1]);
      h_[l].resize(static_cast<std::size_t>(batch_) * out);
      g_[l].resize(h_[l].size());
      dw_[l].resize(w_[l].size());
      db_[l].resize(out);
    }
  }

  double step() {
    const std::size_t layers = widths_.size() - 1;
    const auto lr = static_cast<float>(kLearningRate);
    // Forward.
    const float* a = p_.x.data();
    for (std::size_t l = 0; l < layers; ++l) {
      const std::int64_t in = widths_[l];
      const std::int64_t out = widths_[l + 1];
      float* z = h_[l].data();
      tg::detail::gemm(false, true, batch_, out, in, a, w_[l].data(), 0.0f, z);
      const float* bias = b_[l].data();
      const bool last = l + 1 == layers;
      for (std::int64_t r = 0; r < batch_; ++r) {
        float* row = z + r * out;
        if (last) {
          for (std::int64_t j = 0; j < out; ++j) row[j] += bias[j];
        } else if (p_.net.act == Act::relu) {
          for (std::int64_t j = 0; j < out; ++j) row[j] = std::max(row[j] + bias[j], 0.0f);
        } else {
          for (std::int64_t j = 0; j < out; ++j) row[j] = tg::math::tanh(row[j] + bias[j]);
        }
      }
      a = z;
    }
    // Loss and its gradient with respect to the last layer's output.
    const double loss = p_.net.loss == Loss::mse ? mse(h_.back(), g_.back())
                                                 : cross_entropy(h_.back(), g_.back());
    // Backward and update, last layer first.
    for (std::size_t l = layers; l-- > 0;) {
      const std::int64_t in = widths_[l];
      const std::int64_t out = widths_[l + 1];
      const float* a_prev = l == 0 ? p_.x.data() : h_[l - 1].data();
      const float* dz = g_[l].data();
      tg::detail::gemm(true, false, out, in, batch_, dz, a_prev, 0.0f, dw_[l].data());
      float* db = db_[l].data();
      std::fill(db, db + out, 0.0f);
      for (std::int64_t r = 0; r < batch_; ++r) {
        const float* row = dz + r * out;
        for (std::int64_t j = 0; j < out; ++j) db[j] += row[j];
      }
      if (l > 0) {
        float* da = g_[l - 1].data();
        tg::detail::gemm(false, false, batch_, in, out, dz, w_[l].data(), 0.0f, da);
        const float* h = h_[l - 1].data();
        const std::int64_t n = batch_ * in;
        if (p_.net.act == Act::relu) {
          for (std::int64_t i = 0; i < n; ++i) da[i] = tg::math::select(h[i] > 0.0f, da[i], 0.0f);
        } else {
          for (std::int64_t i = 0; i < n; ++i) da[i] *= 1.0f - h[i] * h[i];
        }
      }
      float* w = w_[l].data();
      const float* dw = dw_[l].data();
      const std::size_t nw = w_[l].size();
      for (std::size_t i = 0; i < nw; ++i) w[i] -= lr * dw[i];
      float* b = b_[l].data();
      for (std::int64_t j = 0; j < out; ++j) b[j] -= lr * db[j];
    }
    return loss;
  }

 private:
  double mse(const std::vector<float>& pred, std::vector<float>& grad) const {
    const std::size_t n = pred.size();
    const auto scale = static_cast<float>(2.0 / static_cast<double>(n));
    double acc = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float d = pred[i] - p_.y[i];
      acc += static_cast<double>(d) * static_cast<double>(d);
      grad[i] = scale * d;
    }
    return acc / static_cast<double>(n);
  }

  double cross_entropy(const std::vector<float>& logits, std::vector<float>& grad) const {
    const std::int64_t c = widths_.back();
    const auto inv = static_cast<float>(1.0 / static_cast<double>(batch_));
    double total = 0;
    for (std::int64_t r = 0; r < batch_; ++r) {
      const float* z = logits.data() + r * c;
      float* g = grad.data() + r * c;
      const float m = *std::max_element(z, z + c);
      float s = 0;
      for (std::int64_t j = 0; j < c; ++j) {
        g[j] = tg::math::exp(z[j] - m);
        s += g[j];
      }
      const auto label = p_.labels[static_cast<std::size_t>(r)];
      total += static_cast<double>(m) + std::log(static_cast<double>(s)) -
               static_cast<double>(z[label]);
      const float k = inv / s;
      for (std::int64_t j = 0; j < c; ++j) g[j] *= k;
      g[label] -= inv;
    }
    return total / static_cast<double>(batch_);
  }

  const Problem& p_;
  std::vector<std::int64_t> widths_;
  std::vector<std::vector<float>> w_, b_;
  std::int64_t batch_;
  std::vector<std::vector<float>> h_, g_, dw_, db_;
};

Problem make_problem(const Net& n) {
  Problem p;
  p.net = n;
  p.widths = widths_of(n);
  const std::shared_ptr<tg::nn::Sequential> model = build_model(n);
  for (std::size_t i = 0; i < model->size(); ++i) {
    auto* lin = dynamic_cast<tg::nn::Linear*>(&(*model)[i]);
    if (lin == nullptr) continue;
    const tg::Tensor& w = lin->weight();
    const tg::Tensor& b = lin->bias();
    p.weights.emplace_back(w.data<float>(), w.data<float>() + w.numel());
    p.biases.emplace_back(b.data<float>(), b.data<float>() + b.numel());
  }
  std::mt19937_64 gen(42 + static_cast<std::uint64_t>(n.inputs) * 7 +
                      static_cast<std::uint64_t>(n.hidden.size()));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  p.x.resize(static_cast<std::size_t>(n.batch * n.inputs));
  for (float& v : p.x) v = normal(gen);
  if (n.loss == Loss::mse) {
    p.y.resize(static_cast<std::size_t>(n.batch * n.outputs));
    for (float& v : p.y) v = normal(gen);
  } else {
    std::uniform_int_distribution<std::int64_t> label(0, n.outputs - 1);
    p.labels.resize(static_cast<std::size_t>(n.batch));
    for (std::int64_t& v : p.labels) v = label(gen);
  }
  const int threads = tg::num_threads();
  tg::set_num_threads(1);
  HandNet hand(p);
  p.first_loss = hand.step();
  for (int s = 2; s <= kCheckSteps; ++s) p.later_loss = hand.step();
  tg::set_num_threads(threads);
  return p;
}

std::vector<Problem>& problems() {
  static std::vector<Problem> all = [] {
    std::vector<Problem> v;
    for (const Net& n : networks()) v.push_back(make_problem(n));
    return v;
  }();
  return all;
}

// ---- The loss check's record, for the summary ----------------------------------------------------

struct LossRecord {
  double first = 0, later = 0;
  bool ok = true;
};
std::mutex g_records_mutex;
std::map<std::string, LossRecord> g_records;  // by "<net>/<tool>/<n>t"

}  // namespace

const Problem& problem(std::size_t i) { return problems().at(i); }
std::size_t problem_count() { return problems().size(); }

void set_gemm_threads(int n) { tg::set_num_threads(n); }

bool check_losses(benchmark::State& state, const Problem& p, std::string_view tool, int threads,
                  double first, double later) {
  const auto off = [](double v, double ref, double tol) {
    return !std::isfinite(v) || std::abs(v - ref) > tol * std::max(1.0, std::abs(ref));
  };
  const bool ok = !off(first, p.first_loss, kLossTolerance) &&
                  !off(later, p.later_loss, kLaterLossTolerance);
  {
    std::lock_guard lock(g_records_mutex);
    g_records[bench_name(p.net, tool, threads)] = {first, later, ok};
  }
  if (!ok) {
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  "%s at %d thread(s): loss %.9g at step 1 and %.9g at step %d; the hand-written "
                  "floor has %.9g and %.9g",
                  std::string(tool).c_str(), threads, first, later, kCheckSteps, p.first_loss,
                  p.later_loss);
    state.SkipWithError(msg);
  }
  return ok;
}

std::string bench_name(const Net& n, std::string_view tool, int threads) {
  return std::string(n.name) + "/" + std::string(tool) + "/" + std::to_string(threads) + "t";
}

benchmark::internal::Benchmark* configure(benchmark::internal::Benchmark* b) {
  return b->UseRealTime()
      ->MeasureProcessCPUTime()
      ->Unit(benchmark::kMillisecond)
      ->ComputeStatistics("min", [](const std::vector<double>& v) {
        return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
      });
}

namespace {

// ---- The benchmarks --------------------------------------------------------------------------------

void tapegrad_step(benchmark::State& state, std::size_t i, int threads) {
  const Problem& p = problem(i);
  set_gemm_threads(threads);
  // What a user writes: a model, an optimizer, the batch as tensors, and the step.
  const std::shared_ptr<tg::nn::Sequential> model = build_model(p.net);
  tg::nn::SGD optimizer(model->named_parameters(), {.lr = kLearningRate});
  const tg::Tensor x =
      tg::Tensor::from_values(std::span<const float>(p.x), tg::Shape{p.net.batch, p.net.inputs});
  const tg::Tensor y = p.net.loss == Loss::mse
                           ? tg::Tensor::from_values(std::span<const float>(p.y),
                                                     tg::Shape{p.net.batch, p.net.outputs})
                           : tg::Tensor();
  tg::Tape& tape = tg::active_tape();
  auto step = [&] {
    tape.reset();
    const tg::Tensor out = (*model)(x);
    const tg::Tensor loss = p.net.loss == Loss::mse ? tg::nn::mse_loss(out, y)
                                                    : tg::nn::cross_entropy(out, p.labels);
    loss.backward();
    optimizer.step();
    optimizer.zero_grad();
    return loss.item();
  };
  const double first = step();
  double later = first;
  for (int s = 2; s <= kCheckSteps; ++s) later = step();
  if (!check_losses(state, p, "tapegrad", threads, first, later)) return;
  for (auto _ : state) benchmark::DoNotOptimize(step());
  tape.reset();
}

void hand_step(benchmark::State& state, std::size_t i, int threads) {
  const Problem& p = problem(i);
  set_gemm_threads(threads);
  HandNet net(p);
  const double first = net.step();
  double later = first;
  for (int s = 2; s <= kCheckSteps; ++s) later = net.step();
  if (!check_losses(state, p, "hand", threads, first, later)) return;
  for (auto _ : state) benchmark::DoNotOptimize(net.step());
}

void register_tapegrad() {
  for (std::size_t i = 0; i < problem_count(); ++i) {
    const Net& n = problem(i).net;
    for (const int t : kThreadCounts) {
      configure(benchmark::RegisterBenchmark(bench_name(n, "tapegrad", t).c_str(), tapegrad_step,
                                             i, t));
      configure(benchmark::RegisterBenchmark(bench_name(n, "hand", t).c_str(), hand_step, i, t));
    }
  }
}

// ---- Summary --------------------------------------------------------------------------------------

/// tapegrad / LibTorch targets of issue 4 (median step time), by network and thread count.
std::optional<double> target(std::string_view net, int threads) {
  if (threads == 1) {
    if (net == "N1_tiny") return 0.1;
    if (net == "N2_mnist") return 0.85;
    if (net == "N3_wide") return 1.0;
    if (net == "N4_deep") return 0.4;
  } else if (threads == 2) {
    if (net == "N2_mnist" || net == "N3_wide") return 0.6;
  }
  return std::nullopt;
}

/// The console output, then per network and thread count the median and fastest wall time per
/// step of each tool (from --benchmark_repetitions), tapegrad/LibTorch, the targets, and the loss
/// check.
class SummaryReporter : public RecordingReporter {
 public:
  using RecordingReporter::RecordingReporter;

  void Finalize() override {
    std::FILE* out = stdout;
    std::fflush(out);
    std::fprintf(out, "\nGEMM backend: %s\n", tg::gemm_backend().c_str());
    std::fprintf(out,
                 "Training step, wall ms per step: median of the repetitions (fastest in "
                 "brackets)\n");
    std::fprintf(out, "%-9s %3s %19s %19s %19s %8s %8s %8s %7s  %s\n", "network", "thr",
                 "tapegrad", "torch", "hand", "tg/torch", "(fast)", "tg/hand", "target", "");
    for (const Net& n : networks()) {
      for (const int t : kThreadCounts) {
        const auto tg_ms = time(bench_name(n, "tapegrad", t));
        const auto torch_ms = time(bench_name(n, "torch", t));
        const auto hand_ms = time(bench_name(n, "hand", t));
        std::fprintf(out, "%-9s %3d %19s %19s %19s", std::string(n.name).c_str(), t,
                     cell(tg_ms).c_str(), cell(torch_ms).c_str(), cell(hand_ms).c_str());
        const auto ratio = [](const std::optional<Time>& a, const std::optional<Time>& b,
                              bool fastest) -> std::optional<double> {
          if (!a || !b) return std::nullopt;
          return fastest ? a->min / b->min : a->median / b->median;
        };
        const auto r = ratio(tg_ms, torch_ms, false);
        std::fprintf(out, " %8s %8s %8s", num(r).c_str(), num(ratio(tg_ms, torch_ms, true)).c_str(),
                     num(ratio(tg_ms, hand_ms, false)).c_str());
        if (const auto tgt = target(n.name, t)) {
          std::fprintf(out, "  <=%4.2f  %s", *tgt,
                       !r ? "(no torch figure)" : *r <= *tgt ? "met" : "MISSED");
        }
        std::fprintf(out, "\n");
      }
    }
    std::fprintf(out,
                 "\nProcess CPU ms per step (all threads, spinning included), median; "
                 "tapegrad/LibTorch\n");
    std::fprintf(out, "%-9s %3s %10s %10s %10s %8s\n", "network", "thr", "tapegrad", "torch",
                 "hand", "tg/torch");
    for (const Net& n : networks()) {
      for (const int t : kThreadCounts) {
        const auto tg_ms = cpu(bench_name(n, "tapegrad", t));
        const auto torch_ms = cpu(bench_name(n, "torch", t));
        const auto hand_ms = cpu(bench_name(n, "hand", t));
        std::fprintf(out, "%-9s %3d %10s %10s %10s %8s\n", std::string(n.name).c_str(), t,
                     ms4(tg_ms).c_str(), ms4(torch_ms).c_str(), ms4(hand_ms).c_str(),
                     num(tg_ms && torch_ms ? std::optional<double>(*tg_ms / *torch_ms)
                                           : std::nullopt)
                         .c_str());
      }
    }
    std::fprintf(out, "\nLoss check (step 1 and step %d; the floor's in the first column)\n",
                 kCheckSteps);
    for (std::size_t i = 0; i < problem_count(); ++i) {
      const Problem& p = problem(i);
      std::fprintf(out, "%-9s hand-ref %.7g / %.7g", std::string(p.net.name).c_str(), p.first_loss,
                   p.later_loss);
      std::lock_guard lock(g_records_mutex);
      for (const auto& [name, rec] : g_records) {
        if (!name.starts_with(std::string(p.net.name) + "/")) continue;
        std::fprintf(out, "  %s %.7g / %.7g%s", name.substr(p.net.name.size() + 1).c_str(),
                     rec.first, rec.later, rec.ok ? "" : " MISMATCH");
      }
      std::fprintf(out, "\n");
    }
    for (const auto& [name, e] : records()) {
      if (!e.error.empty()) std::fprintf(out, "ERROR %s: %s\n", name.c_str(), e.error.c_str());
    }
    std::fflush(out);
  }

 private:
  struct Time {
    double median, min;
  };

  /// Wall ms per step: median and fastest repetition; without repetitions the mean of the runs
  /// for both.
  std::optional<Time> time(const std::string& name) const {
    const RunRecord* r = record(name);
    if (r == nullptr) return std::nullopt;
    const std::optional<double> median = r->real("median");
    if (!median) return std::nullopt;
    return Time{*median * 1e3, r->real("min").value_or(*median) * 1e3};
  }
  /// Median process CPU ms per step; without repetitions the mean of the runs.
  std::optional<double> cpu(const std::string& name) const {
    const RunRecord* r = record(name);
    if (r == nullptr) return std::nullopt;
    const std::optional<double> s = r->cpu("median");
    if (!s) return std::nullopt;
    return *s * 1e3;
  }
  static std::string cell(const std::optional<Time>& t) {
    if (!t) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g (%.4g)", t->median, t->min);
    return buf;
  }
  static std::string ms4(const std::optional<double>& v) {
    if (!v) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", *v);
    return buf;
  }
  static std::string num(const std::optional<double>& v) {
    if (!v) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", *v);
    return buf;
  }
};

}  // namespace
}  // namespace tgbench::train

int main(int argc, char** argv) {
  return tgbench::benchmark_main<tgbench::train::SummaryReporter>(argc, argv, [] {
    tgbench::train::register_tapegrad();
#ifdef TAPEGRAD_BENCH_HAVE_TORCH
    tgbench::train::register_torch();
#endif
  });
}

// Shared pieces of the training-step benchmark (issue 4): the four networks, the fixed batch and
// initial weights every tool starts from, the first-loss check, and the thread setting.
// train_bench.cpp runs tapegrad (through its public nn API) and a hand-written floor (plain loops
// around tg::detail::gemm, backward written out by hand); train_torch.cpp, built with
// -DTAPEGRAD_BENCH_TORCH=ON, runs the same steps with LibTorch, so that one run prints all three.
//
// This header uses no tapegrad or torch type: the torch translation unit includes it too.
#pragma once

#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tgbench::train {

enum class Act { relu, tanh };
enum class Loss { mse, cross_entropy };

/// A multilayer perceptron: inputs -> hidden... -> outputs, the activation after every hidden
/// layer (none after the last), trained on one fixed batch.
struct Net {
  std::string_view name;
  std::int64_t inputs;
  std::vector<std::int64_t> hidden;
  std::int64_t outputs;
  Act act;
  Loss loss;
  std::int64_t batch;
};

/// N1..N4 of issue 4.
std::vector<Net> networks();

inline constexpr double kLearningRate = 0.01;
/// The thread counts every network runs at.
inline constexpr std::array<int, 2> kThreadCounts = {1, 2};
/// Steps after which the losses are compared a second time (after backward and SGD have run).
inline constexpr int kCheckSteps = 5;
/// Relative tolerance of the loss comparison (float32 sums in different orders).
inline constexpr double kLossTolerance = 1e-4;
inline constexpr double kLaterLossTolerance = 1e-3;

/// Everything a tool starts from: the network, its initial parameters (layer l's weight
/// [out, in] row-major and bias [out], taken from tapegrad's nn::Linear initialisation with fixed
/// seeds), the batch (x [batch, inputs], targets y [batch, outputs] for MSE or class labels for
/// cross-entropy, seeded), and the hand-written floor's losses at step 1 and step kCheckSteps.
struct Problem {
  Net net;
  std::vector<std::int64_t> widths;  // inputs, hidden..., outputs
  std::vector<std::vector<float>> weights;
  std::vector<std::vector<float>> biases;
  std::vector<float> x;
  std::vector<float> y;
  std::vector<std::int64_t> labels;
  double first_loss = 0;
  double later_loss = 0;
};

/// Problem i of networks(), built once.
const Problem& problem(std::size_t i);
std::size_t problem_count();

/// Sets the GEMM threads (tg::set_num_threads, which also sets OpenBLAS's: one OpenBLAS serves
/// the whole process, LibTorch's products included).
void set_gemm_threads(int n);

/// Compares a tool's losses at step 1 and step kCheckSteps with the floor's; on a mismatch skips
/// the benchmark with an error naming both. Records the figures for the summary. Returns false
/// when skipped.
bool check_losses(benchmark::State& state, const Problem& p, std::string_view tool, int threads,
                  double first, double later);

/// "N2_mnist/torch/2t".
std::string bench_name(const Net& n, std::string_view tool, int threads);

/// Registers a benchmark with the statistics and units all of them use.
benchmark::internal::Benchmark* configure(benchmark::internal::Benchmark* b);

#ifdef TAPEGRAD_BENCH_HAVE_TORCH
/// LibTorch's versions (train_torch.cpp).
void register_torch();
#endif

}  // namespace tgbench::train

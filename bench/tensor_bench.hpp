// Shared pieces of the tensor benchmark (issue 3): the workloads' sizes, the names they are
// registered under, and timing helpers. tensor_bench.cpp runs them with tapegrad (and the raw GEMM
// calls, a plain copy loop); tensor_torch.cpp, built with -DTAPEGRAD_BENCH_TORCH=ON, runs the
// same workloads with LibTorch, so that one run prints both.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace tgbench::tensor {

/// matmul: y = a b with a m x k, b k x n; forward and backward (3 GEMMs, 6 m n k flops).
struct MatmulSize {
  std::int64_t m, k, n;
};
inline constexpr std::array<MatmulSize, 2> kMatmulSizes = {{{64, 784, 256}, {1024, 1024, 1024}}};
inline std::string size_name(const MatmulSize& s) {
  return std::to_string(s.m) + "x" + std::to_string(s.k) + "x" + std::to_string(s.n);
}
inline double matmul_flops(const MatmulSize& s) {
  return 6.0 * static_cast<double>(s.m) * static_cast<double>(s.k) * static_cast<double>(s.n);
}

/// Activations: forward and backward on 10^7 floats.
inline constexpr std::int64_t kActivationN = 10'000'000;
struct Activation {
  std::string_view name;
  /// Bytes per element the backward must move: the incoming gradient and the gradient written
  /// (8), plus the input or output the derivative reads (4 each). The forward moves 8 (x in,
  /// y out). A plain copy moves 8.
  int backward_bytes;
};
inline constexpr std::array<Activation, 5> kActivations = {
    {{"relu", 12}, {"leaky_relu", 12}, {"elu", 16}, {"tanh", 12}, {"sigmoid", 12}}};
inline constexpr int kForwardBytes = 8;
inline constexpr int kCopyBytes = 8;

/// The chain of issue 3: 1,000 elementwise operations on a one-element tensor (v * 0.999,
/// v + 0.0005, relu(v), repeated), then backward.
inline constexpr int kChainOps = 1'000;
inline constexpr double kChainScale = 0.999;
inline constexpr double kChainShift = 0.0005;

/// A training step of a 784-128-10 perceptron on a batch of 64.
inline constexpr std::int64_t kBatch = 64, kInputs = 784, kHidden = 128, kOutputs = 10;

/// This thread's CPU time in seconds. Activation workloads are timed with it (as manual time):
/// the machines these run on are shared, and CPU time leaves out the time other processes hold
/// the core.
inline double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

/// Sets the counters every activation run reports, from the summed forward and backward seconds.
inline void report_activation(benchmark::State& state, const Activation& a, double fw_seconds,
                              double bw_seconds) {
  const double n = static_cast<double>(kActivationN) * static_cast<double>(state.iterations());
  state.counters["fw GB/s"] = kForwardBytes * n / fw_seconds * 1e-9;
  state.counters["bw GB/s"] = a.backward_bytes * n / bw_seconds * 1e-9;
  state.counters["GB/s"] =
      (kForwardBytes + a.backward_bytes) * n / (fw_seconds + bw_seconds) * 1e-9;
}

/// Adds the fastest and the slowest repetition to the statistics of --benchmark_repetitions: the
/// summary reads times from "min" (load on a shared machine only ever adds time) and counters
/// (GB/s, heap allocations) from "max".
inline benchmark::internal::Benchmark* with_extremes(benchmark::internal::Benchmark* b) {
  return b
      ->ComputeStatistics("min",
                          [](const std::vector<double>& v) {
                            return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
                          })
      ->ComputeStatistics("max", [](const std::vector<double>& v) {
        return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
      });
}

#ifdef TAPEGRAD_BENCH_HAVE_TORCH
/// LibTorch's versions of the workloads (tensor_torch.cpp).
void register_torch();
#endif

}  // namespace tgbench::tensor

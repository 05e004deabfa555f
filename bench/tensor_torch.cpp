// LibTorch's side of tapegrad_bench_tensor (built with -DTAPEGRAD_BENCH_TORCH=ON): the matmul,
// activation and chain workloads of tensor_bench.hpp written with torch's autograd, timed the
// same way, so that one run prints both. Its own translation unit: torch's headers take long to
// compile, and the default build does not include them.
#include <torch/torch.h>

#include <string>

#include "tensor_bench.hpp"

namespace tgbench::tensor {
namespace {

void matmul_torch(benchmark::State& state, MatmulSize s) {
  torch::manual_seed(1);
  const torch::Tensor a = torch::randn({s.m, s.k}).requires_grad_();
  const torch::Tensor b = torch::randn({s.k, s.n}).requires_grad_();
  auto step = [&] { torch::matmul(a, b).sum().backward(); };
  step();
  for (auto _ : state) step();
  state.counters["GFLOP/s"] =
      benchmark::Counter(matmul_flops(s) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

torch::Tensor apply_activation(std::string_view name, const torch::Tensor& h) {
  if (name == "relu") return torch::relu(h);
  if (name == "leaky_relu") return torch::leaky_relu(h, 0.01);
  if (name == "elu") return torch::elu(h, 1.0);
  if (name == "tanh") return torch::tanh(h);
  return torch::sigmoid(h);
}

/// As tapegrad's: h = x * 1 (a recorded tensor), forward y = f(h) timed, then the backward of f
/// alone: torch::autograd::grad of y with respect to h, for a given incoming gradient.
void activation_torch(benchmark::State& state, Activation act) {
  torch::manual_seed(3);
  const torch::Tensor x = (torch::rand({kActivationN}) * 8 - 4).requires_grad_();
  const torch::Tensor seed = torch::rand({kActivationN}) * 2 - 1;
  double fw = 0.0;
  double bw = 0.0;
  auto step = [&] {
    const torch::Tensor h = x * 1.0;
    const double t0 = thread_cpu_seconds();
    const torch::Tensor y = apply_activation(act.name, h);
    const double t1 = thread_cpu_seconds();
    const auto g = torch::autograd::grad({y}, {h}, {seed});
    const double t2 = thread_cpu_seconds();
    benchmark::DoNotOptimize(g[0].data_ptr());
    return std::pair{t1 - t0, t2 - t1};
  };
  step();
  for (auto _ : state) {
    const auto [f_s, b_s] = step();
    fw += f_s;
    bw += b_s;
    state.SetIterationTime(f_s + b_s);
  }
  report_activation(state, act, fw, bw);
}

void chain_torch(benchmark::State& state) {
  const torch::Tensor p = torch::full({1}, 0.5).requires_grad_();
  auto step = [&] {
    torch::Tensor v = p;
    for (int k = 0; k < kChainOps; ++k) {
      switch (k % 3) {
        case 0:
          v = v * kChainScale;
          break;
        case 1:
          v = v + kChainShift;
          break;
        default:
          v = torch::relu(v);
          break;
      }
    }
    v.backward();
  };
  step();
  for (auto _ : state) step();
  state.counters["ns/op"] =
      benchmark::Counter(1e-9 * kChainOps, benchmark::Counter::kIsIterationInvariantRate |
                                               benchmark::Counter::kInvert);
}

}  // namespace

void register_torch() {
  torch::set_num_threads(1);  // tapegrad runs single-threaded by default; compare like with like
  for (const MatmulSize& s : kMatmulSizes) {
    with_extremes(
        benchmark::RegisterBenchmark(("matmul/torch/" + size_name(s)).c_str(), matmul_torch, s))
        ->Unit(benchmark::kMicrosecond);
  }
  for (const Activation& a : kActivations) {
    with_extremes(benchmark::RegisterBenchmark(("act/" + std::string(a.name) + "/torch").c_str(),
                                               activation_torch, a))
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  with_extremes(benchmark::RegisterBenchmark("chain/torch", chain_torch))
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace tgbench::tensor

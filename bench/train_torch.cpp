// LibTorch's side of tapegrad_bench_train (built with -DTAPEGRAD_BENCH_TORCH=ON): the training step
// of train_bench.hpp's networks written as a LibTorch user writes it (torch::nn::Sequential of
// Linear and ReLU / Tanh, torch::mse_loss or cross_entropy, backward(), torch::optim::SGD step()
// and zero_grad()), from the same weights and batch. Its own translation unit: torch's headers
// take long to compile, and the default build does not include them.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "train_bench.hpp"

namespace tgbench::train {
namespace {

/// torch::set_num_threads sets LibTorch's intra-op (OpenMP) threads; its matrix products go to
/// the process's OpenBLAS, whose threads set_gemm_threads sets (torch does not).
void set_threads(int n) {
  set_gemm_threads(n);
  torch::set_num_threads(n);
}

void torch_step(benchmark::State& state, std::size_t i, int threads) {
  const Problem& p = problem(i);
  set_threads(threads);
  torch::nn::Sequential model;
  std::vector<torch::nn::Linear> linears;
  const std::size_t layers = p.widths.size() - 1;
  for (std::size_t l = 0; l < layers; ++l) {
    linears.emplace_back(p.widths[l], p.widths[l + 1]);
    model->push_back(linears.back());
    if (l + 1 < layers) {
      if (p.net.act == Act::relu) model->push_back(torch::nn::ReLU());
      else model->push_back(torch::nn::Tanh());
    }
  }
  {
    torch::NoGradGuard no_grad;
    for (std::size_t l = 0; l < layers; ++l) {
      auto* w = const_cast<float*>(p.weights[l].data());
      auto* b = const_cast<float*>(p.biases[l].data());
      linears[l]->weight.copy_(torch::from_blob(w, {p.widths[l + 1], p.widths[l]}));
      linears[l]->bias.copy_(torch::from_blob(b, {p.widths[l + 1]}));
    }
  }
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(kLearningRate));
  const torch::Tensor x =
      torch::from_blob(const_cast<float*>(p.x.data()), {p.net.batch, p.net.inputs}).clone();
  torch::Tensor y;
  torch::Tensor labels;
  if (p.net.loss == Loss::mse) {
    y = torch::from_blob(const_cast<float*>(p.y.data()), {p.net.batch, p.net.outputs}).clone();
  } else {
    labels = torch::from_blob(const_cast<std::int64_t*>(p.labels.data()), {p.net.batch},
                              torch::kLong)
                 .clone();
  }
  auto step = [&] {
    const torch::Tensor out = model->forward(x);
    const torch::Tensor loss = p.net.loss == Loss::mse
                                   ? torch::mse_loss(out, y)
                                   : torch::nn::functional::cross_entropy(out, labels);
    loss.backward();
    optimizer.step();
    optimizer.zero_grad();
    return loss.item<double>();
  };
  const double first = step();
  double later = first;
  for (int s = 2; s <= kCheckSteps; ++s) later = step();
  if (!check_losses(state, p, "torch", threads, first, later)) return;
  for (auto _ : state) benchmark::DoNotOptimize(step());
}

}  // namespace

void register_torch() {
  for (std::size_t i = 0; i < problem_count(); ++i) {
    const Net& n = problem(i).net;
    for (const int t : kThreadCounts) {
      configure(benchmark::RegisterBenchmark(bench_name(n, "torch", t).c_str(), torch_step, i, t));
    }
  }
}

}  // namespace tgbench::train

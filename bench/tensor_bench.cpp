// tapegrad_bench_tensor: the speed targets of issue 3, measured with Google Benchmark, followed by
// a summary of each target and whether it is met (docs/benchmarks.md, "Tensors").
//
//   matmul/{tape,raw}/MxKxN     matmul forward + backward through the tape, and the three GEMM
//                               calls it makes, called directly (CPU time; GFLOP/s)
//   gemm/<kernel>/MxKxN         one sgemm with each GEMM kernel this CPU runs (the backend choice)
//   copy                        a plain copy loop over 10^7 floats (GB/s, the yardstick)
//   act/<name>/tapegrad         activation forward + backward on 10^7 floats through the tape
//   chain/tapegrad              1,000 elementwise operations on a one-element tensor + backward
//   train_step/tapegrad         a steady record/backward/update/reset loop: heap allocations
//   .../torch                   the same workloads in LibTorch (-DTAPEGRAD_BENCH_TORCH=ON)
//
// Heap allocations are counted by replacing the global operator new/delete in this program and by
// interposing malloc and friends (so that allocations inside OpenBLAS, Eigen or fmt count too).
#include "tensor_bench.hpp"
#include "bench_main.hpp"

#include <algorithm>
#include <atomic>
#include <autodiff/gemm.hpp>
#include <autodiff/tensor_ops.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <optional>
#include <vector>

// ---- Heap counting ------------------------------------------------------------------------------

namespace {
std::atomic<std::uint64_t> g_operator_new{0};
std::atomic<std::uint64_t> g_malloc{0};

void* counted_new(std::size_t n) {
  g_operator_new.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* counted_new(std::size_t n, std::align_val_t al) {
  g_operator_new.fetch_add(1, std::memory_order_relaxed);
  const auto a = static_cast<std::size_t>(al);
  if (void* p = std::aligned_alloc(a, (std::max<std::size_t>(n, 1) + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_new(n); }
void* operator new[](std::size_t n) { return counted_new(n); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_new(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_new(n, a); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

// glibc's allocator under its internal names; the definitions below take the public ones for the
// whole process, shared libraries included.
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t n) noexcept {
  g_malloc.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t count, std::size_t n) noexcept {
  g_malloc.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(count, n);
}
void* realloc(void* p, std::size_t n) noexcept {
  g_malloc.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(std::size_t a, std::size_t n) noexcept {
  g_malloc.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) noexcept {
  g_malloc.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) noexcept {
  g_malloc.fetch_add(1, std::memory_order_relaxed);
  void* p = __libc_memalign(a, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void free(void* p) noexcept { __libc_free(p); }
}

namespace tgbench::tensor {
namespace {

struct HeapCount {
  std::uint64_t news = g_operator_new.load(std::memory_order_relaxed);
  std::uint64_t mallocs = g_malloc.load(std::memory_order_relaxed);
};

// ---- matmul
// --------------------------------------------------------------------------------------

void matmul_tape(benchmark::State& state, MatmulSize s) {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  tg::Tensor a = tg::Tensor::randn(tg::Shape{s.m, s.k}, 1).requires_grad();
  tg::Tensor b = tg::Tensor::randn(tg::Shape{s.k, s.n}, 2).requires_grad();
  auto step = [&] {
    tg::sum(tg::matmul(a, b)).backward();
    tape.reset();
  };
  step();  // the arena and the gradients' buffers are made here
  for (auto _ : state) step();
  state.counters["GFLOP/s"] =
      benchmark::Counter(matmul_flops(s) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// The three calls tg::matmul makes: y = a b; ga += gy b^T; gb += a^T gy.
void matmul_raw(benchmark::State& state, MatmulSize s) {
  const tg::Tensor a = tg::Tensor::randn(tg::Shape{s.m, s.k}, 1);
  const tg::Tensor b = tg::Tensor::randn(tg::Shape{s.k, s.n}, 2);
  std::vector<float> y(static_cast<std::size_t>(s.m * s.n));
  std::vector<float> gy(y.size(), 1.0f);
  std::vector<float> ga(static_cast<std::size_t>(s.m * s.k));
  std::vector<float> gb(static_cast<std::size_t>(s.k * s.n));
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  for (auto _ : state) {
    tg::detail::gemm(false, false, s.m, s.n, s.k, pa, pb, 0.0f, y.data());
    tg::detail::gemm(false, true, s.m, s.k, s.n, gy.data(), pb, 1.0f, ga.data());
    tg::detail::gemm(true, false, s.k, s.n, s.m, pa, gy.data(), 1.0f, gb.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(matmul_flops(s) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// One sgemm (no transposes) with a given kernel.
void gemm_kernel(benchmark::State& state, tg::detail::GemmKernel kernel, MatmulSize s) {
  const tg::Tensor a = tg::Tensor::randn(tg::Shape{s.m, s.k}, 1);
  const tg::Tensor b = tg::Tensor::randn(tg::Shape{s.k, s.n}, 2);
  std::vector<float> c(static_cast<std::size_t>(s.m * s.n));
  for (auto _ : state) {
    tg::detail::gemm_with(kernel, false, false, s.m, s.n, s.k, a.data<float>(), b.data<float>(),
                          0.0f, c.data());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(s.m) * static_cast<double>(s.k) * static_cast<double>(s.n) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(tg::detail::gemm_kernel_name(kernel)));
}

// ---- Activations --------------------------------------------------------------------------------

/// A plain copy loop, the yardstick of the activations' GB/s.
void copy_loop(benchmark::State& state) {
  std::vector<float> src(static_cast<std::size_t>(kActivationN), 1.5f);
  std::vector<float> dst(src.size());
  double seconds = 0.0;
  for (auto _ : state) {
    const double t0 = thread_cpu_seconds();
    const float* s = src.data();
    float* d = dst.data();
    for (std::int64_t i = 0; i < kActivationN; ++i) d[i] = s[i];
    benchmark::DoNotOptimize(d);
    benchmark::ClobberMemory();
    const double t = thread_cpu_seconds() - t0;
    seconds += t;
    state.SetIterationTime(t);
  }
  state.counters["GB/s"] = kCopyBytes * static_cast<double>(kActivationN) *
                           static_cast<double>(state.iterations()) / seconds * 1e-9;
}

/// y = f(h) on 10^7 floats, h a recorded tensor (as in a network), and its backward, through the
/// tape. Timed: the forward call, and the backward closure of f alone (between two closures that
/// read the clock, recorded around it); the incoming gradient is written before the timing starts.
template <class F>
void activation(benchmark::State& state, Activation act, F f) {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const tg::Tensor x =
      tg::Tensor::rand(tg::Shape{kActivationN}, 3, tg::Dtype::f32, -4.0, 4.0).requires_grad();
  const tg::Tensor seed = tg::Tensor::rand(tg::Shape{kActivationN}, 4, tg::Dtype::f32, -1.0, 1.0);
  double fw = 0.0;
  double bw = 0.0;
  auto step = [&] {
    double bw_start = 0.0;
    double bw_end = 0.0;
    const tg::Tensor h = x * 1.0;
    tape.record_backward([&bw_end](tg::Tape&) { bw_end = thread_cpu_seconds(); });
    const double t0 = thread_cpu_seconds();
    const tg::Tensor y = f(h);
    const double t1 = thread_cpu_seconds();
    tape.record_backward([&bw_start, &seed, y](tg::Tape& t) {
      std::memcpy(y.grad_target<float>(t), seed.data<float>(),
                  sizeof(float) * static_cast<std::size_t>(kActivationN));
      bw_start = thread_cpu_seconds();
    });
    tape.sweep(static_cast<tg::Index>(tape.size() - 1));
    tape.reset();
    return std::pair{t1 - t0, bw_end - bw_start};
  };
  step();  // first touch of the arena's pages
  for (auto _ : state) {
    const auto [f_s, b_s] = step();
    fw += f_s;
    bw += b_s;
    state.SetIterationTime(f_s + b_s);
  }
  report_activation(state, act, fw, bw);
}

tg::Tensor apply_activation(std::string_view name, const tg::Tensor& h) {
  if (name == "relu") return tg::relu(h);
  if (name == "leaky_relu") return tg::leaky_relu(h, 0.01);
  if (name == "elu") return tg::elu(h, 1.0);
  if (name == "tanh") return tg::tanh(h);
  return tg::sigmoid(h);
}

// ---- Per-operation overhead and steady-state allocation
// -------------------------------------------

void chain(benchmark::State& state) {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  tg::Tensor p = tg::Tensor::full(tg::Shape{1}, 0.5).requires_grad();
  auto step = [&] {
    tg::Tensor v = p;
    for (int k = 0; k < kChainOps; ++k) {
      switch (k % 3) {
        case 0:
          v = v * kChainScale;
          break;
        case 1:
          v = v + kChainShift;
          break;
        default:
          v = tg::relu(v);
          break;
      }
    }
    v.backward();
    tape.reset();
  };
  step();
  const HeapCount before;
  for (auto _ : state) step();
  const HeapCount after;
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["ns/op"] =
      benchmark::Counter(1e-9 * kChainOps, benchmark::Counter::kIsIterationInvariantRate |
                                               benchmark::Counter::kInvert);
  state.counters["heap/iter"] = static_cast<double>(after.mallocs - before.mallocs) / iterations;
}

void train_step(benchmark::State& state) {
  tg::Tape tape;
  tg::TapeScope scope(tape);
  const tg::Tensor x = tg::Tensor::randn(tg::Shape{kBatch, kInputs}, 5);
  const tg::Tensor target = tg::Tensor::randn(tg::Shape{kBatch, kOutputs}, 6);
  std::vector<tg::Tensor> params = {
      tg::Tensor::randn(tg::Shape{kInputs, kHidden}, 7, tg::Dtype::f32, 0.0, 0.05).requires_grad(),
      tg::Tensor::zeros(tg::Shape{kHidden}).requires_grad(),
      tg::Tensor::randn(tg::Shape{kHidden, kOutputs}, 8, tg::Dtype::f32, 0.0, 0.1).requires_grad(),
      tg::Tensor::zeros(tg::Shape{kOutputs}).requires_grad()};
  constexpr float lr = 1e-3f;
  auto step = [&] {
    const tg::Tensor h = tg::relu(tg::matmul(x, params[0]) + params[1]);
    const tg::Tensor d = tg::matmul(h, params[2]) + params[3] - target;
    tg::mean(d * d).backward();
    for (tg::Tensor& p : params) {
      float* w = p.data<float>();
      const float* g = p.grad().data<float>();
      for (std::int64_t i = 0; i < p.numel(); ++i) w[i] -= lr * g[i];
      p.zero_grad();
    }
    tape.reset();
  };
  for (int i = 0; i < 3; ++i) step();
  const HeapCount before;
  for (auto _ : state) step();
  const HeapCount after;
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["new/iter"] = static_cast<double>(after.news - before.news) / iterations;
  state.counters["heap/iter"] = static_cast<double>(after.mallocs - before.mallocs) / iterations;
}

void register_tapegrad() {
  for (const MatmulSize& s : kMatmulSizes) {
    const std::string n = size_name(s);
    with_extremes(benchmark::RegisterBenchmark(("matmul/tape/" + n).c_str(), matmul_tape, s))
        ->Unit(benchmark::kMicrosecond);
    with_extremes(benchmark::RegisterBenchmark(("matmul/raw/" + n).c_str(), matmul_raw, s))
        ->Unit(benchmark::kMicrosecond);
  }
  for (const MatmulSize& s : kMatmulSizes) {
    for (auto k : {tg::detail::GemmKernel::openblas, tg::detail::GemmKernel::eigen_generic,
                   tg::detail::GemmKernel::eigen_avx2, tg::detail::GemmKernel::eigen_avx512}) {
      if (!tg::detail::gemm_kernel_available(k)) continue;
      with_extremes(
          benchmark::RegisterBenchmark(
              ("gemm/" + std::string(tg::detail::gemm_kernel_name(k)) + "/" + size_name(s)).c_str(),
              gemm_kernel, k, s))
          ->Unit(benchmark::kMicrosecond);
    }
  }
  with_extremes(benchmark::RegisterBenchmark("copy", copy_loop))
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  for (const Activation& a : kActivations) {
    with_extremes(benchmark::RegisterBenchmark(("act/" + std::string(a.name) + "/tapegrad").c_str(),
                                               [a](benchmark::State& state) {
                                                 activation(state, a, [a](const tg::Tensor& h) {
                                                   return apply_activation(a.name, h);
                                                 });
                                               }))
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  with_extremes(benchmark::RegisterBenchmark("chain/tapegrad", chain))
      ->Unit(benchmark::kMicrosecond);
  with_extremes(benchmark::RegisterBenchmark("train_step/tapegrad", train_step))
      ->Unit(benchmark::kMicrosecond);
}

// ---- Summary
// ------------------------------------------------------------------------------------------

constexpr double kMatmulTarget = 1.10;      // tape / raw
constexpr double kActivationTarget = 0.70;  // activation GB/s / copy GB/s
constexpr double kChainTargetNs = 100.0;    // per operation

/// The console output, then each target with the figures behind it: CPU times (the fastest
/// repetition with --benchmark_repetitions, else the mean), the activations' GB/s from their
/// manual timing (the best repetition), heap allocations per step (the worst).
class SummaryReporter : public RecordingReporter {
 public:
  using RecordingReporter::RecordingReporter;

  void Finalize() override {
    std::FILE* out = stdout;
    std::fflush(out);
    std::fprintf(out, "\nGEMM backend: %s, %d thread(s)\n", tg::gemm_backend().c_str(),
                 tg::num_threads());
    std::fprintf(out, "Targets (issue 3)\n");
    for (const MatmulSize& s : kMatmulSizes) {
      const std::string n = size_name(s);
      const auto tape = seconds("matmul/tape/" + n);
      const auto raw = seconds("matmul/raw/" + n);
      if (!tape || !raw) continue;
      const double r = *tape / *raw;
      std::fprintf(out, "  matmul %-16s tape/raw <= %.2f: %.3f (%.0f vs %.0f us)  %s", n.c_str(),
                   kMatmulTarget, r, *tape * 1e6, *raw * 1e6,
                   r <= kMatmulTarget ? "met" : "MISSED");
      if (const auto t = seconds("matmul/torch/" + n))
        std::fprintf(out, "   [torch %.0f us]", *t * 1e6);
      std::fprintf(out, "\n");
    }
    const auto copy = counter("copy", "GB/s");
    for (const Activation& a : kActivations) {
      const auto gbs = counter("act/" + std::string(a.name) + "/tapegrad", "GB/s");
      if (!gbs || !copy) continue;
      const double r = *gbs / *copy;
      std::fprintf(out, "  %-11s fw+bw GB/s >= %.0f%% of copy (%.1f): %.1f = %.0f%%  %s",
                   std::string(a.name).c_str(), 100 * kActivationTarget, *copy, *gbs, 100 * r,
                   r >= kActivationTarget ? "met" : "MISSED");
      if (const auto t = counter("act/" + std::string(a.name) + "/torch", "GB/s"))
        std::fprintf(out, "   [torch %.1f GB/s]", *t);
      std::fprintf(out, "\n");
    }
    if (const auto t = seconds("chain/tapegrad")) {
      const double per_op = *t / kChainOps * 1e9;
      std::fprintf(out, "  chain       ns per operation <= %.0f: %.1f  %s", kChainTargetNs, per_op,
                   per_op <= kChainTargetNs ? "met" : "MISSED");
      if (const auto tt = seconds("chain/torch"))
        std::fprintf(out, "   [torch %.0f ns]", *tt / kChainOps * 1e9);
      std::fprintf(out, "\n");
    }
    if (const auto heap = counter("train_step/tapegrad", "heap/iter")) {
      std::fprintf(out, "  train_step  heap allocations per step after the first = 0: %.3f  %s\n",
                   *heap, *heap == 0.0 ? "met" : "MISSED");
    }
    std::fflush(out);
  }

 private:
  /// CPU seconds per iteration: the fastest repetition, else the mean of the runs.
  std::optional<double> seconds(const std::string& name) const {
    const RunRecord* r = record(name);
    return r == nullptr ? std::nullopt : r->cpu("min");
  }
  /// A counter: its largest value over the repetitions, else the mean of the runs.
  std::optional<double> counter(const std::string& name, const std::string& c) const {
    const RunRecord* r = record(name);
    return r == nullptr ? std::nullopt : r->counter(c, "max");
  }
};

}  // namespace
}  // namespace tgbench::tensor

int main(int argc, char** argv) {
  return tgbench::benchmark_main<tgbench::tensor::SummaryReporter>(argc, argv, [] {
    tgbench::tensor::register_tapegrad();
#ifdef TAPEGRAD_BENCH_HAVE_TORCH
    tgbench::tensor::register_torch();
#endif
  });
}

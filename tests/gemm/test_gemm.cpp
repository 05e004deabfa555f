// The GEMM backends (gemm.hpp): every kernel this CPU runs agrees with a naive triple loop for every
// transpose combination, single-threaded and with 2 threads; matmul through the tape gives the same
// gradients with either backend and thread count; the choice of backend follows its rule for other
// machines too (AVX-512 with OPENBLAS_CORETYPE=Haswell), and TAPEGRAD_GEMM overrides it.
#include <autodiff/gemm.hpp>
#include <autodiff/tensor_ops.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

using tg::detail::GemmKernel;

namespace {

const std::vector<GemmKernel> kAllKernels = {GemmKernel::openblas, GemmKernel::eigen_generic,
                                             GemmKernel::eigen_avx2, GemmKernel::eigen_avx512};

std::vector<GemmKernel> available_kernels() {
  std::vector<GemmKernel> out;
  for (GemmKernel k : kAllKernels) {
    if (tg::detail::gemm_kernel_available(k)) out.push_back(k);
  }
  return out;
}

template <class T>
std::vector<T> random_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(u(gen));
  return v;
}

/// C = op(A) op(B) + beta C in double, A stored m x k (k x m when transposed), B k x n (n x k).
template <class T>
std::vector<double> naive(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
                          const std::vector<T>& a, const std::vector<T>& b, double beta,
                          const std::vector<T>& c) {
  std::vector<double> out(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (std::int64_t p = 0; p < k; ++p) {
        const double x = a[static_cast<std::size_t>(ta ? p * m + i : i * k + p)];
        const double y = b[static_cast<std::size_t>(tb ? j * k + p : p * n + j)];
        s += x * y;
      }
      const auto o = static_cast<std::size_t>(i * n + j);
      out[o] = s + (beta == 0.0 ? 0.0 : beta * static_cast<double>(c[o]));
    }
  }
  return out;
}

/// Runs one product with `kernel` and compares it with the naive one: relative to the size of
/// the terms (sum of |a||b|), so that float rounding in long sums does not fail it.
template <class T>
void check_product(GemmKernel kernel, bool ta, bool tb, std::int64_t m, std::int64_t n,
                   std::int64_t k, T beta) {
  INFO(fmt::format("{} {}{} m={} n={} k={} beta={} {}", tg::detail::gemm_kernel_name(kernel),
                   ta ? "T" : "N", tb ? "T" : "N", m, n, k, static_cast<double>(beta),
                   sizeof(T) == 4 ? "float" : "double"));
  const auto a = random_values<T>(static_cast<std::size_t>(m * k), 1);
  const auto b = random_values<T>(static_cast<std::size_t>(k * n), 2);
  auto c = random_values<T>(static_cast<std::size_t>(m * n), 3);
  if (beta == T(0)) {
    // beta = 0 must not read C: NaN there must not show.
    for (T& x : c) x = std::numeric_limits<T>::quiet_NaN();
  }
  const std::vector<double> expected = naive(ta, tb, m, n, k, a, b, static_cast<double>(beta), c);
  tg::detail::gemm_with(kernel, ta, tb, m, n, k, a.data(), b.data(), beta, c.data());
  const double eps = std::numeric_limits<T>::epsilon();
  for (std::size_t o = 0; o < c.size(); ++o) {
    const double bound = 4.0 * eps * (static_cast<double>(k) + 2.0);  // |a|, |b|, |c| <= 1
    if (!(std::abs(static_cast<double>(c[o]) - expected[o]) <= bound)) {
      FAIL(fmt::format("element {}: got {}, expected {}", o, static_cast<double>(c[o]), expected[o]));
    }
  }
}

/// Shapes: tiny, odd (edges of every micro-kernel tile), tall, wide, and large enough to be split
/// between threads by rows or by columns, into parts that do not divide evenly.
struct Dims {
  std::int64_t m, n, k;
};
const std::vector<Dims> kDims = {{1, 1, 1},     {3, 5, 7},      {17, 33, 9},  {64, 10, 128},
                                 {2, 70, 65},   {96, 130, 200}, {65, 33, 130}, {33, 65, 131},
                                 {257, 3, 400}, {3, 257, 400}};

template <class T>
void check_all_kernels() {
  for (GemmKernel kernel : available_kernels()) {
    for (const Dims& d : kDims) {
      for (int t = 0; t < 4; ++t) {
        for (T beta : {T(0), T(1), T(0.5)}) {
          check_product<T>(kernel, (t & 1) != 0, (t & 2) != 0, d.m, d.n, d.k, beta);
        }
      }
    }
  }
}

/// Sets the thread count for a scope.
class Threads {
 public:
  explicit Threads(int n) : previous_(tg::num_threads()) { tg::set_num_threads(n); }
  ~Threads() { tg::set_num_threads(previous_); }
  Threads(const Threads&) = delete;
  Threads& operator=(const Threads&) = delete;

 private:
  int previous_;
};

/// Selects a kernel for a scope.
class Kernel {
 public:
  explicit Kernel(GemmKernel k) : previous_(tg::detail::gemm_kernel()) {
    tg::detail::set_gemm_kernel(k);
  }
  ~Kernel() { tg::detail::set_gemm_kernel(previous_); }
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

 private:
  GemmKernel previous_;
};

}  // namespace

TEST_CASE("gemm: OpenBLAS and the generic Eigen kernel are available everywhere", "[gemm]") {
  CHECK(tg::detail::gemm_kernel_available(GemmKernel::openblas));
  CHECK(tg::detail::gemm_kernel_available(GemmKernel::eigen_generic));
  // A kernel the CPU cannot run is not offered.
  const tg::detail::CpuFeatures cpu = tg::detail::cpu_features();
  if (!cpu.avx512) CHECK_FALSE(tg::detail::gemm_kernel_available(GemmKernel::eigen_avx512));
  if (!cpu.avx2_fma) CHECK_FALSE(tg::detail::gemm_kernel_available(GemmKernel::eigen_avx2));
}

TEST_CASE("gemm: every kernel agrees with a naive product, all transposes, float", "[gemm]") {
  check_all_kernels<float>();
}

TEST_CASE("gemm: every kernel agrees with a naive product, all transposes, double", "[gemm]") {
  check_all_kernels<double>();
}

TEST_CASE("gemm: every kernel agrees with a naive product at 2 threads", "[gemm][threads]") {
  const Threads two(2);
  REQUIRE(tg::num_threads() == 2);
  check_all_kernels<float>();
  check_all_kernels<double>();
}

TEST_CASE("gemm: an empty inner dimension gives beta C", "[gemm]") {
  for (GemmKernel kernel : available_kernels()) {
    std::vector<float> c = {1.0f, 2.0f, 3.0f, 4.0f};
    tg::detail::gemm_with(kernel, false, false, 2, 2, 0, nullptr, nullptr, 0.5f, c.data());
    CHECK(c == std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f});
  }
}

TEST_CASE("gemm: matmul through the tape gives the same gradients with every kernel and 2 threads",
          "[gemm][threads]") {
  // A two-layer product with recorded intermediates (whose gradient buffers are written with
  // beta = 0), every transpose combination of the second product.
  tg::Tensor x = tg::Tensor::randn(tg::Shape{48, 96}, 11).requires_grad();
  tg::Tensor w = tg::Tensor::randn(tg::Shape{96, 80}, 12).requires_grad();
  for (int t = 0; t < 4; ++t) {
    const bool ta = (t & 1) != 0;
    const bool tb = (t & 2) != 0;
    // ta: y = h^T op(v), op(v) 48 x 30;  otherwise y = v op(h), v 30 x rows of op(h).
    const tg::Shape vs = ta ? (tb ? tg::Shape{30, 48} : tg::Shape{48, 30})
                            : (tb ? tg::Shape{30, 80} : tg::Shape{30, 48});
    tg::Tensor v = tg::Tensor::randn(vs, 13).requires_grad();
    std::vector<std::vector<double>> reference;
    for (GemmKernel kernel : available_kernels()) {
      for (int threads : {1, 2}) {
        INFO(fmt::format("{} with {} thread(s), transposes {} {}", tg::detail::gemm_kernel_name(kernel),
                         threads, ta, tb));
        const Kernel use(kernel);
        const Threads nt(threads);
        x.zero_grad();
        w.zero_grad();
        v.zero_grad();
        tg::Tape tape;
        tg::TapeScope scope(tape);
        const tg::Tensor h = tg::matmul(x, w);  // 48 x 80
        const tg::Tensor y = ta ? tg::matmul(h, v, true, tb) : tg::matmul(v, h, false, tb);
        tg::sum(y * y).backward();
        std::vector<std::vector<double>> grads = {x.grad().to_vector(), w.grad().to_vector(),
                                                  v.grad().to_vector()};
        if (reference.empty()) {
          reference = grads;
          continue;
        }
        // Float sums of different order: equal up to rounding relative to the gradient's size
        // (single elements may be cancellations of much larger terms).
        for (std::size_t g = 0; g < grads.size(); ++g) {
          double scale = 0.0;
          for (double r : reference[g]) scale = std::max(scale, std::abs(r));
          for (std::size_t i = 0; i < grads[g].size(); ++i) {
            REQUIRE(std::abs(grads[g][i] - reference[g][i]) <= 1e-5 * scale);
          }
        }
      }
    }
  }
}

TEST_CASE("gemm: the threads setting rejects n < 1 and reads back", "[gemm][threads]") {
  CHECK_THROWS_AS(tg::set_num_threads(0), tg::ValueError);
  CHECK_THROWS_WITH(tg::set_num_threads(-3), Catch::Contains("at least 1 thread"));
  const Threads three(3);
  CHECK(tg::num_threads() == 3);
}

TEST_CASE("gemm: the backend choice, for this and other machines", "[gemm][choice]") {
  using tg::detail::choose_gemm_kernel;
  using tg::detail::CpuFeatures;
  const CpuFeatures avx512{true, true};
  const CpuFeatures avx2{true, false};
  const CpuFeatures sse{false, false};
  const bool have512 = tg::detail::gemm_kernel_compiled(GemmKernel::eigen_avx512);
  const bool have2 = tg::detail::gemm_kernel_compiled(GemmKernel::eigen_avx2);

  // AVX-512 hardware with OpenBLAS pinned to its Haswell (AVX2) kernel: Eigen's AVX-512 GEMM.
  CHECK(choose_gemm_kernel("", avx512, "Haswell") ==
        (have512 ? GemmKernel::eigen_avx512 : GemmKernel::openblas));
  CHECK(choose_gemm_kernel("auto", avx512, "Zen") ==
        (have512 ? GemmKernel::eigen_avx512 : GemmKernel::openblas));
  // OpenBLAS running its AVX-512 kernel: OpenBLAS.
  CHECK(choose_gemm_kernel("", avx512, "SkylakeX") == GemmKernel::openblas);
  CHECK(choose_gemm_kernel("", avx512, "Cooperlake") == GemmKernel::openblas);
  // AVX2 hardware: OpenBLAS's AVX2 kernels win; an AVX-only OpenBLAS kernel loses to Eigen's AVX2.
  CHECK(choose_gemm_kernel("", avx2, "Zen") == GemmKernel::openblas);
  CHECK(choose_gemm_kernel("", avx2, "Haswell") == GemmKernel::openblas);
  CHECK(choose_gemm_kernel("", avx2, "Sandybridge") ==
        (have2 ? GemmKernel::eigen_avx2 : GemmKernel::openblas));
  // Nothing wider than SSE: OpenBLAS. An unknown core name keeps OpenBLAS.
  CHECK(choose_gemm_kernel("", sse, "Prescott") == GemmKernel::openblas);
  CHECK(choose_gemm_kernel("", avx512, "SomeFutureCore") == GemmKernel::openblas);

  // TAPEGRAD_GEMM forces either, Eigen in the widest form the CPU runs.
  CHECK(choose_gemm_kernel("openblas", avx512, "Haswell") == GemmKernel::openblas);
  CHECK(choose_gemm_kernel("eigen", avx2, "Zen") ==
        (have2 ? GemmKernel::eigen_avx2 : GemmKernel::eigen_generic));
  CHECK(choose_gemm_kernel("eigen", sse, "Zen") == GemmKernel::eigen_generic);
  CHECK_THROWS_AS(choose_gemm_kernel("mkl", avx2, "Zen"), tg::ValueError);
  CHECK_THROWS_WITH(choose_gemm_kernel("mkl", avx2, "Zen"),
                    Catch::Contains("TAPEGRAD_GEMM") && Catch::Contains("'mkl'"));
}

TEST_CASE("gemm: a kernel this CPU cannot run cannot be selected", "[gemm][choice]") {
  for (GemmKernel k : kAllKernels) {
    if (tg::detail::gemm_kernel_available(k)) continue;
    CHECK_THROWS_AS(tg::detail::set_gemm_kernel(k), tg::ValueError);
  }
}

// Run by ctest with TAPEGRAD_GEMM set (tests/gemm/CMakeLists.txt): the variable picks the kernel.
TEST_CASE("gemm: TAPEGRAD_GEMM in the environment picks the backend", "[.env]") {
  const char* env = std::getenv("TAPEGRAD_GEMM");
  REQUIRE(env != nullptr);
  const std::string want = env;
  const std::string backend = tg::gemm_backend();
  INFO(backend);
  if (want == "openblas") CHECK(tg::detail::gemm_kernel() == GemmKernel::openblas);
  if (want == "eigen") CHECK(tg::detail::gemm_kernel() != GemmKernel::openblas);
  CHECK(backend.starts_with(std::string(tg::detail::gemm_kernel_name(tg::detail::gemm_kernel()))));
  // And the products are right with it, at 2 threads as well.
  check_product<float>(tg::detail::gemm_kernel(), true, false, 65, 33, 130, 1.0f);
  const Threads two(2);
  check_product<float>(tg::detail::gemm_kernel(), false, true, 130, 65, 129, 0.0f);
}

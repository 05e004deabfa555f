// The GEMM behind tg::matmul, and the thread count of the linear-algebra kernels.
//
// Two backends, chosen once per process (docs/benchmarks.md, "GEMM backend", has the measurements
// behind the choice):
//  - OpenBLAS (cblas_sgemm/dgemm), the default;
//  - Eigen 3.4's GEMM kernel, compiled into tapegrad three times (baseline x86-64, AVX2+FMA and
//    AVX-512, each in its own translation unit) and run in the widest form the CPU supports.
// By default OpenBLAS runs, except when its kernel targets a narrower instruction set than the CPU
// has and Eigen was built for the CPU's: OPENBLAS_CORETYPE=Haswell on an AVX-512 machine halves
// OpenBLAS (129 against 242 GFLOP/s single-threaded), where Eigen's AVX-512 kernel reaches about
// 180. The environment variable TAPEGRAD_GEMM=openblas|eigen|auto overrides the choice.
//
// Threads: one by default. tg::set_num_threads(n), or TAPEGRAD_NUM_THREADS=n in the environment
// (read at the first GEMM), sets the threads of either backend; they split each product, and the
// results are the same up to the order of float additions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tg {

/// Threads used by the GEMM (default 1, or TAPEGRAD_NUM_THREADS); process-wide. Throws
/// tg::ValueError for n < 1. Call it between products, not while another thread runs one.
void set_num_threads(int n);
int num_threads();
/// The GEMM that runs, e.g. "openblas (OpenBLAS core Haswell)" or "eigen-avx512 (Eigen 3.4.0,
/// AVX-512)".
std::string gemm_backend();

namespace detail {

/// The GEMM kernels tapegrad can run.
enum class GemmKernel : std::uint8_t { openblas, eigen_generic, eigen_avx2, eigen_avx512 };
/// "openblas", "eigen-generic", "eigen-avx2", "eigen-avx512".
std::string_view gemm_kernel_name(GemmKernel k) noexcept;
/// Whether `k` was compiled into this build (the Eigen variants need compiler support for their
/// instruction sets).
bool gemm_kernel_compiled(GemmKernel k) noexcept;
/// Compiled, and this CPU can run it.
bool gemm_kernel_available(GemmKernel k) noexcept;

/// What the CPU offers, as far as the choice of kernel goes.
struct CpuFeatures {
  bool avx2_fma = false;  ///< AVX2 and FMA
  bool avx512 = false;    ///< AVX-512 F, DQ, VL and BW (Skylake-SP and later)
};
CpuFeatures cpu_features() noexcept;

/// The choice, as a function of its inputs (tests feed it other machines): `requested` is
/// TAPEGRAD_GEMM's value ("" when unset), `openblas_core` openblas_get_corename()'s. Throws
/// tg::ValueError naming TAPEGRAD_GEMM for a value other than openblas, eigen, auto or "".
GemmKernel choose_gemm_kernel(std::string_view requested, const CpuFeatures& cpu,
                              std::string_view openblas_core);

/// The kernel in use (chosen at the first call from the environment).
GemmKernel gemm_kernel();
/// Makes `k` the kernel in use (for tests and benchmarks); throws tg::ValueError if it is not
/// available here.
void set_gemm_kernel(GemmKernel k);

/// C = op(A) op(B) + beta C, row-major, C is m x n, the inner dimension k; op transposes when
/// asked (lda, ldb, ldc follow from the shapes: operands are contiguous). beta = 0 ignores C's
/// contents (NaN included).
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          const float* a, const float* b, float beta, float* c);
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          const double* a, const double* b, double beta, double* c);
/// The same with a given kernel (which must be available).
void gemm_with(GemmKernel kernel, bool transpose_a, bool transpose_b, std::int64_t m,
               std::int64_t n, std::int64_t k, const float* a, const float* b, float beta,
               float* c);
void gemm_with(GemmKernel kernel, bool transpose_a, bool transpose_b, std::int64_t m,
               std::int64_t n, std::int64_t k, const double* a, const double* b, double beta,
               double* c);

}  // namespace detail

}  // namespace tg

// The GEMM backend behind tg::matmul, and the thread count of the linear-algebra kernels.
#pragma once

#include <cstdint>
#include <string>

namespace tg {

/// Threads used by the GEMM backend (default 1; TAPEGRAD_NUM_THREADS in the environment sets the
/// initial value). Throws tg::ValueError for n < 1.
void set_num_threads(int n);
int num_threads();
/// Which GEMM backend runs, e.g. "OpenBLAS (Haswell)".
std::string gemm_backend();

namespace detail {
/// C = op(A) op(B) + beta C, row-major, C is m x n, the inner dimension k; op transposes when
/// asked (lda, ldb, ldc follow from the shapes: operands are contiguous).
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          const float* a, const float* b, float beta, float* c);
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          const double* a, const double* b, double beta, double* c);
}  // namespace detail

}  // namespace tg

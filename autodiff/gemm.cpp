#include <autodiff/gemm.hpp>

#include <autodiff/error.hpp>

#include <algorithm>
#include <cstdlib>
#include <fmt/format.h>
#include <mutex>

#include <cblas.h>

extern "C" {
// OpenBLAS extensions (declared here: Debian's cblas.h may be the generic one).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_corename(void);
}

namespace tg {
namespace {
std::once_flag blas_init;

void init_blas_threads() {
  std::call_once(blas_init, [] {
    int n = 1;  // single-threaded by default
    if (const char* env = std::getenv("TAPEGRAD_NUM_THREADS")) n = std::max(1, std::atoi(env));
    openblas_set_num_threads(n);
  });
}

template <class T>
void gemm_impl(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
               const T* b, T beta, T* c) {
  if (m == 0 || n == 0) return;
  init_blas_threads();
  const int lda = std::max(static_cast<int>(ta ? m : k), 1);
  const int ldb = std::max(static_cast<int>(tb ? k : n), 1);
  const int ldc = std::max(static_cast<int>(n), 1);
  const CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, opa, opb, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0f, a, lda, b, ldb, beta, c, ldc);
  } else {
    cblas_dgemm(CblasRowMajor, opa, opb, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0, a, lda, b, ldb, beta, c, ldc);
  }
}
}  // namespace

namespace detail {
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
          const float* b, float beta, float* c) {
  gemm_impl(ta, tb, m, n, k, a, b, beta, c);
}
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const double* a,
          const double* b, double beta, double* c) {
  gemm_impl(ta, tb, m, n, k, a, b, beta, c);
}
}  // namespace detail

void set_num_threads(int n) {
  if (n < 1) throw ValueError(fmt::format("set_num_threads: needs at least 1 thread, got {}", n));
  init_blas_threads();
  openblas_set_num_threads(n);
}

int num_threads() {
  init_blas_threads();
  return openblas_get_num_threads();
}

std::string gemm_backend() { return fmt::format("OpenBLAS ({})", openblas_get_corename()); }

}  // namespace tg

// Eigen 3.4's GEMM kernel (general_matrix_matrix_product: packing + gebp micro-kernel), compiled
// once per instruction set. Included by gemm_eigen_generic.cpp, gemm_eigen_avx2.cpp and
// gemm_eigen_avx512.cpp, each compiled with its own -m flags and defining
// TAPEGRAD_GEMM_VARIANT (the namespace the functions land in); gemm.cpp calls the one the CPU
// supports (function-level dispatch: the rest of the library stays portable).
//
// Two things keep the variants from leaking into each other or into the rest of the program:
//  - Eigen itself is renamed per variant (`#define Eigen tg_<variant>`), so that its inline
//    functions and templates, emitted as weak symbols in every translation unit that uses them,
//    are distinct symbols: the linker cannot pick the AVX-512 copy of one for the generic build.
//  - nothing else here instantiates a standard-library template (no std::vector, no std::min on
//    our side), for the same reason. docs/benchmarks.md says how to check it with nm.
// The packing buffers are this thread's, kept and grown (never shrunk), so that a steady training
// loop does not allocate; Eigen's own product expressions would allocate them on every call.
#ifndef TAPEGRAD_GEMM_VARIANT
#error "define TAPEGRAD_GEMM_VARIANT (the variant's namespace) before including gemm_eigen.inl"
#endif

#define TAPEGRAD_GEMM_CAT2(a, b) a##b
#define TAPEGRAD_GEMM_CAT(a, b) TAPEGRAD_GEMM_CAT2(a, b)
#define Eigen TAPEGRAD_GEMM_CAT(tg_, TAPEGRAD_GEMM_VARIANT)
#define EIGEN_DONT_PARALLELIZE  // threads are gemm.cpp's business
#include <Eigen/Core>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

namespace tg::detail::TAPEGRAD_GEMM_VARIANT {
namespace {

namespace ei = ::Eigen::internal;
using EIndex = ::Eigen::Index;

/// This thread's packing buffers (64-byte aligned), grown on demand.
struct PackBuffers {
  void* data[2] = {nullptr, nullptr};
  std::size_t bytes[2] = {0, 0};
  PackBuffers() = default;
  PackBuffers(const PackBuffers&) = delete;
  PackBuffers& operator=(const PackBuffers&) = delete;
  ~PackBuffers() {
    for (void* p : data) ::operator delete(p, std::align_val_t{64});
  }
  void* get(int which, std::size_t need) {
    if (bytes[which] < need) {
      ::operator delete(data[which], std::align_val_t{64});
      data[which] = nullptr;
      bytes[which] = 0;
      data[which] = ::operator new(need, std::align_val_t{64});
      bytes[which] = need;
    }
    return data[which];
  }
};
thread_local PackBuffers buffers;

/// Eigen's blocking: the cache block sizes it computes for this product, with packing buffers
/// that are ours.
template <class T>
class Blocking : public ei::level3_blocking<T, T> {
 public:
  Blocking(EIndex rows, EIndex cols, EIndex depth) {
    EIndex kc = depth;
    EIndex mc = rows;
    EIndex nc = cols;
    ei::computeProductBlockingSizes<T, T, 1, EIndex>(kc, mc, nc, 1);
    this->m_kc = kc;
    this->m_mc = mc;
    this->m_nc = nc;
    const std::size_t pad = 64;  // Eigen's kernels may read a packet past the end
    this->m_blockA = static_cast<T*>(buffers.get(0, static_cast<std::size_t>(mc * kc) * sizeof(T) + pad));
    this->m_blockB = static_cast<T*>(buffers.get(1, static_cast<std::size_t>(kc * nc) * sizeof(T) + pad));
  }
};

/// C += op(A) op(B) for row-major operands: computed as the column-major product
/// C^T = op(B)^T op(A)^T, whose operands are the stored arrays read in the other order.
template <class T, int LhsOrder, int RhsOrder>
void product(EIndex m, EIndex n, EIndex k, const T* a, EIndex lda, const T* b, EIndex ldb, T* c,
             EIndex ldc) {
  Blocking<T> blocking(n, m, k);
  ei::general_matrix_matrix_product<EIndex, T, LhsOrder, false, T, RhsOrder, false, ::Eigen::ColMajor,
                                    1>::run(n, m, k, b, ldb, a, lda, c, 1, ldc, T(1), blocking,
                                            nullptr);
}

template <class T>
void gemm_impl(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
               std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  for (std::int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (beta == T(0)) {
      std::memset(row, 0, static_cast<std::size_t>(n) * sizeof(T));
    } else if (beta != T(1)) {
      for (std::int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
  if (k <= 0) return;
  // Seen column-major, row-major B (k x n, ldb) is op(B)^T when not transposed, and a transposed
  // B (stored n x k) must be read row-major; the same for A.
  constexpr int kCol = ::Eigen::ColMajor;
  constexpr int kRow = ::Eigen::RowMajor;
  if (!tb && !ta) product<T, kCol, kCol>(m, n, k, a, lda, b, ldb, c, ldc);
  else if (!tb && ta) product<T, kCol, kRow>(m, n, k, a, lda, b, ldb, c, ldc);
  else if (tb && !ta) product<T, kRow, kCol>(m, n, k, a, lda, b, ldb, c, ldc);
  else product<T, kRow, kRow>(m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace

// C[0:m, 0:n] = op(A) op(B) + beta C, row-major with leading dimensions lda, ldb, ldc (the row
// length of the stored arrays). Single-threaded: gemm.cpp splits a product between threads.
void sgemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc) {
  gemm_impl(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}
void dgemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const double* a,
           std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
           std::int64_t ldc) {
  gemm_impl(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}
/// Eigen's version and what this variant's kernels are vectorised for, e.g. "Eigen 3.4.0, AVX2+FMA".
const char* description() {
#define TAPEGRAD_GEMM_STR2(x) #x
#define TAPEGRAD_GEMM_STR(x) TAPEGRAD_GEMM_STR2(x)
#define TAPEGRAD_GEMM_VERSION                                                  \
  "Eigen " TAPEGRAD_GEMM_STR(EIGEN_WORLD_VERSION) "." TAPEGRAD_GEMM_STR(      \
      EIGEN_MAJOR_VERSION) "." TAPEGRAD_GEMM_STR(EIGEN_MINOR_VERSION)
#if defined(EIGEN_VECTORIZE_AVX512)
  return TAPEGRAD_GEMM_VERSION ", AVX-512";
#elif defined(EIGEN_VECTORIZE_AVX2) && defined(EIGEN_VECTORIZE_FMA)
  return TAPEGRAD_GEMM_VERSION ", AVX2+FMA";
#elif defined(EIGEN_VECTORIZE_AVX)
  return TAPEGRAD_GEMM_VERSION ", AVX";
#elif defined(EIGEN_VECTORIZE_SSE2)
  return TAPEGRAD_GEMM_VERSION ", SSE2";
#else
  return TAPEGRAD_GEMM_VERSION ", not vectorised";
#endif
#undef TAPEGRAD_GEMM_VERSION
#undef TAPEGRAD_GEMM_STR
#undef TAPEGRAD_GEMM_STR2
}

}  // namespace tg::detail::TAPEGRAD_GEMM_VARIANT

#undef Eigen
#undef TAPEGRAD_GEMM_CAT
#undef TAPEGRAD_GEMM_CAT2

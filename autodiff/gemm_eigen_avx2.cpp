// Eigen's GEMM kernel for AVX2 and FMA (compiled with -mavx2 -mfma); see gemm_eigen.inl.
#define TAPEGRAD_GEMM_VARIANT eigen_avx2
#include "gemm_eigen.inl"

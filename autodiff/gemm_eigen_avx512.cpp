// Eigen's GEMM kernel for AVX-512 F, DQ, VL and BW (compiled with -mavx512f -mavx512dq
// -mavx512vl -mavx512bw -mavx2 -mfma); see gemm_eigen.inl.
#define TAPEGRAD_GEMM_VARIANT eigen_avx512
#include "gemm_eigen.inl"

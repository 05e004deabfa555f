// Eigen's GEMM kernel for the baseline instruction set (any x86-64); see gemm_eigen.inl.
#define TAPEGRAD_GEMM_VARIANT eigen_generic
#include "gemm_eigen.inl"

// Matrix products for the hot path: fp32 GEMM and int8 GEMM on integer arithmetic.
// Row-major. The backend (Eigen, OpenBLAS or oneDNN; chosen by measurement, see BENCHMARKS.md)
// is named by gemm_backend_name().
#pragma once

#include <cstdint>

namespace asrc::runtime {

// C[M,N] = alpha * op(A) * op(B) + beta * C; op(X) = X or X^T. lda/ldb/ldc are row strides.
void Sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc, int threads);

// C[M,N] (int32) = sum_k (A[m,k] - a_zero) * (B[k,n] - b_zero[n or 0]), exact integer math.
// A is uint8 or int8 (a_signed), B is int8 or uint8 (b_signed); b_zero has N entries when
// b_zero_per_column, else 1. ONNX MatMulInteger semantics.
void Igemm(int64_t M, int64_t N, int64_t K, const void* A, bool a_signed, int32_t a_zero,
           const void* B, bool b_signed, const int32_t* b_zero, bool b_zero_per_column,
           int32_t* C, int threads);

const char* gemm_backend_name();

}  // namespace asrc::runtime

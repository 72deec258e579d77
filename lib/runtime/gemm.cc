// Placeholder-free baseline: Eigen for fp32 and a plain integer loop for int8.
// (The runtime GEMM owner replaces the internals with the measured winner.)
#include "runtime/gemm.h"

#include <Eigen/Core>

namespace asrc::runtime {

void Sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc, int threads) {
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<RowMat, 0, Stride> c(C, M, N, Stride(ldc));
  if (beta == 0.f) c.setZero(); else if (beta != 1.f) c *= beta;
  if (!trans_a && !trans_b) {
    Eigen::Map<const RowMat, 0, Stride> a(A, M, K, Stride(lda)), b(B, K, N, Stride(ldb));
    c.noalias() += alpha * a * b;
  } else if (!trans_a && trans_b) {
    Eigen::Map<const RowMat, 0, Stride> a(A, M, K, Stride(lda)), b(B, N, K, Stride(ldb));
    c.noalias() += alpha * a * b.transpose();
  } else if (trans_a && !trans_b) {
    Eigen::Map<const RowMat, 0, Stride> a(A, K, M, Stride(lda)), b(B, K, N, Stride(ldb));
    c.noalias() += alpha * a.transpose() * b;
  } else {
    Eigen::Map<const RowMat, 0, Stride> a(A, K, M, Stride(lda)), b(B, N, K, Stride(ldb));
    c.noalias() += alpha * a.transpose() * b.transpose();
  }
}

void Igemm(int64_t M, int64_t N, int64_t K, const void* A, bool a_signed, int32_t a_zero,
           const void* B, bool b_signed, const int32_t* b_zero, bool b_zero_per_column,
           int32_t* C, int threads) {
  auto a_at = [&](int64_t i) -> int32_t {
    return a_signed ? static_cast<const int8_t*>(A)[i] : static_cast<const uint8_t*>(A)[i];
  };
  auto b_at = [&](int64_t i) -> int32_t {
    return b_signed ? static_cast<const int8_t*>(B)[i] : static_cast<const uint8_t*>(B)[i];
  };
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int32_t bz = b_zero ? b_zero[b_zero_per_column ? n : 0] : 0;
      int32_t acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += (a_at(m * K + k) - a_zero) * (b_at(k * N + n) - bz);
      C[m * N + n] = acc;
    }
}

const char* gemm_backend_name() { return "eigen-fp32/naive-int8"; }

}  // namespace asrc::runtime

// Matrix products for the hot path: fp32 GEMM and int8 GEMM on integer arithmetic.
// Row-major. The fp32 backend (Eigen, OpenBLAS or oneDNN; chosen by measurement on our shapes,
// see BENCHMARKS.md) is named by GemmBackendName(); the int8 product is our own kernel
// (AVX2 widening multiply-add where the CPU has it, a portable loop otherwise), exact in int32.
//
// Threads: `threads` is honored per call; 1 runs strictly on the calling thread.
// The environment variable ASRC_GEMM=eigen|openblas|dnnl|auto overrides the fp32 choice
// (for the benchmark); ASRC_IGEMM=madd16 keeps the general int8 kernel even for 7-bit weights,
// ASRC_IGEMM=ref makes Igemm() (the unpacked entry point) run the reference loop.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace asrc::runtime {

// C[M,N] = alpha * op(A) * op(B) + beta * C; op(X) = X or X^T. lda/ldb/ldc are row strides.
// beta == 0 ignores C's previous contents (NaN in C does not propagate).
void Sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc, int threads);

// C = op(A) * op(B), then bias (N floats) added to every row of C, each thread adding it to
// the part of C it computed while that is in cache: the arithmetic of a product followed by an
// Add node (one rounding for the product, one for the add).
void SgemmBias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
               int64_t lda, const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc,
               int threads);

// C[M,N] (int32) = sum_k (A[m,k] - a_zero) * (B[k,n] - b_zero[n or 0]), exact integer math
// (int32 wrap-around on overflow, as the reference loop). A is uint8 or int8 (a_signed), B is
// int8 or uint8 (b_signed); b_zero has N entries when b_zero_per_column, else 1 (nullptr = 0).
// ONNX MatMulInteger semantics. A, B, C contiguous row-major.
void Igemm(int64_t M, int64_t N, int64_t K, const void* A, bool a_signed, int32_t a_zero,
           const void* B, bool b_signed, const int32_t* b_zero, bool b_zero_per_column,
           int32_t* C, int threads);

// A right-hand matrix B[K,N] with its zero points subtracted and laid out for the int8 kernel,
// built once per constant weight (kernel plan time) and reused by IgemmPacked.
// Two layouts: the general one (int16, any zero point), and a byte one for u8 x s8
// multiply-adds when every B - b_zero fits: in [-64, 64] (7-bit weights such as ORT's
// reduce_range) for AVX2's vpmaddubsw, whose int16 pair sums cannot saturate then
// (255 * 64 * 2 < 2^15); in [-127, 127] (any symmetric int8 weight) where the build has AVX-512
// VNNI, whose vpdpbusd sums into int32 directly. Both are exact and do twice (AVX2) or eight
// times (VNNI) the multiply-adds per instruction of the general kernel.
struct PackedIgemmB {
  int64_t K = 0, N = 0;
  int64_t k_pairs = 0;          // ceil(K / 2)
  std::vector<int16_t> data;    // general: [ceil(N/16)][k_pairs][16 cols][2]
  bool u8s8 = false;            // the byte layout below is used
  int64_t k_quads = 0;          // ceil(K / 4)
  std::vector<int8_t> data8;    // bytes: [ceil(N/16)][k_quads][16 cols][4], B - b_zero
  std::vector<int32_t> colsum;  // bytes: sum_k (B - b_zero) per column
};
PackedIgemmB PackIgemmB(int64_t K, int64_t N, const void* B, bool b_signed,
                        const int32_t* b_zero, bool b_zero_per_column);
// C[M,N] = (A - a_zero) * B_packed; same semantics as Igemm. ldc = row stride of C.
void IgemmPacked(int64_t M, const void* A, bool a_signed, int32_t a_zero,
                 const PackedIgemmB& B, int32_t* C, int64_t ldc, int threads);
// Same with one zero point per row of A (a_zero has M entries; ONNX per-row quantization).
void IgemmPackedPerRow(int64_t M, const void* A, bool a_signed, const int32_t* a_zero,
                       const PackedIgemmB& B, int32_t* C, int64_t ldc, int threads);

// The plain triple loops the fast paths are tested against.
void SgemmReference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc);
void IgemmReference(int64_t M, int64_t N, int64_t K, const void* A, bool a_signed,
                    int32_t a_zero, const void* B, bool b_signed, const int32_t* b_zero,
                    bool b_zero_per_column, int32_t* C);

// y = conv2d(x, w) + b [then ReLU] for NCHW x, OIHW w (group 1), fp32, through oneDNN's direct
// convolution, for one graph node. Dilations are ONNX's (1 = dense).
// - Primitives (and their layout reorders) are planned on first use per input shape and kept
//   (up to 8 shapes, then the set starts over: a whole-utterance encoder sees a new length per
//   utterance).
// - threads > 1 splits the output rows into that many bands, one primitive each, run on the
//   shared workers (runtime/thread_pool.h); each band reorders only its own input rows.
// - Weights marked constant are reordered into the primitive's layout once (again only if their
//   address changes), others on every call. ReLU is fused into the primitive.
// Run returns false, having done nothing, where oneDNN is not built in, the product is small, or
// ASRC_CONV=im2col is set; the caller then uses im2col + Sgemm.
struct Conv2DShape {
  int64_t N, C, H, W, M, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl, pb, pr;
  bool src_nhwc = false;  // x is laid out [N, H, W, C] (channels last) instead of NCHW
};
class DirectConv2D {
 public:
  explicit DirectConv2D(bool relu);
  ~DirectConv2D();
  DirectConv2D(const DirectConv2D&) = delete;
  DirectConv2D& operator=(const DirectConv2D&) = delete;
  bool Run(const Conv2DShape& s, const float* x, const float* w, bool w_constant, const float* b,
           float* y, int threads);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

enum class GemmBackend { Auto, Eigen, OpenBlas, Dnnl };
// Selects the fp32 backend for later calls (Auto = the measured per-shape choice). Returns
// false (and keeps the current one) when the backend is not compiled in.
bool SetGemmBackend(GemmBackend backend);
bool GemmBackendAvailable(GemmBackend backend);
// "auto[M=1:..., M>1:...]/int8:avx2-madd16" style description of what runs.
const char* GemmBackendName();

}  // namespace asrc::runtime

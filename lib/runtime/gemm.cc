// fp32 GEMM dispatch (Eigen / OpenBLAS / oneDNN, picked per shape class by measurement) and the
// int8 GEMM kernel.
//
// Why our own int8 kernel: without AVX-512 VNNI, the fast u8*s8 instruction (vpmaddubsw) adds
// pairs of products into int16 with saturation, so a weight column with large values changes
// the result (ORT asks for reduce_range to avoid it). We instead widen both operands to int16
// with their zero points already subtracted (values in [-255, 255]) and use vpmaddwd, which adds
// pairs of int16 products into int32 exactly: every result equals the reference loop bit for
// bit. It still does 16 multiply-adds per instruction, twice an fp32 FMA.
#include "runtime/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include <Eigen/Core>

#include "runtime/thread_pool.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif
#ifdef ASRC_HAVE_OPENBLAS
#include <cblas.h>
#endif
#ifdef ASRC_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include "runtime/dnnl_threads.h"
#endif

namespace asrc::runtime {
namespace {

// Below this many multiply-adds a second thread costs more than it saves. 2^18 (5-10 us of
// work on one core): a hand-over to a spinning worker costs about 1 us, and one that is asleep
// or descheduled costs nothing now (the caller claims the parts it has not taken,
// runtime/thread_pool.h). Was 2^20, which left the 300 x 40 x 64 products of a small
// conformer (torchaudio's, d = 40) and wav2vec2's 149 x 48 x 48 ones on one thread.
constexpr int64_t kParallelMacs = 1 << 18;

int PartsFor(int threads, int64_t macs) {
  if (threads <= 1 || macs < kParallelMacs) return 1;
  return std::min(threads, 8);
}

// ---------------------------------------------------------------------------------------------
// fp32 backends.
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using EStride = Eigen::OuterStride<>;

void EigenBlock(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                int64_t ldc) {
  Eigen::Map<RowMat, 0, EStride> c(C, M, N, EStride(ldc));
  if (beta == 0.f) c.setZero();
  else if (beta != 1.f) c *= beta;
  if (K == 0) return;
  Eigen::Map<const RowMat, 0, EStride> a(A, trans_a ? K : M, trans_a ? M : K, EStride(lda));
  Eigen::Map<const RowMat, 0, EStride> b(B, trans_b ? N : K, trans_b ? K : N, EStride(ldb));
  if (M == 1 && !trans_a) {
    // GEMV: Eigen picks its matrix-vector kernel for a row vector times a matrix.
    if (trans_b) c.row(0).noalias() += alpha * (b * a.row(0).transpose()).transpose();
    else c.row(0).noalias() += alpha * (a.row(0) * b);
    return;
  }
  if (!trans_a && !trans_b) c.noalias() += alpha * a * b;
  else if (!trans_a && trans_b) c.noalias() += alpha * a * b.transpose();
  else if (trans_a && !trans_b) c.noalias() += alpha * a.transpose() * b;
  else c.noalias() += alpha * a.transpose() * b.transpose();
}

#ifdef ASRC_HAVE_OPENBLAS
// OpenBLAS runs single-threaded here (we split products ourselves, runtime/thread_pool.h). Its
// pthreads build starts nproc - 1 workers when it loads, and they spin on sched_yield for about
// 0.1 s before sleeping: a short process (a decoder-step benchmark, a test) paid twice its CPU
// time. Stop them at start-up; with one thread OpenBLAS never starts them again. Weak: other
// OpenBLAS builds (serial, OpenMP) do not have the function.
extern "C" void blas_thread_shutdown_(void) __attribute__((weak));
const bool g_openblas_one_thread = [] {
  openblas_set_num_threads(1);
  if (blas_thread_shutdown_) blas_thread_shutdown_();
  return true;
}();

void OpenBlasBlock(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                   float* C, int64_t ldc) {
  if (beta == 0.f) {
    // BLAS scales C by beta, and 0 * NaN is NaN: clear it first for "ignore C".
    for (int64_t m = 0; N > 0 && m < M; ++m) std::memset(C + m * ldc, 0, sizeof(float) * N);
  }
  if (M == 1 && !trans_a) {
    // Row vector times matrix: y = op(B)^T x.
    cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, trans_b ? N : K,
                trans_b ? K : N, alpha, B, ldb, A, 1, beta, C, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#endif

#ifdef ASRC_HAVE_DNNL
void DnnlBlock(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc) {
  OneOmpThread();
  // No clearing for beta == 0: oneDNN's GEMM then writes C without reading it (NaN in C does
  // not propagate; tests/quant/gemm_test.cc fills C with NaN). Clearing cost a pass over C per
  // product (the attention scores: 1.4 MB per layer).
  dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C,
             ldc);
}
#endif

using BlockFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                         const float*, int64_t, float, float*, int64_t);

// Splits C over `threads` parts of the pool: by rows when there are enough, else by columns.
// Rows first: measured as fast or faster on our M=75 encoder products (2 threads), and the
// row-wise kernels that follow a product (bias and residual adds, LayerNorm, Softmax) split
// their rows the same way (ThreadPool::ParallelFor), so each core reads back what it wrote.
// C[0..rows, 0..cols] += bias[0..cols] row by row.
void AddRowBias(float* C, int64_t ldc, int64_t rows, int64_t cols, const float* bias) {
  for (int64_t m = 0; m < rows; ++m) {
    float* c = C + m * ldc;
    for (int64_t n = 0; n < cols; ++n) c[n] = c[n] + bias[n];
  }
}

// `bias` (may be null): N floats added to every row of C after the product, by the thread that
// computed those entries.
void SgemmSplit(BlockFn block, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                float beta, float* C, int64_t ldc, int threads, const float* bias = nullptr) {
  int parts = PartsFor(threads, M * N * K);
  bool by_cols = M < 16 * parts;
  if (parts > 1 && by_cols && N < 64 * parts) parts = 1;
  if (parts == 1) {
    block(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (bias) AddRowBias(C, ldc, M, N, bias);
    return;
  }
  RunParts(parts, [&](int p) {
    if (by_cols) {
      int64_t chunk = ((N + parts - 1) / parts + 15) / 16 * 16;
      int64_t n0 = std::min<int64_t>(N, chunk * p), n1 = std::min<int64_t>(N, n0 + chunk);
      if (n1 <= n0) return;
      const float* b = trans_b ? B + n0 * ldb : B + n0;
      block(trans_a, trans_b, M, n1 - n0, K, alpha, A, lda, b, ldb, beta, C + n0, ldc);
      if (bias) AddRowBias(C + n0, ldc, M, n1 - n0, bias + n0);
    } else {
      int64_t chunk = (M + parts - 1) / parts;
      int64_t m0 = std::min<int64_t>(M, chunk * p), m1 = std::min<int64_t>(M, m0 + chunk);
      if (m1 <= m0) return;
      const float* a = trans_a ? A + m0 : A + m0 * lda;
      block(trans_a, trans_b, m1 - m0, N, K, alpha, a, lda, B, ldb, beta, C + m0 * ldc, ldc);
      if (bias) AddRowBias(C + m0 * ldc, ldc, m1 - m0, N, bias);
    }
  });
}

std::atomic<int> g_backend{-1};  // GemmBackend as int; -1 = not yet read from the environment

GemmBackend CurrentBackend() {
  int b = g_backend.load(std::memory_order_relaxed);
  if (b >= 0) return static_cast<GemmBackend>(b);
  GemmBackend chosen = GemmBackend::Auto;
  if (const char* env = std::getenv("ASRC_GEMM")) {
    std::string s(env);
    if (s == "eigen") chosen = GemmBackend::Eigen;
    else if (s == "openblas" && GemmBackendAvailable(GemmBackend::OpenBlas))
      chosen = GemmBackend::OpenBlas;
    else if (s == "dnnl" && GemmBackendAvailable(GemmBackend::Dnnl)) chosen = GemmBackend::Dnnl;
  }
  g_backend.store(static_cast<int>(chosen));
  return chosen;
}

// The measured choice per shape class (bench/gemm_bench, BENCHMARKS.md), 1 thread.
// AMD EPYC (Zen 3, AVX2): oneDNN wins most M=75 products and the small ones;
// OpenBLAS wins the wide ones (N >= 4K) and the large M=300 ones, and the M=1 GEMV by a hair.
// AVX-512 EPYC (Zen 4): oneDNN wins every M > 1 shape we run by 10-20%, the wide and large ones
// included (tests of 2026-11-27 10:25 UTC, BENCHMARKS.md); OpenBLAS still the M=1 GEMV.
GemmBackend AutoBackend(int64_t M, int64_t N, int64_t K) {
#if defined(ASRC_HAVE_DNNL) && defined(__AVX512F__)
  if (M > 1) return GemmBackend::Dnnl;
#endif
#ifdef ASRC_HAVE_OPENBLAS
  if (M == 1) return GemmBackend::OpenBlas;
  if (N >= 4 * K && K >= 256) return GemmBackend::OpenBlas;
  if (M > 128 && K * N >= 256 * 1024) return GemmBackend::OpenBlas;
#endif
#ifdef ASRC_HAVE_DNNL
  if (M > 1) return GemmBackend::Dnnl;
#endif
  (void)M;
  (void)N;
  (void)K;
  return GemmBackend::Eigen;
}

bool IgemmReferenceForced() {
  static const bool forced = [] {
    const char* env = std::getenv("ASRC_IGEMM");
    return env && std::string(env) == "ref";
  }();
  return forced;
}

bool IgemmU8S8Allowed() {
#if defined(__AVX2__)
  static const bool allowed = [] {
    const char* env = std::getenv("ASRC_IGEMM");
    return !(env && std::string(env) == "madd16");
  }();
  return allowed;
#else
  return false;
#endif
}

}  // namespace

bool GemmBackendAvailable(GemmBackend backend) {
  switch (backend) {
    case GemmBackend::Auto:
    case GemmBackend::Eigen: return true;
    case GemmBackend::OpenBlas:
#ifdef ASRC_HAVE_OPENBLAS
      return true;
#else
      return false;
#endif
    case GemmBackend::Dnnl:
#ifdef ASRC_HAVE_DNNL
      return true;
#else
      return false;
#endif
  }
  return false;
}

bool SetGemmBackend(GemmBackend backend) {
  if (!GemmBackendAvailable(backend)) return false;
  g_backend.store(static_cast<int>(backend));
  return true;
}

const char* GemmBackendName() {
  static std::string name;
  std::string fp;
  switch (CurrentBackend()) {
    case GemmBackend::Eigen: fp = "eigen"; break;
    case GemmBackend::OpenBlas: fp = "openblas"; break;
    case GemmBackend::Dnnl: fp = "dnnl"; break;
    case GemmBackend::Auto: {
      auto nm = [](GemmBackend b) {
        return b == GemmBackend::OpenBlas ? "openblas" : b == GemmBackend::Dnnl ? "dnnl" : "eigen";
      };
      fp = std::string("auto[M=1:") + nm(AutoBackend(1, 256, 256)) +
           ",small/M<=128:" + nm(AutoBackend(75, 256, 256)) +
           ",wide(N>=4K)|large(M>128):" + nm(AutoBackend(300, 1024, 256)) + "]";
      break;
    }
  }
#ifdef ASRC_HAVE_OPENBLAS
  if (fp.find("openblas") != std::string::npos)
    fp += std::string("(openblas ") + openblas_get_corename() + ")";
#endif
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
  std::string i8 = IgemmU8S8Allowed() ? "int8:avx512-vnni(dpbusd for int8 weights in [-127,127]; else avx2-madd16)"
                                      : "int8:avx2-madd16";
#elif defined(__AVX2__)
  std::string i8 = IgemmU8S8Allowed() ? "int8:avx2-madd16(+maddubs for 7-bit weights)"
                                      : "int8:avx2-madd16";
#else
  std::string i8 = "int8:portable-packed";
#endif
  name = "fp32:" + fp + "/" + i8;
  return name.c_str();
}

namespace {
// The fp32 backend for a product of this shape (ASRC_GEMM, else the measured choice).
BlockFn BlockFor(int64_t M, int64_t N, int64_t K) {
  GemmBackend b = CurrentBackend();
  if (b == GemmBackend::Auto) b = AutoBackend(M, N, K);
  if (K == 0) b = GemmBackend::Eigen;  // some BLAS reject K=0 leading dimensions
#ifdef ASRC_HAVE_OPENBLAS
  if (b == GemmBackend::OpenBlas) return OpenBlasBlock;
#endif
#ifdef ASRC_HAVE_DNNL
  if (b == GemmBackend::Dnnl) return DnnlBlock;
#endif
  return EigenBlock;
}
}  // namespace

void Sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc, int threads) {
  if (M <= 0 || N <= 0) return;
  SgemmSplit(BlockFor(M, N, K), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
             threads);
}

void SgemmBias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
               int64_t lda, const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc,
               int threads) {
  if (M <= 0 || N <= 0) return;
  SgemmSplit(BlockFor(M, N, K), trans_a, trans_b, M, N, K, 1.f, A, lda, B, ldb, 0.f, C, ldc,
             threads, bias);
}

void SgemmReference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        float a = trans_a ? A[k * lda + m] : A[m * lda + k];
        float b = trans_b ? B[n * ldb + k] : B[k * ldb + n];
        acc += static_cast<double>(a) * b;
      }
      float prev = beta == 0.f ? 0.f : beta * C[m * ldc + n];
      C[m * ldc + n] = static_cast<float>(alpha * acc) + prev;
    }
}

// ---------------------------------------------------------------------------------------------
// int8 GEMM.

void IgemmReference(int64_t M, int64_t N, int64_t K, const void* A, bool a_signed,
                    int32_t a_zero, const void* B, bool b_signed, const int32_t* b_zero,
                    bool b_zero_per_column, int32_t* C) {
  auto a_at = [&](int64_t i) -> int32_t {
    return a_signed ? static_cast<const int8_t*>(A)[i] : static_cast<const uint8_t*>(A)[i];
  };
  auto b_at = [&](int64_t i) -> int32_t {
    return b_signed ? static_cast<const int8_t*>(B)[i] : static_cast<const uint8_t*>(B)[i];
  };
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int32_t bz = b_zero ? b_zero[b_zero_per_column ? n : 0] : 0;
      uint32_t acc = 0;  // int32 wrap-around without undefined behavior
      for (int64_t k = 0; k < K; ++k)
        acc += static_cast<uint32_t>((a_at(m * K + k) - a_zero) * (b_at(k * N + n) - bz));
      C[m * N + n] = static_cast<int32_t>(acc);
    }
}

namespace {
constexpr int kNr = 16;  // columns per packed panel (two AVX2 registers of int32)
constexpr int kMr = 6;   // rows per micro-kernel call (12 accumulators)

// How the int8 kernels split C over threads: by rows in whole micro-kernel blocks when there
// are enough (as the fp32 products, SgemmSplit), else by column panels of kNr.
struct Split {
  int parts = 1;
  bool by_rows = false;
  int64_t block = 1;  // rows per micro-kernel call
  // Part `part`'s rows [r0, r1) and panels [p0, p1).
  void Ranges(int part, int64_t M, int64_t panels, int64_t* r0, int64_t* r1, int64_t* p0,
              int64_t* p1) const {
    *r0 = 0, *r1 = M, *p0 = 0, *p1 = panels;
    if (parts == 1) return;
    if (by_rows) {
      const int64_t blocks = (M + block - 1) / block;
      *r0 = std::min(M, blocks * part / parts * block);
      *r1 = std::min(M, blocks * (part + 1) / parts * block);
    } else {
      *p0 = panels * part / parts;
      *p1 = panels * (part + 1) / parts;
    }
  }
};

Split SplitFor(int threads, int64_t M, int64_t N, int64_t K, int64_t block) {
  Split s;
  s.block = block;
  s.parts = PartsFor(threads, M * N * K);
  s.by_rows = M >= 2 * block * s.parts;
  const int64_t panels = (N + kNr - 1) / kNr;
  if (!s.by_rows && panels < s.parts) s.parts = static_cast<int>(std::max<int64_t>(1, panels));
  return s;
}

// A rows as int16 with the zero point subtracted, each row padded with zeros to 2*k_pairs.
void PackA16(const void* A, bool a_signed, const int32_t* a_zero, bool per_row, int64_t M,
             int64_t K, int64_t k_pairs, int16_t* out) {
  int64_t kp2 = 2 * k_pairs;
  for (int64_t m = 0; m < M; ++m) {
    int32_t z = a_zero ? a_zero[per_row ? m : 0] : 0;
    int16_t* o = out + m * kp2;
    if (a_signed) {
      const int8_t* a = static_cast<const int8_t*>(A) + m * K;
      for (int64_t k = 0; k < K; ++k) o[k] = static_cast<int16_t>(a[k] - z);
    } else {
      const uint8_t* a = static_cast<const uint8_t*>(A) + m * K;
      for (int64_t k = 0; k < K; ++k) o[k] = static_cast<int16_t>(a[k] - z);
    }
    for (int64_t k = K; k < kp2; ++k) o[k] = 0;
  }
}

#if defined(__AVX2__)
// Stores one row of 16 int32 columns (v0: 0-7, v1: 8-15), of which the first ncols are valid.
inline void StoreRow(int32_t* c, __m256i v0, __m256i v1, int ncols) {
  if (ncols == kNr) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), v0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + 8), v1);
  } else {
    alignas(32) int32_t tmp[kNr];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), v0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8), v1);
    std::memcpy(c, tmp, sizeof(int32_t) * ncols);
  }
}
#endif

// C[MR rows, ncols<=16] = A16[MR rows] * panel. `a` rows are kp2 apart.
template <int MR>
void MicroKernel(const int16_t* a, int64_t kp2, const int16_t* panel, int64_t k_pairs,
                 int32_t* c, int64_t ldc, int ncols) {
#if defined(__AVX2__)
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t p = 0; p < k_pairs; ++p) {
    __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + p * 32));
    __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + p * 32 + 16));
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * kp2 + 2 * p, sizeof(pair));
      __m256i av = _mm256_set1_epi32(pair);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
    }
  }
  for (int r = 0; r < MR; ++r) StoreRow(c + r * ldc, acc[r][0], acc[r][1], ncols);
#else
  uint32_t acc[MR][kNr] = {};
  for (int64_t p = 0; p < k_pairs; ++p) {
    const int16_t* b = panel + p * 32;
    for (int r = 0; r < MR; ++r) {
      int32_t a0 = a[r * kp2 + 2 * p], a1 = a[r * kp2 + 2 * p + 1];
      for (int j = 0; j < kNr; ++j)
        acc[r][j] += static_cast<uint32_t>(a0 * b[2 * j] + a1 * b[2 * j + 1]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < ncols; ++j) c[r * ldc + j] = static_cast<int32_t>(acc[r][j]);
#endif
}

void RowsKernel(int rows, const int16_t* a, int64_t kp2, const int16_t* panel, int64_t k_pairs,
                int32_t* c, int64_t ldc, int ncols) {
  switch (rows) {
    case 6: MicroKernel<6>(a, kp2, panel, k_pairs, c, ldc, ncols); break;
    case 5: MicroKernel<5>(a, kp2, panel, k_pairs, c, ldc, ncols); break;
    case 4: MicroKernel<4>(a, kp2, panel, k_pairs, c, ldc, ncols); break;
    case 3: MicroKernel<3>(a, kp2, panel, k_pairs, c, ldc, ncols); break;
    case 2: MicroKernel<2>(a, kp2, panel, k_pairs, c, ldc, ncols); break;
    default: MicroKernel<1>(a, kp2, panel, k_pairs, c, ldc, ncols); break;
  }
}

#if defined(__AVX2__)
// 7-bit path. C[MR rows, ncols] = A_u8[MR rows] * panel8 - a_zero[row] * colsum. `a` rows are
// kq4 bytes apart (zero padded), as unsigned bytes.
template <int MR>
void MicroKernelU8S8(const uint8_t* a, int64_t kq4, const int8_t* panel, int64_t k_quads,
                     const int32_t* colsum, const int32_t* az, int32_t* c, int64_t ldc,
                     int ncols) {
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t q = 0; q < k_quads; ++q) {
    __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + q * 64));
    __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + q * 64 + 32));
    for (int r = 0; r < MR; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * kq4 + 4 * q, sizeof(quad));
      __m256i av = _mm256_set1_epi32(quad);
      acc[r][0] = _mm256_add_epi32(acc[r][0],
                                   _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones));
      acc[r][1] = _mm256_add_epi32(acc[r][1],
                                   _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones));
    }
  }
  alignas(32) int32_t cs[kNr] = {};
  std::memcpy(cs, colsum, sizeof(int32_t) * ncols);
  const __m256i cs0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(cs));
  const __m256i cs1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(cs + 8));
  for (int r = 0; r < MR; ++r) {
    __m256i z = _mm256_set1_epi32(az[r]);
    __m256i v0 = _mm256_sub_epi32(acc[r][0], _mm256_mullo_epi32(z, cs0));
    __m256i v1 = _mm256_sub_epi32(acc[r][1], _mm256_mullo_epi32(z, cs1));
    StoreRow(c + r * ldc, v0, v1, ncols);
  }
}

void RowsKernelU8S8(int rows, const uint8_t* a, int64_t kq4, const int8_t* panel,
                    int64_t k_quads, const int32_t* colsum, const int32_t* az, int32_t* c,
                    int64_t ldc, int ncols) {
  switch (rows) {
    case 6: MicroKernelU8S8<6>(a, kq4, panel, k_quads, colsum, az, c, ldc, ncols); break;
    case 5: MicroKernelU8S8<5>(a, kq4, panel, k_quads, colsum, az, c, ldc, ncols); break;
    case 4: MicroKernelU8S8<4>(a, kq4, panel, k_quads, colsum, az, c, ldc, ncols); break;
    case 3: MicroKernelU8S8<3>(a, kq4, panel, k_quads, colsum, az, c, ldc, ncols); break;
    case 2: MicroKernelU8S8<2>(a, kq4, panel, k_quads, colsum, az, c, ldc, ncols); break;
    default: MicroKernelU8S8<1>(a, kq4, panel, k_quads, colsum, az, c, ldc, ncols); break;
  }
}

#if defined(__AVX512VNNI__) && defined(__AVX512F__)
// vpdpbusd adds four u8 x s8 products into an int32 lane exactly (no int16 step), so on this
// path the byte layout serves full-range int8 weights too, at 64 multiply-adds an instruction.
constexpr int kMrVnni = 12;  // rows per call: 12 accumulators of 16 int32 columns

template <int MR>
void MicroKernelVnni(const uint8_t* a, int64_t kq4, const int8_t* panel, int64_t k_quads,
                     const int32_t* colsum, const int32_t* az, int32_t* c, int64_t ldc,
                     int ncols) {
  __m512i acc[MR];
  for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_si512();
  for (int64_t q = 0; q < k_quads; ++q) {
    const __m512i b = _mm512_loadu_si512(panel + q * 64);
    for (int r = 0; r < MR; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * kq4 + 4 * q, sizeof(quad));
      acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32(quad), b);
    }
  }
  const __m512i cs = _mm512_loadu_si512(colsum);  // padded to kNr per panel
  const __mmask16 mask = static_cast<__mmask16>(ncols == kNr ? 0xFFFF : (1u << ncols) - 1);
  for (int r = 0; r < MR; ++r) {
    __m512i v = _mm512_sub_epi32(acc[r], _mm512_mullo_epi32(_mm512_set1_epi32(az[r]), cs));
    _mm512_mask_storeu_epi32(c + r * ldc, mask, v);
  }
}

template <int MR>
void RowsKernelVnniT(int rows, const uint8_t* a, int64_t kq4, const int8_t* panel,
                     int64_t k_quads, const int32_t* colsum, const int32_t* az, int32_t* c,
                     int64_t ldc, int ncols) {
  if constexpr (MR > 1) {
    if (rows < MR)
      return RowsKernelVnniT<MR - 1>(rows, a, kq4, panel, k_quads, colsum, az, c, ldc, ncols);
  }
  MicroKernelVnni<MR>(a, kq4, panel, k_quads, colsum, az, c, ldc, ncols);
}
#endif

// A as unsigned bytes (int8 A is shifted by 128, its zero point with it), rows padded to kq4.
void IgemmU8S8(int64_t M, const void* A, bool a_signed, const int32_t* a_zero,
               bool a_zero_per_row, const PackedIgemmB& B, int32_t* C, int64_t ldc,
               int threads) {
  const int64_t N = B.N, K = B.K, k_quads = B.k_quads, kq4 = 4 * k_quads;
  static thread_local std::vector<uint8_t> a8;
  static thread_local std::vector<int32_t> az;
  if (az.size() < static_cast<size_t>(M + kMr)) az.resize(M + kMr);
  for (int64_t m = 0; m < M; ++m) {
    int32_t z = a_zero ? a_zero[a_zero_per_row ? m : 0] : 0;
    az[m] = a_signed ? z + 128 : z;
  }
  // Unsigned rows whose length is a whole number of quads are used in place; others are
  // copied, shifted to unsigned and padded (the padding meets B's zero rows).
  const uint8_t* a = static_cast<const uint8_t*>(A);
  if (a_signed || K != kq4) {
    if (a8.size() < static_cast<size_t>(M * kq4)) a8.resize(M * kq4);
    for (int64_t m = 0; m < M; ++m) {
      const uint8_t* src = static_cast<const uint8_t*>(A) + m * K;
      uint8_t* dst = a8.data() + m * kq4;
      if (a_signed) {
        for (int64_t k = 0; k < K; ++k) dst[k] = static_cast<uint8_t>(src[k] ^ 0x80);
      } else {
        if (K > 0) std::memcpy(dst, src, K);  // an empty A's data may be null
      }
      if (kq4 > K) std::memset(dst + K, 0, kq4 - K);
    }
    a = a8.data();
  }
  const int32_t* azp = az.data();
  const int64_t panels = (N + kNr - 1) / kNr;
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
  const Split split = SplitFor(threads, M, N, K, kMrVnni);
#else
  const Split split = SplitFor(threads, M, N, K, kMr);
#endif
  auto work = [&](int part) {
    int64_t p0, p1, r0, r1;
    split.Ranges(part, M, panels, &r0, &r1, &p0, &p1);
    const int64_t group = std::max<int64_t>(1, (192 * 1024) / (k_quads * 64));
    for (int64_t g0 = p0; g0 < p1; g0 += group) {
      int64_t g1 = std::min(p1, g0 + group);
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
      for (int64_t m0 = r0; m0 < r1; m0 += kMrVnni) {
        int rows = static_cast<int>(std::min<int64_t>(kMrVnni, r1 - m0));
        for (int64_t p = g0; p < g1; ++p) {
          int ncols = static_cast<int>(std::min<int64_t>(kNr, N - p * kNr));
          RowsKernelVnniT<kMrVnni>(rows, a + m0 * kq4, kq4, B.data8.data() + p * k_quads * 64,
                                   k_quads, B.colsum.data() + p * kNr, azp + m0,
                                   C + m0 * ldc + p * kNr, ldc, ncols);
        }
      }
      continue;
#endif
      for (int64_t m0 = r0; m0 < r1; m0 += kMr) {
        int rows = static_cast<int>(std::min<int64_t>(kMr, r1 - m0));
        for (int64_t p = g0; p < g1; ++p) {
          int ncols = static_cast<int>(std::min<int64_t>(kNr, N - p * kNr));
          RowsKernelU8S8(rows, a + m0 * kq4, kq4, B.data8.data() + p * k_quads * 64, k_quads,
                         B.colsum.data() + p * kNr, azp + m0, C + m0 * ldc + p * kNr, ldc,
                         ncols);
        }
      }
    }
  };
  RunParts(split.parts, work);
}
#endif

void IgemmPackedImpl(int64_t M, const void* A, bool a_signed, const int32_t* a_zero,
                     bool a_zero_per_row, const PackedIgemmB& B, int32_t* C, int64_t ldc,
                     int threads) {
  const int64_t N = B.N, k_pairs = B.k_pairs, kp2 = 2 * k_pairs;
  if (M <= 0 || N <= 0) return;
  if (B.K == 0) {  // an empty sum (a kernel of width 0: onnx_run_fuzzer); the panel sizing divides by K
    for (int64_t m = 0; m < M; ++m) std::memset(C + m * ldc, 0, sizeof(int32_t) * N);
    return;
  }
#if defined(__AVX2__)
  if (B.u8s8 && IgemmU8S8Allowed()) {
    IgemmU8S8(M, A, a_signed, a_zero, a_zero_per_row, B, C, ldc, threads);
    return;
  }
#endif
  static thread_local std::vector<int16_t> a16;
  if (a16.size() < static_cast<size_t>(M * kp2)) a16.resize(M * kp2);
  PackA16(A, a_signed, a_zero, a_zero_per_row, M, B.K, k_pairs, a16.data());
  const int16_t* a = a16.data();
  const int64_t panels = (N + kNr - 1) / kNr;
  const Split split = SplitFor(threads, M, N, B.K, kMr);
  auto work = [&](int part) {
    int64_t p0, p1, r0, r1;
    split.Ranges(part, M, panels, &r0, &r1, &p0, &p1);
    // Panels in groups that fit in L2 beside the A rows; rows in micro-kernel blocks.
    const int64_t group = std::max<int64_t>(1, (192 * 1024) / (k_pairs * 64));
    for (int64_t g0 = p0; g0 < p1; g0 += group) {
      int64_t g1 = std::min(p1, g0 + group);
      for (int64_t m0 = r0; m0 < r1; m0 += kMr) {
        int rows = static_cast<int>(std::min<int64_t>(kMr, r1 - m0));
        for (int64_t p = g0; p < g1; ++p) {
          int ncols = static_cast<int>(std::min<int64_t>(kNr, N - p * kNr));
          RowsKernel(rows, a + m0 * kp2, kp2, B.data.data() + p * k_pairs * 32, k_pairs,
                     C + m0 * ldc + p * kNr, ldc, ncols);
        }
      }
    }
  };
  RunParts(split.parts, work);
}
}  // namespace

PackedIgemmB PackIgemmB(int64_t K, int64_t N, const void* B, bool b_signed,
                        const int32_t* b_zero, bool b_zero_per_column) {
  PackedIgemmB p;
  p.K = K;
  p.N = N;
  p.k_pairs = (K + 1) / 2;
  const int64_t panels = (N + kNr - 1) / kNr;
  p.data.assign(static_cast<size_t>(panels * p.k_pairs * 32), 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      int32_t v = b_signed ? static_cast<const int8_t*>(B)[k * N + n]
                           : static_cast<const uint8_t*>(B)[k * N + n];
      int32_t z = b_zero ? b_zero[b_zero_per_column ? n : 0] : 0;
      int64_t panel = n / kNr, j = n % kNr;
      p.data[panel * p.k_pairs * 32 + (k / 2) * 32 + j * 2 + (k % 2)] =
          static_cast<int16_t>(v - z);
    }
  // The byte layout, when every value allows it: 7-bit values for vpmaddubsw (AVX2), any
  // symmetric int8 value for vpdpbusd (AVX-512 VNNI).
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
  const int16_t lim_lo = -127, lim_hi = 127;
#else
  const int16_t lim_lo = -64, lim_hi = 64;
#endif
  bool fits = K > 0;
  for (size_t i = 0; i < p.data.size() && fits; ++i)
    fits = p.data[i] >= lim_lo && p.data[i] <= lim_hi;
  if (fits) {
    p.u8s8 = true;
    p.k_quads = (K + 3) / 4;
    p.data8.assign(static_cast<size_t>(panels * p.k_quads * 64), 0);
    p.colsum.assign(static_cast<size_t>(panels * kNr), 0);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n) {
        int64_t panel = n / kNr, j = n % kNr;
        int16_t v = p.data[panel * p.k_pairs * 32 + (k / 2) * 32 + j * 2 + (k % 2)];
        p.data8[panel * p.k_quads * 64 + (k / 4) * 64 + j * 4 + (k % 4)] = static_cast<int8_t>(v);
        p.colsum[n] += v;
      }
    if (IgemmU8S8Allowed()) p.data = {};  // the int16 layout would never be read
  }
  return p;
}

void IgemmPacked(int64_t M, const void* A, bool a_signed, int32_t a_zero,
                 const PackedIgemmB& B, int32_t* C, int64_t ldc, int threads) {
  IgemmPackedImpl(M, A, a_signed, &a_zero, false, B, C, ldc, threads);
}

void IgemmPackedPerRow(int64_t M, const void* A, bool a_signed, const int32_t* a_zero,
                       const PackedIgemmB& B, int32_t* C, int64_t ldc, int threads) {
  IgemmPackedImpl(M, A, a_signed, a_zero, true, B, C, ldc, threads);
}

void Igemm(int64_t M, int64_t N, int64_t K, const void* A, bool a_signed, int32_t a_zero,
           const void* B, bool b_signed, const int32_t* b_zero, bool b_zero_per_column,
           int32_t* C, int threads) {
  if (IgemmReferenceForced()) {
    IgemmReference(M, N, K, A, a_signed, a_zero, B, b_signed, b_zero, b_zero_per_column, C);
    return;
  }
  PackedIgemmB packed = PackIgemmB(K, N, B, b_signed, b_zero, b_zero_per_column);
  IgemmPacked(M, A, a_signed, a_zero, packed, C, N, threads);
}

}  // namespace asrc::runtime

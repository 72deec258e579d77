// Sgemm and Igemm fast paths against the plain reference loops, on many shapes (odd sizes,
// transposes, strides, alpha/beta, 1 and 2 threads) and for every fp32 backend compiled in.
// The int8 paths must match the reference bit for bit, including inputs that would saturate an
// int16 pair sum (the vpmaddubsw pitfall).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/gemm.h"

using namespace asrc::runtime;

namespace {

struct SgemmCase {
  bool ta, tb;
  int64_t M, N, K;
  int64_t pad;  // extra elements per row (lda/ldb/ldc > minimum)
  float alpha, beta;
  int threads;
};

// Max |C - ref| over the matrix, relative to a bound that grows with K (uniform [-1,1] inputs).
void CheckSgemm(const SgemmCase& c, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
  std::vector<float> A(a_rows * lda + 1), B(b_rows * ldb + 1), C(c.M * ldc + 1);
  for (auto& v : A) v = u(rng);
  for (auto& v : B) v = u(rng);
  for (auto& v : C) v = u(rng);
  std::vector<float> ref = C;
  if (c.beta == 0.f)  // C's previous contents must be ignored (none of the backends may read them)
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t n = 0; n < c.N; ++n) {
        C[m * ldc + n] = std::numeric_limits<float>::quiet_NaN();
        ref[m * ldc + n] = 0.f;
      }
  SgemmReference(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta,
                 ref.data(), ldc);
  Sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc,
        c.threads);
  double worst = 0;
  for (int64_t m = 0; m < c.M; ++m) {
    for (int64_t n = 0; n < c.N; ++n) {
      float got = C[m * ldc + n];
      REQUIRE(std::isfinite(got));
      worst = std::max(worst, static_cast<double>(std::fabs(got - ref[m * ldc + n])));
    }
    // Padding between rows is left alone.
    for (int64_t n = c.N; n < ldc && m + 1 < c.M; ++n) REQUIRE(C[m * ldc + n] == ref[m * ldc + n]);
  }
  const double budget = 1e-5 + 4e-7 * static_cast<double>(c.K) * std::fabs(c.alpha);
  INFO("M=" << c.M << " N=" << c.N << " K=" << c.K << " ta=" << c.ta << " tb=" << c.tb
            << " pad=" << c.pad << " alpha=" << c.alpha << " beta=" << c.beta
            << " threads=" << c.threads << " backend=" << GemmBackendName());
  CHECK(worst <= budget);
}

}  // namespace

TEST_CASE("Sgemm matches the reference loop for every backend, shape, transpose and stride") {
  std::mt19937 rng(7);
  const GemmBackend backends[] = {GemmBackend::Eigen, GemmBackend::OpenBlas, GemmBackend::Dnnl,
                                  GemmBackend::Auto};
  const int64_t ms[] = {1, 2, 7, 75, 131};
  const int64_t ns[] = {1, 3, 17, 144, 257};
  const int64_t ks[] = {1, 5, 64, 300};
  int cases = 0;
  for (GemmBackend b : backends) {
    if (!SetGemmBackend(b)) continue;
    for (int64_t M : ms)
      for (int64_t N : ns)
        for (int64_t K : ks) {
          // Vary the other parameters with the shape so every combination is covered somewhere.
          int v = static_cast<int>((M * 31 + N * 17 + K * 7 + cases) % 16);
          SgemmCase c{(v & 1) != 0, (v & 2) != 0, M, N, K, (v & 4) ? 3 : 0,
                      (v & 8) ? 0.5f : 1.f, (v % 3 == 0) ? 0.f : (v % 3 == 1 ? 1.f : -0.75f),
                      (v % 5 == 0) ? 1 : 2};
          CheckSgemm(c, rng);
          ++cases;
        }
    // A large product so that the two-thread split really runs.
    for (int t = 0; t < 4; ++t)
      CheckSgemm({(t & 1) != 0, (t & 2) != 0, 300, 256, 1024, 0, 1.f, 0.f, 2}, rng);
  }
  SetGemmBackend(GemmBackend::Auto);
  CHECK(cases >= 100);
}

TEST_CASE("Sgemm honors K == 0 and beta") {
  std::vector<float> C = {1, 2, 3, 4};
  Sgemm(false, false, 2, 2, 0, 1.f, nullptr, 1, nullptr, 2, 2.f, C.data(), 2, 1);
  CHECK(C == std::vector<float>{2, 4, 6, 8});
  Sgemm(false, false, 2, 2, 0, 1.f, nullptr, 1, nullptr, 2, 0.f, C.data(), 2, 1);
  CHECK(C == std::vector<float>{0, 0, 0, 0});
}

namespace {

struct IgemmCase {
  int64_t M, N, K;
  bool a_signed, b_signed;
  bool per_column, per_row;
  int threads;
  int fill;  // 0 random, 1 extreme (saturating pair sums), 2 extreme with zero points,
             // 3 7-bit weights, 4 7-bit weights at their extremes
};

void CheckIgemm(const IgemmCase& c, std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> A(c.M * c.K), B(c.K * c.N);
  for (auto& v : A) v = static_cast<uint8_t>(byte(rng));
  for (auto& v : B) v = static_cast<uint8_t>(byte(rng));
  if (c.fill >= 1) {
    // A at its maximum, B at its most negative: naive u8*s8 int16 pair sums would saturate.
    for (auto& v : A) v = c.a_signed ? 0x80 : 0xFF;
    for (auto& v : B) v = c.b_signed ? 0x80 : 0xFF;
  }
  auto zp = [&](bool is_signed) {
    int v = byte(rng);
    return is_signed ? static_cast<int32_t>(static_cast<int8_t>(v)) : static_cast<int32_t>(v);
  };
  std::vector<int32_t> a_zero(c.per_row ? c.M : 1), b_zero(c.per_column ? c.N : 1);
  for (auto& z : a_zero) z = c.fill == 1 ? 0 : zp(c.a_signed);
  for (auto& z : b_zero) z = c.fill == 1 ? 0 : zp(c.b_signed);
  if (c.fill == 2) {
    for (auto& z : a_zero) z = c.a_signed ? 127 : 0;
    for (auto& z : b_zero) z = c.b_signed ? 127 : 0;
  }
  if (c.fill >= 3) {
    // 7-bit weights: every B - b_zero in [-64, 64] (the exact u8 x s8 path); fill 4 puts them
    // at the extremes with A at its maximum, the largest int16 pair sums that path can see.
    std::uniform_int_distribution<int> r7(-64, 64);
    const int lo = c.b_signed ? -128 : 0, hi = c.b_signed ? 127 : 255;
    for (int64_t k = 0; k < c.K; ++k)
      for (int64_t n = 0; n < c.N; ++n) {
        int z = b_zero[c.per_column ? n : 0];
        int r = c.fill == 4 ? ((k + n) % 3 == 0 ? -64 : 64) : r7(rng);
        int v = std::min(hi, std::max(lo, z + r));
        B[k * c.N + n] = static_cast<uint8_t>(v);
      }
    if (c.fill == 4)
      for (auto& v : A) v = c.a_signed ? 0x7F : 0xFF;
  }
  std::vector<int32_t> ref(c.M * c.N), got(c.M * c.N, -7);
  // The reference takes one A zero point; per-row runs row by row.
  for (int64_t m = 0; m < c.M; ++m)
    IgemmReference(1, c.N, c.K, A.data() + m * c.K, c.a_signed, a_zero[c.per_row ? m : 0],
                   B.data(), c.b_signed, b_zero.data(), c.per_column, ref.data() + m * c.N);
  PackedIgemmB packed = PackIgemmB(c.K, c.N, B.data(), c.b_signed, b_zero.data(), c.per_column);
#if defined(__AVX2__)
  if (c.fill >= 3) CHECK(packed.u8s8);
  if (c.fill == 1 && c.K > 0) CHECK(!packed.u8s8);
#endif
  if (c.per_row)
    IgemmPackedPerRow(c.M, A.data(), c.a_signed, a_zero.data(), packed, got.data(), c.N,
                      c.threads);
  else
    IgemmPacked(c.M, A.data(), c.a_signed, a_zero[0], packed, got.data(), c.N, c.threads);
  INFO("M=" << c.M << " N=" << c.N << " K=" << c.K << " a_signed=" << c.a_signed
            << " b_signed=" << c.b_signed << " per_column=" << c.per_column
            << " per_row=" << c.per_row << " threads=" << c.threads << " fill=" << c.fill);
  CHECK(got == ref);
  if (!c.per_row) {
    std::vector<int32_t> got2(c.M * c.N, -7);
    Igemm(c.M, c.N, c.K, A.data(), c.a_signed, a_zero[0], B.data(), c.b_signed, b_zero.data(),
          c.per_column, got2.data(), c.threads);
    CHECK(got2 == ref);
  }
}

}  // namespace

TEST_CASE("Igemm is bit-exact against the reference loop") {
  std::mt19937 rng(11);
  const int64_t ms[] = {1, 2, 5, 6, 7, 13, 75};
  const int64_t ns[] = {1, 15, 16, 17, 33, 144};
  const int64_t ks[] = {1, 2, 3, 31, 64, 257};
  int cases = 0;
  for (int64_t M : ms)
    for (int64_t N : ns)
      for (int64_t K : ks) {
        int v = static_cast<int>((M * 13 + N * 7 + K * 3 + cases) % 32);
        CheckIgemm({M, N, K, (v & 1) != 0, (v & 2) == 0, (v & 4) != 0, (v & 8) != 0,
                    (v & 16) ? 2 : 1, cases % 7 == 0 ? 1 : (cases % 11 == 0 ? 2 : 0)},
                   rng);
        ++cases;
      }
  // Every signedness combination at the extremes, and large products that split over threads.
  for (int s = 0; s < 4; ++s) {
    CheckIgemm({9, 40, 1024, (s & 1) != 0, (s & 2) != 0, false, false, 1, 1}, rng);
    CheckIgemm({9, 40, 1023, (s & 1) != 0, (s & 2) != 0, true, true, 1, 2}, rng);
    CheckIgemm({75, 256, 256, (s & 1) != 0, (s & 2) != 0, s == 1, false, 2, 0}, rng);  // rows split
    CheckIgemm({9, 256, 1024, (s & 1) != 0, (s & 2) != 0, false, s == 1, 2, 0}, rng);  // panels split
  }
}

TEST_CASE("Igemm's 7-bit-weight (u8 x s8) path is bit-exact too") {
  std::mt19937 rng(13);
  const int64_t ms[] = {1, 3, 6, 7, 75};
  const int64_t ns[] = {1, 16, 17, 40};
  const int64_t ks[] = {1, 3, 4, 5, 63, 256};
  int cases = 0;
  for (int64_t M : ms)
    for (int64_t N : ns)
      for (int64_t K : ks) {
        int v = static_cast<int>((M * 5 + N * 3 + K + cases) % 32);
        CheckIgemm({M, N, K, (v & 1) != 0, (v & 2) == 0, (v & 4) != 0, (v & 8) != 0,
                    (v & 16) ? 2 : 1, cases % 3 == 0 ? 4 : 3},
                   rng);
        ++cases;
      }
  for (int s = 0; s < 4; ++s)
    CheckIgemm({75, 256, 1024, (s & 1) != 0, (s & 2) != 0, s == 2, s == 3, 2, 3 + (s & 1)}, rng);
}

TEST_CASE("Igemm wraps around in int32 exactly like the reference on overflow") {
  // 255 * 255 * 2 * 20000 overflows int32; both paths must agree modulo 2^32.
  std::mt19937 rng(3);
  CheckIgemm({2, 3, 40000, false, false, false, false, 1, 2}, rng);
}

TEST_CASE("gemm_backend_name names the fp32 backend and the int8 kernel") {
  std::string name = GemmBackendName();
  CHECK(name.find("fp32:") != std::string::npos);
  CHECK(name.find("int8:") != std::string::npos);
  CHECK(SetGemmBackend(GemmBackend::Eigen));
  CHECK(std::string(GemmBackendName()).find("fp32:eigen") != std::string::npos);
  SetGemmBackend(GemmBackend::Auto);
}

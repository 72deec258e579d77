#include "runtime/kernels/vmath.h"

#include <algorithm>
#include <cmath>

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace asrc::runtime::vm {

#ifdef __AVX2__
namespace {

// Cephes-style expf: exp(x) = 2^n * exp(r), r = x - n ln2, |r| <= ln2/2, degree-6 polynomial.
// Edges as expf: NaN stays NaN (the clamp's operand order lets it through: max/min return their
// second operand when one is NaN), 0 below -87.3 (expf's denormals flushed), inf above ln(FLT_MAX).
inline __m256 Exp8(__m256 x0) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  __m256 x = _mm256_min_ps(_mm256_set1_ps(88.3762626647949f), _mm256_max_ps(lo, x0));
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500E-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
  __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  __m256i n = _mm256_cvtps_epi32(fx);
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
  __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x0, lo, _CMP_LT_OQ));
  return _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY),
                          _mm256_cmp_ps(x0, _mm256_set1_ps(88.72283935546875f), _CMP_GT_OQ));
}

inline __m256 Sigmoid8(__m256 x) {
  __m256 e = Exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

// tanh(x) = 1 - 2 / (exp(2x) + 1); near zero (|x| < 0.0625) an odd Taylor polynomial keeps the
// relative error small where the subtraction would cancel.
inline __m256 Tanh8(__m256 x) {
  __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.f), x);
  __m256 e = Exp8(_mm256_add_ps(x, x));
  __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.f),
                             _mm256_div_ps(_mm256_set1_ps(2.f), _mm256_add_ps(e, _mm256_set1_ps(1.f))));
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-17.f / 315.f), _mm256_set1_ps(2.f / 15.f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.f / 3.f));
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, x2), x, x);
  return _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.0625f), _CMP_LT_OQ));
}

// erf: below |x| = 0.5 its Taylor series to x^13 (relative error < 1e-7); above, Abramowitz &
// Stegun 7.1.26, 1 - t (a1 + a2 t + ... + a5 t^4) exp(-x^2) with t = 1 / (1 + p |x|) (absolute
// error < 1.5e-7); odd.
inline __m256 Erf8(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.f));
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.f), x);
  const __m256 one = _mm256_set1_ps(1.f);
  __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(ax, _mm256_set1_ps(0.3275911f), one));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  p = _mm256_mul_ps(p, t);
  const __m256 x2 = _mm256_mul_ps(ax, ax);
  const __m256 big = _mm256_fnmadd_ps(p, Exp8(_mm256_sub_ps(_mm256_setzero_ps(), x2)), one);
  constexpr float k = 1.1283791670955126f;  // 2 / sqrt(pi)
  __m256 s = _mm256_set1_ps(k / 9360.f);
  s = _mm256_fmadd_ps(s, x2, _mm256_set1_ps(-k / 1320.f));
  s = _mm256_fmadd_ps(s, x2, _mm256_set1_ps(k / 216.f));
  s = _mm256_fmadd_ps(s, x2, _mm256_set1_ps(-k / 42.f));
  s = _mm256_fmadd_ps(s, x2, _mm256_set1_ps(k / 10.f));
  s = _mm256_fmadd_ps(s, x2, _mm256_set1_ps(-k / 3.f));
  s = _mm256_fmadd_ps(s, x2, _mm256_set1_ps(k));
  const __m256 small = _mm256_mul_ps(s, ax);
  const __m256 r = _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.5f), _CMP_LT_OQ));
  return _mm256_or_ps(r, sign);
}

inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

template <class F>
inline void Apply(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {};
    for (int64_t j = i; j < n; ++j) buf[j - i] = x[j];
    __m256 r = f(_mm256_load_ps(buf));
    _mm256_store_ps(buf, r);
    for (int64_t j = i; j < n; ++j) y[j] = buf[j - i];
  }
}

}  // namespace

void Exp(const float* x, float* y, int64_t n) { Apply(x, y, n, Exp8); }
void Sigmoid(const float* x, float* y, int64_t n) { Apply(x, y, n, Sigmoid8); }
void Tanh(const float* x, float* y, int64_t n) { Apply(x, y, n, Tanh8); }
void Erf(const float* x, float* y, int64_t n) { Apply(x, y, n, Erf8); }
void Silu(const float* x, float* y, int64_t n) {
  Apply(x, y, n, [](__m256 v) { return _mm256_mul_ps(v, Sigmoid8(v)); });
}

float ExpShiftSum(const float* x, float* y, int64_t n, float shift) {
  __m256 s = _mm256_set1_ps(shift), acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    _mm256_storeu_ps(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float total = HSum(acc);
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] - shift);
    total += y[i];
  }
  return total;
}

float Max(const float* x, int64_t n) {
  float m = -INFINITY;
  int64_t i = 0;
  if (n >= 8) {
    __m256 v = _mm256_loadu_ps(x);
    for (i = 8; i + 8 <= n; i += 8) v = _mm256_max_ps(v, _mm256_loadu_ps(x + i));
    alignas(32) float b[8];
    _mm256_store_ps(b, v);
    for (float f : b) m = std::max(m, f);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

float Sum(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
  float s = HSum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += x[i];
  return s;
}

float SumSq(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_fmadd_ps(v0, v0, a0);
    a1 = _mm256_fmadd_ps(v1, v1, a1);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    a0 = _mm256_fmadd_ps(v, v, a0);
  }
  float s = HSum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

#else  // portable

float SumSq(const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

void Exp(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
void Sigmoid(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 1.f / (1.f + std::exp(-x[i]));
}
void Tanh(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}
void Erf(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::erf(x[i]);
}
void Silu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float s = 1.f / (1.f + std::exp(-x[i]));
    y[i] = x[i] * s;
  }
}
float ExpShiftSum(const float* x, float* y, int64_t n, float shift) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - shift);
    s += y[i];
  }
  return s;
}
float Max(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}
float Sum(const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

#endif

void Scale(float* y, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

}  // namespace asrc::runtime::vm

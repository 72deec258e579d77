// Vectorized float math for the hot elementwise kernels (AVX2+FMA when compiled for it, plain
// loops otherwise). Accuracy: exp within ~2 ulp on [-87, 88] (inputs clamped there); sigmoid and
// tanh within ~1e-7 absolute. Tested against <cmath> in tests/runtime/kernels_test.cc.
#pragma once

#include <cstdint>

namespace asrc::runtime::vm {

void Exp(const float* x, float* y, int64_t n);
void Sigmoid(const float* x, float* y, int64_t n);
void Tanh(const float* x, float* y, int64_t n);
// erf within 3e-7 absolute and 1e-6 relative.
void Erf(const float* x, float* y, int64_t n);
// y = x * Sigmoid(x), each factor rounded as Sigmoid() and a separate multiply would round it.
void Silu(const float* x, float* y, int64_t n);
// y[i] = exp(x[i] - shift); returns the sum of y.
float ExpShiftSum(const float* x, float* y, int64_t n, float shift);
float Max(const float* x, int64_t n);
float Sum(const float* x, int64_t n);
float SumSq(const float* x, int64_t n);
void Scale(float* y, int64_t n, float s);

}  // namespace asrc::runtime::vm

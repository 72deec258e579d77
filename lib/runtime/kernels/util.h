// Helpers shared by the kernel files: dtype dispatch, broadcasting, int64 views, axes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/tensor.h"
#include "runtime/kernel.h"

namespace asrc::runtime::ku {

using ir::DType;
using ir::Shape;
using ir::Tensor;

template <DType D> struct CType;
template <> struct CType<DType::Float32> { using T = float; };
template <> struct CType<DType::Float64> { using T = double; };
template <> struct CType<DType::Int8> { using T = int8_t; };
template <> struct CType<DType::Uint8> { using T = uint8_t; };
template <> struct CType<DType::Int16> { using T = int16_t; };
template <> struct CType<DType::Uint16> { using T = uint16_t; };
template <> struct CType<DType::Int32> { using T = int32_t; };
template <> struct CType<DType::Int64> { using T = int64_t; };
template <> struct CType<DType::Uint32> { using T = uint32_t; };
template <> struct CType<DType::Uint64> { using T = uint64_t; };
template <> struct CType<DType::Bool> { using T = bool; };

// Calls fn(T{}) with the C++ type of a numeric dtype; returns false for others (float16, string).
template <class F>
bool DispatchNumeric(DType d, F&& fn) {
  switch (d) {
    case DType::Float32: fn(float{}); return true;
    case DType::Float64: fn(double{}); return true;
    case DType::Int8: fn(int8_t{}); return true;
    case DType::Uint8: fn(uint8_t{}); return true;
    case DType::Int16: fn(int16_t{}); return true;
    case DType::Uint16: fn(uint16_t{}); return true;
    case DType::Int32: fn(int32_t{}); return true;
    case DType::Int64: fn(int64_t{}); return true;
    case DType::Uint32: fn(uint32_t{}); return true;
    case DType::Uint64: fn(uint64_t{}); return true;
    default: return false;
  }
}
template <class F>
bool DispatchNumericOrBool(DType d, F&& fn) {
  if (d == DType::Bool) {
    fn(bool{});
    return true;
  }
  return DispatchNumeric(d, std::forward<F>(fn));
}

inline Status DTypeError(const char* op, DType d) {
  return Error(std::string("unsupported dtype ") + ir::DTypeName(d) + " for op '" + op + "'");
}

// DTypeError unless `t` has a fixed element size (the byte-copying kernels serve every such dtype).
inline Status NeedFixedSize(const Tensor& t, const char* op) {
  if (ir::DTypeSize(t.dtype()) == 0) return DTypeError(op, t.dtype());
  return Status::Ok();
}

// For kernels that take float32, float16 and float64 only.
inline Status FloatDTypeError(const char* op, DType d) {
  return Error(std::string("unsupported dtype ") + ir::DTypeName(d) + " for op '" + op +
               "' (supported: float32, float16, float64)");
}

// What a kernel factory returns, and a kernel of class K made from its constructor arguments.
using KernelPtr = Result<std::unique_ptr<Kernel>>;
template <class K, class... A>
KernelPtr Make(A&&... a) {
  return std::unique_ptr<Kernel>(std::make_unique<K>(std::forward<A>(a)...));
}

// Wraps a kernel factory so that planning fails, naming the missing input, unless the node has
// its first n inputs (not omitted): kernels may then read them without null checks.
KernelFactory NeedInputs(int n, KernelFactory f);

// Integer tensor (int32/int64) as int64 values.
Result<std::vector<int64_t>> Int64s(const Tensor& t);
// Scalar of any numeric dtype as double.
Result<double> ScalarAsDouble(const Tensor& t);
// Scalar of any numeric dtype as int64: int32/int64 exactly, others through CheckedInt64 (an
// error naming `what` for NaN, infinity or a value beyond int64).
Result<int64_t> ScalarAsInt64(const Tensor& t, const std::string& what);
// Split sizes read from a tensor or attribute: each non-negative and together exactly `dim` (an
// error otherwise; summed without signed overflow).
Status CheckSplitSizes(const std::vector<int64_t>& sizes, int64_t dim);
// Normalizes an axis in [-rank, rank) into [0, rank). A scalar (rank 0) has no axis: an error,
// so a kernel may index its shape with the result.
Result<int> NormAxis(int64_t axis, int rank);
// As NormAxis, but a scalar takes axis 0 or -1 as 0: for kernels that treat a scalar as one
// element along a unit axis and never index its (empty) shape.
Result<int> NormAxisOrScalar(int64_t axis, int rank);
Result<Shape> BroadcastShape(const Shape& a, const Shape& b);
// Strides of `in` as seen from `out` (right-aligned, 0 on broadcast dims), length out.size().
std::vector<int64_t> BroadcastStrides(const Shape& in, const Shape& out);
// For each item of `out` (row-major), the flat index of the item of `in` that broadcasts to it.
std::vector<int64_t> BroadcastItems(const Shape& in, const Shape& out);
std::vector<int64_t> Strides(const Shape& s);
// Slice's window on a tensor of shape `in` (ONNX Slice semantics: negative indices, clamping,
// negative steps; axes and steps may be empty): output shape, first index and step per dim.
Status SliceGeometry(const Shape& in, const std::vector<int64_t>& starts,
                     const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                     std::vector<int64_t> steps, Shape* out_shape, std::vector<int64_t>* begin,
                     std::vector<int64_t>* step);

// Before sizing scratch that is not a Tensor (a std::vector, a list of sequence items) from a
// tensor's values or from a product of dims that may be huge on an empty tensor ([2^40, 0]): an
// error naming `what` when `count` items of `item_bytes` are negative or over the memory budget
// (as a Tensor of that size would be), instead of std::bad_alloc, or libFuzzer's out-of-memory.
Status CheckScratch(int64_t count, size_t item_bytes, const std::string& what);

// Float16 <-> float32 whole-tensor conversions (fresh tensors).
Tensor HalfToFloat(const Tensor& t);
Tensor FloatToHalf(const Tensor& t);
// A float tensor as float32 (float16 and float64 converted; float32 shared, not copied); for any
// other dtype FloatDTypeError naming `op`, so no kernel reads a null data<float>() through it.
Result<Tensor> AsFloat(const Tensor& t, const char* op);
// Stores float32 `y` as output i of dtype `dt` (converted for float16/float64; shared for float32).
Status FromFloat(KernelContext& ctx, int i, DType dt, const Tensor& y);
inline bool IsFloatish(DType d) {
  return d == DType::Float32 || d == DType::Float16 || d == DType::Float64;
}
// Generic element conversion between any numeric/bool/float16 dtypes.
Status ConvertInto(const Tensor& in, Tensor& out);

// memcpy / memmove / memset that do nothing for 0 bytes: an empty tensor's or vector's data may
// be null, and the C functions are undefined on a null pointer even for 0 bytes (onnx_run_fuzzer,
// UBSan). Every kernel copies through these.
inline void CopyBytes(void* dst, const void* src, size_t n) {
  if (n) std::memcpy(dst, src, n);
}
inline void MoveBytes(void* dst, const void* src, size_t n) {
  if (n) std::memmove(dst, src, n);
}
inline void SetBytes(void* dst, int value, size_t n) {
  if (n) std::memset(dst, value, n);
}

// A double from a tensor or an attribute used as a count, size, index, depth or seed, as int64
// (truncated toward zero, as a cast): an error naming `what` when it is NaN, infinite or beyond
// int64's range, where the plain cast is undefined behaviour.
Result<int64_t> CheckedInt64(double d, const std::string& what);
// A coordinate clamped into [lo, hi] before the cast (NaN goes to lo): for positions that are
// clamped into a tensor anyway, however far outside (or NaN) the computed value is.
inline int64_t ClampToInt64(double d, int64_t lo, int64_t hi) {
  if (!(d > static_cast<double>(lo))) return lo;
  if (d >= static_cast<double>(hi)) return hi;
  return static_cast<int64_t>(d);
}

// A double as integer T: NaN is 0 and values beyond T's range saturate, where a plain cast is
// undefined behaviour. Other T: a plain cast.
template <class T>
T SaturateCast(double d) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (d != d) return T(0);
    if (d >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    if (d <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
  }
  return static_cast<T>(d);
}

// Integer +, -, *, negation and division that wrap around in two's complement, as ONNX Runtime's
// do, instead of C++'s undefined signed overflow (onnx_run_fuzzer: an int64 Mul under UBSan);
// the arithmetic runs in uint64_t, where wrapping is defined. Division by 0 gives 0, and
// lowest / -1 wraps to lowest (x86 traps on it). Floating point and bool: the plain operators.
template <class T>
constexpr bool kWrapInt = std::is_integral_v<T> && !std::is_same_v<T, bool>;
template <class T>
T WrapAdd(T a, T b) {
  if constexpr (kWrapInt<T>) return static_cast<T>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  else return static_cast<T>(a + b);
}
template <class T>
T WrapSub(T a, T b) {
  if constexpr (kWrapInt<T>) return static_cast<T>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
  else return static_cast<T>(a - b);
}
template <class T>
T WrapMul(T a, T b) {
  if constexpr (kWrapInt<T>) return static_cast<T>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  else return static_cast<T>(a * b);
}
template <class T>
T WrapNeg(T a) {
  if constexpr (kWrapInt<T>) return static_cast<T>(uint64_t{0} - static_cast<uint64_t>(a));
  else return static_cast<T>(-a);
}
template <class T>
T WrapDiv(T a, T b) {
  if constexpr (kWrapInt<T>) {
    if (b == 0) return T(0);
    if constexpr (std::is_signed_v<T>)
      if (b == T(-1)) return WrapNeg(a);
  }
  return static_cast<T>(a / b);
}

// Iterates the broadcast of inputs to `out` shape, calling fn(out_index, offsets, inner_strides,
// len) once per innermost row, in row-major order, for rows [row_begin, row_end) of the
// out.back()-long rows (all of them by default). N inputs.
template <int N, class F>
void BroadcastLoop(const Shape& out, const std::vector<const Shape*>& ins, F&& fn,
                   int64_t row_begin = 0, int64_t row_end = -1) {
  int r = static_cast<int>(out.size());
  int64_t total = ir::ShapeNumel(out);
  if (total <= 0) return;
  std::vector<int64_t> st[N];
  for (int k = 0; k < N; ++k) st[k] = BroadcastStrides(*ins[k], out);
  if (r == 0) {
    int64_t off[N] = {};
    int64_t zero_st[N] = {};
    if (row_begin == 0 && row_end != 0) fn(int64_t{0}, off, zero_st, int64_t{1});
    return;
  }
  int64_t inner = out[r - 1];
  const int64_t rows = total / inner;
  if (row_end < 0 || row_end > rows) row_end = rows;
  if (row_begin >= row_end) return;
  int64_t inner_st[N];
  for (int k = 0; k < N; ++k) inner_st[k] = st[k][r - 1];
  // The index and offsets of row row_begin.
  std::vector<int64_t> idx(r, 0);
  int64_t off[N] = {};
  for (int64_t d = r - 2, rest = row_begin; d >= 0; --d) {
    idx[d] = rest % out[d];
    rest /= out[d];
    for (int k = 0; k < N; ++k) off[k] += idx[d] * st[k][d];
  }
  for (int64_t o = row_begin * inner, oe = row_end * inner; o < oe; o += inner) {
    fn(o, off, inner_st, inner);
    for (int d = r - 2; d >= 0; --d) {
      if (++idx[d] < out[d]) {
        for (int k = 0; k < N; ++k) off[k] += st[k][d];
        break;
      }
      for (int k = 0; k < N; ++k) off[k] -= st[k][d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

// Calls fn(begin, end) on ranges covering [0, n) of an elementwise loop, over ctx's pool when
// n is at least 2 * `grain` (a part below `grain` elements costs more to hand over than to
// run); range bounds are multiples of 16 (whole 64-byte vectors) except n.
void ParallelElements(const KernelContext& ctx, int64_t n, int64_t grain,
                      const std::function<void(int64_t, int64_t)>& fn);

// out = a + b with the Add kernel's semantics (numpy broadcasting, every dtype Add takes; out
// allocated through ctx when it is non-null). Defined in kernels/elementwise.cc.
Status AddTensors(const Tensor& a, const Tensor& b, Tensor& out, KernelContext* ctx);

}  // namespace asrc::runtime::ku

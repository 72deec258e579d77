// Elementwise kernels with numpy broadcasting: unary math, binary arithmetic, comparisons,
// logic, variadic Sum/Mean/Max/Min, Where, Clip, Cast. Float16 runs through float32.
#include <algorithm>
#include <cmath>
#include <functional>

#include "runtime/kernels/util.h"
#include "runtime/kernels/vmath.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {
namespace {

using namespace ku;

enum class Bin { Add, Sub, Mul, Div, Pow, Mod, FMod, Max, Min, Eq, Gt, Ge, Lt, Le, And, Or, Xor,
                 ShiftL, ShiftR, BitAnd, BitOr, BitXor };

bool IsBitwise(Bin op) { return op == Bin::BitAnd || op == Bin::BitOr || op == Bin::BitXor; }
bool IsIntegerDType(DType d) {
  return d == DType::Int8 || d == DType::Uint8 || d == DType::Int16 || d == DType::Uint16 ||
         d == DType::Int32 || d == DType::Uint32 || d == DType::Int64 || d == DType::Uint64;
}

bool IsCompare(Bin op) {
  return op == Bin::Eq || op == Bin::Gt || op == Bin::Ge || op == Bin::Lt || op == Bin::Le;
}
bool IsLogic(Bin op) { return op == Bin::And || op == Bin::Or || op == Bin::Xor; }

// Elements per part when a binary op splits over the pool: an add is a fraction of a
// nanosecond per element, so a part must be large for the hand-over to pay.
constexpr int64_t kBinaryGrain = 16 * 1024;

// out = f(a, b) with numpy broadcasting; over ctx's pool (when given) in ranges of whole
// elements (equal shapes, a scalar side) or whole innermost rows (general broadcasts).
template <class T, class R, class F>
void BinaryLoop(const Tensor& a, const Tensor& b, Tensor& out, F f, const KernelContext* ctx) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  R* po = out.data<R>();
  int64_t n = out.numel();
  const bool split = ctx && ctx->pool && ctx->threads > 1 && n >= 2 * kBinaryGrain;
  auto elements = [&](auto body) {
    if (split) ParallelElements(*ctx, n, kBinaryGrain, body);
    else body(0, n);  // no std::function (and its allocation) for the many small ops
  };
  if (a.shape() == b.shape()) {
    elements([&](int64_t i0, int64_t i1) { for (int64_t i = i0; i < i1; ++i) po[i] = f(pa[i], pb[i]); });
  } else if (b.numel() == 1 && a.numel() == n) {
    const T bv = pb[0];
    elements([&](int64_t i0, int64_t i1) { for (int64_t i = i0; i < i1; ++i) po[i] = f(pa[i], bv); });
  } else if (a.numel() == 1 && b.numel() == n) {
    const T av = pa[0];
    elements([&](int64_t i0, int64_t i1) { for (int64_t i = i0; i < i1; ++i) po[i] = f(av, pb[i]); });
  } else {
    auto row = [&](int64_t o, const int64_t* off, const int64_t* st, int64_t len) {
      const T* xa = pa + off[0];
      const T* xb = pb + off[1];
      R* y = po + o;
      if (st[0] == 1 && st[1] == 1) {
        for (int64_t j = 0; j < len; ++j) y[j] = f(xa[j], xb[j]);
      } else if (st[0] == 1 && st[1] == 0) {
        const T bv = xb[0];
        for (int64_t j = 0; j < len; ++j) y[j] = f(xa[j], bv);
      } else if (st[0] == 0 && st[1] == 1) {
        const T av = xa[0];
        for (int64_t j = 0; j < len; ++j) y[j] = f(av, xb[j]);
      } else {
        for (int64_t j = 0; j < len; ++j) y[j] = f(xa[j * st[0]], xb[j * st[1]]);
      }
    };
    const int64_t inner = out.shape().empty() ? 1 : std::max<int64_t>(1, out.shape().back());
    auto rows = [&](int64_t r0, int64_t r1) { BroadcastLoop<2>(out.shape(), {&a.shape(), &b.shape()}, row, r0, r1); };
    if (split)
      ctx->pool->ParallelFor(n / inner, std::max<int64_t>(1, kBinaryGrain / inner), rows);
    else
      rows(0, -1);
  }
}

template <class T>
T PyMod(T x, T y) {
  if constexpr (std::is_integral_v<T>) {
    if (y == 0) return 0;
    if constexpr (std::is_signed_v<T>)
      if (y == T(-1)) return 0;  // lowest % -1 is undefined in C++
    T r = static_cast<T>(x % y);
    if constexpr (std::is_signed_v<T>) {
      if (r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
    }
    return r;
  } else {
    T r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
  }
}

template <class T>
Status BinaryTyped(Bin op, const Tensor& a, const Tensor& b, Tensor& out, const KernelContext* ctx) {
  switch (op) {
    case Bin::Add: BinaryLoop<T, T>(a, b, out, [](T x, T y) { return WrapAdd(x, y); }, ctx); break;
    case Bin::Sub: BinaryLoop<T, T>(a, b, out, [](T x, T y) { return WrapSub(x, y); }, ctx); break;
    case Bin::Mul: BinaryLoop<T, T>(a, b, out, [](T x, T y) { return WrapMul(x, y); }, ctx); break;
    case Bin::Div: BinaryLoop<T, T>(a, b, out, [](T x, T y) { return WrapDiv(x, y); }, ctx); break;
    case Bin::Pow:
      BinaryLoop<T, T>(a, b, out, [](T x, T y) {
        return SaturateCast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
      }, ctx);
      break;
    case Bin::Mod: BinaryLoop<T, T>(a, b, out, [](T x, T y) { return PyMod(x, y); }, ctx); break;
    case Bin::FMod:
      if constexpr (std::is_integral_v<T>)
        BinaryLoop<T, T>(a, b, out, [](T x, T y) {
          return y == 0 || (std::is_signed_v<T> && y == T(-1)) ? T(0) : static_cast<T>(x % y);  // lowest % -1: UB
        }, ctx);
      else
        BinaryLoop<T, T>(a, b, out, [](T x, T y) { return static_cast<T>(std::fmod(x, y)); }, ctx);
      break;
    case Bin::Max:
      if constexpr (std::is_floating_point_v<T>)
        BinaryLoop<T, T>(a, b, out, [](T x, T y) { return std::isnan(x) || std::isnan(y) ? x + y : (x > y ? x : y); }, ctx);
      else
        BinaryLoop<T, T>(a, b, out, [](T x, T y) { return x > y ? x : y; }, ctx);
      break;
    case Bin::Min:
      if constexpr (std::is_floating_point_v<T>)
        BinaryLoop<T, T>(a, b, out, [](T x, T y) { return std::isnan(x) || std::isnan(y) ? x + y : (x < y ? x : y); }, ctx);
      else
        BinaryLoop<T, T>(a, b, out, [](T x, T y) { return x < y ? x : y; }, ctx);
      break;
    case Bin::Eq: BinaryLoop<T, bool>(a, b, out, [](T x, T y) { return x == y; }, ctx); break;
    case Bin::Gt: BinaryLoop<T, bool>(a, b, out, [](T x, T y) { return x > y; }, ctx); break;
    case Bin::Ge: BinaryLoop<T, bool>(a, b, out, [](T x, T y) { return x >= y; }, ctx); break;
    case Bin::Lt: BinaryLoop<T, bool>(a, b, out, [](T x, T y) { return x < y; }, ctx); break;
    case Bin::Le: BinaryLoop<T, bool>(a, b, out, [](T x, T y) { return x <= y; }, ctx); break;
    case Bin::And: BinaryLoop<T, bool>(a, b, out, [](T x, T y) { return x && y; }, ctx); break;
    case Bin::Or: BinaryLoop<T, bool>(a, b, out, [](T x, T y) { return x || y; }, ctx); break;
    case Bin::Xor: BinaryLoop<T, bool>(a, b, out, [](T x, T y) { return bool(x) != bool(y); }, ctx); break;
    case Bin::ShiftL:
      if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && !std::is_same_v<T, bool>)
        BinaryLoop<T, T>(a, b, out, [](T x, T y) { return y >= sizeof(T) * 8 ? T(0) : static_cast<T>(x << y); }, ctx);
      break;
    case Bin::ShiftR:
      if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && !std::is_same_v<T, bool>)
        BinaryLoop<T, T>(a, b, out, [](T x, T y) { return y >= sizeof(T) * 8 ? T(0) : static_cast<T>(x >> y); }, ctx);
      break;
    case Bin::BitAnd: case Bin::BitOr: case Bin::BitXor:
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
        BinaryLoop<T, T>(a, b, out, [op](T x, T y) {
          return static_cast<T>(op == Bin::BitAnd ? (x & y) : op == Bin::BitOr ? (x | y) : (x ^ y));
        }, ctx);
      break;
  }
  return Status::Ok();
}

const char* BinName(Bin op) {
  static const char* names[] = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Mod", "Max", "Min",
                                "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual",
                                "And", "Or", "Xor", "BitShift", "BitShift", "BitwiseAnd",
                                "BitwiseOr", "BitwiseXor"};
  return names[static_cast<int>(op)];
}

// out = a op b (out freshly allocated through ctx when ctx is non-null).
Status RunBinary(Bin op, const Tensor& a0, const Tensor& b0, Tensor& out, KernelContext* ctx) {
  const Tensor* a = &a0;
  const Tensor* b = &b0;
  Tensor conv_b;
  if (op == Bin::Pow && b->dtype() != a->dtype()) {
    conv_b = Tensor(a->dtype() == DType::Float16 ? DType::Float32 : a->dtype(), b->shape());
    ASRC_RETURN_IF_ERROR(ConvertInto(*b, conv_b));
    b = &conv_b;
  }
  if (a->dtype() == DType::Float16 || b->dtype() == DType::Float16) {
    if (IsLogic(op)) return DTypeError(BinName(op), DType::Float16);
    Tensor fa = a->dtype() == DType::Float16 ? HalfToFloat(*a) : *a;
    Tensor fb = b->dtype() == DType::Float16 ? HalfToFloat(*b) : *b;
    Tensor fo;
    ASRC_RETURN_IF_ERROR(RunBinary(op, fa, fb, fo, nullptr));
    out = fo.dtype() == DType::Float32 ? FloatToHalf(fo) : fo;
    return Status::Ok();
  }
  if (a->dtype() != b->dtype())
    return Error(std::string(BinName(op)) + ": input dtypes differ (" + ir::DTypeName(a->dtype()) +
                 " vs " + ir::DTypeName(b->dtype()) + ")");
  ASRC_ASSIGN_OR_RETURN(Shape shape, BroadcastShape(a->shape(), b->shape()));
  DType dt = a->dtype();
  DType odt = IsCompare(op) || IsLogic(op) ? DType::Bool : dt;
  if (IsLogic(op) && dt != DType::Bool) return DTypeError(BinName(op), dt);
  if (dt == DType::Bool && !IsLogic(op) && op != Bin::Eq) return DTypeError(BinName(op), dt);
  if (IsBitwise(op) && !IsIntegerDType(dt))
    return Error(std::string("unsupported dtype ") + ir::DTypeName(dt) + " for op '" + BinName(op) +
                 "' (supported: the 8- to 64-bit signed and unsigned integers)");
  if ((op == Bin::ShiftL || op == Bin::ShiftR) &&
      !(dt == DType::Uint8 || dt == DType::Uint16 || dt == DType::Uint32 || dt == DType::Uint64))
    return DTypeError(BinName(op), dt);
  out = ctx ? ctx->NewTensor(odt, shape) : Tensor(odt, shape);
  Status st;
  if (!DispatchNumericOrBool(dt, [&](auto z) { st = BinaryTyped<decltype(z)>(op, *a, *b, out, ctx); }))
    return DTypeError(BinName(op), dt);
  return st;
}

class BinaryKernel : public Kernel {
 public:
  explicit BinaryKernel(Bin op) : op_(op) {}
  Status Run(KernelContext& ctx) override {
    if (!ctx.in(0) || !ctx.in(1)) return Error("needs two inputs");
    return RunBinary(op_, *ctx.in(0), *ctx.in(1), ctx.out(0), &ctx);
  }

 private:
  Bin op_;
};

// Sum, Mean, Max, Min over any number of inputs.
class VariadicKernel : public Kernel {
 public:
  VariadicKernel(Bin op, bool mean) : op_(op), mean_(mean) {}
  Status Run(KernelContext& ctx) override {
    int n = static_cast<int>(ctx.inputs.size());
    if (n == 0 || !ctx.in(0)) return Error("needs at least one input");
    if (SameShapeFloatSum(ctx)) return Status::Ok();
    Tensor acc = *ctx.in(0);
    if (n == 1) {
      ctx.out(0) = acc.Clone();
    } else {
      for (int i = 1; i < n; ++i) {
        if (!ctx.in(i)) continue;
        Tensor next;
        ASRC_RETURN_IF_ERROR(RunBinary(op_, acc, *ctx.in(i), next, nullptr));
        acc = std::move(next);
      }
      ctx.out(0) = std::move(acc);
    }
    if (mean_) {
      Tensor& o = ctx.out(0);
      Tensor d = o.dtype() == DType::Float16 ? HalfToFloat(o) : o;
      if (d.dtype() == DType::Float32)
        for (int64_t i = 0; i < d.numel(); ++i) d.data<float>()[i] /= n;
      else if (d.dtype() == DType::Float64)
        for (int64_t i = 0; i < d.numel(); ++i) d.data<double>()[i] /= n;
      else
        return DTypeError("Mean", d.dtype());
      o = o.dtype() == DType::Float16 ? FloatToHalf(d) : d;
    }
    return Status::Ok();
  }

 private:
  // Sum of float32 inputs of one shape (the gradient builder's accumulations): one pass over a
  // cache-sized block of every input at a time, added in input order as the chain of binary
  // Adds does (same bits), instead of a full-size temporary per input.
  bool SameShapeFloatSum(KernelContext& ctx) {
    const int n = static_cast<int>(ctx.inputs.size());
    if (op_ != Bin::Add || mean_ || n < 2) return false;
    for (int i = 0; i < n; ++i)
      if (!ctx.in(i) || ctx.in(i)->dtype() != DType::Float32 || ctx.in(i)->shape() != ctx.in(0)->shape()) return false;
    const int64_t total = ctx.in(0)->numel();
    float* o = ctx.Alloc(0, DType::Float32, ctx.in(0)->shape()).data<float>();
    constexpr int64_t kBlock = 4096;
    for (int64_t b = 0; b < total; b += kBlock) {
      const int64_t e = std::min(total, b + kBlock);
      const float *x0 = ctx.in(0)->data<float>(), *x1 = ctx.in(1)->data<float>();
      for (int64_t j = b; j < e; ++j) o[j] = x0[j] + x1[j];
      for (int i = 2; i < n; ++i) {
        const float* x = ctx.in(i)->data<float>();
        for (int64_t j = b; j < e; ++j) o[j] += x[j];
      }
    }
    return true;
  }

  Bin op_;
  bool mean_;
};

enum class Un { Abs, Neg, Exp, Log, Sqrt, Relu, Sigmoid, Tanh, Erf, Ceil, Floor, Not, Reciprocal,
                Sin, Cos, Softplus, Softsign, Sign, Round, LeakyRelu, Elu, HardSigmoid, HardSwish,
                Selu, Celu, IsNaN, Acos, Asin, Atan, Sinh, Cosh, Tan, ThresholdedRelu };

bool FloatOnly(Un op) {
  return !(op == Un::Abs || op == Un::Neg || op == Un::Relu || op == Un::Sign || op == Un::Not);
}

template <class T, class F>
void UnaryLoop(const Tensor& x, Tensor& y, F f) {
  const T* a = x.data<T>();
  T* b = y.data<T>();
  int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) b[i] = f(a[i]);
}

// Rounds half to even, as ONNX Round does.
template <class T>
T RoundHalfEven(T v) {
  return std::nearbyint(v);
}

template <class T>
void UnaryFloat(Un op, float alpha, float beta, float gamma, const Tensor& x, Tensor& y) {
  if constexpr (std::is_same_v<T, float>) {
    switch (op) {
      case Un::Exp: vm::Exp(x.data<float>(), y.data<float>(), x.numel()); return;
      case Un::Sigmoid: vm::Sigmoid(x.data<float>(), y.data<float>(), x.numel()); return;
      case Un::Tanh: vm::Tanh(x.data<float>(), y.data<float>(), x.numel()); return;
      case Un::Erf: vm::Erf(x.data<float>(), y.data<float>(), x.numel()); return;
      default: break;
    }
  }
  const T al = SaturateCast<T>(alpha), be = SaturateCast<T>(beta), ga = SaturateCast<T>(gamma);
  switch (op) {
    case Un::Abs: UnaryLoop<T>(x, y, [](T v) { return std::abs(v); }); break;
    case Un::Neg: UnaryLoop<T>(x, y, [](T v) { return -v; }); break;
    case Un::Exp: UnaryLoop<T>(x, y, [](T v) { return std::exp(v); }); break;
    case Un::Log: UnaryLoop<T>(x, y, [](T v) { return std::log(v); }); break;
    case Un::Sqrt: UnaryLoop<T>(x, y, [](T v) { return std::sqrt(v); }); break;
    case Un::Relu: UnaryLoop<T>(x, y, [](T v) { return !(v <= 0) ? v : T(0); }); break;  // NaN stays NaN
    case Un::Sigmoid:
      UnaryLoop<T>(x, y, [](T v) {
        return v >= 0 ? T(1) / (T(1) + std::exp(-v)) : std::exp(v) / (T(1) + std::exp(v));
      });
      break;
    case Un::Tanh: UnaryLoop<T>(x, y, [](T v) { return std::tanh(v); }); break;
    case Un::Erf: UnaryLoop<T>(x, y, [](T v) { return std::erf(v); }); break;
    case Un::Ceil: UnaryLoop<T>(x, y, [](T v) { return std::ceil(v); }); break;
    case Un::Floor: UnaryLoop<T>(x, y, [](T v) { return std::floor(v); }); break;
    case Un::Reciprocal: UnaryLoop<T>(x, y, [](T v) { return T(1) / v; }); break;
    case Un::Sin: UnaryLoop<T>(x, y, [](T v) { return std::sin(v); }); break;
    case Un::Cos: UnaryLoop<T>(x, y, [](T v) { return std::cos(v); }); break;
    case Un::Tan: UnaryLoop<T>(x, y, [](T v) { return std::tan(v); }); break;
    case Un::Acos: UnaryLoop<T>(x, y, [](T v) { return std::acos(v); }); break;
    case Un::Asin: UnaryLoop<T>(x, y, [](T v) { return std::asin(v); }); break;
    case Un::Atan: UnaryLoop<T>(x, y, [](T v) { return std::atan(v); }); break;
    case Un::Sinh: UnaryLoop<T>(x, y, [](T v) { return std::sinh(v); }); break;
    case Un::Cosh: UnaryLoop<T>(x, y, [](T v) { return std::cosh(v); }); break;
    case Un::Softplus:
      UnaryLoop<T>(x, y, [](T v) { return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); });
      break;
    case Un::Softsign: UnaryLoop<T>(x, y, [](T v) { return v / (T(1) + std::abs(v)); }); break;
    case Un::Sign: UnaryLoop<T>(x, y, [](T v) { return v > 0 ? T(1) : (v < 0 ? T(-1) : T(0)); }); break;
    case Un::Round: UnaryLoop<T>(x, y, [](T v) { return RoundHalfEven(v); }); break;
    case Un::LeakyRelu: UnaryLoop<T>(x, y, [al](T v) { return v >= 0 ? v : al * v; }); break;
    case Un::Elu: UnaryLoop<T>(x, y, [al](T v) { return v >= 0 ? v : al * (std::exp(v) - T(1)); }); break;
    case Un::Celu:
      UnaryLoop<T>(x, y, [al](T v) { return std::max(T(0), v) + std::min(T(0), al * (std::exp(v / al) - T(1))); });
      break;
    case Un::HardSigmoid:
      UnaryLoop<T>(x, y, [al, be](T v) { return std::max(T(0), std::min(T(1), al * v + be)); });
      break;
    case Un::HardSwish:
      UnaryLoop<T>(x, y, [](T v) { return v * std::max(T(0), std::min(T(1), v / T(6) + T(0.5))); });
      break;
    case Un::Selu:
      UnaryLoop<T>(x, y, [al, ga](T v) { return v > 0 ? ga * v : ga * (al * std::exp(v) - al); });
      break;
    case Un::ThresholdedRelu: UnaryLoop<T>(x, y, [al](T v) { return v > al ? v : T(0); }); break;
    case Un::Not: case Un::IsNaN: break;
  }
}

class UnaryKernel : public Kernel {
 public:
  UnaryKernel(Un op, const char* name, float alpha, float beta, float gamma)
      : op_(op), name_(name), alpha_(alpha), beta_(beta), gamma_(gamma) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    DType dt = x.dtype();
    if (op_ == Un::Not) {
      if (dt != DType::Bool) return DTypeError(name_, dt);
      Tensor& y = ctx.Alloc(0, dt, x.shape());
      for (int64_t i = 0; i < x.numel(); ++i) y.data<bool>()[i] = !x.data<bool>()[i];
      return Status::Ok();
    }
    if (op_ == Un::IsNaN) {
      Tensor xf = dt == DType::Float16 ? HalfToFloat(x) : x;
      if (xf.dtype() != DType::Float32 && xf.dtype() != DType::Float64) return DTypeError(name_, dt);
      Tensor& y = ctx.Alloc(0, DType::Bool, x.shape());
      for (int64_t i = 0; i < x.numel(); ++i)
        y.data<bool>()[i] = xf.dtype() == DType::Float32 ? std::isnan(xf.data<float>()[i])
                                                         : std::isnan(xf.data<double>()[i]);
      return Status::Ok();
    }
    if (dt == DType::Float32) {
      UnaryFloat<float>(op_, alpha_, beta_, gamma_, x, ctx.Alloc(0, dt, x.shape()));
    } else if (dt == DType::Float64) {
      UnaryFloat<double>(op_, alpha_, beta_, gamma_, x, ctx.Alloc(0, dt, x.shape()));
    } else if (dt == DType::Float16) {
      Tensor xf = HalfToFloat(x);
      Tensor yf(DType::Float32, x.shape());
      UnaryFloat<float>(op_, alpha_, beta_, gamma_, xf, yf);
      ctx.out(0) = FloatToHalf(yf);
    } else {
      if (FloatOnly(op_)) return DTypeError(name_, dt);
      bool ok = DispatchNumeric(dt, [&](auto z) {
        using T = decltype(z);
        Tensor& y = ctx.Alloc(0, dt, x.shape());
        switch (op_) {
          case Un::Abs:
            if constexpr (std::is_signed_v<T>) UnaryLoop<T>(x, y, [](T v) { return v < 0 ? WrapNeg(v) : v; });
            else UnaryLoop<T>(x, y, [](T v) { return v; });
            break;
          case Un::Neg: UnaryLoop<T>(x, y, [](T v) { return WrapNeg(v); }); break;
          case Un::Relu: UnaryLoop<T>(x, y, [](T v) { return !(v <= 0) ? v : T(0); }); break;  // NaN stays NaN
          default: UnaryLoop<T>(x, y, [](T v) { return v > 0 ? T(1) : (v < 0 ? static_cast<T>(-1) : T(0)); }); break;
        }
      });
      if (!ok) return DTypeError(name_, dt);
    }
    return Status::Ok();
  }

 private:
  Un op_;
  const char* name_;
  float alpha_, beta_, gamma_;
};

// Where(cond, X, Y): copies elements by size, so any fixed-size dtype works.
class WhereKernel : public Kernel {
 public:
  Status Run(KernelContext& ctx) override {
    const Tensor& c = *ctx.in(0);
    const Tensor& x = *ctx.in(1);
    const Tensor& y = *ctx.in(2);
    if (c.dtype() != DType::Bool) return Error("condition must be bool");
    if (x.dtype() != y.dtype()) return Error("X and Y dtypes differ");
    ASRC_ASSIGN_OR_RETURN(Shape s1, BroadcastShape(c.shape(), x.shape()));
    ASRC_ASSIGN_OR_RETURN(Shape shape, BroadcastShape(s1, y.shape()));
    Tensor& out = ctx.Alloc(0, x.dtype(), shape);
    size_t es = ir::DTypeSize(x.dtype());
    if (es == 0) return DTypeError("Where", x.dtype());
    auto run = [&](auto z) {
      using T = decltype(z);
      const bool* pc = c.data<bool>();
      const T* px = reinterpret_cast<const T*>(x.raw());
      const T* py = reinterpret_cast<const T*>(y.raw());
      T* po = reinterpret_cast<T*>(out.raw());
      BroadcastLoop<3>(shape, {&c.shape(), &x.shape(), &y.shape()},
                       [&](int64_t o, const int64_t* off, const int64_t* st, int64_t len) {
                         for (int64_t j = 0; j < len; ++j)
                           po[o + j] = pc[off[0] + j * st[0]] ? px[off[1] + j * st[1]]
                                                              : py[off[2] + j * st[2]];
                       });
    };
    switch (es) {
      case 1: run(uint8_t{}); break;
      case 2: run(uint16_t{}); break;
      case 4: run(uint32_t{}); break;
      case 8: run(uint64_t{}); break;
      default: return DTypeError("Where", x.dtype());
    }
    return Status::Ok();
  }
};

class ClipKernel : public Kernel {
 public:
  ClipKernel(bool attrs, float lo, float hi) : attrs_(attrs), lo_(lo), hi_(hi) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    DType dt = x.dtype();
    Tensor xf = dt == DType::Float16 ? HalfToFloat(x) : x;
    Tensor lo_t, hi_t;
    if (!attrs_) {
      if (ctx.in(1) && ctx.in(1)->numel() > 0) lo_t = ctx.in(1)->dtype() == DType::Float16 ? HalfToFloat(*ctx.in(1)) : *ctx.in(1);
      if (ctx.in(2) && ctx.in(2)->numel() > 0) hi_t = ctx.in(2)->dtype() == DType::Float16 ? HalfToFloat(*ctx.in(2)) : *ctx.in(2);
    }
    Tensor yf = dt == DType::Float16 ? Tensor(DType::Float32, x.shape()) : ctx.NewTensor(dt, x.shape());
    Status st;
    bool ok = DispatchNumeric(xf.dtype(), [&](auto z) {
      using T = decltype(z);
      T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
      if (attrs_) {
        lo = SaturateCast<T>(std::max<double>(lo_, static_cast<double>(lo)));
        hi = SaturateCast<T>(std::min<double>(hi_, static_cast<double>(hi)));
      }
      if (lo_t.defined()) {
        if (lo_t.dtype() != xf.dtype()) { st = Error("min dtype differs from input"); return; }
        lo = lo_t.data<T>()[0];
      }
      if (hi_t.defined()) {
        if (hi_t.dtype() != xf.dtype()) { st = Error("max dtype differs from input"); return; }
        hi = hi_t.data<T>()[0];
      }
      const T* a = xf.data<T>();
      T* b = yf.data<T>();
      for (int64_t i = 0; i < xf.numel(); ++i) b[i] = std::min(hi, std::max(lo, a[i]));
    });
    if (!ok) return DTypeError("Clip", dt);
    ASRC_RETURN_IF_ERROR(st);
    ctx.out(0) = dt == DType::Float16 ? FloatToHalf(yf) : yf;
    return Status::Ok();
  }

 private:
  bool attrs_;
  float lo_, hi_;
};

bool CastableDType(DType d) {
  switch (d) {
    case DType::Float32: case DType::Float64: case DType::Float16: case DType::Int8:
    case DType::Uint8: case DType::Int16: case DType::Uint16: case DType::Int32: case DType::Int64:
    case DType::Uint32: case DType::Uint64: case DType::Bool: case DType::BFloat16: case DType::String:
      return true;
    default:
      return false;
  }
}

class CastKernel : public Kernel {
 public:
  explicit CastKernel(DType to) : to_(to) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    if (x.dtype() == to_) {
      ctx.out(0) = x;  // no copy: tensors are immutable once produced
      return Status::Ok();
    }
    if (!CastableDType(x.dtype()))
      return Error(std::string("unsupported dtype ") + ir::DTypeName(x.dtype()) + " for op 'Cast'");
    Tensor& y = ctx.Alloc(0, to_, x.shape());
    return ConvertInto(x, y);
  }

 private:
  DType to_;
};

// ai.asrc Silu(x) = x * Sigmoid(x) in one pass: the fused form of Sigmoid -> Mul that the
// session's fusion plans (runtime/fusion.h); bit-identical to the two nodes.
Status SiluRun(KernelContext& ctx) {
  const Tensor& x = *ctx.in(0);
  if (x.dtype() == DType::Float32) {
    const float* px = x.data<float>();
    float* py = ctx.Alloc(0, DType::Float32, x.shape()).data<float>();
    // Chunks of whole 16-float vectors, at least 16K elements each, over the pool.
    const int64_t n = x.numel(), vecs = (n + 15) / 16;
    ParallelFor(ctx.threads > 1 ? ctx.pool : nullptr, vecs, 1024, [&](int64_t v0, int64_t v1) {
      const int64_t b = v0 * 16, e = std::min(n, v1 * 16);
      vm::Silu(px + b, py + b, e - b);
    });
    return Status::Ok();
  }
  // Other dtypes exactly as the two unfused kernels compute them.
  Tensor sig;
  if (x.dtype() == DType::Float64) {
    sig = Tensor(DType::Float64, x.shape());
    UnaryFloat<double>(Un::Sigmoid, 0, 0, 0, x, sig);
  } else if (x.dtype() == DType::Float16) {
    Tensor xf = HalfToFloat(x), yf(DType::Float32, x.shape());
    UnaryFloat<float>(Un::Sigmoid, 0, 0, 0, xf, yf);
    sig = FloatToHalf(yf);
  } else {
    return DTypeError("Sigmoid", x.dtype());
  }
  return RunBinary(Bin::Mul, x, sig, ctx.out(0), &ctx);
}

void RegBinary(KernelRegistry& r, const char* op, Bin b) {
  r.Register("", op, DType::Undefined, [b](const KernelInit&) -> Result<std::unique_ptr<Kernel>> {
    return Make<BinaryKernel>(b);
  });
}

void RegUnary(KernelRegistry& r, const char* op, Un u, float alpha = 0, float beta = 0,
              float gamma = 0) {
  r.Register("", op, DType::Undefined, [=](const KernelInit& init) -> Result<std::unique_ptr<Kernel>> {
    float a = init.node->attr_float("alpha", alpha);
    float b = init.node->attr_float("beta", beta);
    float g = init.node->attr_float("gamma", gamma);
    if (u == Un::Celu && a == 0) return Error("Celu alpha must be non-zero");
    return Make<UnaryKernel>(u, op, a, b, g);
  });
}

}  // namespace

Status ku::AddTensors(const Tensor& a, const Tensor& b, Tensor& out, KernelContext* ctx) {
  return RunBinary(Bin::Add, a, b, out, ctx);
}

void RegisterElementwiseKernels(KernelRegistry& r) {
  RegBinary(r, "Add", Bin::Add);
  RegBinary(r, "Sub", Bin::Sub);
  RegBinary(r, "Mul", Bin::Mul);
  RegBinary(r, "Div", Bin::Div);
  RegBinary(r, "Pow", Bin::Pow);
  RegBinary(r, "Equal", Bin::Eq);
  RegBinary(r, "Greater", Bin::Gt);
  RegBinary(r, "GreaterOrEqual", Bin::Ge);
  RegBinary(r, "Less", Bin::Lt);
  RegBinary(r, "LessOrEqual", Bin::Le);
  RegBinary(r, "And", Bin::And);
  RegBinary(r, "Or", Bin::Or);
  RegBinary(r, "Xor", Bin::Xor);
  RegBinary(r, "BitwiseAnd", Bin::BitAnd);
  RegBinary(r, "BitwiseOr", Bin::BitOr);
  RegBinary(r, "BitwiseXor", Bin::BitXor);
  r.Register("", "BitwiseNot", DType::Undefined, [](const KernelInit&) -> Result<std::unique_ptr<Kernel>> {
    return MakeFnKernel([](KernelContext& ctx) -> Status {
      const Tensor& x = *ctx.in(0);
      if (!IsIntegerDType(x.dtype()))
        return Error(std::string("unsupported dtype ") + ir::DTypeName(x.dtype()) +
                     " for op 'BitwiseNot' (supported: the 8- to 64-bit signed and unsigned integers)");
      Tensor& y = ctx.Alloc(0, x.dtype(), x.shape());
      DispatchNumeric(x.dtype(), [&](auto z) {
        using T = decltype(z);
        if constexpr (std::is_integral_v<T>) UnaryLoop<T>(x, y, [](T v) { return static_cast<T>(~v); });
      });
      return Status::Ok();
    });
  });
  r.Register("", "Mod", DType::Undefined, [](const KernelInit& init) -> Result<std::unique_ptr<Kernel>> {
    bool fmod = init.node->attr_int("fmod", 0) != 0;
    return Make<BinaryKernel>(fmod ? Bin::FMod : Bin::Mod);
  });
  r.Register("", "BitShift", DType::Undefined, [](const KernelInit& init) -> Result<std::unique_ptr<Kernel>> {
    std::string dir = init.node->attr_string("direction", "");
    if (dir != "LEFT" && dir != "RIGHT") return Error("BitShift direction must be LEFT or RIGHT");
    return Make<BinaryKernel>(dir == "LEFT" ? Bin::ShiftL : Bin::ShiftR);
  });
  auto variadic = [&](const char* op, Bin b, bool mean) {
    r.Register("", op, DType::Undefined, [b, mean](const KernelInit&) -> Result<std::unique_ptr<Kernel>> {
      return Make<VariadicKernel>(b, mean);
    });
  };
  variadic("Max", Bin::Max, false);
  variadic("Min", Bin::Min, false);
  variadic("Sum", Bin::Add, false);
  variadic("Mean", Bin::Add, true);

  RegUnary(r, "Abs", Un::Abs);
  RegUnary(r, "Neg", Un::Neg);
  RegUnary(r, "Exp", Un::Exp);
  RegUnary(r, "Log", Un::Log);
  RegUnary(r, "Sqrt", Un::Sqrt);
  RegUnary(r, "Relu", Un::Relu);
  RegUnary(r, "Sigmoid", Un::Sigmoid);
  RegUnary(r, "Tanh", Un::Tanh);
  RegUnary(r, "Erf", Un::Erf);
  RegUnary(r, "Ceil", Un::Ceil);
  RegUnary(r, "Floor", Un::Floor);
  RegUnary(r, "Not", Un::Not);
  RegUnary(r, "Reciprocal", Un::Reciprocal);
  RegUnary(r, "Sin", Un::Sin);
  RegUnary(r, "Cos", Un::Cos);
  RegUnary(r, "Tan", Un::Tan);
  RegUnary(r, "Asin", Un::Asin);
  RegUnary(r, "Acos", Un::Acos);
  RegUnary(r, "Atan", Un::Atan);
  RegUnary(r, "Sinh", Un::Sinh);
  RegUnary(r, "Cosh", Un::Cosh);
  RegUnary(r, "Softplus", Un::Softplus);
  RegUnary(r, "Softsign", Un::Softsign);
  RegUnary(r, "Sign", Un::Sign);
  RegUnary(r, "Round", Un::Round);
  RegUnary(r, "IsNaN", Un::IsNaN);
  RegUnary(r, "LeakyRelu", Un::LeakyRelu, 0.01f);
  RegUnary(r, "Elu", Un::Elu, 1.0f);
  RegUnary(r, "Celu", Un::Celu, 1.0f);
  RegUnary(r, "HardSigmoid", Un::HardSigmoid, 0.2f, 0.5f);
  RegUnary(r, "HardSwish", Un::HardSwish);
  RegUnary(r, "Selu", Un::Selu, 1.67326319217681884765625f, 0, 1.05070102214813232421875f);
  RegUnary(r, "ThresholdedRelu", Un::ThresholdedRelu, 1.0f);

  r.Register("ai.asrc", "Silu", DType::Undefined, [](const KernelInit&) -> Result<std::unique_ptr<Kernel>> {
    return MakeFnKernel(SiluRun);
  });
  r.Register("", "Where", DType::Undefined, [](const KernelInit&) -> Result<std::unique_ptr<Kernel>> {
    return Make<WhereKernel>();
  });
  r.Register("", "Clip", DType::Undefined, [](const KernelInit& init) -> Result<std::unique_ptr<Kernel>> {
    bool attrs = init.opset < 11;
    return Make<ClipKernel>(
        attrs, init.node->attr_float("min", -std::numeric_limits<float>::max()),
        init.node->attr_float("max", std::numeric_limits<float>::max()));
  });
  r.Register("", "Cast", DType::Undefined, [](const KernelInit& init) -> Result<std::unique_ptr<Kernel>> {
    int64_t to = init.node->attr_int("to", 0);
    if (!ir::DTypeKnown(static_cast<int32_t>(to)) || !CastableDType(static_cast<DType>(to)))
      return Error("unsupported Cast target dtype " + std::to_string(to));
    if (!init.input_dtypes.empty() && init.input_dtypes[0] != DType::Undefined &&
        !CastableDType(init.input_dtypes[0]))
      return Error(std::string("unsupported Cast source dtype ") + ir::DTypeName(init.input_dtypes[0]));
    return Make<CastKernel>(static_cast<DType>(to));
  });
}

}  // namespace asrc::runtime

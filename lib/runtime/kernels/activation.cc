// Activations and float math not in elementwise.cc: PRelu (slope broadcast to X), Shrink, Gelu
// (exact and tanh), Mish, Hardmax, the inverse hyperbolic functions, IsInf, CastLike.
// Float16 and float64 run through float32 (AsFloat / FromFloat), like the other float kernels.
#include <cmath>

#include "runtime/kernels/util.h"
#include "runtime/kernels/vmath.h"

namespace asrc::runtime {
namespace {

using namespace ku;

// y = f(x) elementwise over a float tensor.
class FloatUnaryKernel : public Kernel {
 public:
  FloatUnaryKernel(const char* op, std::function<float(float)> f) : op_(op), f_(std::move(f)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, op_));
    Tensor y = ctx.NewTensor(DType::Float32, x.shape());
    const float* a = x.data<float>();
    float* b = y.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) b[i] = f_(a[i]);
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  const char* op_;
  std::function<float(float)> f_;
};

// PRelu: y = x < 0 ? slope * x : x, slope broadcast unidirectionally to x.
Status PReluRun(KernelContext& ctx) {
  const Tensor& x0 = *ctx.in(0);
  const Tensor& s0 = *ctx.in(1);
  ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "PRelu"));
  if (s0.dtype() != x0.dtype()) return Error("PRelu: slope dtype differs from X");
  ASRC_ASSIGN_OR_RETURN(Tensor s, AsFloat(s0, "PRelu"));
  ASRC_ASSIGN_OR_RETURN(Shape shape, BroadcastShape(x0.shape(), s0.shape()));
  if (shape != x0.shape())
    return Error("PRelu: slope " + ir::ShapeStr(s0.shape()) + " does not broadcast to X " +
                 ir::ShapeStr(x0.shape()));
  Tensor y = ctx.NewTensor(DType::Float32, shape);
  const float* px = x.data<float>();
  const float* ps = s.data<float>();
  float* py = y.data<float>();
  BroadcastLoop<2>(shape, {&x.shape(), &s.shape()},
                   [&](int64_t o, const int64_t* off, const int64_t* st, int64_t len) {
                     for (int64_t j = 0; j < len; ++j) {
                       float v = px[off[0] + j * st[0]];
                       py[o + j] = v < 0 ? ps[off[1] + j * st[1]] * v : v;
                     }
                   });
  return FromFloat(ctx, 0, x0.dtype(), y);
}

// Shrink over any numeric dtype: x < -lambd ? x + bias : x > lambd ? x - bias : 0.
class ShrinkKernel : public Kernel {
 public:
  ShrinkKernel(float lambd, float bias) : lambd_(lambd), bias_(bias) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    DType dt = x0.dtype();
    if (dt == DType::Float16) {
      Tensor x = HalfToFloat(x0);
      Shrink<float>(x, x);
      ctx.out(0) = FloatToHalf(x);
      return Status::Ok();
    }
    Tensor& y = ctx.Alloc(0, dt, x0.shape());
    bool ok = DispatchNumeric(dt, [&](auto z) { Shrink<decltype(z)>(x0, y); });
    return ok ? Status::Ok() : DTypeError("Shrink", dt);
  }

 private:
  template <class T>
  void Shrink(const Tensor& x, Tensor& y) const {
    const T* a = x.data<T>();
    T* b = y.data<T>();
    const double l = lambd_, bi = bias_;
    for (int64_t i = 0; i < x.numel(); ++i) {
      double v = static_cast<double>(a[i]);
      b[i] = SaturateCast<T>(v < -l ? v + bi : (v > l ? v - bi : 0.0));
    }
  }
  float lambd_, bias_;
};

// Hardmax: 1 at the first maximum along the axis, 0 elsewhere. Opset < 13 flattens the input
// to [prod(dims[:axis]), prod(dims[axis:])] (default axis 1); opset 13 uses one axis (default -1).
class HardmaxKernel : public Kernel {
 public:
  HardmaxKernel(int64_t axis, bool flatten) : axis_(axis), flatten_(flatten) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "Hardmax"));
    ASRC_ASSIGN_OR_RETURN(int axis, NormAxisOrScalar(axis_, x0.rank()));
    int64_t outer = 1, n = 1, inner = 1;
    for (int d = 0; d < x.rank(); ++d) {
      if (d < axis) outer *= x.dim(d);
      else if (d == axis || flatten_) n *= x.dim(d);
      else inner *= x.dim(d);
    }
    Tensor y = ctx.NewTensor(DType::Float32, x.shape());
    if (y.numel() == 0) return FromFloat(ctx, 0, x0.dtype(), y);  // outer may be 2^40 over n = 0
    const float* px = x.data<float>();
    float* py = y.data<float>();
    std::fill(py, py + y.numel(), 0.f);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const float* a = px + o * n * inner + i;
        int64_t best = 0;
        for (int64_t k = 1; k < n; ++k)
          if (a[k * inner] > a[best * inner]) best = k;
        if (n > 0) py[o * n * inner + best * inner + i] = 1.f;
      }
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  int64_t axis_;
  bool flatten_;
};

class IsInfKernel : public Kernel {
 public:
  IsInfKernel(bool neg, bool pos) : neg_(neg), pos_(pos) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    if (!IsFloatish(x0.dtype())) return FloatDTypeError("IsInf", x0.dtype());
    Tensor& y = ctx.Alloc(0, DType::Bool, x0.shape());
    auto test = [&](auto v) { return std::isinf(v) && ((v > 0 && pos_) || (v < 0 && neg_)); };
    if (x0.dtype() == DType::Float64) {
      for (int64_t i = 0; i < x0.numel(); ++i) y.data<bool>()[i] = test(x0.data<double>()[i]);
    } else {
      ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "IsInf"));
      for (int64_t i = 0; i < x.numel(); ++i) y.data<bool>()[i] = test(x.data<float>()[i]);
    }
    return Status::Ok();
  }

 private:
  bool neg_, pos_;
};

// CastLike(input, target_type): Cast to the second input's dtype.
Status CastLikeRun(KernelContext& ctx) {
  const Tensor& x = *ctx.in(0);
  DType to = ctx.in(1)->dtype();
  if (x.dtype() == to) {
    ctx.out(0) = x;
    return Status::Ok();
  }
  Tensor& y = ctx.Alloc(0, to, x.shape());
  return ConvertInto(x, y);
}

float GeluTanh(float v) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * v * (1.f + std::tanh(k * (v + 0.044715f * v * v * v)));
}

// ai.asrc GeluErf(x, d, a, h) = (x * (Erf(x / d) + a)) * h, float32 with scalar d, a, h: the
// exact GELU as PyTorch exports it (Div -> Erf -> Add -> Mul(x, .) -> Mul(., 0.5)), fused at plan
// time (runtime/fusion.h) into one pass. Each step rounds as the unfused node does (Erf is
// vm::Erf, as the Erf kernel's float32 path), so outputs are bit-identical to the unfused plan.
Status GeluErfRun(KernelContext& ctx) {
  const Tensor& x = *ctx.in(0);
  if (x.dtype() != DType::Float32) return Error(std::string("GeluErf: x must be float32, got ") + ir::DTypeName(x.dtype()));
  float c[3];
  for (int i = 0; i < 3; ++i) {
    const Tensor* t = ctx.in(i + 1);
    if (!t || t->dtype() != DType::Float32 || t->numel() != 1) return Error("GeluErf: inputs 1-3 must be float32 scalars");
    c[i] = t->data<float>()[0];
  }
  Tensor& y = ctx.Alloc(0, DType::Float32, x.shape());
  const float* px = x.data<float>();
  float* py = y.data<float>();
  // Over the pool in parts of at least 8K elements (about 10 us of Erf each).
  ParallelElements(ctx, x.numel(), 8192, [&](int64_t i0, int64_t i1) {
    float tmp[1024];
    for (int64_t b = i0; b < i1; b += 1024) {
      const int64_t m = std::min<int64_t>(1024, i1 - b);
      for (int64_t i = 0; i < m; ++i) tmp[i] = px[b + i] / c[0];
      vm::Erf(tmp, tmp, m);
      for (int64_t i = 0; i < m; ++i) py[b + i] = (px[b + i] * (tmp[i] + c[1])) * c[2];
    }
  });
  return Status::Ok();
}

}  // namespace

void RegisterActivationKernels(KernelRegistry& r) {
  r.Register("ai.asrc", "GeluErf", DType::Undefined, NeedInputs(4, [](const KernelInit&) -> KernelPtr {
    return MakeFnKernel(GeluErfRun);
  }));
  auto unary = [&](const char* op, std::function<float(float)> f) {
    r.Register("", op, DType::Undefined, NeedInputs(1, [op, f](const KernelInit&) -> KernelPtr {
      return Make<FloatUnaryKernel>(op, f);
    }));
  };
  unary("Asinh", [](float v) { return std::asinh(v); });
  unary("Acosh", [](float v) { return std::acosh(v); });
  unary("Atanh", [](float v) { return std::atanh(v); });
  unary("Mish", [](float v) { return v * std::tanh(v > 20.f ? v : std::log1p(std::exp(v))); });
  r.Register("", "Gelu", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    std::string approx = i.node->attr_string("approximate", "none");
    if (approx == "tanh") return Make<FloatUnaryKernel>("Gelu", GeluTanh);
    if (approx != "none") return Error("Gelu: unsupported approximate '" + approx + "' (none, tanh)");
    return Make<FloatUnaryKernel>(
        "Gelu", [](float v) { return 0.5f * v * (1.f + std::erf(v * 0.70710678118654752f)); });
  }));
  r.Register("", "PRelu", DType::Undefined, NeedInputs(2, [](const KernelInit&) -> KernelPtr {
    return MakeFnKernel(PReluRun);
  }));
  r.Register("", "Shrink", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    return Make<ShrinkKernel>(i.node->attr_float("lambd", 0.5f), i.node->attr_float("bias", 0.f));
  }));
  r.Register("", "Hardmax", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    bool flatten = i.opset < 13;
    return Make<HardmaxKernel>(i.node->attr_int("axis", flatten ? 1 : -1), flatten);
  }));
  r.Register("", "IsInf", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    return Make<IsInfKernel>(i.node->attr_int("detect_negative", 1) != 0, i.node->attr_int("detect_positive", 1) != 0);
  }));
  r.Register("", "CastLike", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    for (DType d : i.input_dtypes)
      if (d == DType::Complex64 || d == DType::Complex128)
        return Error(std::string("CastLike: unsupported dtype ") + ir::DTypeName(d) +
                     " (numeric, bool, float16, bfloat16 and string are supported)");
    return MakeFnKernel(CastLikeRun);
  }));
}

}  // namespace asrc::runtime

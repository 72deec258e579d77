// Pooling over any spatial rank, plain loops: MaxPool (dilations, ceil_mode, the Indices output
// in either storage order), AveragePool (count_include_pad), LpPool, GlobalAveragePool,
// GlobalMaxPool, GlobalLpPool, MaxUnpool. Layout NC<spatial>. Float16/float64 average and Lp
// pools compute in float32; MaxPool compares in the input's own type (int8/uint8 too).
#include <cmath>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

enum class PoolKind { Max, Avg, Lp };

struct PoolAttrs {
  std::string auto_pad = "NOTSET";
  std::vector<int64_t> kernel, strides, dilations, pads;
  bool ceil_mode = false, count_include_pad = false;
  int64_t storage_order = 0;
  float p = 2.f;
};

// Window geometry resolved against an input shape [N, C, spatial...].
struct PoolGeom {
  int64_t planes = 0;  // N * C
  std::vector<int64_t> in, k, s, d, pb, pe, out;
  int64_t in_n = 1, out_n = 1, k_n = 1;
};

Result<PoolGeom> Resolve(const PoolAttrs& a, const Shape& x) {
  int sr = static_cast<int>(x.size()) - 2;
  if (sr < 1 || sr > 8) return Error("pooling input must have rank 3 to 10, got " + ir::ShapeStr(x));
  if (static_cast<int>(a.kernel.size()) != sr)
    return Error("kernel_shape has " + std::to_string(a.kernel.size()) + " dims for input " + ir::ShapeStr(x));
  PoolGeom g;
  g.planes = x[0] * x[1];
  g.in.assign(x.begin() + 2, x.end());
  g.k = a.kernel;
  g.s = a.strides.empty() ? std::vector<int64_t>(sr, 1) : a.strides;
  g.d = a.dilations.empty() ? std::vector<int64_t>(sr, 1) : a.dilations;
  if (static_cast<int>(g.s.size()) != sr || static_cast<int>(g.d.size()) != sr)
    return Error("strides/dilations length differs from the spatial rank");
  if (!a.pads.empty() && static_cast<int>(a.pads.size()) != 2 * sr) return Error("pads length");
  g.pb.assign(sr, 0);
  g.pe.assign(sr, 0);
  g.out.assign(sr, 0);
  for (int i = 0; i < sr; ++i) {
    if (g.s[i] <= 0 || g.d[i] <= 0 || g.k[i] <= 0) return Error("kernel, strides and dilations must be positive");
    int64_t ek = (g.k[i] - 1) * g.d[i] + 1;
    if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
      g.out[i] = (g.in[i] + g.s[i] - 1) / g.s[i];
      int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * g.s[i] + ek - g.in[i]);
      g.pb[i] = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pe[i] = total - g.pb[i];
    } else if (a.auto_pad == "VALID") {
      if (g.in[i] < ek) return Error("pooling window larger than the input");
      g.out[i] = (g.in[i] - ek) / g.s[i] + 1;
    } else {
      if (!a.pads.empty()) {
        g.pb[i] = a.pads[i];
        g.pe[i] = a.pads[i + sr];
      }
      // As ONNX Runtime: a pad reaches at most kernel - 1 into the padding, so the padded extent
      // and the work stay bounded by the input (onnx_run_fuzzer: pads 2^21 on a 5-wide input).
      if (g.pb[i] >= g.k[i] || g.pe[i] >= g.k[i])
        return Error("pads " + std::to_string(g.pb[i]) + ", " + std::to_string(g.pe[i]) + " on spatial axis " +
                     std::to_string(i) + " must be smaller than the kernel " + std::to_string(g.k[i]));
      int64_t span = g.in[i] + g.pb[i] + g.pe[i] - ek;
      if (span < 0) return Error("pooling window larger than the padded input");
      g.out[i] = (a.ceil_mode ? (span + g.s[i] - 1) / g.s[i] : span / g.s[i]) + 1;
    }
    g.in_n *= g.in[i];
    g.out_n *= g.out[i];
    g.k_n *= g.k[i];
  }
  return g;
}

Shape OutShape(const Shape& x, const PoolGeom& g) {
  Shape s = {x[0], x[1]};
  s.insert(s.end(), g.out.begin(), g.out.end());
  return s;
}

// Calls fn(input offset or -1 when in padding, inside-pads flag, the window position's
// spatial coordinates) for every window element of output position `o`.
template <class F>
void ForWindow(const PoolGeom& g, int64_t o, F&& fn) {
  int sr = static_cast<int>(g.in.size());
  int64_t oc[8], kc[8], pc[8];
  for (int64_t i = sr - 1, r = o; i >= 0; --i) { oc[i] = r % g.out[i]; r /= g.out[i]; }
  for (int64_t kk = 0; kk < g.k_n; ++kk) {
    int64_t r = kk;
    for (int i = sr - 1; i >= 0; --i) { kc[i] = r % g.k[i]; r /= g.k[i]; }
    bool inside = true, in_pads = true;
    int64_t off = 0;
    for (int i = 0; i < sr; ++i) {
      pc[i] = oc[i] * g.s[i] + kc[i] * g.d[i] - g.pb[i];
      inside = inside && pc[i] >= 0 && pc[i] < g.in[i];
      in_pads = in_pads && pc[i] < g.in[i] + g.pe[i];
      off = off * g.in[i] + pc[i];
    }
    fn(inside ? off : -1, in_pads, pc);
  }
}

template <class T>
void MaxPoolPlanes(const PoolGeom& g, int64_t storage_order, const T* x, T* y, int64_t* idx) {
  int sr = static_cast<int>(g.in.size());
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t o = 0; o < g.out_n; ++o) {
      bool any = false;
      T best{};
      int64_t best_i = 0;
      ForWindow(g, o, [&](int64_t off, bool, const int64_t* pc) {
        if (off < 0) return;
        T v = x[p * g.in_n + off];
        if (!any || v > best) {
          any = true;
          best = v;
          if (storage_order == 0) {
            best_i = off;
          } else {  // column-major spatial index
            best_i = 0;
            for (int i = sr - 1; i >= 0; --i) best_i = best_i * g.in[i] + pc[i];
          }
        }
      });
      y[p * g.out_n + o] = any ? best : T{};
      if (idx) idx[p * g.out_n + o] = p * g.in_n + best_i;
    }
}

class PoolKernel : public Kernel {
 public:
  PoolKernel(PoolKind kind, PoolAttrs a) : kind_(kind), a_(std::move(a)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(PoolGeom g, Resolve(a_, x.shape()));
    Shape os = OutShape(x.shape(), g);
    if (kind_ == PoolKind::Max) return RunMax(ctx, x, g, os);
    ASRC_ASSIGN_OR_RETURN(Tensor xf, AsFloat(x, kind_ == PoolKind::Avg ? "AveragePool" : "LpPool"));
    Tensor y = ctx.NewTensor(DType::Float32, os);
    const float* px = xf.data<float>();
    float* py = y.data<float>();
    for (int64_t p = 0; p < g.planes; ++p)
      for (int64_t o = 0; o < g.out_n; ++o) {
        double acc = 0;
        int64_t count = 0;
        ForWindow(g, o, [&](int64_t off, bool in_pads, const int64_t*) {
          if (off >= 0) {
            double v = px[p * g.in_n + off];
            acc += kind_ == PoolKind::Avg ? v : std::pow(std::abs(v), static_cast<double>(a_.p));
            ++count;
          } else if (in_pads && a_.count_include_pad) {
            ++count;
          }
        });
        py[p * g.out_n + o] = kind_ == PoolKind::Avg
                                  ? static_cast<float>(count ? acc / count : 0.0)
                                  : static_cast<float>(std::pow(acc, 1.0 / a_.p));
      }
    return FromFloat(ctx, 0, x.dtype(), y);
  }

 private:
  Status RunMax(KernelContext& ctx, const Tensor& x, const PoolGeom& g, const Shape& os) {
    bool want_idx = ctx.outputs->size() > 1 && ctx.node->output(1);
    int64_t* idx = want_idx ? ctx.Alloc(1, DType::Int64, os).data<int64_t>() : nullptr;
    if (x.dtype() == DType::Float16) {
      Tensor xf = HalfToFloat(x), y(DType::Float32, os);
      MaxPoolPlanes<float>(g, a_.storage_order, xf.data<float>(), y.data<float>(), idx);
      ctx.out(0) = FloatToHalf(y);
      return Status::Ok();
    }
    Tensor& y = ctx.Alloc(0, x.dtype(), os);
    bool ok = DispatchNumeric(x.dtype(), [&](auto z) {
      using T = decltype(z);
      MaxPoolPlanes<T>(g, a_.storage_order, x.data<T>(), y.data<T>(), idx);
    });
    return ok ? Status::Ok() : DTypeError("MaxPool", x.dtype());
  }

  PoolKind kind_;
  PoolAttrs a_;
};

// GlobalAveragePool / GlobalMaxPool / GlobalLpPool: one window over all spatial dims.
class GlobalPoolKernel : public Kernel {
 public:
  GlobalPoolKernel(PoolKind kind, float p) : kind_(kind), p_(p) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    if (x.rank() < 3) return Error("global pooling input must have rank >= 3, got " + ir::ShapeStr(x.shape()));
    ASRC_ASSIGN_OR_RETURN(Tensor xf, AsFloat(x, "GlobalPool"));
    Shape os(x.rank(), 1);
    os[0] = x.dim(0);
    os[1] = x.dim(1);
    int64_t planes = os[0] * os[1], n = planes ? x.numel() / planes : 0;
    Tensor y = ctx.NewTensor(DType::Float32, os);
    for (int64_t p = 0; p < planes; ++p) {
      const float* a = xf.data<float>() + p * n;
      double acc = kind_ == PoolKind::Max ? -INFINITY : 0.0;
      for (int64_t i = 0; i < n; ++i) {
        if (kind_ == PoolKind::Max) acc = std::max<double>(acc, a[i]);
        else if (kind_ == PoolKind::Avg) acc += a[i];
        else acc += std::pow(std::abs(static_cast<double>(a[i])), static_cast<double>(p_));
      }
      if (kind_ == PoolKind::Avg) acc = n ? acc / n : 0.0;
      if (kind_ == PoolKind::Lp) acc = std::pow(acc, 1.0 / p_);
      y.data<float>()[p] = static_cast<float>(acc);
    }
    return FromFloat(ctx, 0, x.dtype(), y);
  }

 private:
  PoolKind kind_;
  float p_;
};

// MaxUnpool(X, I[, output_shape]): zeros with X's values scattered to the flat indices I.
class MaxUnpoolKernel : public Kernel {
 public:
  explicit MaxUnpoolKernel(PoolAttrs a) : a_(std::move(a)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    const Tensor& ind = *ctx.in(1);
    if (ind.dtype() != DType::Int64 || ind.shape() != x.shape())
      return Error("MaxUnpool: indices must be int64 with X's shape " + ir::ShapeStr(x.shape()));
    int sr = x.rank() - 2;
    if (sr < 1 || static_cast<int>(a_.kernel.size()) != sr) return Error("MaxUnpool: kernel_shape/input rank");
    // Attribute lists shorter than the spatial rank were read past their end (onnx_run_fuzzer).
    if ((!a_.strides.empty() && static_cast<int>(a_.strides.size()) != sr) ||
        (!a_.pads.empty() && static_cast<int>(a_.pads.size()) != 2 * sr))
      return Error("MaxUnpool: strides/pads lengths do not match the spatial rank " + std::to_string(sr));
    // Indices address the default output shape; an explicit output_shape (padding lost by the
    // pooling) keeps each element's spatial coordinates.
    Shape def = {x.dim(0), x.dim(1)};
    for (int i = 0; i < sr; ++i) {
      int64_t s = a_.strides.empty() ? 1 : a_.strides[i];
      int64_t pad = a_.pads.empty() ? 0 : a_.pads[i] + a_.pads[i + sr];
      def.push_back((x.dim(i + 2) - 1) * s + a_.kernel[i] - pad);
    }
    Shape os = def;
    if (ctx.in(2)) {
      ASRC_ASSIGN_OR_RETURN(os, Int64s(*ctx.in(2)));
      if (os.size() != def.size() || os[0] != def[0] || os[1] != def[1])
        return Error("MaxUnpool: output_shape " + ir::ShapeStr(os) + " does not fit X " + ir::ShapeStr(x.shape()));
      for (int i = 0; i < sr; ++i)
        if (os[i + 2] < def[i + 2]) return Error("MaxUnpool: output_shape smaller than the unpooled shape " + ir::ShapeStr(def));
    }
    Tensor& y = ctx.Alloc(0, x.dtype(), os);
    size_t es = ir::DTypeSize(x.dtype());
    if (es == 0) return DTypeError("MaxUnpool", x.dtype());
    SetBytes(y.raw(), 0, y.nbytes());
    const int64_t* pi = ind.data<int64_t>();
    int64_t def_n = ir::ShapeNumel(def);
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (pi[i] < 0 || pi[i] >= def_n)
        return Error("MaxUnpool: index " + std::to_string(pi[i]) + " outside the unpooled shape " + ir::ShapeStr(def));
      int64_t rem = pi[i], off = 0, mul = 1;
      for (int d = sr + 1; d >= 0; --d) {
        off += (rem % def[d]) * mul;
        rem /= def[d];
        mul *= os[d];
      }
      CopyBytes(y.raw() + off * es, x.raw() + i * es, es);
    }
    return Status::Ok();
  }

 private:
  PoolAttrs a_;
};

Result<PoolAttrs> ReadAttrs(const KernelInit& i, PoolKind kind) {
  const ir::Node& n = *i.node;
  PoolAttrs a;
  a.auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (a.auto_pad != "NOTSET" && a.auto_pad != "SAME_UPPER" && a.auto_pad != "SAME_LOWER" && a.auto_pad != "VALID")
    return Error("unsupported auto_pad '" + a.auto_pad + "'");
  a.kernel = n.attr_ints("kernel_shape");
  if (a.kernel.empty()) return Error("kernel_shape is required");
  a.strides = n.attr_ints("strides");
  a.dilations = n.attr_ints("dilations");
  a.pads = n.attr_ints("pads");
  a.ceil_mode = n.attr_int("ceil_mode", 0) != 0;
  a.count_include_pad = n.attr_int("count_include_pad", 0) != 0;
  a.storage_order = n.attr_int("storage_order", 0);
  a.p = static_cast<float>(n.attr_int("p", 2));
  if (kind != PoolKind::Max && a.storage_order != 0) return Error("storage_order is MaxPool's");
  return a;
}

}  // namespace

void RegisterPoolKernels(KernelRegistry& r) {
  auto pool = [&](const char* op, PoolKind kind) {
    r.Register("", op, DType::Undefined, NeedInputs(1, [kind](const KernelInit& i) -> KernelPtr {
      ASRC_ASSIGN_OR_RETURN(PoolAttrs a, ReadAttrs(i, kind));
      return Make<PoolKernel>(kind, std::move(a));
    }));
  };
  pool("MaxPool", PoolKind::Max);
  pool("AveragePool", PoolKind::Avg);
  pool("LpPool", PoolKind::Lp);
  auto global = [&](const char* op, PoolKind kind) {
    r.Register("", op, DType::Undefined, NeedInputs(1, [kind](const KernelInit& i) -> KernelPtr {
      float p = static_cast<float>(i.node->attr_int("p", 2));
      return Make<GlobalPoolKernel>(kind, p);
    }));
  };
  global("GlobalMaxPool", PoolKind::Max);
  global("GlobalAveragePool", PoolKind::Avg);
  global("GlobalLpPool", PoolKind::Lp);
  r.Register("", "MaxUnpool", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(PoolAttrs a, ReadAttrs(i, PoolKind::Max));
    return Make<MaxUnpoolKernel>(std::move(a));
  }));
}

}  // namespace asrc::runtime

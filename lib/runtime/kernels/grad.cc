// Backward helper kernels (domain ai.asrc) that the gradient rules of lib/grad emit where a
// gradient is not just forward ops:
//   ReduceSumToShape(x, shape)              x summed over the axes along which a tensor of
//                                           `shape` was broadcast to x's shape (float32/64)
//   GatherGrad(g, indices, shape){axis}     zeros of `shape` with g's rows added at the
//                                           gathered indices (repeated indices accumulate)
//   SliceGrad(g, shape, starts, ends[, axes, steps])  zeros of `shape` with g written at the
//                                           positions Slice read (any dtype)
//   ConvGradData(g, w, x_shape){Conv's attributes}    d loss / d x of a Conv (float32/64)
//   ConvGradWeight(g, x, w_shape){Conv's attributes}  d loss / d w of a Conv (float32/64)
//   LayerNormalizationGrad(g, x, scale[, bias]){axis, epsilon} -> (dx, dscale, dbias)
//                                           one pass per row, statistics recomputed (float32/64;
//                                           bias only gives dbias its shape)
// The convolution gradients run as GEMMs against the im2col matrix in float32, and as the plain
// loop over the forward's taps (ForEachConvTap, the loop ConvReference runs) in float64.
#include <cmath>

#include "runtime/gemm.h"
#include "runtime/kernels/nn.h"
#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

Result<Shape> ShapeInput(const Tensor* t, const char* op) {
  if (!t) return Error(std::string(op) + ": missing shape input");
  ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> s, Int64s(*t));
  for (int64_t d : s)
    if (d < 0) return Error(std::string(op) + ": negative dimension in shape " + ir::ShapeStr(s));
  return s;
}

bool IsFloat(DType d) { return d == DType::Float32 || d == DType::Float64; }

Status ReduceSumToShapeRun(KernelContext& ctx) {
  const Tensor& x = *ctx.in(0);
  ASRC_ASSIGN_OR_RETURN(Shape target, ShapeInput(ctx.in(1), "ReduceSumToShape"));
  if (x.shape() == target) {
    ctx.out(0) = x;
    return Status::Ok();
  }
  if (!IsFloat(x.dtype())) return DTypeError("ReduceSumToShape", x.dtype());
  size_t r = x.shape().size();
  if (target.size() > r) return Error("ReduceSumToShape: shape " + ir::ShapeStr(target) + " has more dims than " + ir::ShapeStr(x.shape()));
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t t = target[target.size() - 1 - i], d = x.shape()[r - 1 - i];
    if (t != d && t != 1)
      return Error("ReduceSumToShape: " + ir::ShapeStr(x.shape()) + " is not a broadcast of " + ir::ShapeStr(target));
  }
  // target is a tensor's values: [2^40, 1] broadcasts from an empty [2^40, 0].
  ASRC_RETURN_IF_ERROR(CheckScratch(ir::ShapeNumel(target), sizeof(double), "ReduceSumToShape: the sums"));
  std::vector<double> acc(static_cast<size_t>(ir::ShapeNumel(target)), 0.0);
  DispatchNumeric(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* p = x.data<T>();
    BroadcastLoop<1>(x.shape(), {&target}, [&](int64_t o, const int64_t* off, const int64_t* st, int64_t len) {
      double* a = acc.data() + off[0];
      for (int64_t j = 0; j < len; ++j) a[j * st[0]] += static_cast<double>(p[o + j]);
    });
    T* q = ctx.Alloc(0, x.dtype(), target).data<T>();
    for (size_t i = 0; i < acc.size(); ++i) q[i] = static_cast<T>(acc[i]);
  });
  return Status::Ok();
}

class GatherGradKernel : public Kernel {
 public:
  explicit GatherGradKernel(int64_t axis) : axis_(axis) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& g = *ctx.in(0);
    const Tensor& idx = *ctx.in(1);
    ASRC_ASSIGN_OR_RETURN(Shape shape, ShapeInput(ctx.in(2), "GatherGrad"));
    if (!IsFloat(g.dtype())) return DTypeError("GatherGrad", g.dtype());
    if (shape.empty()) return Error("GatherGrad: data shape is a scalar");
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(axis_, static_cast<int>(shape.size())));
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> iv, Int64s(idx));
    int64_t outer = 1, inner = 1, dim = shape[ax], ni = idx.numel();
    for (int d = 0; d < ax; ++d) outer *= shape[d];
    for (size_t d = ax + 1; d < shape.size(); ++d) inner *= shape[d];
    int64_t want = 0;  // shape comes from a tensor: its products must not overflow
    if (ir::ShapeNumel(shape) < 0 || __builtin_mul_overflow(outer * inner, ni, &want) || g.numel() != want)
      return Error("GatherGrad: gradient shape " + ir::ShapeStr(g.shape()) + " does not match data " +
                   ir::ShapeStr(shape) + " and indices " + ir::ShapeStr(idx.shape()));
    for (auto& v : iv) {
      if (v < -dim || v >= dim) return Error("GatherGrad: index " + std::to_string(v) + " out of range for dim " + std::to_string(dim));
      if (v < 0) v += dim;
    }
    Tensor& out = ctx.Alloc(0, g.dtype(), shape);
    SetBytes(out.raw(), 0, out.nbytes());
    DispatchNumeric(g.dtype(), [&](auto z) {
      using T = decltype(z);
      const T* src = g.data<T>();
      T* dst = out.data<T>();
      for (int64_t i = 0; i < outer; ++i)
        for (int64_t j = 0; j < ni; ++j) {
          const T* s = src + (i * ni + j) * inner;
          T* d = dst + (i * dim + iv[j]) * inner;
          for (int64_t k = 0; k < inner; ++k) d[k] += s[k];
        }
    });
    return Status::Ok();
  }

 private:
  int64_t axis_;
};

Status SliceGradRun(KernelContext& ctx) {
  const Tensor& g = *ctx.in(0);
  ASRC_ASSIGN_OR_RETURN(Shape shape, ShapeInput(ctx.in(1), "SliceGrad"));
  if (!ctx.in(2) || !ctx.in(3)) return Error("SliceGrad: missing starts/ends");
  std::vector<int64_t> starts, ends, axes, steps;
  ASRC_ASSIGN_OR_RETURN(starts, Int64s(*ctx.in(2)));
  ASRC_ASSIGN_OR_RETURN(ends, Int64s(*ctx.in(3)));
  if (ctx.in(4)) { ASRC_ASSIGN_OR_RETURN(axes, Int64s(*ctx.in(4))); }
  if (ctx.in(5)) { ASRC_ASSIGN_OR_RETURN(steps, Int64s(*ctx.in(5))); }
  Shape window;
  std::vector<int64_t> begin, step;
  ASRC_RETURN_IF_ERROR(SliceGeometry(shape, starts, ends, axes, steps, &window, &begin, &step));
  if (window != g.shape())
    return Error("SliceGrad: gradient shape " + ir::ShapeStr(g.shape()) + " is not the slice's " + ir::ShapeStr(window));
  size_t es = ir::DTypeSize(g.dtype());
  if (es == 0) return DTypeError("SliceGrad", g.dtype());
  Tensor& out = ctx.Alloc(0, g.dtype(), shape);
  SetBytes(out.raw(), 0, out.nbytes());
  // Rows of the innermost window dimension at a time (a memcpy when its step is 1).
  int r = static_cast<int>(shape.size());
  if (r == 0 || g.numel() == 0) {
    if (g.numel()) CopyBytes(out.raw(), g.raw(), es);
    return Status::Ok();
  }
  std::vector<int64_t> xs = Strides(shape), idx(r, 0);
  int64_t base = 0;
  for (int d = 0; d < r; ++d) base += begin[d] * xs[d];
  const int64_t row = window[r - 1], row_step = step[r - 1] * xs[r - 1];
  const uint8_t* src = g.raw();
  uint8_t* dst = out.raw();
  for (int64_t i = 0; i < g.numel(); i += row) {
    int64_t off = base;
    for (int d = 0; d < r - 1; ++d) off += idx[d] * step[d] * xs[d];
    if (row_step == 1) {
      CopyBytes(dst + off * es, src + i * es, row * es);
    } else {
      for (int64_t j = 0; j < row; ++j) CopyBytes(dst + (off + j * row_step) * es, src + (i + j) * es, es);
    }
    for (int d = r - 2; d >= 0; --d) {
      if (++idx[d] < window[d]) break;
      idx[d] = 0;
    }
  }
  return Status::Ok();
}

// For one sample and one group: table[(c * kn + kk) * on + o] = offset in the group's input
// channels (c * spatial + position) that output o reads through kernel tap kk of channel c, or
// -1 where that tap falls on padding. The im2col matrix of the forward GEMM, as indices.
std::vector<int64_t> ConvTapTable(const ConvGeometry& g) {
  ConvGeometry one = g;
  one.N = 1;
  one.C = g.C / g.group;
  one.M = 1;
  one.group = 1;
  int64_t kn = 1, on = 1;
  for (size_t d = 0; d < g.k.size(); ++d) { kn *= g.k[d]; on *= g.out[d]; }
  std::vector<int64_t> table(static_cast<size_t>(one.C * kn * on), -1);
  ForEachConvTap(one, [&](int64_t yi, int64_t xi, int64_t wi) { table[wi * on + yi] = xi; });
  return table;
}

// float32: per sample and group, one GEMM against the im2col matrix (gathered through the tap
// table for the weight gradient; scattered back through it for the data gradient).
// `table` is ConvTapTable(geo).
void ConvGradGemm(const ConvGeometry& geo, const std::vector<int64_t>& table, bool data, const float* g,
                  const float* other, float* out, int64_t out_n) {
  const int64_t cg = geo.C / geo.group, mg = geo.M / geo.group;
  int64_t kn = 1, on = 1, in_n = 1;
  for (size_t d = 0; d < geo.k.size(); ++d) { kn *= geo.k[d]; on *= geo.out[d]; in_n *= geo.in[d]; }
  const int64_t K = cg * kn;
  std::vector<float> col(static_cast<size_t>(K * on));
  std::fill(out, out + out_n, 0.f);
  for (int64_t n = 0; n < geo.N; ++n)
    for (int64_t grp = 0; grp < geo.group; ++grp) {
      const float* gp = g + (n * geo.M + grp * mg) * on;
      if (data) {  // dcol = W_g^T g, then added back into the input positions
        Sgemm(true, false, K, on, mg, 1.f, other + grp * mg * K, K, gp, on, 0.f, col.data(), on, 1);
        float* dx = out + (n * geo.C + grp * cg) * in_n;
        for (size_t i = 0; i < col.size(); ++i)
          if (table[i] >= 0) dx[table[i]] += col[i];
      } else {  // dW_g += g col^T
        const float* xp = other + (n * geo.C + grp * cg) * in_n;
        for (size_t i = 0; i < col.size(); ++i) col[i] = table[i] >= 0 ? xp[table[i]] : 0.f;
        Sgemm(false, true, mg, K, on, 1.f, gp, on, col.data(), on, 1.f, out + grp * mg * K, K, 1);
      }
    }
}

// data: x's gradient from (g, w); otherwise w's gradient from (g, x). float32 runs the GEMM
// path; float64 the plain loop over the taps in double (the reference the tests hold it to).
class ConvGradKernel : public Kernel {
 public:
  ConvGradKernel(ConvGeometry g, bool data) : g0_(std::move(g)), data_(data) {}
  Status Run(KernelContext& ctx) override {
    const char* op = data_ ? "ConvGradData" : "ConvGradWeight";
    const Tensor& g = *ctx.in(0);
    const Tensor& other = *ctx.in(1);
    ASRC_ASSIGN_OR_RETURN(Shape shape, ShapeInput(ctx.in(2), op));
    if (!IsFloat(g.dtype()) || other.dtype() != g.dtype()) return DTypeError(op, g.dtype());
    ConvGeometry geo = g0_;
    ASRC_RETURN_IF_ERROR(data_ ? geo.Resolve(shape, other.shape()) : geo.Resolve(other.shape(), shape));
    Shape gs = {geo.N, geo.M};
    gs.insert(gs.end(), geo.out.begin(), geo.out.end());
    if (g.shape() != gs)
      return Error(std::string(op) + ": gradient shape " + ir::ShapeStr(g.shape()) + ", the convolution gives " + ir::ShapeStr(gs));
    if (g.dtype() == DType::Float32) {
      Tensor& out = ctx.Alloc(0, DType::Float32, shape);
      ConvGradGemm(geo, TableFor(geo), data_, g.data<float>(), other.data<float>(), out.data<float>(), out.numel());
      return Status::Ok();
    }
    ASRC_RETURN_IF_ERROR(CheckScratch(ir::ShapeNumel(shape), sizeof(double), std::string(op) + ": the sums"));
    std::vector<double> acc(static_cast<size_t>(ir::ShapeNumel(shape)), 0.0);
    DispatchNumeric(g.dtype(), [&](auto z) {
      using T = decltype(z);
      const T* pg = g.data<T>();
      const T* po = other.data<T>();
      if (data_) ForEachConvTap(geo, [&](int64_t yi, int64_t xi, int64_t wi) { acc[xi] += static_cast<double>(pg[yi]) * po[wi]; });
      else ForEachConvTap(geo, [&](int64_t yi, int64_t xi, int64_t wi) { acc[wi] += static_cast<double>(pg[yi]) * po[xi]; });
      T* out = ctx.Alloc(0, g.dtype(), shape).data<T>();
      for (size_t i = 0; i < acc.size(); ++i) out[i] = static_cast<T>(acc[i]);
    });
    return Status::Ok();
  }

 private:
  // The tap table of the last geometry: a training graph runs one shape again and again, and
  // building the table costs as much as the GEMM on the subsampling convolutions.
  const std::vector<int64_t>& TableFor(const ConvGeometry& geo) {
    const std::vector<int64_t> key = GeometryKey(geo);
    if (key != table_key_) {
      table_ = ConvTapTable(geo);
      table_key_ = key;
    }
    return table_;
  }
  static std::vector<int64_t> GeometryKey(const ConvGeometry& g) {
    std::vector<int64_t> key{g.C, g.M, g.group};
    for (const auto* v : {&g.in, &g.k, &g.out, &g.stride, &g.dil, &g.pb}) {
      key.push_back(static_cast<int64_t>(v->size()));
      key.insert(key.end(), v->begin(), v->end());
    }
    return key;
  }

  ConvGeometry g0_;
  bool data_;
  std::vector<int64_t> table_key_, table_;
};

// Per row of N normalized elements: xhat = (x - mean) rstd, dxhat = g scale,
// dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)); dscale += g xhat, dbias += g.
class LayerNormGradKernel : public Kernel {
 public:
  LayerNormGradKernel(int64_t axis, double eps) : axis_(axis), eps_(eps) {}
  Status Run(KernelContext& ctx) override {
    const Tensor &g = *ctx.in(0), &x = *ctx.in(1), &s = *ctx.in(2);
    if (!IsFloat(x.dtype()) || g.dtype() != x.dtype() || s.dtype() != x.dtype())
      return DTypeError("LayerNormalizationGrad", x.dtype());
    if (g.shape() != x.shape()) return Error("LayerNormalizationGrad: gradient shape " + ir::ShapeStr(g.shape()) + " differs from input " + ir::ShapeStr(x.shape()));
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxisOrScalar(axis_, x.rank()));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < x.rank(); ++d) (d < ax ? outer : inner) *= x.shape()[d];
    const Tensor* b = ctx.in(3);
    if (s.numel() != inner && s.numel() != 1) return Error("LayerNormalizationGrad: Scale has " + std::to_string(s.numel()) + " entries for a normalized size of " + std::to_string(inner));
    Shape bshape = b ? b->shape() : s.shape();
    if (ir::ShapeNumel(bshape) != inner && ir::ShapeNumel(bshape) != 1) return Error("LayerNormalizationGrad: B size mismatch");
    std::vector<double> ds(static_cast<size_t>(inner), 0.0), db(static_cast<size_t>(inner), 0.0);
    DispatchNumeric(x.dtype(), [&](auto z) {
      using T = decltype(z);
      const T *px = x.data<T>(), *pg = g.data<T>(), *ps = s.data<T>();
      const bool s1 = s.numel() == 1;
      T* pdx = ctx.Alloc(0, x.dtype(), x.shape()).data<T>();
      std::vector<double> xhat(static_cast<size_t>(inner));
      for (int64_t i = 0; i < outer; ++i) {
        const T *a = px + i * inner, *gr = pg + i * inner;
        double mean = 0, var = 0, m1 = 0, m2 = 0;
        for (int64_t j = 0; j < inner; ++j) mean += a[j];
        mean /= static_cast<double>(inner);
        for (int64_t j = 0; j < inner; ++j) var += (a[j] - mean) * (a[j] - mean);
        const double rstd = 1.0 / std::sqrt(var / static_cast<double>(inner) + eps_);
        for (int64_t j = 0; j < inner; ++j) {
          xhat[j] = (a[j] - mean) * rstd;
          const double dxh = static_cast<double>(gr[j]) * ps[s1 ? 0 : j];
          m1 += dxh;
          m2 += dxh * xhat[j];
          ds[j] += gr[j] * xhat[j];
          db[j] += gr[j];
        }
        m1 /= static_cast<double>(inner);
        m2 /= static_cast<double>(inner);
        for (int64_t j = 0; j < inner; ++j) {
          const double dxh = static_cast<double>(gr[j]) * ps[s1 ? 0 : j];
          pdx[i * inner + j] = static_cast<T>(rstd * (dxh - m1 - xhat[j] * m2));
        }
      }
      auto emit = [&](int out, const Shape& shape, const std::vector<double>& acc) {
        T* p = ctx.Alloc(out, x.dtype(), shape).data<T>();
        if (ir::ShapeNumel(shape) == 1 && inner != 1) {
          double t = 0;
          for (double v : acc) t += v;
          p[0] = static_cast<T>(t);
        } else {
          for (int64_t j = 0; j < inner; ++j) p[j] = static_cast<T>(acc[j]);
        }
      };
      emit(1, s.shape(), ds);
      emit(2, bshape, db);
    });
    return Status::Ok();
  }

 private:
  int64_t axis_;
  double eps_;
};

}  // namespace

void RegisterGradKernels(KernelRegistry& r) {
  r.Register("ai.asrc", "LayerNormalizationGrad", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    return Make<LayerNormGradKernel>(i.node->attr_int("axis", -1), i.node->attr_float("epsilon", 1e-5f));
  });
  r.Register("ai.asrc", "ReduceSumToShape", DType::Undefined, [](const KernelInit&) -> KernelPtr {
    return MakeFnKernel(ReduceSumToShapeRun);
  });
  r.Register("ai.asrc", "GatherGrad", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    return Make<GatherGradKernel>(i.node->attr_int("axis", 0));
  });
  r.Register("ai.asrc", "SliceGrad", DType::Undefined, [](const KernelInit&) -> KernelPtr {
    return MakeFnKernel(SliceGradRun);
  });
  for (bool data : {true, false})
    r.Register("ai.asrc", data ? "ConvGradData" : "ConvGradWeight", DType::Undefined, [data](const KernelInit& i) -> KernelPtr {
      ConvGeometry g;
      bool relu = false;
      ASRC_RETURN_IF_ERROR(ConvAttributes(*i.node, "", &g, &relu));
      if (relu) return Error("a fused activation is not supported");
      return Make<ConvGradKernel>(std::move(g), data);
    });
}

}  // namespace asrc::runtime

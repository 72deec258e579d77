// Index-driven kernels, plain loops: GatherND (batch_dims), ScatterElements / Scatter and
// ScatterND (reduction none, add, mul, max, min), Compress, NonZero, OneHot. Copies move
// elements by size, so every fixed-size dtype works; reductions need a numeric dtype.
// Negative indices count from the end; an index out of range is an error naming it.
#include <cmath>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

enum class Red { None, Add, Mul, Max, Min };

Result<Red> ParseReduction(const std::string& s) {
  if (s == "none") return Red::None;
  if (s == "add") return Red::Add;
  if (s == "mul") return Red::Mul;
  if (s == "max") return Red::Max;
  if (s == "min") return Red::Min;
  return Error("unsupported reduction '" + s + "' (none, add, mul, max, min)");
}

Result<int64_t> WrapIndex(int64_t i, int64_t dim) {
  if (i < -dim || i >= dim)
    return Error("index " + std::to_string(i) + " out of range for a dimension of " + std::to_string(dim));
  return i < 0 ? i + dim : i;
}

template <class T>
void Combine(T* dst, const T* src, int64_t n, Red red) {
  for (int64_t i = 0; i < n; ++i) {
    switch (red) {
      case Red::None: dst[i] = src[i]; break;
      case Red::Add: dst[i] = WrapAdd<T>(dst[i], src[i]); break;  // integers wrap, as Add does
      case Red::Mul: dst[i] = WrapMul<T>(dst[i], src[i]); break;
      case Red::Max: dst[i] = std::max(dst[i], src[i]); break;
      case Red::Min: dst[i] = std::min(dst[i], src[i]); break;
    }
  }
}

// dst[0..n) (op)= src[0..n) in dtype dt; plain copies by size when red is None.
Status CombineBytes(DType dt, uint8_t* dst, const uint8_t* src, int64_t n, Red red) {
  if (red == Red::None) {
    CopyBytes(dst, src, static_cast<size_t>(n) * ir::DTypeSize(dt));
    return Status::Ok();
  }
  bool ok = DispatchNumeric(dt, [&](auto z) {
    using T = decltype(z);
    Combine<T>(reinterpret_cast<T*>(dst), reinterpret_cast<const T*>(src), n, red);
  });
  return ok ? Status::Ok() : DTypeError("scatter reduction", dt);
}

// Output 0 as a copy of data, for a scatter to update in place (fixed-size dtypes only).
Result<Tensor*> CopyOfData(KernelContext& ctx, const Tensor& data, const char* op) {
  if (ir::DTypeSize(data.dtype()) == 0) return DTypeError(op, data.dtype());
  Tensor& y = ctx.Alloc(0, data.dtype(), data.shape());
  CopyBytes(y.raw(), data.raw(), data.nbytes());
  return &y;
}

class GatherNDKernel : public Kernel {
 public:
  explicit GatherNDKernel(int64_t batch_dims) : b_(batch_dims) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& data = *ctx.in(0);
    const Tensor& ind = *ctx.in(1);
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> iv, Int64s(ind));
    int r = data.rank(), q = ind.rank();
    if (q < 1 || b_ < 0 || b_ >= std::min(r, q)) return Error("GatherND: batch_dims/ranks do not fit");
    int64_t k = ind.dim(-1);
    if (k < 1 || b_ + k > r) return Error("GatherND: index tuples of " + std::to_string(k) + " for data rank " + std::to_string(r));
    for (int d = 0; d < b_; ++d)
      if (ind.dim(d) != data.dim(d))
        return Error("GatherND: indices " + ir::ShapeStr(ind.shape()) + " and data " + ir::ShapeStr(data.shape()) +
                     " differ on batch axis " + std::to_string(d));
    Shape os(ind.shape().begin(), ind.shape().end() - 1);
    for (int d = static_cast<int>(b_ + k); d < r; ++d) os.push_back(data.dim(d));
    size_t es = ir::DTypeSize(data.dtype());
    if (es == 0) return DTypeError("GatherND", data.dtype());
    int64_t batches = 1, slice = 1;
    for (int d = 0; d < b_; ++d) batches *= data.dim(d);
    for (int d = static_cast<int>(b_ + k); d < r; ++d) slice *= data.dim(d);
    int64_t tuples = batches ? iv.size() / k / batches : 0;
    int64_t batch_elems = batches ? data.numel() / batches : 0;
    std::vector<int64_t> st = Strides(data.shape());
    Tensor& y = ctx.Alloc(0, data.dtype(), os);
    for (int64_t bt = 0; bt < batches; ++bt)
      for (int64_t t = 0; t < tuples; ++t) {
        const int64_t* tup = iv.data() + (bt * tuples + t) * k;
        int64_t off = bt * batch_elems;
        for (int64_t j = 0; j < k; ++j) {
          ASRC_ASSIGN_OR_RETURN(int64_t v, WrapIndex(tup[j], data.dim(static_cast<int>(b_ + j))));
          off += v * st[b_ + j];
        }
        CopyBytes(y.raw() + (bt * tuples + t) * slice * es, data.raw() + off * es, slice * es);
      }
    return Status::Ok();
  }

 private:
  int64_t b_;
};

class ScatterElementsKernel : public Kernel {
 public:
  ScatterElementsKernel(int64_t axis, Red red) : axis_(axis), red_(red) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& data = *ctx.in(0);
    const Tensor& ind = *ctx.in(1);
    const Tensor& upd = *ctx.in(2);
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> iv, Int64s(ind));
    ASRC_ASSIGN_OR_RETURN(int axis, NormAxis(axis_, data.rank()));
    if (ind.shape() != upd.shape() || ind.rank() != data.rank())
      return Error("ScatterElements: indices " + ir::ShapeStr(ind.shape()) + " and updates " +
                   ir::ShapeStr(upd.shape()) + " must have one shape of data's rank");
    if (upd.dtype() != data.dtype()) return Error("ScatterElements: updates dtype differs from data");
    for (int d = 0; d < data.rank(); ++d)  // off the axis, an index walks the data's own coordinates
      if (d != axis && ind.dim(d) > data.dim(d))
        return Error("ScatterElements: indices shape " + ir::ShapeStr(ind.shape()) + " exceeds data shape " +
                     ir::ShapeStr(data.shape()) + " on axis " + std::to_string(d) + " (only the scatter axis may be larger)");
    ASRC_ASSIGN_OR_RETURN(Tensor* out, CopyOfData(ctx, data, "ScatterElements"));
    Tensor& y = *out;
    size_t es = ir::DTypeSize(data.dtype());
    std::vector<int64_t> st = Strides(data.shape()), idx(ind.rank(), 0);
    for (int64_t j = 0; j < ind.numel(); ++j) {
      int64_t off = 0;
      for (int d = 0; d < ind.rank(); ++d) {
        int64_t v = idx[d];
        if (d == axis) { ASRC_ASSIGN_OR_RETURN(v, WrapIndex(iv[j], data.dim(d))); }
        off += v * st[d];
      }
      ASRC_RETURN_IF_ERROR(CombineBytes(data.dtype(), y.raw() + off * es, upd.raw() + j * es, 1, red_));
      for (int d = ind.rank() - 1; d >= 0; --d) {
        if (++idx[d] < ind.dim(d)) break;
        idx[d] = 0;
      }
    }
    return Status::Ok();
  }

 private:
  int64_t axis_;
  Red red_;
};

class ScatterNDKernel : public Kernel {
 public:
  explicit ScatterNDKernel(Red red) : red_(red) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& data = *ctx.in(0);
    const Tensor& ind = *ctx.in(1);
    const Tensor& upd = *ctx.in(2);
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> iv, Int64s(ind));
    if (ind.rank() < 1) return Error("ScatterND: indices must have rank >= 1");
    int64_t k = ind.dim(-1);
    if (k < 1 || k > data.rank()) return Error("ScatterND: index tuples longer than data's rank");
    if (upd.dtype() != data.dtype()) return Error("ScatterND: updates dtype differs from data");
    Shape want(ind.shape().begin(), ind.shape().end() - 1);
    for (int d = static_cast<int>(k); d < data.rank(); ++d) want.push_back(data.dim(d));
    if (upd.shape() != want) return Error("ScatterND: updates shape " + ir::ShapeStr(upd.shape()) + ", expected " + ir::ShapeStr(want));
    ASRC_ASSIGN_OR_RETURN(Tensor* out, CopyOfData(ctx, data, "ScatterND"));
    Tensor& y = *out;
    size_t es = ir::DTypeSize(data.dtype());
    std::vector<int64_t> st = Strides(data.shape());
    int64_t slice = 1;
    for (int d = static_cast<int>(k); d < data.rank(); ++d) slice *= data.dim(d);
    int64_t tuples = iv.size() / k;
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t off = 0;
      for (int64_t j = 0; j < k; ++j) {
        ASRC_ASSIGN_OR_RETURN(int64_t v, WrapIndex(iv[t * k + j], data.dim(static_cast<int>(j))));
        off += v * st[j];
      }
      ASRC_RETURN_IF_ERROR(CombineBytes(data.dtype(), y.raw() + off * es, upd.raw() + t * slice * es, slice, red_));
    }
    return Status::Ok();
  }

 private:
  Red red_;
};

// Compress(input, condition[, axis]): the slices along axis (or of the flattened input) whose
// condition is true; condition may be shorter than the axis.
class CompressKernel : public Kernel {
 public:
  CompressKernel(bool has_axis, int64_t axis) : has_axis_(has_axis), axis_(axis) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    const Tensor& c = *ctx.in(1);
    if (c.dtype() != DType::Bool || c.rank() != 1) return Error("Compress: condition must be a 1-D bool tensor");
    size_t es = ir::DTypeSize(x.dtype());
    if (es == 0) return DTypeError("Compress", x.dtype());
    Shape xs = has_axis_ ? x.shape() : Shape{x.numel()};
    int axis = 0;
    if (has_axis_) { ASRC_ASSIGN_OR_RETURN(axis, NormAxis(axis_, x.rank())); }
    int64_t outer = 1, n = xs[axis], inner = 1;
    for (int d = 0; d < axis; ++d) outer *= xs[d];
    for (int d = axis + 1; d < static_cast<int>(xs.size()); ++d) inner *= xs[d];
    if (c.numel() > n) return Error("Compress: condition longer than the axis");
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < c.numel(); ++i)
      if (c.data<bool>()[i]) keep.push_back(i);
    Shape os = xs;
    os[axis] = static_cast<int64_t>(keep.size());
    Tensor& y = ctx.Alloc(0, x.dtype(), os);
    if (y.numel() == 0) return Status::Ok();  // outer may be 2^40 over nothing
    uint8_t* dst = y.raw();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i : keep) {
        CopyBytes(dst, x.raw() + ((o * n + i) * inner) * es, inner * es);
        dst += inner * es;
      }
    return Status::Ok();
  }

 private:
  bool has_axis_;
  int64_t axis_;
};

Status NonZeroRun(KernelContext& ctx) {
  const Tensor& x = *ctx.in(0);
  std::vector<int64_t> hits;
  Tensor xf = x.dtype() == DType::Float16 ? HalfToFloat(x) : x;
  bool ok = DispatchNumericOrBool(xf.dtype(), [&](auto z) {
    using T = decltype(z);
    for (int64_t i = 0; i < xf.numel(); ++i)
      if (xf.data<T>()[i] != T(0)) hits.push_back(i);
  });
  if (!ok) return DTypeError("NonZero", x.dtype());
  int r = x.rank();
  int64_t nnz = static_cast<int64_t>(hits.size());
  Tensor& y = ctx.Alloc(0, DType::Int64, {std::max(r, 1), nnz});
  for (int64_t j = 0; j < nnz; ++j) {
    int64_t rem = hits[j];
    if (r == 0) y.data<int64_t>()[j] = 0;
    for (int d = r - 1; d >= 0; --d) {
      y.data<int64_t>()[d * nnz + j] = rem % x.dim(d);
      rem /= x.dim(d);
    }
  }
  return Status::Ok();
}

// OneHot(indices, depth, values[off, on]): values' dtype, depth inserted at axis.
class OneHotKernel : public Kernel {
 public:
  explicit OneHotKernel(int64_t axis) : axis_(axis) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& ind = *ctx.in(0);
    const Tensor& vals = *ctx.in(2);
    ASRC_ASSIGN_OR_RETURN(int64_t depth, ScalarAsInt64(*ctx.in(1), "OneHot: depth"));
    if (depth < 1) return Error("OneHot: depth must be positive");
    if (vals.numel() != 2) return Error("OneHot: values must hold two elements [off, on]");
    size_t es = ir::DTypeSize(vals.dtype());
    if (es == 0) return DTypeError("OneHot", vals.dtype());
    Tensor fi(DType::Float64, ind.shape());
    ASRC_RETURN_IF_ERROR(ConvertInto(ind, fi));
    ASRC_ASSIGN_OR_RETURN(int axis, NormAxis(axis_, ind.rank() + 1));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= ind.dim(d);
    for (int d = axis; d < ind.rank(); ++d) inner *= ind.dim(d);
    Shape os = ind.shape();
    os.insert(os.begin() + axis, depth);
    Tensor& y = ctx.Alloc(0, vals.dtype(), os);
    for (int64_t j = 0; j < y.numel(); ++j) CopyBytes(y.raw() + j * es, vals.raw(), es);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        // NaN and values beyond [-depth, depth) land outside: all off.
        int64_t v = ClampToInt64(fi.data<double>()[o * inner + i], -depth - 1, depth);
        if (v < 0) v += depth;
        if (v < 0 || v >= depth) continue;  // out of range: all off
        CopyBytes(y.raw() + ((o * depth + v) * inner + i) * es, vals.raw() + es, es);
      }
    return Status::Ok();
  }

 private:
  int64_t axis_;
};

}  // namespace

void RegisterScatterKernels(KernelRegistry& r) {
  r.Register("", "GatherND", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    return Make<GatherNDKernel>(i.node->attr_int("batch_dims", 0));
  }));
  for (const char* op : {"ScatterElements", "Scatter"})
    r.Register("", op, DType::Undefined, NeedInputs(3, [](const KernelInit& i) -> KernelPtr {
      ASRC_ASSIGN_OR_RETURN(Red red, ParseReduction(i.node->attr_string("reduction", "none")));
      return Make<ScatterElementsKernel>(i.node->attr_int("axis", 0), red);
    }));
  r.Register("", "ScatterND", DType::Undefined, NeedInputs(3, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(Red red, ParseReduction(i.node->attr_string("reduction", "none")));
    return Make<ScatterNDKernel>(red);
  }));
  r.Register("", "Compress", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    return Make<CompressKernel>(i.node->attr("axis") != nullptr, i.node->attr_int("axis", 0));
  }));
  r.Register("", "NonZero", DType::Undefined, NeedInputs(1, [](const KernelInit&) -> KernelPtr { return MakeFnKernel(NonZeroRun); }));
  r.Register("", "OneHot", DType::Undefined, NeedInputs(3, [](const KernelInit& i) -> KernelPtr {
    return Make<OneHotKernel>(i.node->attr_int("axis", -1));
  }));
}

}  // namespace asrc::runtime

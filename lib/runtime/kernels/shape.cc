// Data-movement and shape kernels: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Identity,
// Dropout (inference and training), Constant, ConstantOfShape, Concat, Split, Gather, GatherElements,
// Range, Trilu, CumSum (the strided copies Slice, Transpose, Expand, Tile, Pad are in strided.cc).
// Most copy by element size, so they serve every fixed-size dtype (float16 included). Reshape-like
// ops share the input buffer.
#include <cmath>
#include <random>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

// Axes from the input at `index` (newer opsets) or the attribute (older ones).
Result<std::vector<int64_t>> AxesFrom(KernelContext& ctx, int index, const std::vector<int64_t>& attr,
                                      bool use_input) {
  if (!use_input) return attr;
  if (!ctx.in(index)) return std::vector<int64_t>{};
  return Int64s(*ctx.in(index));
}

class ShapeKernel : public Kernel {
 public:
  ShapeKernel(int64_t start, int64_t end, bool has_end) : start_(start), end_(end), has_end_(has_end) {}
  Status Run(KernelContext& ctx) override {
    const Shape& s = ctx.in(0)->shape();
    int64_t r = static_cast<int64_t>(s.size());
    int64_t b = start_ < 0 ? start_ + r : start_;
    int64_t e = has_end_ ? (end_ < 0 ? end_ + r : end_) : r;
    b = std::clamp<int64_t>(b, 0, r);
    e = std::clamp<int64_t>(e, 0, r);
    int64_t n = std::max<int64_t>(e - b, 0);
    Tensor& o = ctx.Alloc(0, DType::Int64, {n});
    for (int64_t i = 0; i < n; ++i) o.data<int64_t>()[i] = s[b + i];
    return Status::Ok();
  }

 private:
  int64_t start_, end_;
  bool has_end_;
};

class ReshapeKernel : public Kernel {
 public:
  explicit ReshapeKernel(bool allowzero) : allowzero_(allowzero) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    if (!ctx.in(1)) return Error("missing shape input");
    ASRC_ASSIGN_OR_RETURN(auto spec, Int64s(*ctx.in(1)));
    Shape out(spec.size());
    int infer = -1;
    int64_t known = 1;
    for (size_t i = 0; i < spec.size(); ++i) {
      int64_t v = spec[i];
      if (v == 0 && !allowzero_) {
        if (i >= x.shape().size()) return Error("shape[" + std::to_string(i) + "] = 0 copies a missing input dim");
        v = x.shape()[i];
      }
      if (v == -1) {
        if (infer >= 0) return Error("more than one -1 in shape");
        infer = static_cast<int>(i);
        out[i] = 1;
        continue;
      }
      if (v < 0) return Error("invalid shape value " + std::to_string(v));
      out[i] = v;
      if (__builtin_mul_overflow(known, v, &known))
        return Error("shape " + ir::ShapeStr(Shape(spec.begin(), spec.end())) + " has more elements than int64 counts");
    }
    if (infer >= 0) {
      if (known == 0 || x.numel() % known != 0)
        return Error("cannot reshape " + ir::ShapeStr(x.shape()) + " to " + ir::ShapeStr(Shape(spec.begin(), spec.end())));
      out[infer] = x.numel() / known;
    }
    if (ir::ShapeNumel(out) != x.numel())
      return Error("cannot reshape " + ir::ShapeStr(x.shape()) + " to " + ir::ShapeStr(out));
    ctx.out(0) = x.Reshaped(std::move(out));
    return Status::Ok();
  }

 private:
  bool allowzero_;
};

class FlattenKernel : public Kernel {
 public:
  explicit FlattenKernel(int64_t axis) : axis_(axis) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    int r = x.rank();
    int64_t a = axis_ < 0 ? axis_ + r : axis_;
    if (a < 0 || a > r) return Error("axis out of range");
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < r; ++i) (i < a ? outer : inner) *= x.shape()[i];
    ctx.out(0) = x.Reshaped({outer, inner});
    return Status::Ok();
  }

 private:
  int64_t axis_;
};

class SqueezeKernel : public Kernel {
 public:
  SqueezeKernel(std::vector<int64_t> axes, bool input) : axes_(std::move(axes)), input_(input) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(auto axes, AxesFrom(ctx, 1, axes_, input_));
    int r = x.rank();
    std::vector<bool> drop(r, false);
    if (axes.empty()) {
      for (int i = 0; i < r; ++i) drop[i] = x.shape()[i] == 1;
    } else {
      for (int64_t a : axes) {
        ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(a, r));
        if (x.shape()[ax] != 1) return Error("cannot squeeze axis " + std::to_string(a) + " of shape " + ir::ShapeStr(x.shape()));
        drop[ax] = true;
      }
    }
    Shape out;
    for (int i = 0; i < r; ++i)
      if (!drop[i]) out.push_back(x.shape()[i]);
    ctx.out(0) = x.Reshaped(std::move(out));
    return Status::Ok();
  }

 private:
  std::vector<int64_t> axes_;
  bool input_;
};

class UnsqueezeKernel : public Kernel {
 public:
  UnsqueezeKernel(std::vector<int64_t> axes, bool input) : axes_(std::move(axes)), input_(input) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(auto axes, AxesFrom(ctx, 1, axes_, input_));
    int r = x.rank() + static_cast<int>(axes.size());
    std::vector<bool> ins(r, false);
    for (int64_t a : axes) {
      ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(a, r));
      if (ins[ax]) return Error("duplicate axis in Unsqueeze");
      ins[ax] = true;
    }
    Shape out;
    int j = 0;
    for (int i = 0; i < r; ++i) out.push_back(ins[i] ? 1 : x.shape()[j++]);
    ctx.out(0) = x.Reshaped(std::move(out));
    return Status::Ok();
  }

 private:
  std::vector<int64_t> axes_;
  bool input_;
};

class IdentityKernel : public Kernel {
 public:
  // any_value: Identity proper, which passes sequences and optionals too (not Dropout's use).
  explicit IdentityKernel(bool any_value = false) : any_value_(any_value) {}
  bool TakesNonTensors() const override { return any_value_; }
  Status Run(KernelContext& ctx) override {
    ctx.out(0) = *ctx.in(0);
    if (ctx.outputs->size() > 1 && ctx.node->output(1)) {  // Dropout mask: all kept
      Tensor& m = ctx.Alloc(1, DType::Bool, ctx.in(0)->shape());
      std::fill(m.data<bool>(), m.data<bool>() + m.numel(), true);
    }
    return Status::Ok();
  }

 private:
  bool any_value_;
};

// Inference (training_mode absent or false): identity, mask all true. Training: each element
// kept with probability 1 - ratio and scaled by 1 / (1 - ratio), the mask (output 1) saying
// which; the generator is seeded once from the `seed` attribute (0 when absent, so runs are
// reproducible) and advances from run to run, so every training step draws a new mask.
class DropoutKernel : public Kernel {
 public:
  explicit DropoutKernel(uint64_t seed) : rng_(seed) {}
  Status Run(KernelContext& ctx) override {
    bool train = false;
    if (ctx.in(2)) {
      ASRC_ASSIGN_OR_RETURN(double t, ScalarAsDouble(*ctx.in(2)));
      train = t != 0;
    }
    if (!train) return IdentityKernel().Run(ctx);
    double ratio = 0.5;
    if (ctx.in(1)) { ASRC_ASSIGN_OR_RETURN(ratio, ScalarAsDouble(*ctx.in(1))); }
    if (!(ratio >= 0 && ratio < 1)) return Error("Dropout ratio " + std::to_string(ratio) + " is outside [0, 1)");
    const Tensor& x = *ctx.in(0);
    if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64) return DTypeError("Dropout", x.dtype());
    const bool want_mask = ctx.outputs->size() > 1 && ctx.node->output(1);
    Tensor mask = want_mask ? ctx.Alloc(1, DType::Bool, x.shape()) : Tensor(DType::Bool, x.shape());
    std::bernoulli_distribution keep(1.0 - ratio);
    bool* pm = mask.data<bool>();
    for (int64_t i = 0; i < x.numel(); ++i) pm[i] = keep(rng_);
    const double scale = 1.0 / (1.0 - ratio);
    DispatchNumeric(x.dtype(), [&](auto z) {
      using T = decltype(z);
      const T* px = x.data<T>();
      T* py = ctx.Alloc(0, x.dtype(), x.shape()).data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) py[i] = pm[i] ? static_cast<T>(px[i] * scale) : T(0);
    });
    return Status::Ok();
  }

 private:
  std::mt19937_64 rng_;
};

class ConstKernel : public Kernel {
 public:
  explicit ConstKernel(Tensor t) : t_(std::move(t)) {}
  Status Run(KernelContext& ctx) override {
    ctx.out(0) = t_;
    return Status::Ok();
  }

 private:
  Tensor t_;
};

KernelPtr MakeConstant(const KernelInit& init) {
  const ir::Node& n = *init.node;
  for (const auto& a : n.attributes) {
    if (a.name == "value") {
      if (a.t.dtype() == DType::String || !a.t.defined()) return Error("string/undefined Constant is not supported");
      return Make<ConstKernel>(a.t);
    }
    if (a.name == "value_float") return Make<ConstKernel>(Tensor::Scalar(a.f));
    if (a.name == "value_int") return Make<ConstKernel>(Tensor::ScalarInt64(a.i));
    if (a.name == "value_floats")
      return Make<ConstKernel>(Tensor::FromVector(DType::Float32, {static_cast<int64_t>(a.floats.size())}, a.floats));
    if (a.name == "value_ints")
      return Make<ConstKernel>(Tensor::FromVector(DType::Int64, {static_cast<int64_t>(a.ints.size())}, a.ints));
    if (a.name == "value_string" || a.name == "value_strings" || a.name == "sparse_value")
      return Error("Constant with '" + a.name + "' is not supported");
  }
  return Error("Constant has no value attribute");
}

class ConstantOfShapeKernel : public Kernel {
 public:
  explicit ConstantOfShapeKernel(Tensor value) : value_(std::move(value)) {}
  Status Run(KernelContext& ctx) override {
    ASRC_ASSIGN_OR_RETURN(auto dims, Int64s(*ctx.in(0)));
    for (int64_t d : dims)
      if (d < 0) return Error("negative dim in shape");
    Tensor& o = ctx.Alloc(0, value_.dtype(), Shape(dims.begin(), dims.end()));
    size_t es = ir::DTypeSize(value_.dtype());
    uint8_t* p = o.raw();
    bool zero = true;
    for (size_t i = 0; i < es; ++i) zero = zero && value_.raw()[i] == 0;
    if (zero) SetBytes(p, 0, o.nbytes());
    else for (int64_t i = 0; i < o.numel(); ++i) CopyBytes(p + i * es, value_.raw(), es);
    return Status::Ok();
  }

 private:
  Tensor value_;
};

class ConcatKernel : public Kernel {
 public:
  explicit ConcatKernel(int64_t axis) : axis_(axis) {}
  Status Run(KernelContext& ctx) override {
    // PyTorch exports torch.cat with legacy empty 1-D tensors (shape [0]) beside rank-N ones
    // (torchaudio's Emformer); as torch.cat does, skip an empty input whose rank differs.
    const Tensor* first = nullptr;
    for (const Tensor* t : ctx.inputs)
      if (t && (!first || (first->numel() == 0 && t->numel() > 0))) first = t;
    if (!first) return Error("no inputs");
    auto skipped = [&](const Tensor* t) { return !t || (t->numel() == 0 && t->rank() != first->rank()); };
    ASRC_RETURN_IF_ERROR(NeedFixedSize(*first, "Concat"));
    int r = first->rank();
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(axis_, r));
    Shape out = first->shape();
    out[ax] = 0;
    for (const Tensor* t : ctx.inputs) {
      if (skipped(t)) continue;
      if (t->rank() != r || t->dtype() != first->dtype()) return Error("inputs differ in rank or dtype");
      for (int d = 0; d < r; ++d)
        if (d != ax && t->shape()[d] != first->shape()[d])
          return Error("input shapes " + ir::ShapeStr(first->shape()) + " and " + ir::ShapeStr(t->shape()) + " differ off the axis");
      out[ax] += t->shape()[ax];
    }
    size_t es = ir::DTypeSize(first->dtype());
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < ax; ++d) outer *= out[d];
    for (int d = ax + 1; d < r; ++d) inner *= out[d];
    Tensor& o = ctx.Alloc(0, first->dtype(), out);
    if (o.numel() == 0) return Status::Ok();  // [2^40, 0]: no 2^40 empty copies (spun at -O1)
    uint8_t* dst = o.raw();
    int64_t row = out[ax] * inner * es;
    int64_t col = 0;
    for (const Tensor* t : ctx.inputs) {
      if (skipped(t)) continue;
      int64_t chunk = t->shape()[ax] * inner * es;
      const uint8_t* src = t->raw();
      for (int64_t i = 0; i < outer; ++i) CopyBytes(dst + i * row + col, src + i * chunk, chunk);
      col += chunk;
    }
    return Status::Ok();
  }

 private:
  int64_t axis_;
};

class SplitKernel : public Kernel {
 public:
  SplitKernel(int64_t axis, std::vector<int64_t> split, bool split_input, int64_t num_outputs)
      : axis_(axis), split_(std::move(split)), split_input_(split_input), num_outputs_(num_outputs) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_RETURN_IF_ERROR(NeedFixedSize(x, "Split"));
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(axis_, x.rank()));
    int n = static_cast<int>(ctx.outputs->size());
    std::vector<int64_t> split = split_;
    if (split_input_ && ctx.in(1)) {
      ASRC_ASSIGN_OR_RETURN(split, Int64s(*ctx.in(1)));
    }
    int64_t dim = x.shape()[ax];
    if (split.empty()) {
      int64_t parts = num_outputs_ > 0 ? num_outputs_ : n;
      int64_t each = (dim + parts - 1) / parts;
      if (num_outputs_ <= 0 && dim % parts != 0) return Error("dim " + std::to_string(dim) + " does not split evenly into " + std::to_string(parts));
      for (int64_t i = 0; i < parts; ++i) split.push_back(std::min(each, dim - each * i));
    }
    if (static_cast<int>(split.size()) != n) return Error("split has " + std::to_string(split.size()) + " entries for " + std::to_string(n) + " outputs");
    ASRC_RETURN_IF_ERROR(CheckSplitSizes(split, dim));
    size_t es = ir::DTypeSize(x.dtype());
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < ax; ++d) outer *= x.shape()[d];
    for (int d = ax + 1; d < x.rank(); ++d) inner *= x.shape()[d];
    int64_t row = dim * inner * es, col = 0;
    for (int k = 0; k < n; ++k) {
      Shape s = x.shape();
      s[ax] = split[k];
      int64_t chunk = split[k] * inner * es;
      if (ctx.node->output(k)) {
        Tensor& o = ctx.Alloc(k, x.dtype(), s);
        for (int64_t i = 0; i < outer; ++i) CopyBytes(o.raw() + i * chunk, x.raw() + i * row + col, chunk);
      }
      col += chunk;
    }
    return Status::Ok();
  }

 private:
  int64_t axis_;
  std::vector<int64_t> split_;
  bool split_input_;
  int64_t num_outputs_;
};

class GatherKernel : public Kernel {
 public:
  explicit GatherKernel(int64_t axis) : axis_(axis) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    const Tensor& idx = *ctx.in(1);
    ASRC_RETURN_IF_ERROR(NeedFixedSize(x, "Gather"));
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(axis_, x.rank()));
    Shape out(x.shape().begin(), x.shape().begin() + ax);
    out.insert(out.end(), idx.shape().begin(), idx.shape().end());
    out.insert(out.end(), x.shape().begin() + ax + 1, x.shape().end());
    int64_t outer = 1, inner = 1, dim = x.shape()[ax];
    for (int d = 0; d < ax; ++d) outer *= x.shape()[d];
    for (int d = ax + 1; d < x.rank(); ++d) inner *= x.shape()[d];
    size_t es = ir::DTypeSize(x.dtype());
    int64_t ni = idx.numel();
    std::vector<int64_t> iv(ni);
    if (idx.dtype() == DType::Int64) for (int64_t i = 0; i < ni; ++i) iv[i] = idx.data<int64_t>()[i];
    else if (idx.dtype() == DType::Int32) for (int64_t i = 0; i < ni; ++i) iv[i] = idx.data<int32_t>()[i];
    else return Error("indices must be int32 or int64");
    for (auto& v : iv) {
      if (v < -dim || v >= dim) return Error("index " + std::to_string(v) + " out of range for dim " + std::to_string(dim));
      if (v < 0) v += dim;
    }
    Tensor& o = ctx.Alloc(0, x.dtype(), out);
    if (o.numel() == 0) return Status::Ok();  // outer may be 2^40 over no index or element
    int64_t chunk = inner * es;
    uint8_t* dst = o.raw();
    for (int64_t i = 0; i < outer; ++i)
      for (int64_t j = 0; j < ni; ++j)
        CopyBytes(dst + (i * ni + j) * chunk, x.raw() + (i * dim + iv[j]) * chunk, chunk);
    return Status::Ok();
  }

 private:
  int64_t axis_;
};

class GatherElementsKernel : public Kernel {
 public:
  explicit GatherElementsKernel(int64_t axis) : axis_(axis) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    const Tensor& idx = *ctx.in(1);
    ASRC_RETURN_IF_ERROR(NeedFixedSize(x, "GatherElements"));
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(axis_, x.rank()));
    if (idx.rank() != x.rank()) return Error("indices rank differs from data rank");
    for (int d = 0; d < x.rank(); ++d)  // off the axis, an index walks the data's own coordinates
      if (d != ax && idx.shape()[d] > x.shape()[d])
        return Error("indices shape " + ir::ShapeStr(idx.shape()) + " exceeds data shape " + ir::ShapeStr(x.shape()) +
                     " on axis " + std::to_string(d) + " (only the gather axis may be larger)");
    ASRC_ASSIGN_OR_RETURN(auto iv, Int64s(idx));
    Tensor& o = ctx.Alloc(0, x.dtype(), idx.shape());
    size_t es = ir::DTypeSize(x.dtype());
    auto xs = Strides(x.shape());
    int r = x.rank();
    std::vector<int64_t> c(r, 0);
    int64_t dim = x.shape()[ax];
    for (int64_t i = 0; i < idx.numel(); ++i) {
      int64_t v = iv[i];
      if (v < -dim || v >= dim) return Error("index out of range");
      if (v < 0) v += dim;
      int64_t off = 0;
      for (int d = 0; d < r; ++d) off += (d == ax ? v : c[d]) * xs[d];
      CopyBytes(o.raw() + i * es, x.raw() + off * es, es);
      for (int d = r - 1; d >= 0; --d) {
        if (++c[d] < idx.shape()[d]) break;
        c[d] = 0;
      }
    }
    return Status::Ok();
  }

 private:
  int64_t axis_;
};

class RangeKernel : public Kernel {
 public:
  Status Run(KernelContext& ctx) override {
    const Tensor& s = *ctx.in(0);
    DType dt = s.dtype();
    if (ctx.in(1)->dtype() != dt || ctx.in(2)->dtype() != dt) return Error("start/limit/delta dtypes differ");
    if (s.numel() != 1 || ctx.in(1)->numel() != 1 || ctx.in(2)->numel() != 1)
      return Error("start/limit/delta must be one-element tensors");
    Status st;
    bool ok = DispatchNumeric(dt, [&](auto z) {
      using T = decltype(z);
      T start = s.data<T>()[0], limit = ctx.in(1)->data<T>()[0], delta = ctx.in(2)->data<T>()[0];
      if (delta == T(0)) { st = Error("delta is 0"); return; }
      double nd = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) / static_cast<double>(delta));
      auto len = CheckedInt64(nd, "Range: the length ceil((limit - start) / delta)");
      if (!len.ok()) { st = len.status(); return; }
      int64_t n = std::max<int64_t>(0, *len);
      Tensor& o = ctx.Alloc(0, dt, {n});
      T v = start;
      for (int64_t i = 0; i < n; ++i) {
        o.data<T>()[i] = v;
        v = WrapAdd<T>(v, delta);  // the step after the last element may overflow
      }
    });
    if (!ok) return DTypeError("Range", dt);
    return st;
  }
};

class TriluKernel : public Kernel {
 public:
  explicit TriluKernel(bool upper) : upper_(upper) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_RETURN_IF_ERROR(NeedFixedSize(x, "Trilu"));
    if (x.rank() < 2) return Error("Trilu needs rank >= 2");
    int64_t k = 0;
    if (ctx.in(1)) { ASRC_ASSIGN_OR_RETURN(auto kv, Int64s(*ctx.in(1))); if (!kv.empty()) k = kv[0]; }
    int64_t rows = x.dim(-2), cols = x.dim(-1);
    Tensor& o = ctx.Alloc(0, x.dtype(), x.shape());
    size_t es = ir::DTypeSize(x.dtype());
    int64_t batch = (rows * cols != 0) ? x.numel() / (rows * cols) : 0;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          int64_t off = ((b * rows + i) * cols + j) * es;
          bool keep = upper_ ? (j - i >= k) : (j - i <= k);
          if (keep) CopyBytes(o.raw() + off, x.raw() + off, es);
          else SetBytes(o.raw() + off, 0, es);
        }
    return Status::Ok();
  }

 private:
  bool upper_;
};

class CumSumKernel : public Kernel {
 public:
  CumSumKernel(bool exclusive, bool reverse) : exclusive_(exclusive), reverse_(reverse) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(auto av, Int64s(*ctx.in(1)));
    if (av.size() != 1) return Error("axis must be a scalar");
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(av[0], x.rank()));
    int64_t outer = 1, inner = 1, dim = x.shape()[ax];
    for (int d = 0; d < ax; ++d) outer *= x.shape()[d];
    for (int d = ax + 1; d < x.rank(); ++d) inner *= x.shape()[d];
    bool ok = DispatchNumeric(x.dtype(), [&](auto z) {
      using T = decltype(z);
      Tensor& o = ctx.Alloc(0, x.dtype(), x.shape());
      if (o.numel() == 0) return;  // outer may be 2^40 over nothing
      const T* a = x.data<T>();
      T* b = o.data<T>();
      for (int64_t i = 0; i < outer; ++i)
        for (int64_t j = 0; j < inner; ++j) {
          T acc = 0;
          for (int64_t t = 0; t < dim; ++t) {
            int64_t tt = reverse_ ? dim - 1 - t : t;
            int64_t off = (i * dim + tt) * inner + j;
            if (exclusive_) { b[off] = acc; acc = WrapAdd(acc, a[off]); }
            else { acc = WrapAdd(acc, a[off]); b[off] = acc; }
          }
        }
    });
    if (!ok) return DTypeError("CumSum", x.dtype());
    return Status::Ok();
  }

 private:
  bool exclusive_, reverse_;
};

}  // namespace

void RegisterShapeKernels(KernelRegistry& r) {
  auto reg = [&](const char* op, KernelFactory f) { r.Register("", op, DType::Undefined, std::move(f)); };
  reg("Shape", [](const KernelInit& i) {
    const ir::Attribute* e = i.node->attr("end");
    return Make<ShapeKernel>(i.node->attr_int("start", 0), e ? e->i : 0, e != nullptr);
  });
  reg("Size", [](const KernelInit&) {
    return KernelPtr(MakeFnKernel([](KernelContext& ctx) {
      ctx.Alloc(0, DType::Int64, {}).data<int64_t>()[0] = ctx.in(0)->numel();
      return Status::Ok();
    }));
  });
  reg("Reshape", [](const KernelInit& i) { return Make<ReshapeKernel>(i.node->attr_int("allowzero", 0) != 0); });
  reg("Flatten", [](const KernelInit& i) { return Make<FlattenKernel>(i.node->attr_int("axis", 1)); });
  reg("Squeeze", [](const KernelInit& i) { return Make<SqueezeKernel>(i.node->attr_ints("axes"), i.opset >= 13); });
  reg("Unsqueeze", [](const KernelInit& i) { return Make<UnsqueezeKernel>(i.node->attr_ints("axes"), i.opset >= 13); });
  reg("Identity", [](const KernelInit&) { return Make<IdentityKernel>(true); });
  reg("Dropout", [](const KernelInit& i) {
    return Make<DropoutKernel>(static_cast<uint64_t>(i.node->attr_int("seed", 0)));
  });
  reg("Constant", [](const KernelInit& i) { return MakeConstant(i); });
  reg("ConstantOfShape", [](const KernelInit& i) -> KernelPtr {
    const ir::Attribute* v = i.node->attr("value");
    if (!v) return Make<ConstantOfShapeKernel>(Tensor(DType::Float32, {}));
    if (v->t.numel() != 1 || ir::DTypeSize(v->t.dtype()) == 0) return Error("value must be a one-element tensor");
    return Make<ConstantOfShapeKernel>(v->t.Reshaped({}));
  });
  reg("Concat", [](const KernelInit& i) -> KernelPtr {
    if (!i.node->attr("axis")) return Error("Concat needs an axis");
    return Make<ConcatKernel>(i.node->attr_int("axis", 0));
  });
  reg("Split", [](const KernelInit& i) {
    return Make<SplitKernel>(i.node->attr_int("axis", 0), i.node->attr_ints("split"), i.opset >= 13,
        i.node->attr_int("num_outputs", 0));
  });
  reg("Gather", [](const KernelInit& i) { return Make<GatherKernel>(i.node->attr_int("axis", 0)); });
  reg("GatherElements", [](const KernelInit& i) { return Make<GatherElementsKernel>(i.node->attr_int("axis", 0)); });
  reg("Range", [](const KernelInit&) { return Make<RangeKernel>(); });
  reg("Trilu", [](const KernelInit& i) { return Make<TriluKernel>(i.node->attr_int("upper", 1) != 0); });
  reg("CumSum", [](const KernelInit& i) {
    return Make<CumSumKernel>(i.node->attr_int("exclusive", 0) != 0, i.node->attr_int("reverse", 0) != 0);
  });
}

}  // namespace asrc::runtime

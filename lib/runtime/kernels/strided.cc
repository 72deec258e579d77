// Strided data-movement kernels: Slice, Transpose, Expand, Tile, Pad (split from shape.cc). Each
// copies by element size, so they serve every fixed-size dtype (float16 included).
#include <cstring>

#include "runtime/kernels/util.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {
namespace {

using namespace ku;

// dst (dense, out_shape) <- src elements at src_off + sum(idx[d] * src_st[d]).
// Rows [row_begin, row_end) of the out_shape.back()-long rows only.
void CopyStridedRows(const uint8_t* src, int64_t src_off, const std::vector<int64_t>& src_st,
                     const Shape& out_shape, uint8_t* dst, size_t es, int64_t row_begin, int64_t row_end) {
  int r = static_cast<int>(out_shape.size());
  int64_t total = ir::ShapeNumel(out_shape);
  if (total <= 0) return;
  if (r == 0) {
    CopyBytes(dst, src + src_off * es, es);
    return;
  }
  int64_t inner = out_shape[r - 1];
  int64_t ist = src_st[r - 1];
  std::vector<int64_t> idx(r, 0);
  int64_t off = src_off;
  for (int64_t d = r - 2, rest = row_begin; d >= 0; --d) {
    idx[d] = rest % out_shape[d];
    rest /= out_shape[d];
    off += idx[d] * src_st[d];
  }
  auto copy_row = [&](uint8_t* d, const uint8_t* s) {
    if (ist == 1) {
      CopyBytes(d, s, inner * es);
      return;
    }
    switch (es) {
      case 1: for (int64_t j = 0; j < inner; ++j) d[j] = s[j * ist]; break;
      case 2: for (int64_t j = 0; j < inner; ++j) reinterpret_cast<uint16_t*>(d)[j] = reinterpret_cast<const uint16_t*>(s)[j * ist]; break;
      case 4: for (int64_t j = 0; j < inner; ++j) reinterpret_cast<uint32_t*>(d)[j] = reinterpret_cast<const uint32_t*>(s)[j * ist]; break;
      case 8: for (int64_t j = 0; j < inner; ++j) reinterpret_cast<uint64_t*>(d)[j] = reinterpret_cast<const uint64_t*>(s)[j * ist]; break;
      default: for (int64_t j = 0; j < inner; ++j) CopyBytes(d + j * es, s + j * ist * es, es);
    }
  };
  for (int64_t o = row_begin * inner, oe = row_end * inner; o < oe; o += inner) {
    copy_row(dst + o * es, src + off * es);
    for (int d = r - 2; d >= 0; --d) {
      if (++idx[d] < out_shape[d]) {
        off += src_st[d];
        break;
      }
      off -= src_st[d] * (out_shape[d] - 1);
      idx[d] = 0;
    }
  }
}

// Copies below this many bytes stay on one thread.
constexpr int64_t kParallelBytes = 256 * 1024;

// dst (dense, out_shape) <- src elements at src_off + sum(idx[d] * src_st[d]); rows over ctx's
// pool (when given) for a large copy.
void CopyStrided(const uint8_t* src, int64_t src_off, const std::vector<int64_t>& src_st,
                 const Shape& out_shape, uint8_t* dst, size_t es, const KernelContext* ctx = nullptr) {
  const int64_t total = ir::ShapeNumel(out_shape);
  const int64_t inner = out_shape.empty() ? 1 : std::max<int64_t>(1, out_shape.back());
  const int64_t rows = total > 0 ? total / inner : 0;
  if (ctx && ctx->pool && ctx->threads > 1 && total * static_cast<int64_t>(es) >= 2 * kParallelBytes) {
    const int64_t grain = std::max<int64_t>(1, kParallelBytes / (inner * static_cast<int64_t>(es)));
    ctx->pool->ParallelFor(rows, grain, [&](int64_t r0, int64_t r1) {
      CopyStridedRows(src, src_off, src_st, out_shape, dst, es, r0, r1);
    });
    return;
  }
  CopyStridedRows(src, src_off, src_st, out_shape, dst, es, 0, std::max<int64_t>(rows, 1));
}

class SliceKernel : public Kernel {
 public:
  // Opset < 10 passes starts/ends/axes as attributes.
  SliceKernel(bool attrs, std::vector<int64_t> starts, std::vector<int64_t> ends, std::vector<int64_t> axes)
      : attrs_(attrs), starts_(std::move(starts)), ends_(std::move(ends)), axes_(std::move(axes)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_RETURN_IF_ERROR(NeedFixedSize(x, "Slice"));
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (!attrs_) {
      if (!ctx.in(1) || !ctx.in(2)) return Error("missing starts/ends");
      ASRC_ASSIGN_OR_RETURN(starts, Int64s(*ctx.in(1)));
      ASRC_ASSIGN_OR_RETURN(ends, Int64s(*ctx.in(2)));
      if (ctx.in(3)) { ASRC_ASSIGN_OR_RETURN(axes, Int64s(*ctx.in(3))); }
      if (ctx.in(4)) { ASRC_ASSIGN_OR_RETURN(steps, Int64s(*ctx.in(4))); }
    }
    Shape out;
    std::vector<int64_t> begin, step;
    ASRC_RETURN_IF_ERROR(SliceGeometry(x.shape(), starts, ends, axes, steps, &out, &begin, &step));
    int r = x.rank();
    auto xs = Strides(x.shape());
    int64_t off = 0;
    std::vector<int64_t> sst(r);
    for (int d = 0; d < r; ++d) {
      off += begin[d] * xs[d];
      sst[d] = xs[d] * step[d];
    }
    Tensor& o = ctx.Alloc(0, x.dtype(), out);
    CopyStrided(x.raw(), off, sst, out, o.raw(), ir::DTypeSize(x.dtype()));
    return Status::Ok();
  }

 private:
  bool attrs_;
  std::vector<int64_t> starts_, ends_, axes_;
};

class TransposeKernel : public Kernel {
 public:
  explicit TransposeKernel(std::vector<int64_t> perm) : perm_(std::move(perm)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_RETURN_IF_ERROR(NeedFixedSize(x, "Transpose"));
    int r = x.rank();
    std::vector<int64_t> perm = perm_;
    if (perm.empty()) for (int i = r - 1; i >= 0; --i) perm.push_back(i);
    if (static_cast<int>(perm.size()) != r) return Error("perm length differs from rank");
    auto xs = Strides(x.shape());
    Shape out(r);
    std::vector<int64_t> sst(r);
    std::vector<bool> seen(r, false);
    for (int i = 0; i < r; ++i) {
      ASRC_ASSIGN_OR_RETURN(int p, NormAxis(perm[i], r));
      if (seen[p]) return Error("perm repeats an axis");
      seen[p] = true;
      out[i] = x.shape()[p];
      sst[i] = xs[p];
    }
    Tensor& o = ctx.Alloc(0, x.dtype(), out);
    size_t es = ir::DTypeSize(x.dtype());
    // 2-D blocked transpose for the common last-two-dims case (float): better cache use.
    if (r >= 2 && es == 4 && sst[r - 1] != 1 && out[r - 1] > 1) {
      int64_t rows = out[r - 2], cols = out[r - 1];
      bool swap_last = sst[r - 1] == xs[r - 2] && sst[r - 2] == 1 && perm[r - 1] == r - 2 && perm[r - 2] == r - 1;
      if (swap_last) {
        int64_t batch = x.numel() / std::max<int64_t>(rows * cols, 1);
        // batch dims keep their order only if perm[0..r-3] is the identity
        bool ident = true;
        for (int i = 0; i < r - 2; ++i) ident = ident && perm[i] == i;
        if (ident) {
          const uint32_t* s = reinterpret_cast<const uint32_t*>(x.raw());
          uint32_t* d = reinterpret_cast<uint32_t*>(o.raw());
          // Bands of 32 output rows per matrix, over the pool when the copy is large.
          constexpr int64_t B = 32;
          const int64_t bands = (rows + B - 1) / B;
          const bool split = ctx.pool && ctx.threads > 1 && x.numel() * 4 >= 2 * kParallelBytes;
          auto run = [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
              const int64_t b = t / bands, i0 = t % bands * B;
              const uint32_t* sb = s + b * rows * cols;
              uint32_t* db = d + b * rows * cols;
              for (int64_t j0 = 0; j0 < cols; j0 += B)
                for (int64_t i = i0; i < std::min(rows, i0 + B); ++i)
                  for (int64_t j = j0; j < std::min(cols, j0 + B); ++j) db[i * cols + j] = sb[j * rows + i];
            }
          };
          if (split) ctx.pool->ParallelFor(batch * bands, std::max<int64_t>(1, kParallelBytes / (B * cols * 4)), run);
          else run(0, batch * bands);
          return Status::Ok();
        }
      }
    }
    CopyStrided(x.raw(), 0, sst, out, o.raw(), es, &ctx);
    return Status::Ok();
  }

 private:
  std::vector<int64_t> perm_;
};

class ExpandKernel : public Kernel {
 public:
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_RETURN_IF_ERROR(NeedFixedSize(x, "Expand"));
    ASRC_ASSIGN_OR_RETURN(auto dims, Int64s(*ctx.in(1)));
    ASRC_ASSIGN_OR_RETURN(Shape out, BroadcastShape(x.shape(), Shape(dims.begin(), dims.end())));
    Tensor& o = ctx.Alloc(0, x.dtype(), out);
    CopyStrided(x.raw(), 0, BroadcastStrides(x.shape(), out), out, o.raw(), ir::DTypeSize(x.dtype()), &ctx);
    return Status::Ok();
  }
};

class TileKernel : public Kernel {
 public:
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_RETURN_IF_ERROR(NeedFixedSize(x, "Tile"));
    ASRC_ASSIGN_OR_RETURN(auto reps, Int64s(*ctx.in(1)));
    int r = x.rank();
    if (static_cast<int>(reps.size()) != r) return Error("repeats length differs from rank");
    auto xs = Strides(x.shape());
    Shape view, out;
    std::vector<int64_t> sst;
    for (int d = 0; d < r; ++d) {
      if (reps[d] < 0) return Error("negative repeat");
      view.push_back(reps[d]);
      sst.push_back(0);
      view.push_back(x.shape()[d]);
      sst.push_back(xs[d]);
      int64_t n = 0;
      if (__builtin_mul_overflow(reps[d], x.shape()[d], &n))  // found by onnx_run_fuzzer
        return Error("Tile: repeats " + std::to_string(reps[d]) + " overflow dim " + std::to_string(d));
      out.push_back(n);
    }
    Tensor& o = ctx.Alloc(0, x.dtype(), out);
    CopyStrided(x.raw(), 0, sst, view, o.raw(), ir::DTypeSize(x.dtype()));
    return Status::Ok();
  }
};

class PadKernel : public Kernel {
 public:
  enum Mode { kConstant, kReflect, kEdge, kWrap };
  PadKernel(Mode mode, bool attrs, std::vector<int64_t> pads, float value)
      : mode_(mode), attrs_(attrs), pads_(std::move(pads)), value_(value) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_RETURN_IF_ERROR(NeedFixedSize(x, "Pad"));
    int r = x.rank();
    std::vector<int64_t> pads = pads_;
    if (!attrs_) {
      if (!ctx.in(1)) return Error("missing pads");
      ASRC_ASSIGN_OR_RETURN(pads, Int64s(*ctx.in(1)));
    }
    std::vector<int64_t> axes;
    if (!attrs_ && ctx.in(3)) { ASRC_ASSIGN_OR_RETURN(axes, Int64s(*ctx.in(3))); }
    std::vector<int64_t> pb(r, 0), pe(r, 0);
    if (axes.empty()) {
      if (static_cast<int>(pads.size()) != 2 * r) return Error("pads has " + std::to_string(pads.size()) + " entries for rank " + std::to_string(r));
      for (int d = 0; d < r; ++d) { pb[d] = pads[d]; pe[d] = pads[d + r]; }
    } else {
      size_t na = axes.size();
      if (pads.size() != 2 * na) return Error("pads length differs from 2 * axes");
      for (size_t i = 0; i < na; ++i) {
        ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(axes[i], r));
        pb[ax] = pads[i];
        pe[ax] = pads[i + na];
      }
    }
    size_t es = ir::DTypeSize(x.dtype());
    // Constant value as bytes of the tensor dtype.
    std::vector<uint8_t> cval(es, 0);
    if (mode_ == kConstant) {
      Tensor v;
      if (!attrs_ && ctx.in(2) && ctx.in(2)->numel() > 0) v = *ctx.in(2);
      else if (attrs_) v = Tensor::Scalar(value_);
      if (v.defined()) {
        Tensor cv(x.dtype(), {});
        if (v.dtype() == x.dtype()) CopyBytes(cv.raw(), v.raw(), es);
        else ASRC_RETURN_IF_ERROR(ConvertInto(v.Reshaped({}), cv));
        CopyBytes(cval.data(), cv.raw(), es);
      }
    }
    Shape out(r);
    for (int d = 0; d < r; ++d) {
      // Pads beyond +-2^62 can give no tensor that fits in memory (and keep c - pb below in range).
      const int64_t far = int64_t{1} << 62;
      if (pb[d] <= -far || pb[d] >= far || pe[d] <= -far || pe[d] >= far)
        return Error("pads " + std::to_string(pb[d]) + ", " + std::to_string(pe[d]) + " on axis " +
                     std::to_string(d) + " are beyond +-2^62");
      if (__builtin_add_overflow(x.shape()[d], pb[d] + pe[d], &out[d]))
        return Error("pads overflow axis " + std::to_string(d));
      if (out[d] < 0) return Error("pads make a negative dim");
      if (mode_ != kConstant && x.shape()[d] == 0 && out[d] > 0) return Error("cannot reflect/edge-pad an empty axis");
      if (mode_ == kReflect && (pb[d] >= x.shape()[d] || pe[d] >= x.shape()[d]) && (pb[d] > 0 || pe[d] > 0) && x.shape()[d] < 2)
        return Error("reflect pad larger than the axis");
    }
    Tensor& o = ctx.Alloc(0, x.dtype(), out);
    if (ir::ShapeNumel(out) == 0) return Status::Ok();
    auto xs = Strides(x.shape());
    // src coordinate for output coordinate c on axis d; -1 = constant.
    auto map = [&](int d, int64_t c) -> int64_t {
      int64_t n = x.shape()[d];
      int64_t s = c - pb[d];
      if (s >= 0 && s < n) return s;
      switch (mode_) {
        case kConstant: return -1;
        case kEdge: return s < 0 ? 0 : n - 1;
        case kWrap: return ((s % n) + n) % n;
        case kReflect: {
          if (n == 1) return 0;
          int64_t period = 2 * (n - 1);
          int64_t m = ((s % period) + period) % period;
          return m < n ? m : period - m;
        }
      }
      return -1;
    };
    std::vector<int64_t> c(r, 0);
    int64_t inner = r ? out[r - 1] : 1;
    int64_t total = ir::ShapeNumel(out);
    uint8_t* dst = o.raw();
    if (r == 0) { CopyBytes(dst, x.raw(), es); return Status::Ok(); }
    for (int64_t o_i = 0; o_i < total; o_i += inner) {
      int64_t base = 0;
      bool constant_row = false;
      for (int d = 0; d < r - 1; ++d) {
        int64_t s = map(d, c[d]);
        if (s < 0) { constant_row = true; break; }
        base += s * xs[d];
      }
      uint8_t* row = dst + o_i * es;
      if (constant_row) {
        for (int64_t j = 0; j < inner; ++j) CopyBytes(row + j * es, cval.data(), es);
      } else {
        int64_t n = x.shape()[r - 1];
        int64_t lo = std::max<int64_t>(0, pb[r - 1]);
        int64_t hi = std::min<int64_t>(inner, pb[r - 1] + n);
        for (int64_t j = 0; j < lo; ++j) {
          int64_t s = map(r - 1, j);
          CopyBytes(row + j * es, s < 0 ? cval.data() : x.raw() + (base + s) * es, es);
        }
        if (hi > lo) CopyBytes(row + lo * es, x.raw() + (base + lo - pb[r - 1]) * es, (hi - lo) * es);
        for (int64_t j = std::max(hi, lo); j < inner; ++j) {
          int64_t s = map(r - 1, j);
          CopyBytes(row + j * es, s < 0 ? cval.data() : x.raw() + (base + s) * es, es);
        }
      }
      for (int d = r - 2; d >= 0; --d) {
        if (++c[d] < out[d]) break;
        c[d] = 0;
      }
    }
    return Status::Ok();
  }

 private:
  Mode mode_;
  bool attrs_;
  std::vector<int64_t> pads_;
  float value_;
};

}  // namespace

void RegisterStridedKernels(KernelRegistry& r) {
  auto reg = [&](const char* op, KernelFactory f) { r.Register("", op, DType::Undefined, std::move(f)); };
  reg("Slice", [](const KernelInit& i) {
    bool attrs = i.opset < 10;
    return Make<SliceKernel>(attrs, i.node->attr_ints("starts"), i.node->attr_ints("ends"), i.node->attr_ints("axes"));
  });
  reg("Transpose", [](const KernelInit& i) { return Make<TransposeKernel>(i.node->attr_ints("perm")); });
  reg("Expand", [](const KernelInit&) { return Make<ExpandKernel>(); });
  reg("Tile", [](const KernelInit&) { return Make<TileKernel>(); });
  reg("Pad", [](const KernelInit& i) -> KernelPtr {
    std::string m = i.node->attr_string("mode", "constant");
    PadKernel::Mode mode;
    if (m == "constant") mode = PadKernel::kConstant;
    else if (m == "reflect") mode = PadKernel::kReflect;
    else if (m == "edge") mode = PadKernel::kEdge;
    else if (m == "wrap") mode = PadKernel::kWrap;
    else return Error("unsupported Pad mode '" + m + "'");
    bool attrs = i.opset < 11;
    return Make<PadKernel>(mode, attrs, i.node->attr_ints("pads"), i.node->attr_float("value", 0.f));
  });
}

}  // namespace asrc::runtime

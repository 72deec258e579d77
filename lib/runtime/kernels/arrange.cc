// Kernels that select or rearrange elements, plain loops: TopK, Unique, ReverseSequence, EyeLike,
// DepthToSpace, SpaceToDepth, CenterCropPad, Col2Im, and Det (LU with partial pivoting, in double).
#include <cmath>
#include <map>
#include <numeric>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

// Outer/axis/inner extents of a shape around one axis.
struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};
AxisSplit SplitAt(const Shape& s, int axis) {
  AxisSplit a;
  for (int d = 0; d < static_cast<int>(s.size()); ++d) {
    if (d < axis) a.outer *= s[d];
    else if (d == axis) a.n = s[d];
    else a.inner *= s[d];
  }
  return a;
}

class TopKKernel : public Kernel {
 public:
  TopKKernel(int64_t axis, bool largest, bool sorted) : axis_(axis), largest_(largest), sorted_(sorted) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> kv, Int64s(*ctx.in(1)));
    if (kv.size() != 1) return Error("TopK: K must hold one value");
    ASRC_ASSIGN_OR_RETURN(int axis, NormAxis(axis_, x0.rank()));
    AxisSplit sp = SplitAt(x0.shape(), axis);
    int64_t k = kv[0];
    if (k < 0 || k > sp.n) return Error("TopK: K=" + std::to_string(k) + " outside [0, " + std::to_string(sp.n) + "]");
    Shape os = x0.shape();
    os[axis] = k;
    Tensor x = x0.dtype() == DType::Float16 ? HalfToFloat(x0) : x0;
    Tensor vals(x.dtype(), os);
    Tensor& idx = ctx.Alloc(1, DType::Int64, os);
    bool ok = DispatchNumeric(x.dtype(), [&](auto z) {
      using T = decltype(z);
      if (vals.numel() == 0) return;  // K = 0 or an empty input: outer may be 2^40 over nothing
      std::vector<int64_t> order(sp.n);
      for (int64_t o = 0; o < sp.outer; ++o)
        for (int64_t i = 0; i < sp.inner; ++i) {
          const T* a = x.data<T>() + o * sp.n * sp.inner + i;
          std::iota(order.begin(), order.end(), 0);
          // Ties keep the lower index first, as ONNX specifies.
          auto better = [&](int64_t p, int64_t q) {
            T u = a[p * sp.inner], v = a[q * sp.inner];
            if (u != v) return largest_ ? u > v : u < v;
            return p < q;
          };
          std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
          if (!sorted_) std::sort(order.begin(), order.begin() + k);
          for (int64_t j = 0; j < k; ++j) {
            int64_t off = (o * k + j) * sp.inner + i;
            vals.data<T>()[off] = a[order[j] * sp.inner];
            idx.data<int64_t>()[off] = order[j];
          }
        }
    });
    if (!ok) return DTypeError("TopK", x0.dtype());
    ctx.out(0) = x0.dtype() == DType::Float16 ? FloatToHalf(vals) : vals;
    return Status::Ok();
  }

 private:
  int64_t axis_;
  bool largest_, sorted_;
};

// Unique over the flattened input or over slices along an axis. Slices compare as double
// vectors (numeric dtypes); outputs Y, first-occurrence indices, inverse indices, counts.
class UniqueKernel : public Kernel {
 public:
  UniqueKernel(bool has_axis, int64_t axis, bool sorted) : has_axis_(has_axis), axis_(axis), sorted_(sorted) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    Tensor xd(DType::Float64, x.shape());
    if (!ConvertInto(x, xd).ok()) return DTypeError("Unique", x.dtype());
    Shape xs = has_axis_ ? x.shape() : Shape{x.numel()};
    int axis = 0;
    if (has_axis_) { ASRC_ASSIGN_OR_RETURN(axis, NormAxis(axis_, x.rank())); }
    AxisSplit sp = SplitAt(xs, axis);
    auto slice = [&](int64_t s) {
      std::vector<double> v;
      if (sp.inner == 0) return v;  // every slice empty (and outer may be 2^40)
      for (int64_t o = 0; o < sp.outer; ++o)
        for (int64_t i = 0; i < sp.inner; ++i) v.push_back(xd.data<double>()[(o * sp.n + s) * sp.inner + i]);
      return v;
    };
    std::map<std::vector<double>, int64_t> first;  // slice -> first index
    std::vector<int64_t> order;                     // unique slices by first occurrence
    ASRC_RETURN_IF_ERROR(CheckScratch(sp.n, sizeof(int64_t), "Unique: the slices"));  // 2^40 on [0, 2^40]
    std::vector<int64_t> inverse_first(sp.n);
    for (int64_t s = 0; s < sp.n; ++s) {
      auto [it, fresh] = first.emplace(slice(s), s);
      if (fresh) order.push_back(s);
      inverse_first[s] = it->second;
    }
    if (sorted_) {
      order.clear();
      for (const auto& [v, s] : first) order.push_back(s);
    }
    int64_t u = static_cast<int64_t>(order.size());
    std::map<int64_t, int64_t> rank;  // first index -> output position
    for (int64_t j = 0; j < u; ++j) rank[order[j]] = j;
    Shape os = xs;
    os[axis] = u;
    size_t es = ir::DTypeSize(x.dtype());
    if (es == 0) return DTypeError("Unique", x.dtype());
    Tensor& y = ctx.Alloc(0, x.dtype(), os);
    for (int64_t o = 0; o < (y.numel() ? sp.outer : 0); ++o)
      for (int64_t j = 0; j < u; ++j)
        CopyBytes(y.raw() + (o * u + j) * sp.inner * es, x.raw() + (o * sp.n + order[j]) * sp.inner * es, sp.inner * es);
    auto out_i64 = [&](int i, int64_t n) -> int64_t* {
      if (ctx.outputs->size() <= static_cast<size_t>(i) || !ctx.node->output(i)) return nullptr;
      return ctx.Alloc(i, DType::Int64, {n}).data<int64_t>();
    };
    int64_t* first_idx = out_i64(1, u);
    int64_t* inv = out_i64(2, sp.n);
    int64_t* counts = out_i64(3, u);
    if (first_idx) std::copy(order.begin(), order.end(), first_idx);
    if (counts) std::fill(counts, counts + u, 0);
    for (int64_t s = 0; s < sp.n; ++s) {
      int64_t j = rank[inverse_first[s]];
      if (inv) inv[s] = j;
      if (counts) ++counts[j];
    }
    return Status::Ok();
  }

 private:
  bool has_axis_;
  int64_t axis_;
  bool sorted_;
};

class ReverseSequenceKernel : public Kernel {
 public:
  ReverseSequenceKernel(int64_t batch_axis, int64_t time_axis) : batch_axis_(batch_axis), time_axis_(time_axis) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> lens, Int64s(*ctx.in(1)));
    if (x.rank() < 2) return Error("ReverseSequence: input rank must be >= 2");
    if (!((batch_axis_ == 0 && time_axis_ == 1) || (batch_axis_ == 1 && time_axis_ == 0)))
      return Error("ReverseSequence: batch_axis/time_axis must be 0 and 1");
    const int b = static_cast<int>(batch_axis_), t = static_cast<int>(time_axis_);
    int64_t B = x.dim(b), T = x.dim(t);
    if (static_cast<int64_t>(lens.size()) != B) return Error("ReverseSequence: sequence_lens length differs from the batch");
    size_t es = ir::DTypeSize(x.dtype());
    if (es == 0) return DTypeError("ReverseSequence", x.dtype());
    int64_t inner = x.numel() / std::max<int64_t>(1, B * T);
    Tensor& y = ctx.Alloc(0, x.dtype(), x.shape());
    for (int64_t bi = 0; bi < B; ++bi) {
      if (lens[bi] < 0 || lens[bi] > T) return Error("ReverseSequence: sequence length out of range");
      for (int64_t ti = 0; ti < T; ++ti) {
        int64_t src_t = ti < lens[bi] ? lens[bi] - 1 - ti : ti;
        auto off = [&](int64_t tt) { return (b == 0 ? bi * T + tt : tt * B + bi) * inner; };
        CopyBytes(y.raw() + off(ti) * es, x.raw() + off(src_t) * es, inner * es);
      }
    }
    return Status::Ok();
  }

 private:
  int64_t batch_axis_, time_axis_;
};

class EyeLikeKernel : public Kernel {
 public:
  EyeLikeKernel(DType dtype, int64_t k) : dtype_(dtype), k_(k) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    if (x.rank() != 2) return Error("EyeLike: input must be 2-D");
    DType dt = dtype_ == DType::Undefined ? x.dtype() : dtype_;
    Tensor one(DType::Float32, {}), conv(dt, {});
    one.data<float>()[0] = 1.f;
    if (!ConvertInto(one, conv).ok()) return DTypeError("EyeLike", dt);
    size_t es = ir::DTypeSize(dt);
    Tensor& y = ctx.Alloc(0, dt, x.shape());
    SetBytes(y.raw(), 0, y.nbytes());
    // A k beyond the matrix puts no one anywhere (and i + k must not overflow).
    for (int64_t i = 0; k_ > -x.dim(0) && k_ < x.dim(1) && i < x.dim(0); ++i) {
      int64_t j = i + k_;
      if (j >= 0 && j < x.dim(1)) CopyBytes(y.raw() + (i * x.dim(1) + j) * es, conv.raw(), es);
    }
    return Status::Ok();
  }

 private:
  DType dtype_;
  int64_t k_;
};

// DepthToSpace (DCR or CRD) and SpaceToDepth on [N, C, H, W], copying elements by size.
class SpaceDepthKernel : public Kernel {
 public:
  SpaceDepthKernel(bool to_space, bool crd, int64_t b) : to_space_(to_space), crd_(crd), b_(b) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    if (x.rank() != 4) return Error("input must be 4-D [N, C, H, W]");
    size_t es = ir::DTypeSize(x.dtype());
    if (es == 0) return DTypeError(to_space_ ? "DepthToSpace" : "SpaceToDepth", x.dtype());
    int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), b = b_;
    // b * b, h * b and w * b below must fit in int64 (a huge blocksize attribute).
    int64_t hb = 0, wb = 0;
    if (b >= (int64_t{1} << 31) || __builtin_mul_overflow(H, b, &hb) || __builtin_mul_overflow(W, b, &wb))
      return Error("blocksize " + std::to_string(b) + " is too large for shape " + ir::ShapeStr(x.shape()));
    // Name the space-side tensor [N, c, h*b, w*b] and the depth-side one [N, c*b*b, h, w].
    int64_t c = to_space_ ? C / (b * b) : C, h = to_space_ ? H : H / b, w = to_space_ ? W : W / b;
    if ((to_space_ && C % (b * b)) || (!to_space_ && (H % b || W % b)))
      return Error("shape " + ir::ShapeStr(x.shape()) + " does not divide by blocksize " + std::to_string(b));
    Shape os = to_space_ ? Shape{N, c, h * b, w * b} : Shape{N, c * b * b, h, w};
    Tensor& y = ctx.Alloc(0, x.dtype(), os);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t ci = 0; ci < c; ++ci)
        for (int64_t hi = 0; hi < h; ++hi)
          for (int64_t bh = 0; bh < b; ++bh)
            for (int64_t wi = 0; wi < w; ++wi)
              for (int64_t bw = 0; bw < b; ++bw) {
                int64_t dc = crd_ ? (ci * b + bh) * b + bw : (bh * b + bw) * c + ci;
                int64_t depth = ((n * c * b * b + dc) * h + hi) * w + wi;
                int64_t space = ((n * c + ci) * h * b + hi * b + bh) * w * b + wi * b + bw;
                int64_t src = to_space_ ? depth : space, dst = to_space_ ? space : depth;
                CopyBytes(y.raw() + dst * es, x.raw() + src * es, es);
              }
    return Status::Ok();
  }

 private:
  bool to_space_, crd_;
  int64_t b_;
};

// CenterCropPad(input, shape[, axes attr]): each listed axis cropped (start (in - out) / 2) or
// zero-padded (before (out - in) / 2) about its centre to the requested length.
class CenterCropPadKernel : public Kernel {
 public:
  explicit CenterCropPadKernel(std::vector<int64_t> axes) : axes_(std::move(axes)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> want, Int64s(*ctx.in(1)));
    std::vector<int64_t> axes = axes_;
    if (axes.empty())
      for (int d = 0; d < x.rank(); ++d) axes.push_back(d);
    if (want.size() != axes.size()) return Error("CenterCropPad: shape has " + std::to_string(want.size()) + " values for " + std::to_string(axes.size()) + " axes");
    size_t es = ir::DTypeSize(x.dtype());
    if (es == 0) return DTypeError("CenterCropPad", x.dtype());
    Shape os = x.shape();
    std::vector<int64_t> shift(x.rank(), 0);  // input index = output index + shift
    for (size_t k = 0; k < axes.size(); ++k) {
      ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(axes[k], x.rank()));
      if (want[k] < 0) return Error("CenterCropPad: negative length");
      os[ax] = want[k];
      shift[ax] = x.dim(ax) >= want[k] ? (x.dim(ax) - want[k]) / 2 : -((want[k] - x.dim(ax)) / 2);
    }
    Tensor& y = ctx.Alloc(0, x.dtype(), os);
    SetBytes(y.raw(), 0, y.nbytes());
    std::vector<int64_t> st = Strides(x.shape()), idx(x.rank(), 0);
    for (int64_t o = 0; o < y.numel(); ++o) {
      int64_t off = 0;
      bool inside = true;
      for (int d = 0; d < x.rank(); ++d) {
        int64_t i = idx[d] + shift[d];
        inside = inside && i >= 0 && i < x.dim(d);
        off += i * st[d];
      }
      if (inside) CopyBytes(y.raw() + o * es, x.raw() + off * es, es);
      for (int d = x.rank() - 1; d >= 0; --d) {
        if (++idx[d] < os[d]) break;
        idx[d] = 0;
      }
    }
    return Status::Ok();
  }

 private:
  std::vector<int64_t> axes_;
};

// Col2Im(input [N, C * prod(block), L], image_shape, block_shape): sums each column back into
// the image positions its block covers (the inverse arrangement of im2col).
class Col2ImKernel : public Kernel {
 public:
  Col2ImKernel(std::vector<int64_t> dil, std::vector<int64_t> pads, std::vector<int64_t> strides)
      : dil_(std::move(dil)), pads_(std::move(pads)), strides_(std::move(strides)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "Col2Im"));
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> img, Int64s(*ctx.in(1)));
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> blk, Int64s(*ctx.in(2)));
    const int sr = static_cast<int>(img.size());
    auto at = [](const std::vector<int64_t>& v, int i, int64_t def) { return v.empty() ? def : v[i]; };
    if (x0.rank() != 3 || static_cast<int>(blk.size()) != sr || sr < 1) return Error("Col2Im: input [N, C*prod(block), L] and matching image/block shapes expected");
    auto sized = [](const std::vector<int64_t>& v, size_t n) { return v.empty() || v.size() == n; };
    if (!sized(dil_, sr) || !sized(strides_, sr) || !sized(pads_, 2 * sr))
      return Error("Col2Im: dilations/strides/pads lengths do not match the " + std::to_string(sr) + " image dims");
    // image_shape and block_shape come from tensors: bounded like window attributes (the
    // validator's [1, 2^31) for kernels, [0, 2^31) for sizes), so the products below fit in int64
    // (an overflow there would make them, and the offsets, wrong: UB).
    int64_t kn = 1, L = 1, in_n = 1;
    std::vector<int64_t> nb(sr);
    for (int d = 0; d < sr; ++d) {
      const int64_t lim = int64_t{1} << 31;
      if (blk[d] < 1 || blk[d] >= lim || img[d] < 0 || img[d] >= lim)
        return Error("Col2Im: block_shape " + std::to_string(blk[d]) + " / image_shape " + std::to_string(img[d]) +
                     " on axis " + std::to_string(d) + " outside [1, 2^31) / [0, 2^31)");
      int64_t ek = (blk[d] - 1) * at(dil_, d, 1) + 1;
      nb[d] = (img[d] + at(pads_, d, 0) + at(pads_, d + sr, 0) - ek) / at(strides_, d, 1) + 1;
      if (nb[d] < 1) return Error("Col2Im: the block does not fit the padded image on axis " + std::to_string(d));
      if (__builtin_mul_overflow(kn, blk[d], &kn) || __builtin_mul_overflow(L, nb[d], &L) ||
          __builtin_mul_overflow(in_n, img[d], &in_n))
        return Error("Col2Im: block or image sizes overflow int64");
    }
    if (x0.dim(1) % kn != 0 || x0.dim(2) != L) return Error("Col2Im: input " + ir::ShapeStr(x0.shape()) + " does not match the blocks");
    int64_t N = x.dim(0), C = x.dim(1) / kn;
    Shape os = {N, C};
    os.insert(os.end(), img.begin(), img.end());
    Tensor y = ctx.NewTensor(DType::Float32, os);
    if (y.numel() == 0) return FromFloat(ctx, 0, x0.dtype(), y);  // N or C may be 2^40 over nothing
    std::fill(y.data<float>(), y.data<float>() + y.numel(), 0.f);
    std::vector<int64_t> bc(sr), kc(sr);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < kn; ++k)
          for (int64_t l = 0; l < L; ++l) {
            for (int64_t d = sr - 1, r = k; d >= 0; --d) { kc[d] = r % blk[d]; r /= blk[d]; }
            for (int64_t d = sr - 1, r = l; d >= 0; --d) { bc[d] = r % nb[d]; r /= nb[d]; }
            int64_t off = 0;
            bool inside = true;
            for (int d = 0; d < sr && inside; ++d) {
              int64_t p = bc[d] * at(strides_, d, 1) + kc[d] * at(dil_, d, 1) - at(pads_, d, 0);
              inside = p >= 0 && p < img[d];
              off = off * img[d] + p;
            }
            if (inside) y.data<float>()[(n * C + c) * in_n + off] += x.data<float>()[((n * C + c) * kn + k) * L + l];
          }
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  std::vector<int64_t> dil_, pads_, strides_;
};

Status DetRun(KernelContext& ctx) {
  const Tensor& x0 = *ctx.in(0);
  if (!IsFloatish(x0.dtype())) return FloatDTypeError("Det", x0.dtype());
  if (x0.rank() < 2 || x0.dim(-1) != x0.dim(-2)) return Error("Det: input must be [..., M, M]");
  Tensor x(DType::Float64, x0.shape());
  ASRC_RETURN_IF_ERROR(ConvertInto(x0, x));
  int64_t m = x.dim(-1), mats = m ? x.numel() / (m * m) : 0;
  Shape os(x.shape().begin(), x.shape().end() - 2);
  Tensor y(DType::Float64, os);
  std::vector<double> a(m * m);
  for (int64_t t = 0; t < mats; ++t) {
    std::copy(x.data<double>() + t * m * m, x.data<double>() + (t + 1) * m * m, a.begin());
    double det = 1;
    for (int64_t col = 0; col < m && det != 0; ++col) {
      int64_t piv = col;
      for (int64_t r = col + 1; r < m; ++r)
        if (std::abs(a[r * m + col]) > std::abs(a[piv * m + col])) piv = r;
      if (a[piv * m + col] == 0) { det = 0; break; }
      if (piv != col) {
        for (int64_t j = 0; j < m; ++j) std::swap(a[piv * m + j], a[col * m + j]);
        det = -det;
      }
      det *= a[col * m + col];
      for (int64_t r = col + 1; r < m; ++r) {
        double f = a[r * m + col] / a[col * m + col];
        for (int64_t j = col; j < m; ++j) a[r * m + j] -= f * a[col * m + j];
      }
    }
    y.data<double>()[t] = det;
  }
  Tensor& out = ctx.Alloc(0, x0.dtype(), os);
  return ConvertInto(y, out);
}

}  // namespace

void RegisterArrangeKernels(KernelRegistry& r) {
  r.Register("", "TopK", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    if (i.opset < 10) return Error("TopK before opset 10 (K as an attribute) is not supported");
    return Make<TopKKernel>(
        i.node->attr_int("axis", -1), i.node->attr_int("largest", 1) != 0, i.node->attr_int("sorted", 1) != 0);
  }));
  r.Register("", "Unique", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    return Make<UniqueKernel>(
        i.node->attr("axis") != nullptr, i.node->attr_int("axis", 0), i.node->attr_int("sorted", 1) != 0);
  }));
  r.Register("", "ReverseSequence", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    return Make<ReverseSequenceKernel>(i.node->attr_int("batch_axis", 1), i.node->attr_int("time_axis", 0));
  }));
  r.Register("", "EyeLike", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    int64_t dt = i.node->attr_int("dtype", 0);
    if (dt != 0 && (!ir::DTypeKnown(static_cast<int32_t>(dt)) || ir::DTypeSize(static_cast<DType>(dt)) == 0))
      return Error("EyeLike: unsupported dtype " + std::to_string(dt));
    return Make<EyeLikeKernel>(static_cast<DType>(dt), i.node->attr_int("k", 0));
  }));
  r.Register("", "DepthToSpace", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    std::string mode = i.node->attr_string("mode", "DCR");
    if (mode != "DCR" && mode != "CRD") return Error("DepthToSpace: unsupported mode '" + mode + "'");
    int64_t b = i.node->attr_int("blocksize", 0);
    if (b <= 0) return Error("DepthToSpace needs a positive blocksize");
    return Make<SpaceDepthKernel>(true, mode == "CRD", b);
  }));
  r.Register("", "SpaceToDepth", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    int64_t b = i.node->attr_int("blocksize", 0);
    if (b <= 0) return Error("SpaceToDepth needs a positive blocksize");
    return Make<SpaceDepthKernel>(false, false, b);
  }));
  r.Register("", "CenterCropPad", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    return Make<CenterCropPadKernel>(i.node->attr_ints("axes"));
  }));
  r.Register("", "Col2Im", DType::Undefined, NeedInputs(3, [](const KernelInit& i) -> KernelPtr {
    return Make<Col2ImKernel>(i.node->attr_ints("dilations"), i.node->attr_ints("pads"), i.node->attr_ints("strides"));
  }));
  r.Register("", "Det", DType::Undefined, NeedInputs(1, [](const KernelInit&) -> KernelPtr { return MakeFnKernel(DetRun); }));
}

}  // namespace asrc::runtime

// ConvInteger (ONNX) and the fused ai.asrc ConvIntegerToFloat, on integer arithmetic
// (runtime/gemm.h Igemm*) with the constant weight packed once at plan time (split from
// quant.cc, whose helpers runtime/kernels/quant.h shares).
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "runtime/gemm.h"
#include "runtime/kernels/quant.h"
#include "runtime/kernels/util.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {
namespace {

using namespace ku;
using namespace qk;

// im2row for ConvInteger: rows of the matrix are output pixels, in (kh, kw, c) order, so each
// kernel tap is one contiguous copy of the channels from a channels-last input; padding takes
// x's zero point. Plain values (not a lambda's captures) so the copies do not make the compiler
// reload the geometry.
struct Im2Row {
  int64_t H, W, C, KH, KW, OW, sh, sw, dh, dw, pt, pl;
  uint8_t pad;
  // Rows of output pixel rows [oh0, oh1).
  void Rows(const uint8_t* xt, int64_t oh0, int64_t oh1, uint8_t* rows) const {
    const int64_t K = KH * KW * C;
    if (C == 1) {  // one byte per tap: plain loads, no copy calls
      for (int64_t oh = oh0; oh < oh1; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          uint8_t* r = rows + (oh * OW + ow) * K;
          for (int64_t kh = 0; kh < KH; ++kh) {
            const int64_t ih = oh * sh - pt + kh * dh;
            const bool row_in = ih >= 0 && ih < H;
            for (int64_t kw = 0; kw < KW; ++kw) {
              const int64_t iw = ow * sw - pl + kw * dw;
              *r++ = row_in && iw >= 0 && iw < W ? xt[ih * W + iw] : pad;
            }
          }
        }
      return;
    }
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        uint8_t* r = rows + (oh * OW + ow) * K;
        for (int64_t kh = 0; kh < KH; ++kh) {
          const int64_t ih = oh * sh - pt + kh * dh;
          for (int64_t kw = 0; kw < KW; ++kw, r += C) {
            const int64_t iw = ow * sw - pl + kw * dw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) SetBytes(r, pad, C);
            else CopyBytes(r, xt + (ih * W + iw) * C, C);
          }
        }
      }
  }
};

// xt[i, c] = x[c, i] for pixels [i0, i1) of HW: [C, HW] bytes to channels-last, in blocks of
// 64 pixels.
void ChannelsLast(const uint8_t* x, int64_t C, int64_t HW, int64_t i0, int64_t i1, uint8_t* xt) {
  for (int64_t b = i0; b < i1; b += 64) {
    const int64_t e = std::min(i1, b + 64);
    for (int64_t c = 0; c < C; ++c) {
      const uint8_t* xc = x + c * HW;
      for (int64_t i = b; i < e; ++i) xt[i * C + c] = xc[i];
    }
  }
}

// y[m, p] = relu?(acc[p, m] * scale[m] (+ bias[m])) for pixels [p0, p1), in 16 x 16 tiles.
void ScaleTranspose(const int32_t* acc, int64_t P, int64_t M, int64_t p0, int64_t p1,
                    const float* scale, const float* bias, bool relu, float* y) {
  for (int64_t pt = p0; pt < p1; pt += 16)
    for (int64_t mt = 0; mt < M; mt += 16) {
      const int64_t pe = std::min(p1, pt + 16), me = std::min(M, mt + 16);
      for (int64_t m = mt; m < me; ++m) {
        const float sc = scale[m], b = bias ? bias[m] : 0.f;
        for (int64_t p = pt; p < pe; ++p) {
          float v = static_cast<float>(acc[p * M + m]) * sc;
          if (bias) v = v + b;
          if (relu) v = v > 0 ? v : 0.f;
          y[m * P + p] = v;
        }
      }
    }
}

// y[m, p] = acc[p, m] for pixels [p0, p1), in 16 x 16 tiles.
void IntTranspose(const int32_t* acc, int64_t P, int64_t M, int64_t p0, int64_t p1, int32_t* y) {
  for (int64_t pt = p0; pt < p1; pt += 16)
    for (int64_t mt = 0; mt < M; mt += 16) {
      const int64_t pe = std::min(p1, pt + 16), me = std::min(M, mt + 16);
      for (int64_t m = mt; m < me; ++m)
        for (int64_t p = pt; p < pe; ++p) y[m * P + p] = acc[p * M + m];
    }
}

// ---------------------------------------------------------------------------------------------
// ConvInteger(x, w, x_zero_point?, w_zero_point?) -> int32, 1-D and 2-D, grouped.
// Computed as out^T = im2row(x) x W^T per group so the constant weight is the packed right-hand
// side (per-output-channel w zero points become per-column zero points).
//
// The same kernel runs our fused ai.asrc ConvIntegerToFloat(x_q, w, x_scale, w_scale,
// x_zero_point?, w_zero_point?, bias?) with attribute activation ("" or "Relu"), which the
// session's fusion plans for ConvInteger -> Cast -> Mul(Mul(x_scale, w_scale)) [-> Add(bias)]
// [-> Relu] (runtime/fusion.h): y = act(float(acc) * (x_scale * w_scale[m]) [+ bias[m]]),
// a multiply then an add per element as the unfused nodes do, applied while the accumulators
// are transposed into the output.
class ConvIntegerKernel : public Kernel {
 public:
  explicit ConvIntegerKernel(bool to_float = false)
      : to_float_(to_float), xzp_in_(to_float ? 4 : 2), wzp_in_(to_float ? 5 : 3) {}

  Status Init(const KernelInit& init) {
    const ir::Node* n = init.node;
    if (to_float_) {
      relu_ = n->attr_string("activation", "") == "Relu";
      const Tensor* ws = ConstIn(init, 3);
      const Tensor* b = ConstIn(init, 6);
      if (!ws || (HasIn(n, 6) && !b))
        return Error("ConvIntegerToFloat: w_scale and bias must be constants");
      ASRC_ASSIGN_OR_RETURN(ws_, FloatValues(*ws, "w_scale"));
      if (b) {
        ASRC_ASSIGN_OR_RETURN(bias_, FloatValues(*b, "bias", /*allow_empty=*/true));
      }
    }
    group_ = n->attr_int("group", 1);
    strides_ = n->attr_ints("strides");
    dilations_ = n->attr_ints("dilations");
    pads_ = n->attr_ints("pads");
    auto_pad_ = n->attr_string("auto_pad", "NOTSET");
    if (group_ < 1) return Error("ConvInteger: group must be >= 1");
    const Tensor* w = ConstIn(init, 1);
    const Tensor* wzp = ConstIn(init, wzp_in_);
    if (w && IsQuant8(w->dtype()) && (w->rank() == 3 || w->rank() == 4) &&
        (!HasIn(n, wzp_in_) || wzp)) {
      ASRC_ASSIGN_OR_RETURN(packs_, PackWeights(*w, wzp));
    }
    return Status::Ok();
  }

  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    const Tensor& w = *ctx.in(1);
    if (!IsQuant8(x.dtype()) || !IsQuant8(w.dtype()))
      return Error("ConvInteger: x and w must be uint8 or int8");
    if (x.rank() != 3 && x.rank() != 4)
      return Error("ConvInteger: only 1-D and 2-D convolutions are supported, input shape " +
                   ir::ShapeStr(x.shape()));
    if (w.rank() != x.rank())
      return Error("ConvInteger: weight rank differs from input rank");
    const bool is1d = x.rank() == 3;
    const int64_t N = x.dim(0), C = x.dim(1), H = is1d ? 1 : x.dim(2), W = x.dim(-1);
    const int64_t M = w.dim(0), Cg = w.dim(1), KH = is1d ? 1 : w.dim(2), KW = w.dim(-1);
    if (group_ > C || C != Cg * group_ || M % group_ != 0)  // group > C first: Cg * group may overflow
      return Error("ConvInteger: channels " + std::to_string(C) + " do not match weight " +
                   ir::ShapeStr(w.shape()) + " with group " + std::to_string(group_));
    const int nsp = is1d ? 1 : 2;
    for (const auto* v : {&strides_, &dilations_})  // get() below reads entry nsp - 1
      if (!v->empty() && static_cast<int>(v->size()) != nsp)
        return Error("ConvInteger: strides/dilations hold " + std::to_string(v->size()) + " values for " +
                     std::to_string(nsp) + " spatial dims");
    auto get = [&](const std::vector<int64_t>& v, int i, int64_t def) {
      return v.empty() ? def : v[i];
    };
    int64_t sh = is1d ? 1 : get(strides_, 0, 1), sw = get(strides_, nsp - 1, 1);
    int64_t dh = is1d ? 1 : get(dilations_, 0, 1), dw = get(dilations_, nsp - 1, 1);
    const int64_t ekh = (KH - 1) * dh + 1, ekw = (KW - 1) * dw + 1;
    ASRC_ASSIGN_OR_RETURN(const Pads pad4, ResolvePads(is1d, H, W, sh, sw, ekh, ekw));
    const int64_t pt = pad4.t, pl = pad4.l;
    const int64_t OH = (H + pt + pad4.b - ekh) / sh + 1, OW = (W + pl + pad4.r - ekw) / sw + 1;
    if (OH <= 0 || OW <= 0) return Error("ConvInteger: output would be empty");
    Shape out_shape = is1d ? Shape{N, M, OW} : Shape{N, M, OH, OW};
    Tensor& y = ctx.Alloc(0, to_float_ ? DType::Float32 : DType::Int32, out_shape);
    if (to_float_) ASRC_RETURN_IF_ERROR(FusedScales(ctx, M));

    const Tensor* xzp_t = ctx.in(xzp_in_);
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> xzp, ZeroPoints(xzp_t, 1, "x_zero_point"));
    if (xzp.size() != 1) return Error("ConvInteger: x_zero_point must be a scalar");
    std::vector<PackedIgemmB> local;
    const std::vector<PackedIgemmB>* packs = &packs_;
    if (packs_.empty()) {
      ASRC_ASSIGN_OR_RETURN(local, PackWeights(w, ctx.in(wzp_in_)));
      packs = &local;
    }
    const int64_t Mg = M / group_, Kg = Cg * KH * KW, P = OH * OW;
    // Rows of the im2row matrix are output pixels, in (kh, kw, c) order so each kernel tap is
    // one contiguous copy of the group's channels from a channels-last copy of the input.
    // Padding takes x's zero point, so it contributes 0.
    // Scratch from the session's buffer pool (no fresh pages or zeroing per run); every element
    // is written before it is read.
    Tensor xt_t = ctx.NewTensor(DType::Uint8, {H * W * Cg});
    Tensor rows_t = ctx.NewTensor(DType::Uint8, {P * Kg});
    Tensor acc_t = ctx.NewTensor(DType::Int32, {P * Mg});
    uint8_t* xt = xt_t.data<uint8_t>();
    uint8_t* rows = rows_t.data<uint8_t>();
    int32_t* acc = acc_t.data<int32_t>();
    const uint8_t pad = static_cast<uint8_t>(xzp[0]);
    const bool x_signed = x.dtype() == DType::Int8;
    ThreadPool* pool = ctx.threads > 1 ? ctx.pool : nullptr;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < group_; ++g) {
        const uint8_t* xg = x.raw() + (n * C + g * Cg) * H * W;
        if (Cg == 1) {
          CopyBytes(xt, xg, H * W);
        } else {
          const int64_t HW = H * W;
          ParallelFor(pool, (HW + 63) / 64, 4, [&](int64_t b0, int64_t b1) {
            ChannelsLast(xg, Cg, HW, b0 * 64, std::min(HW, b1 * 64), xt);
          });
        }
        const Im2Row geo{H, W, Cg, KH, KW, OW, sh, sw, dh, dw, pt, pl, pad};
        ParallelFor(pool, OH, 4, [&](int64_t oh0, int64_t oh1) { geo.Rows(xt, oh0, oh1, rows); });
        IgemmPacked(P, rows, x_signed, xzp[0], (*packs)[g], acc, Mg, ctx.threads);
        // Tiled transpose [P, Mg] -> [Mg, P] (scaled, biased and rectified to float, or int32),
        // pixel tiles split over the pool.
        const float* sc = to_float_ ? scale_.data() + g * Mg : nullptr;
        const float* bs = to_float_ && !bias_.empty() ? bias_.data() + g * Mg : nullptr;
        float* yf = to_float_ ? y.data<float>() + (n * M + g * Mg) * P : nullptr;
        int32_t* yi = to_float_ ? nullptr : y.data<int32_t>() + (n * M + g * Mg) * P;
        const bool relu = relu_;
        ParallelFor(pool, (P + 15) / 16, 4, [&](int64_t t0, int64_t t1) {
          const int64_t p0 = t0 * 16, p1 = std::min(P, t1 * 16);
          if (yf) ScaleTranspose(acc, P, Mg, p0, p1, sc, bs, relu, yf);
          else IntTranspose(acc, P, Mg, p0, p1, yi);
        });
      }
    if (ctx.buffers)
      for (Tensor* t : {&xt_t, &rows_t, &acc_t}) ctx.buffers->Put(*t);
    return Status::Ok();
  }

 private:
  struct Pads {
    int64_t t = 0, l = 0, b = 0, r = 0;  // top, left, bottom, right (1-D: left and right)
  };
  // The explicit pads or auto_pad's, for effective kernel extents ekh x ekw.
  Result<Pads> ResolvePads(bool is1d, int64_t H, int64_t W, int64_t sh, int64_t sw, int64_t ekh,
                           int64_t ekw) const {
    Pads p;
    const int nsp = is1d ? 1 : 2;
    if (auto_pad_ == "NOTSET") {
      if (!pads_.empty()) {
        if (static_cast<int>(pads_.size()) != 2 * nsp) return Error("ConvInteger: bad pads");
        if (is1d) {
          p.l = pads_[0];
          p.r = pads_[1];
        } else {
          p = Pads{pads_[0], pads_[1], pads_[2], pads_[3]};
        }
      }
    } else if (auto_pad_ == "SAME_UPPER" || auto_pad_ == "SAME_LOWER") {
      auto same = [&](int64_t in, int64_t s, int64_t ek, int64_t* lo, int64_t* hi) {
        int64_t out = (in + s - 1) / s;
        int64_t total = std::max<int64_t>(0, (out - 1) * s + ek - in);
        *lo = auto_pad_ == "SAME_UPPER" ? total / 2 : total - total / 2;
        *hi = total - *lo;
      };
      if (!is1d) same(H, sh, ekh, &p.t, &p.b);
      same(W, sw, ekw, &p.l, &p.r);
    } else if (auto_pad_ != "VALID") {
      return Error("ConvInteger: unsupported auto_pad '" + auto_pad_ + "'");
    }
    return p;
  }

  // ConvIntegerToFloat: scale_[m] = x_scale * w_scale[m], checking the per-channel sizes.
  Status FusedScales(KernelContext& ctx, int64_t M) {
    ASRC_ASSIGN_OR_RETURN(std::vector<float> xs, FloatValues(*ctx.in(2), "x_scale"));
    if (xs.size() != 1) return Error("ConvIntegerToFloat: x_scale must be a scalar");
    if ((ws_.size() != 1 && static_cast<int64_t>(ws_.size()) != M) ||
        (!bias_.empty() && static_cast<int64_t>(bias_.size()) != M))
      return Error("ConvIntegerToFloat: w_scale and bias must have one entry per output channel");
    scale_.resize(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m) scale_[m] = xs[0] * (ws_.size() == 1 ? ws_[0] : ws_[m]);
    return Status::Ok();
  }

  Result<std::vector<PackedIgemmB>> PackWeights(const Tensor& w, const Tensor* wzp_t) const {
    const int64_t M = w.dim(0);
    if (M % group_ != 0) return Error("ConvInteger: output channels not divisible by group");
    const int64_t Mg = M / group_, Kg = w.numel() / std::max<int64_t>(1, M);
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> wzp, ZeroPoints(wzp_t, 1, "w_zero_point"));
    if (wzp.size() != 1 && static_cast<int64_t>(wzp.size()) != M)
      return Error("ConvInteger: w_zero_point must be a scalar or have one entry per output channel");
    if (wzp_t && wzp_t->dtype() != w.dtype())
      return Error("ConvInteger: w_zero_point dtype differs from w's");
    std::vector<PackedIgemmB> packs;
    std::vector<uint8_t> wt(static_cast<size_t>(Kg * Mg));
    for (int64_t g = 0; g < group_; ++g) {
      // K in (kh, kw, c) order, as the im2row rows; the weight is [M, Cg, taps].
      const int64_t Cg = w.dim(1), taps = Kg / std::max<int64_t>(1, Cg);
      for (int64_t m = 0; m < Mg; ++m)
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t t = 0; t < taps; ++t)
            wt[(t * Cg + c) * Mg + m] = w.raw()[((g * Mg + m) * Cg + c) * taps + t];
      const int32_t* z = wzp.size() == 1 ? wzp.data() : wzp.data() + g * Mg;
      packs.push_back(PackIgemmB(Kg, Mg, wt.data(), w.dtype() == DType::Int8, z, wzp.size() > 1));
    }
    return packs;
  }

  bool to_float_ = false, relu_ = false;
  int xzp_in_ = 2, wzp_in_ = 3;
  std::vector<float> ws_, bias_, scale_;
  int64_t group_ = 1;
  std::vector<int64_t> strides_, dilations_, pads_;
  std::string auto_pad_;
  std::vector<PackedIgemmB> packs_;
};

}  // namespace

void RegisterConvIntegerKernels(KernelRegistry& registry) {
  registry.Register("", "ConvInteger", DType::Undefined, WithInit<ConvIntegerKernel>());
  registry.Register("ai.asrc", "ConvIntegerToFloat", DType::Undefined,
                    [](const KernelInit& init) -> Result<std::unique_ptr<Kernel>> {
                      auto k = std::make_unique<ConvIntegerKernel>(true);
                      ASRC_RETURN_IF_ERROR(k->Init(init));
                      return std::unique_ptr<Kernel>(std::move(k));
                    });
}

}  // namespace asrc::runtime

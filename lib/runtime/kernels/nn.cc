// Dense and normalization kernels: MatMul (batched, broadcasting), Gemm, Conv (N-d; im2col +
// Sgemm, with a direct depthwise path and a plain reference loop), LayerNormalization,
// BatchNormalization (inference).
#include "runtime/kernels/nn.h"

#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "runtime/gemm.h"
#include "runtime/kernels/util.h"
#include "runtime/kernels/vmath.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {

using namespace ku;

void ParallelSgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads,
                   ThreadPool* pool) {
  (void)pool;  // Sgemm splits large products over `threads` itself (runtime/gemm.cc)
  if (M <= 0 || N <= 0) return;
  Sgemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc, threads);
}

namespace {

class MatMulKernel : public Kernel {
 public:
  Status Run(KernelContext& ctx) override {
    const Tensor& a0 = *ctx.in(0);
    const Tensor& b0 = *ctx.in(1);
    if (a0.dtype() != b0.dtype()) return Error("input dtypes differ");
    if (a0.rank() == 0 || b0.rank() == 0) return Error("MatMul inputs must have rank >= 1");
    Shape as = a0.shape(), bs = b0.shape();
    bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
    if (a_vec) as.insert(as.begin(), 1);
    if (b_vec) bs.push_back(1);
    int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
    if (bs[bs.size() - 2] != K)
      return Error("shapes " + ir::ShapeStr(a0.shape()) + " and " + ir::ShapeStr(b0.shape()) + " do not multiply");
    Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
    ASRC_ASSIGN_OR_RETURN(Shape batch, BroadcastShape(abatch, bbatch));
    Shape out = batch;
    if (!a_vec) out.push_back(M);
    if (!b_vec) out.push_back(N);
    DType dt = a0.dtype();
    if (dt == DType::Float32) {
      Tensor& y = ctx.Alloc(0, dt, out);
      return Compute(a0.data<float>(), b0.data<float>(), y.data<float>(), abatch, bbatch, batch, M, N, K, ctx);
    }
    if (IsFloatish(dt)) {
      ASRC_ASSIGN_OR_RETURN(Tensor a, AsFloat(a0, "MatMul"));
      ASRC_ASSIGN_OR_RETURN(Tensor b, AsFloat(b0, "MatMul"));
      Tensor y(DType::Float32, out);
      ASRC_RETURN_IF_ERROR(Compute(a.data<float>(), b.data<float>(), y.data<float>(), abatch, bbatch, batch, M, N, K, ctx));
      return FromFloat(ctx, 0, dt, y);
    }
    // Integer MatMul: plain loops (rare outside tests).
    Status st;
    bool ok = DispatchNumeric(dt, [&](auto z) {
      using T = decltype(z);
      Tensor& y = ctx.Alloc(0, dt, out);
      if (y.numel() == 0) return;  // the batch may be 2^40 items of M = 0 rows
      auto aitem = BroadcastItems(abatch, batch), bitem = BroadcastItems(bbatch, batch);
      for (size_t i = 0; i < aitem.size(); ++i) {
        const T* pa = a0.data<T>() + aitem[i] * M * K;
        const T* pb = b0.data<T>() + bitem[i] * K * N;
        T* py = y.data<T>() + i * M * N;
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            T acc = 0;
            for (int64_t k = 0; k < K; ++k) acc = WrapAdd<T>(acc, WrapMul<T>(pa[m * K + k], pb[k * N + n]));
            py[m * N + n] = acc;
          }
      }
    });
    if (!ok) return DTypeError("MatMul", dt);
    return st;
  }

 private:
  Status Compute(const float* A, const float* B, float* Y, const Shape& abatch, const Shape& bbatch,
                 const Shape& batch, int64_t M, int64_t N, int64_t K, KernelContext& ctx) {
    int64_t nb = ir::ShapeNumel(batch);
    if (nb == 0 || M == 0 || N == 0) return Status::Ok();
    if (K == 0) {
      std::fill(Y, Y + nb * M * N, 0.f);
      return Status::Ok();
    }
    ThreadPool* pool = ctx.threads > 1 ? ctx.pool : nullptr;
    if (ir::ShapeNumel(bbatch) == 1) {
      // B shared by every batch item: one GEMM with the batch folded into M.
      int64_t rows = ir::ShapeNumel(abatch) * M;
      if (ir::ShapeNumel(abatch) == nb) {
        ParallelSgemm(false, false, rows, N, K, A, K, B, N, 0.f, Y, N, ctx.threads, pool);
        return Status::Ok();
      }
    }
    std::vector<int64_t> aoff = BroadcastItems(abatch, batch), boff = BroadcastItems(bbatch, batch);
    for (int64_t i = 0; i < nb; ++i) {
      aoff[i] *= M * K;
      boff[i] *= K * N;
    }
    // Batch items over the pool, unless the whole product is too small to be worth a hand-over
    // (the GEMM's own threshold, runtime/gemm.cc).
    if (pool && nb > 1 && nb * M * N * K >= (int64_t{1} << 18)) {
      pool->ParallelFor(nb, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          Sgemm(false, false, M, N, K, 1.f, A + aoff[i], K, B + boff[i], N, 0.f, Y + i * M * N, N, 1);
      });
    } else {
      for (int64_t i = 0; i < nb; ++i)
        ParallelSgemm(false, false, M, N, K, A + aoff[i], K, B + boff[i], N, 0.f, Y + i * M * N, N, ctx.threads, pool);
    }
    return Status::Ok();
  }
};

// ai.asrc MatMulBias(A, B, bias) (runtime/fusion.h): MatMul by a constant 2-D B followed by the
// Add of a constant row of N floats. For float32 A, each thread adds the bias to the rows of the
// product it computed (SgemmBias): the same two roundings as the unfused nodes. Other dtypes
// run the MatMul and Add kernels' code.
class MatMulBiasKernel : public Kernel {
 public:
  Status Run(KernelContext& ctx) override {
    const Tensor& a = *ctx.in(0);
    const Tensor& b = *ctx.in(1);
    const Tensor& bias = *ctx.in(2);
    const bool fast = a.dtype() == DType::Float32 && b.dtype() == DType::Float32 &&
                      bias.dtype() == DType::Float32 && a.rank() >= 2 && b.rank() == 2 &&
                      a.shape().back() == b.dim(0) && bias.numel() == b.dim(1);
    if (!fast) {
      std::vector<Tensor> mm(1);
      KernelContext c = ctx;
      c.inputs = {&a, &b};
      c.outputs = &mm;
      ASRC_RETURN_IF_ERROR(matmul_.Run(c));
      Status st = AddTensors(mm[0], bias, ctx.out(0), &ctx);
      if (ctx.buffers) ctx.buffers->Put(mm[0]);
      return st;
    }
    const int64_t K = b.dim(0), N = b.dim(1);
    Shape out = a.shape();
    out.back() = N;
    const int64_t rows = ir::ShapeNumel(Shape(out.begin(), out.end() - 1));
    Tensor& y = ctx.Alloc(0, DType::Float32, out);
    // K == 0 too: the product is then zeros (Sgemm runs Eigen for it), plus the bias.
    SgemmBias(false, false, rows, N, K, a.data<float>(), K, b.data<float>(), N,
              bias.data<float>(), y.data<float>(), N, ctx.threads);
    return Status::Ok();
  }

 private:
  MatMulKernel matmul_;
};

class GemmKernel : public Kernel {
 public:
  GemmKernel(float alpha, float beta, bool ta, bool tb) : alpha_(alpha), beta_(beta), ta_(ta), tb_(tb) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& a0 = *ctx.in(0);
    const Tensor& b0 = *ctx.in(1);
    DType dt = a0.dtype();
    ASRC_ASSIGN_OR_RETURN(Tensor a, AsFloat(a0, "Gemm"));
    ASRC_ASSIGN_OR_RETURN(Tensor b, AsFloat(b0, "Gemm"));
    if (a0.rank() != 2 || b0.rank() != 2) return Error("Gemm inputs must be 2-D");
    int64_t M = ta_ ? a.dim(1) : a.dim(0), K = ta_ ? a.dim(0) : a.dim(1);
    int64_t N = tb_ ? b.dim(0) : b.dim(1), Kb = tb_ ? b.dim(1) : b.dim(0);
    if (K != Kb) return Error("Gemm shapes " + ir::ShapeStr(a.shape()) + " and " + ir::ShapeStr(b.shape()) + " do not multiply");
    Tensor y = dt == DType::Float32 ? ctx.NewTensor(DType::Float32, {M, N}) : Tensor(DType::Float32, {M, N});
    float* py = y.data<float>();
    float beta = 0.f;
    if (ctx.in(2) && beta_ != 0.f) {
      ASRC_ASSIGN_OR_RETURN(Tensor c, AsFloat(*ctx.in(2), "Gemm"));
      ASRC_ASSIGN_OR_RETURN(Shape bs, BroadcastShape(c.shape(), {M, N}));
      if (bs != Shape{M, N}) return Error("C does not broadcast to [M, N]");
      auto st = BroadcastStrides(c.shape(), {M, N});
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) py[i * N + j] = beta_ * c.data<float>()[i * st[0] + j * st[1]];
      beta = 1.f;
    }
    if (K > 0) {
      if (alpha_ == 1.f) {
        ParallelSgemm(ta_, tb_, M, N, K, a.data<float>(), a.dim(1), b.data<float>(), b.dim(1), beta, py, N,
                      ctx.threads, ctx.threads > 1 ? ctx.pool : nullptr);
      } else {
        Sgemm(ta_, tb_, M, N, K, alpha_, a.data<float>(), a.dim(1), b.data<float>(), b.dim(1), beta, py, N, ctx.threads);
      }
    } else if (beta == 0.f) {
      std::fill(py, py + M * N, 0.f);
    }
    return FromFloat(ctx, 0, dt, y);
  }

 private:
  float alpha_, beta_;
  bool ta_, tb_;
};

}  // namespace

Status ConvGeometry::Resolve(const Shape& x, const Shape& w) {
  int sr = static_cast<int>(x.size()) - 2;
  if (sr < 1) return Error("Conv input must have rank >= 3, got " + ir::ShapeStr(x));
  if (static_cast<int>(w.size()) != sr + 2) return Error("Conv weight rank differs from input rank");
  N = x[0];
  C = x[1];
  M = w[0];
  if (group <= 0 || C % group != 0 || M % group != 0 || w[1] != C / group)
    return Error("Conv channels: input " + ir::ShapeStr(x) + ", weight " + ir::ShapeStr(w) + ", group " + std::to_string(group));
  in.assign(x.begin() + 2, x.end());
  k.assign(w.begin() + 2, w.end());
  if (!kernel_shape.empty() && kernel_shape != k) return Error("kernel_shape attribute differs from weight shape");
  auto fill = [&](std::vector<int64_t>& v, int64_t def, size_t n) { if (v.empty()) v.assign(n, def); };
  stride = strides;
  dil = dilations;
  fill(stride, 1, sr);
  fill(dil, 1, sr);
  if (static_cast<int>(stride.size()) != sr || static_cast<int>(dil.size()) != sr) return Error("strides/dilations length");
  pb.assign(sr, 0);
  pe.assign(sr, 0);
  out.assign(sr, 0);
  for (int d = 0; d < sr; ++d) {
    int64_t ek = (k[d] - 1) * dil[d] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      int64_t o = (in[d] + stride[d] - 1) / stride[d];
      int64_t total = std::max<int64_t>(0, (o - 1) * stride[d] + ek - in[d]);
      pb[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe[d] = total - pb[d];
    } else if (auto_pad == "VALID") {
    } else {
      if (!pads.empty()) {
        if (static_cast<int>(pads.size()) != 2 * sr) return Error("pads length");
        pb[d] = pads[d];
        pe[d] = pads[d + sr];
      }
    }
    int64_t span = in[d] + pb[d] + pe[d] - ek;
    if (span < 0) return Error("Conv kernel larger than padded input");
    out[d] = span / stride[d] + 1;
  }
  return Status::Ok();
}

// A convolution's attributes, named with `prefix` (ConvPair's second convolution has
// "second_"), and whether its activation (FusedConv's attribute) is ReLU.
Status ConvAttributes(const ir::Node& node, const std::string& prefix, ConvGeometry* g, bool* relu) {
  const std::string act = node.attr_string(prefix + "activation", "");
  if (act != "Relu" && !act.empty()) return Error("unsupported activation '" + act + "'");
  *relu = act == "Relu";
  g->auto_pad = node.attr_string(prefix + "auto_pad", "NOTSET");
  if (g->auto_pad != "NOTSET" && g->auto_pad != "SAME_UPPER" && g->auto_pad != "SAME_LOWER" &&
      g->auto_pad != "VALID")
    return Error("unsupported auto_pad '" + g->auto_pad + "'");
  g->group = node.attr_int(prefix + "group", 1);
  g->strides = node.attr_ints(prefix + "strides");
  g->dilations = node.attr_ints(prefix + "dilations");
  g->pads = node.attr_ints(prefix + "pads");
  g->kernel_shape = node.attr_ints(prefix + "kernel_shape");
  return Status::Ok();
}

void ConvReference(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  int64_t on = 1;
  for (int64_t o : g.out) on *= o;
  std::vector<double> acc(static_cast<size_t>(g.N * g.M * on));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t m = 0; m < g.M; ++m)
      std::fill_n(acc.begin() + (n * g.M + m) * on, on, b ? b[m] : 0.0);
  ForEachConvTap(g, [&](int64_t yi, int64_t xi, int64_t wi) { acc[yi] += static_cast<double>(x[xi]) * w[wi]; });
  for (size_t i = 0; i < acc.size(); ++i) y[i] = static_cast<float>(acc[i]);
}

namespace {

// dst[i] = src[i * stride], i < n. Stride 2 (the subsampling convolutions of wav2vec2, Whisper,
// conformers) takes 16 outputs from two 16-float loads and one permute, reading no element
// past src[(n - 1) * 2]; the plain loop does not vectorize.
void StridedCopy(const float* src, int64_t stride, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  if (stride == 2) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (; i + 17 <= n; i += 16)
      _mm512_storeu_ps(dst + i, _mm512_permutex2var_ps(_mm512_loadu_ps(src + 2 * i), even,
                                                       _mm512_loadu_ps(src + 2 * i + 16)));
  }
#endif
  for (; i < n; ++i) dst[i] = src[i * stride];
}

// im2col for 1-D/2-D (1-D as H = 1) of the output tile oh in [oh0, oh1), ow in [ow0, ow1):
// col[(c, kh, kw), (oh - oh0, ow - ow0)]. Writes every element.
void Im2ColTile(const float* x, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t oh0,
                int64_t oh1, int64_t ow0, int64_t ow1, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                int64_t ph, int64_t pw, float* col) {
  const int64_t tw = ow1 - ow0, cols = (oh1 - oh0) * tw;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw) {
        float* dst = col + ((c * KH + kh) * KW + kw) * cols;
        const int64_t base = kw * dw - pw;  // iw = ow * sw + base
        // Valid outputs are ow in [lo, hi): 0 <= ow * sw + base < W, within the tile.
        int64_t lo = base >= 0 ? 0 : (-base + sw - 1) / sw;
        int64_t hi = W - base <= 0 ? 0 : (W - base + sw - 1) / sw;
        lo = std::clamp(lo, ow0, ow1);
        hi = std::clamp(hi, lo, ow1);
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          int64_t ih = oh * sh + kh * dh - ph;
          float* drow = dst + (oh - oh0) * tw;  // drow[ow - ow0]
          if (ih < 0 || ih >= H) {
            std::fill(drow, drow + tw, 0.f);
            continue;
          }
          const float* srow = x + (c * H + ih) * W;
          std::fill(drow, drow + (lo - ow0), 0.f);
          if (sw == 1) {
            if (hi > lo) CopyBytes(drow + (lo - ow0), srow + (lo + base), (hi - lo) * sizeof(float));
          } else {
            if (hi > lo) StridedCopy(srow + (lo * sw + base), sw, drow + (lo - ow0), hi - lo);
          }
          std::fill(drow + (hi - ow0), drow + tw, 0.f);
        }
      }
}

// The whole output: col[(c, kh, kw), (oh, ow)].
void Im2Col2D(const float* x, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t OH, int64_t OW,
              int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t ph, int64_t pw, float* col) {
  Im2ColTile(x, C, H, W, KH, KW, 0, OH, 0, OW, sh, sw, dh, dw, ph, pw, col);
}

// Below this many multiply-adds per output (a first convolution on one input channel), a GEMM
// spends more on its overheads and on a second pass for bias and ReLU than on the math.
constexpr int64_t kSmallK = 32;

// Also com.microsoft FusedConv with activation "Relu" (relu_), which the session's fusion plans
// for Conv -> Relu (runtime/fusion.h): the Relu is applied in the bias pass.
class ConvKernel : public Kernel {
 public:
  // w_constant: the weights are an initializer (fp32 ones are then reordered for oneDNN once).
  ConvKernel(ConvGeometry g, bool relu, bool w_constant)
      : g0_(std::move(g)), relu_(relu), w_constant_(w_constant), direct_(relu) {}
  // What ConvPair's fused path reads of its two convolutions (attributes, ReLU, whether the
  // weights are constant) and the oneDNN plans it shares with the second (keyed by layout).
  const ConvGeometry& geometry() const { return g0_; }
  bool relu() const { return relu_; }
  bool w_constant() const { return w_constant_; }
  DirectConv2D& direct() { return direct_; }
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    const Tensor& w0 = *ctx.in(1);
    DType dt = x0.dtype();
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "Conv"));
    if (w0.dtype() != dt) return DTypeError("Conv", w0.dtype());
    ConvGeometry g = g0_;
    ASRC_RETURN_IF_ERROR(g.Resolve(x0.shape(), w0.shape()));
    ASRC_ASSIGN_OR_RETURN(Tensor w, AsFloat(w0, "Conv"));
    Tensor b;
    if (ctx.in(2)) {
      ASRC_ASSIGN_OR_RETURN(b, AsFloat(*ctx.in(2), "Conv"));
      if (b.numel() != g.M) return Error("Conv bias has " + std::to_string(b.numel()) + " entries for " + std::to_string(g.M) + " channels");
    }
    Shape out{g.N, g.M};
    out.insert(out.end(), g.out.begin(), g.out.end());
    Tensor y = dt == DType::Float32 ? ctx.NewTensor(DType::Float32, out) : Tensor(DType::Float32, out);
    const float* bp = b.defined() ? b.data<float>() : nullptr;
    if (ir::ShapeNumel(out) > 0) {
      if (g.in.size() > 2) {
        ConvReference(g, x.data<float>(), w.data<float>(), bp, y.data<float>());
        if (relu_) BiasRelu(y.data<float>(), y.numel(), nullptr, 0.f);
      } else {
        Fast(g, x.data<float>(), w.data<float>(), bp, y.data<float>(), ctx);
      }
    }
    return FromFloat(ctx, 0, dt, y);
  }

 private:
  void Fast(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y, KernelContext& ctx) {
    bool one_d = g.in.size() == 1;
    int64_t H = one_d ? 1 : g.in[0], W = g.in.back();
    int64_t KH = one_d ? 1 : g.k[0], KW = g.k.back();
    int64_t OH = one_d ? 1 : g.out[0], OW = g.out.back();
    int64_t sh = one_d ? 1 : g.stride[0], sw = g.stride.back();
    int64_t dh = one_d ? 1 : g.dil[0], dw = g.dil.back();
    int64_t ph = one_d ? 0 : g.pb[0], pw = g.pb.back();
    int64_t cg = g.C / g.group, mg = g.M / g.group;
    int64_t on = OH * OW, kn = KH * KW, in_n = H * W;
    ThreadPool* pool = ctx.threads > 1 ? ctx.pool : nullptr;
    if (cg == 1 && mg == 1) {
      // Depthwise: direct loops, channels in parallel. Each output row accumulates bias, then
      // tap by tap (kh, kw ascending, as the reference) over the range of outputs where that
      // tap is inside the input, so the inner loop has no bounds checks and vectorizes.
      ParallelFor(pool, g.N * g.M, 16, [&](int64_t b0, int64_t e0) {
        for (int64_t nm = b0; nm < e0; ++nm) {
          int64_t m = nm % g.M;
          const float* xc = x + nm * in_n;
          const float* wc = w + m * kn;
          float* yc = y + nm * on;
          float bias = b ? b[m] : 0.f;
          for (int64_t oh = 0; oh < OH; ++oh) {
            float* yr = yc + oh * OW;
            std::fill(yr, yr + OW, bias);
            for (int64_t kh = 0; kh < KH; ++kh) {
              int64_t ih = oh * sh + kh * dh - ph;
              if (ih < 0 || ih >= H) continue;
              const float* xr = xc + ih * W;
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t off = kw * dw - pw;  // iw = ow * sw + off
                const int64_t lo = off >= 0 ? 0 : std::min<int64_t>(OW, (-off + sw - 1) / sw);
                const int64_t hi = W - off <= 0 ? 0 : std::min<int64_t>(OW, (W - off + sw - 1) / sw);
                const float wv = wc[kh * KW + kw];
                if (sw == 1) {
                  const float* xs = xr + off;
                  for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += xs[ow] * wv;
                } else {
                  for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += xr[ow * sw + off] * wv;
                }
              }
            }
            if (relu_)
              for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = yr[ow] > 0 ? yr[ow] : 0.f;
          }
        }
      });
      return;
    }
    bool pointwise = kn == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && g.pe.back() == 0 &&
                     (one_d || g.pe[0] == 0);
    if (!one_d && g.group == 1 && !pointwise &&
        direct_.Run({g.N, g.C, H, W, g.M, KH, KW, OH, OW, sh, sw, dh, dw, ph, pw, g.pe[0], g.pe[1]},
                    x, w, w_constant_ && w == ctx.in(1)->data<float>(), b, y, ctx.threads))
      return;
    if (!pointwise) {
      TiledIm2Col({g.N, cg, H, W, mg, KH, KW, OH, OW, sh, sw, dh, dw, ph, pw, 0, 0}, g.group, x, w, b, y, ctx);
      return;
    }
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t grp = 0; grp < g.group; ++grp) {
        const float* xg = x + (n * g.C + grp * cg) * in_n;
        float* yg = y + (n * g.M + grp * mg) * on;
        if (cg <= kSmallK) {
          SmallKProduct(w + grp * mg * cg, xg, b ? b + grp * mg : nullptr, mg, cg, on, on, yg, on, pool);
          continue;
        }
        ParallelSgemm(false, false, mg, on, cg, w + grp * mg * cg, cg, xg, on, 0.f, yg, on, ctx.threads, pool);
        if (b || relu_)
          for (int64_t m = 0; m < mg; ++m) BiasRelu(yg + m * on, on, b, b ? b[grp * mg + m] : 0.f);
      }
  }

  // im2col and the product, per (instance, group), in output tiles of at most kTile positions
  // (whole output rows where they fit), so that a tile's im2col block is still in cache when it
  // is multiplied; the tiles split over the pool, each part with its own block. `s` is one
  // group's problem (C and M per group). A product too small to split, or with fewer tiles
  // than threads, runs in one part and lets the GEMM split its rows instead.
  void TiledIm2Col(const Conv2DShape& s, int64_t groups, const float* x, const float* w, const float* b,
                   float* y, KernelContext& ctx) const {
    constexpr int64_t kTile = 512, kSplitMacs = 1 << 18;
    const int64_t K = s.C * s.KH * s.KW, on = s.OH * s.OW;
    const int64_t macs = s.N * groups * s.M * K * on;
    int parts = ctx.threads > 1 && ctx.pool && macs >= kSplitMacs ? ctx.threads : 1;
    // Tiles: ow chunks of one row when a row is long, else bands of whole rows; at least
    // `parts` tiles per (instance, group) when the output is long enough to split.
    const int64_t target = std::clamp<int64_t>((on + parts - 1) / parts, 64, kTile);
    const int64_t ow_chunk = std::min(s.OW, target), ow_tiles = (s.OW + ow_chunk - 1) / ow_chunk;
    const int64_t band = ow_tiles == 1 ? std::max<int64_t>(1, target / s.OW) : 1;
    const int64_t row_tiles = (s.OH + band - 1) / band, tiles = row_tiles * ow_tiles;
    const int64_t items = s.N * groups * tiles, max_cols = band * ow_chunk;
    if (items < parts) parts = 1;
    const int gemm_threads = parts == 1 ? ctx.threads : 1;
    Tensor col = ctx.NewTensor(DType::Float32, {parts, K * max_cols});
    auto run = [&](int p) {
      float* cp = col.data<float>() + p * K * max_cols;
      for (int64_t it = items * p / parts; it < items * (p + 1) / parts; ++it) {
        const int64_t t = it % tiles, grp = it / tiles % groups, n = it / tiles / groups;
        const int64_t oh0 = t / ow_tiles * band, oh1 = std::min(s.OH, oh0 + band);
        const int64_t ow0 = t % ow_tiles * ow_chunk, ow1 = std::min(s.OW, ow0 + ow_chunk);
        const int64_t cols = (oh1 - oh0) * (ow1 - ow0);
        Im2ColTile(x + (n * groups + grp) * s.C * s.H * s.W, s.C, s.H, s.W, s.KH, s.KW, oh0, oh1, ow0, ow1,
                   s.sh, s.sw, s.dh, s.dw, s.pt, s.pl, cp);
        const float* wg = w + grp * s.M * K;
        const float* bg = b ? b + grp * s.M : nullptr;
        float* yt = y + (n * groups + grp) * s.M * on + oh0 * s.OW + ow0;
        if (K <= kSmallK) {
          SmallKProduct(wg, cp, bg, s.M, K, cols, cols, yt, on, nullptr);
          continue;
        }
        Sgemm(false, false, s.M, cols, K, 1.f, wg, K, cp, cols, 0.f, yt, on, gemm_threads);
        if (b || relu_)
          for (int64_t m = 0; m < s.M; ++m) BiasRelu(yt + m * on, cols, b, bg ? bg[m] : 0.f);
      }
    };
    if (parts == 1) run(0);
    else RunParts(parts, run);
    if (ctx.buffers) ctx.buffers->Put(col);
  }

  // y[m, :] = relu?(b[m] + sum_k w[m, k] * col[k, :]) in column blocks whose K rows of `col`
  // stay in L1 while every output row of the block is summed in a small accumulator and written
  // once; output rows split over the pool.
  // `on` columns; ldc and ldy are the row strides of col and y.
  void SmallKProduct(const float* w, const float* col, const float* b, int64_t M, int64_t K,
                     int64_t on, int64_t ldc, float* y, int64_t ldy, ThreadPool* pool) const {
    constexpr int64_t kBlock = 128;
    ParallelFor(pool, M, 8, [&](int64_t m0, int64_t m1) {
      float acc[kBlock];
      for (int64_t c0 = 0; c0 < on; c0 += kBlock) {
        const int64_t nc = std::min(kBlock, on - c0);
        for (int64_t m = m0; m < m1; ++m) {
          const float* wr = w + m * K;
          std::fill(acc, acc + nc, b ? b[m] : 0.f);
          for (int64_t k = 0; k < K; ++k) {
            const float wv = wr[k];
            const float* cr = col + k * ldc + c0;
            for (int64_t i = 0; i < nc; ++i) acc[i] += wv * cr[i];
          }
          float* yr = y + m * ldy + c0;
          if (relu_)
            for (int64_t i = 0; i < nc; ++i) yr[i] = acc[i] > 0 ? acc[i] : 0.f;
          else
            std::copy(acc, acc + nc, yr);
        }
      }
    });
  }

  // y = y + bias (when `b`), then max(y, 0) when relu_: one pass.
  void BiasRelu(float* y, int64_t n, const float* b, float bv) const {
    if (b && relu_) {
      for (int64_t i = 0; i < n; ++i) {
        float v = y[i] + bv;
        y[i] = v > 0 ? v : 0.f;
      }
    } else if (b) {
      for (int64_t i = 0; i < n; ++i) y[i] += bv;
    } else if (relu_) {
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0 ? y[i] : 0.f;
    }
  }

  ConvGeometry g0_;
  bool relu_ = false;
  bool w_constant_ = false;
  DirectConv2D direct_;  // oneDNN plans per input shape (2-D, group 1, large products)
};

// ai.asrc ConvPair (runtime/fusion.h): Conv[+Relu] -> Conv[+Relu], inputs (x, w1, b1, w2, b2),
// the second's attributes prefixed "second_". When both are float32 2-D group-1 convolutions,
// the first has a small K (C * KH * KW <= kSmallK: a first subsampling layer on one input
// channel) and the second runs through oneDNN's direct convolution, the first is written
// straight in channels-last order, the layout that convolution reads: no NCHW intermediate and
// no reorder of it. Same arithmetic as the two kernels unfused (bias first, then the K products
// in order; the same oneDNN primitive). Anything else runs the two ConvKernels as they are.
class ConvPairKernel : public Kernel {
 public:
  ConvPairKernel(ConvGeometry g1, bool relu1, bool w1_constant, ConvGeometry g2, bool relu2,
                 bool w2_constant)
      : first_(std::move(g1), relu1, w1_constant), second_(std::move(g2), relu2, w2_constant) {}

  Status Run(KernelContext& ctx) override {
    Tensor mid;
    ASRC_ASSIGN_OR_RETURN(bool done, Fast(ctx, &mid));
    if (done) return Status::Ok();
    std::vector<Tensor> mids(1);
    if (mid.defined()) {
      mids[0] = std::move(mid);  // the first convolution's output, already NCHW
    } else {
      KernelContext c1 = ctx;
      c1.inputs = {ctx.in(0), ctx.in(1), ctx.in(2)};
      c1.outputs = &mids;
      ASRC_RETURN_IF_ERROR(first_.Run(c1));
    }
    KernelContext c2 = ctx;
    c2.inputs = {&mids[0], ctx.in(3), ctx.in(4)};
    Status st = second_.Run(c2);
    if (ctx.buffers) ctx.buffers->Put(mids[0]);
    return st;
  }

 private:
  static bool F32(const Tensor* t, int rank) {
    return t && t->dtype() == DType::Float32 && (rank < 0 || t->rank() == rank);
  }

  // True when done; false with *mid empty to run unfused, or with *mid holding the first
  // convolution's NCHW output when only the second must run unfused.
  Result<bool> Fast(KernelContext& ctx, Tensor* mid) {
    const Tensor *x = ctx.in(0), *w1 = ctx.in(1), *b1 = ctx.in(2), *w2 = ctx.in(3), *b2 = ctx.in(4);
    if (!F32(x, 4) || !F32(w1, 4) || !F32(w2, 4) || (b1 && !F32(b1, 1)) || (b2 && !F32(b2, 1)))
      return false;
    ConvGeometry g1 = first_.geometry(), g2 = second_.geometry();
    const bool relu1 = first_.relu();
    if (!g1.Resolve(x->shape(), w1->shape()).ok() || g1.group != 1) return false;
    const int64_t K = g1.C * g1.k[0] * g1.k[1], M1 = g1.M, OH1 = g1.out[0], OW1 = g1.out[1];
    const int64_t on1 = OH1 * OW1;
    if (K > kSmallK || (b1 && b1->numel() != M1)) return false;
    if (!g2.Resolve({g1.N, M1, OH1, OW1}, w2->shape()).ok() || g2.group != 1) return false;
    if (b2 && b2->numel() != g2.M) return false;
    // The first convolution, channels last: y1[n, p, m] = relu?(b1[m] + sum_k w1[m, k] col[k, p]).
    std::vector<float> wt(K * M1);  // w1 transposed to [K, M1]: the inner loop runs over m
    for (int64_t m = 0; m < M1; ++m)
      for (int64_t k = 0; k < K; ++k) wt[k * M1 + m] = w1->data<float>()[m * K + k];
    Tensor y1 = ctx.NewTensor(DType::Float32, {g1.N, OH1, OW1, M1});
    Tensor col = ctx.NewTensor(DType::Float32, {K, on1});
    ThreadPool* pool = ctx.threads > 1 ? ctx.pool : nullptr;
    const float* bias1 = b1 ? b1->data<float>() : nullptr;
    for (int64_t n = 0; n < g1.N; ++n) {
      Im2Col2D(x->data<float>() + n * g1.C * g1.in[0] * g1.in[1], g1.C, g1.in[0], g1.in[1],
               g1.k[0], g1.k[1], OH1, OW1, g1.stride[0], g1.stride[1], g1.dil[0], g1.dil[1],
               g1.pb[0], g1.pb[1], col.data<float>());
      const float* cp = col.data<float>();
      float* yn = y1.data<float>() + n * on1 * M1;
      ParallelFor(pool, on1, 64, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          float* acc = yn + p * M1;
          for (int64_t m = 0; m < M1; ++m) acc[m] = bias1 ? bias1[m] : 0.f;
          for (int64_t k = 0; k < K; ++k) {
            const float c = cp[k * on1 + p];
            const float* wk = wt.data() + k * M1;
            for (int64_t m = 0; m < M1; ++m) acc[m] += wk[m] * c;
          }
          if (relu1)
            for (int64_t m = 0; m < M1; ++m) acc[m] = acc[m] > 0 ? acc[m] : 0.f;
        }
      });
    }
    if (ctx.buffers) ctx.buffers->Put(col);
    Shape out{g2.N, g2.M, g2.out[0], g2.out[1]};
    Tensor& y = ctx.Alloc(0, DType::Float32, out);
    const bool w2_packed = second_.w_constant() && w2 == ctx.in(3);
    if (ir::ShapeNumel(out) > 0 &&
        second_.direct().Run({g2.N, g2.C, OH1, OW1, g2.M, g2.k[0], g2.k[1], g2.out[0], g2.out[1],
                              g2.stride[0], g2.stride[1], g2.dil[0], g2.dil[1], g2.pb[0],
                              g2.pb[1], g2.pe[0], g2.pe[1], /*src_nhwc=*/true},
                             y1.data<float>(), w2->data<float>(), w2_packed,
                             b2 ? b2->data<float>() : nullptr, y.data<float>(), ctx.threads)) {
      if (ctx.buffers) ctx.buffers->Put(y1);
      return true;
    }
    // oneDNN declined the second convolution: hand it the first's output in NCHW.
    ctx.out(0) = Tensor();
    *mid = ctx.NewTensor(DType::Float32, {g1.N, M1, OH1, OW1});
    for (int64_t n = 0; n < g1.N; ++n)
      for (int64_t p = 0; p < on1; ++p)
        for (int64_t m = 0; m < M1; ++m)
          mid->data<float>()[(n * M1 + m) * on1 + p] = y1.data<float>()[(n * on1 + p) * M1 + m];
    if (ctx.buffers) ctx.buffers->Put(y1);
    return false;
  }

  ConvKernel first_, second_;
};

class LayerNormKernel : public Kernel {
 public:
  LayerNormKernel(int64_t axis, float eps) : axis_(axis), eps_(eps) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    DType dt = x0.dtype();
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "LayerNormalization"));
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxisOrScalar(axis_, x0.rank()));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < x0.rank(); ++d) (d < ax ? outer : inner) *= x0.shape()[d];
    ASRC_ASSIGN_OR_RETURN(Tensor s, AsFloat(*ctx.in(1), "LayerNormalization"));
    Tensor b;
    if (ctx.in(2)) {
      ASRC_ASSIGN_OR_RETURN(b, AsFloat(*ctx.in(2), "LayerNormalization"));
    }
    if (s.numel() != inner && s.numel() != 1) return Error("Scale has " + std::to_string(s.numel()) + " entries for a normalized size of " + std::to_string(inner));
    if (b.defined() && b.numel() != inner && b.numel() != 1) return Error("B size mismatch");
    Tensor y = dt == DType::Float32 ? ctx.NewTensor(DType::Float32, x.shape()) : Tensor(DType::Float32, x.shape());
    Shape stat_shape(x.shape().begin(), x.shape().begin() + ax);
    stat_shape.resize(x.rank(), 1);
    bool want_mean = ctx.outputs->size() > 1 && ctx.node->output(1);
    bool want_inv = ctx.outputs->size() > 2 && ctx.node->output(2);
    Tensor mean_t(DType::Float32, want_mean ? stat_shape : Shape{0});
    Tensor inv_t(DType::Float32, want_inv ? stat_shape : Shape{0});
    const float* px = x.data<float>();
    const float* ps = s.data<float>();
    const float* pb = b.defined() ? b.data<float>() : nullptr;
    bool s1 = s.numel() == 1, b1 = b.defined() && b.numel() == 1;
    float* py = y.data<float>();
    // Rows of no element (inner = 0, outer may be 2^40): nothing to walk; their statistics are 0/0.
    const int64_t rows = inner == 0 ? 0 : outer;
    if (rows == 0)
      for (Tensor* t : {&mean_t, &inv_t}) std::fill(t->data<float>(), t->data<float>() + t->numel(), NAN);
    ParallelFor(ctx.threads > 1 ? ctx.pool : nullptr, rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(inner, 1)),
                [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        const float* a = px + i * inner;
        float* o = py + i * inner;
        float mean = vm::Sum(a, inner) / inner;
        for (int64_t j = 0; j < inner; ++j) o[j] = a[j] - mean;
        float var = vm::SumSq(o, inner) / inner;
        float inv = 1.f / std::sqrt(var + eps_);
        if (!s1 && pb && !b1) {
          for (int64_t j = 0; j < inner; ++j) o[j] = o[j] * inv * ps[j] + pb[j];
        } else {
          for (int64_t j = 0; j < inner; ++j) {
            float v = o[j] * inv * (s1 ? ps[0] : ps[j]);
            if (pb) v += b1 ? pb[0] : pb[j];
            o[j] = v;
          }
        }
        if (want_mean) mean_t.data<float>()[i] = mean;
        if (want_inv) inv_t.data<float>()[i] = inv;
      }
    });
    ASRC_RETURN_IF_ERROR(FromFloat(ctx, 0, dt, y));
    if (want_mean) ctx.out(1) = mean_t;
    if (want_inv) ctx.out(2) = inv_t;
    return Status::Ok();
  }

 private:
  int64_t axis_;
  float eps_;
};

class BatchNormKernel : public Kernel {
 public:
  explicit BatchNormKernel(float eps) : eps_(eps) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    DType dt = x0.dtype();
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "BatchNormalization"));
    if (x0.rank() < 2) return Error("input rank must be >= 2");
    Tensor p[4];
    for (int i = 1; i <= 4; ++i) {
      if (!ctx.in(i)) return Error("missing input " + std::to_string(i));
      ASRC_ASSIGN_OR_RETURN(p[i - 1], AsFloat(*ctx.in(i), "BatchNormalization"));
    }
    const Tensor &s = p[0], &b = p[1], &mu = p[2], &var = p[3];
    int64_t N = x.dim(0), C = x.dim(1), inner = C ? x.numel() / (N * C == 0 ? 1 : N * C) : 0;
    if (s.numel() != C || b.numel() != C || mu.numel() != C || var.numel() != C) return Error("per-channel inputs must have C entries");
    Tensor y = dt == DType::Float32 ? ctx.NewTensor(DType::Float32, x.shape()) : Tensor(DType::Float32, x.shape());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        float scale = s.data<float>()[c] / std::sqrt(var.data<float>()[c] + eps_);
        float shift = b.data<float>()[c] - mu.data<float>()[c] * scale;
        const float* a = x.data<float>() + (n * C + c) * inner;
        float* o = y.data<float>() + (n * C + c) * inner;
        for (int64_t i = 0; i < inner; ++i) o[i] = a[i] * scale + shift;
      }
    return FromFloat(ctx, 0, dt, y);
  }

 private:
  float eps_;
};

}  // namespace

void RegisterNNKernels(KernelRegistry& r) {
  r.Register("", "MatMul", DType::Undefined, [](const KernelInit&) -> KernelPtr {
    return Make<MatMulKernel>();
  });
  r.Register("ai.asrc", "MatMulBias", DType::Undefined, [](const KernelInit&) -> KernelPtr {
    return Make<MatMulBiasKernel>();
  });
  r.Register("", "Gemm", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    return Make<GemmKernel>(
        i.node->attr_float("alpha", 1.f), i.node->attr_float("beta", 1.f),
        i.node->attr_int("transA", 0) != 0, i.node->attr_int("transB", 0) != 0);
  });
  for (const char* domain : {"", "com.microsoft"})
  r.Register(domain, domain[0] ? "FusedConv" : "Conv", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    ConvGeometry g;
    bool relu = false;
    ASRC_RETURN_IF_ERROR(ConvAttributes(*i.node, "", &g, &relu));
    relu = relu && i.node->domain == "com.microsoft";  // ONNX Conv has no activation
    const bool w_constant = i.constant_inputs.size() > 1 && i.constant_inputs[1];
    return Make<ConvKernel>(std::move(g), relu, w_constant);
  });
  r.Register("ai.asrc", "ConvPair", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    ConvGeometry g1, g2;
    bool relu1 = false, relu2 = false;
    ASRC_RETURN_IF_ERROR(ConvAttributes(*i.node, "", &g1, &relu1));
    ASRC_RETURN_IF_ERROR(ConvAttributes(*i.node, "second_", &g2, &relu2));
    auto constant = [&](size_t k) { return i.constant_inputs.size() > k && i.constant_inputs[k]; };
    return Make<ConvPairKernel>(std::move(g1), relu1, constant(1), std::move(g2), relu2, constant(3));
  });
  r.Register("", "LayerNormalization", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    return Make<LayerNormKernel>(i.node->attr_int("axis", -1), i.node->attr_float("epsilon", 1e-5f));
  });
  r.Register("", "BatchNormalization", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    if (i.node->attr_int("training_mode", 0) != 0) return MakeBatchNormTraining(i);
    int nout = 0;
    for (auto* v : i.node->outputs) nout += v != nullptr;
    if (nout > 1) return Error("BatchNormalization with training outputs is not supported");
    return Make<BatchNormKernel>(i.node->attr_float("epsilon", 1e-5f));
  });
}

}  // namespace asrc::runtime

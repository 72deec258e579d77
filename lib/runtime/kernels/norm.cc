// Normalizations beyond LayerNormalization/BatchNormalization (nn.cc), statistics accumulated in
// double over float blocks (BlockSum): InstanceNormalization, GroupNormalization (scale/bias per channel, opset 21, or
// per group, opset 18), MeanVarianceNormalization, LpNormalization, LRN. Float16/float64
// compute in float32. Also BatchNormalization's training mode (nn.cc hands it over).
#include <algorithm>
#include <cmath>

#include "runtime/kernels/nn.h"
#include "runtime/kernels/util.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {
namespace {

using namespace ku;

// Sum of f(a[i]) over n floats: eight float lanes (which the compiler vectorizes) over blocks of
// 1024 values, the block sums added in double, so a long run (a wav2vec2 channel of 10^4-10^5
// samples) keeps double-like accuracy without a serial double chain.
template <class F>
double BlockSum(const float* a, int64_t n, F f) {
  double total = 0;
  for (int64_t b = 0; b < n; b += 1024) {
    const int64_t e = std::min(n, b + 1024);
    float lane[8] = {};
    int64_t i = b;
    for (; i + 8 <= e; i += 8)
      for (int j = 0; j < 8; ++j) lane[j] += f(a[i + j]);
    double s = 0;
    for (int j = 0; j < 8; ++j) s += lane[j];
    for (; i < e; ++i) s += f(a[i]);
    total += s;
  }
  return total;
}

// Normalizes each of `groups` contiguous runs of `n` floats to zero mean, unit variance (two
// passes: the mean, then the mean square deviation).
void NormalizeRun(const float* a, float* b, int64_t n, double eps) {
  const double mean = n ? BlockSum(a, n, [](float v) { return v; }) / n : 0.0;
  const float mf = static_cast<float>(mean);
  const double var = n ? BlockSum(a, n, [mf](float v) { return (v - mf) * (v - mf); }) / n : 0.0;
  const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
  for (int64_t i = 0; i < n; ++i) b[i] = (a[i] - mf) * inv;
}
void NormalizeRuns(const float* x, float* y, int64_t groups, int64_t n, double eps) {
  for (int64_t g = 0; g < groups; ++g) NormalizeRun(x + g * n, y + g * n, n, eps);
}

// InstanceNormalization (groups == C, per-channel scale/bias) and GroupNormalization.
class GroupNormKernel : public Kernel {
 public:
  GroupNormKernel(const char* op, int64_t groups, float eps) : op_(op), groups_(groups), eps_(eps) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, op_));
    if (x0.rank() < 2) return Error(std::string(op_) + ": input rank must be >= 2");
    int64_t N = x0.dim(0), C = x0.dim(1);
    int64_t G = groups_ > 0 ? groups_ : C;
    if (G <= 0 || C % G != 0)
      return Error(std::string(op_) + ": " + std::to_string(C) + " channels do not split into " + std::to_string(G) + " groups");
    ASRC_ASSIGN_OR_RETURN(Tensor sc, AsFloat(*ctx.in(1), op_));
    ASRC_ASSIGN_OR_RETURN(Tensor bi, AsFloat(*ctx.in(2), op_));
    // Scale and bias per channel, or per group (GroupNormalization opset 18).
    bool per_group = sc.numel() == G && G != C;
    if ((sc.numel() != C && !per_group) || bi.numel() != sc.numel())
      return Error(std::string(op_) + ": scale/bias have " + std::to_string(sc.numel()) + "/" +
                   std::to_string(bi.numel()) + " elements for " + std::to_string(C) + " channels");
    int64_t spatial = N * C != 0 ? x.numel() / (N * C) : 0;
    int64_t run = C / G * spatial;
    Tensor y = ctx.NewTensor(DType::Float32, x.shape());
    if (y.numel() == 0) return FromFloat(ctx, 0, x0.dtype(), y);  // N may be 2^40 over nothing
    const float* px = x.data<float>();
    float* py = y.data<float>();
    // Runs (one per instance and group) over the pool; each is normalized, then scaled and
    // shifted per channel while it is in cache.
    ParallelFor(ctx.threads > 1 ? ctx.pool : nullptr, N * G, std::max<int64_t>(1, 16384 / std::max<int64_t>(run, 1)),
                [&](int64_t g0, int64_t g1) {
      for (int64_t ng = g0; ng < g1; ++ng) {
        NormalizeRun(px + ng * run, py + ng * run, run, eps_);
        for (int64_t c = (ng % G) * (C / G), ce = c + C / G; c < ce; ++c) {
          int64_t k = per_group ? c / (C / G) : c;
          float s = sc.data<float>()[k], b = bi.data<float>()[k];
          float* p = py + ((ng / G) * C + c) * spatial;
          for (int64_t i = 0; i < spatial; ++i) p[i] = p[i] * s + b;
        }
      }
    });
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  const char* op_;
  int64_t groups_;  // 0: one group per channel (InstanceNormalization)
  float eps_;
};

// The permutation that puts `axes` last (the others keep their order), with the element counts
// of the kept and the reduced parts.
struct AxesView {
  std::vector<int> perm;
  int64_t kept = 1, reduced = 1;
};

AxesView MakeView(const Shape& s, const std::vector<int>& axes) {
  AxesView v;
  std::vector<bool> red(s.size(), false);
  for (int a : axes) red[a] = true;
  for (int d = 0; d < static_cast<int>(s.size()); ++d)
    if (!red[d]) { v.perm.push_back(d); v.kept *= s[d]; }
  for (int d = 0; d < static_cast<int>(s.size()); ++d)
    if (red[d]) { v.perm.push_back(d); v.reduced *= s[d]; }
  return v;
}

// Copies x (float32) into dst laid out in perm order (forward) or back (inverse).
void Permute(const Shape& s, const std::vector<int>& perm, const float* src, float* dst, bool inverse) {
  int r = static_cast<int>(s.size());
  std::vector<int64_t> st = Strides(s), idx(r, 0);
  int64_t n = ir::ShapeNumel(s);
  for (int64_t j = 0; j < n; ++j) {
    int64_t off = 0;
    for (int d = 0; d < r; ++d) off += idx[d] * st[perm[d]];
    if (inverse) dst[off] = src[j];
    else dst[j] = src[off];
    for (int d = r - 1; d >= 0; --d) {
      if (++idx[d] < s[perm[d]]) break;
      idx[d] = 0;
    }
  }
}

class MvnKernel : public Kernel {
 public:
  explicit MvnKernel(std::vector<int64_t> axes) : axes_(std::move(axes)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "MeanVarianceNormalization"));
    std::vector<int> axes;
    for (int64_t a : axes_) {
      ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(a, x0.rank()));
      axes.push_back(ax);
    }
    if (x.numel() == 0) return FromFloat(ctx, 0, x0.dtype(), x);  // the kept dims may be 2^40
    AxesView v = MakeView(x.shape(), axes);
    std::vector<float> t(x.numel()), u(x.numel());
    Permute(x.shape(), v.perm, x.data<float>(), t.data(), false);
    NormalizeRuns(t.data(), u.data(), v.kept, v.reduced, 1e-9);
    Tensor y = ctx.NewTensor(DType::Float32, x.shape());
    Permute(x.shape(), v.perm, u.data(), y.data<float>(), true);
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  std::vector<int64_t> axes_;
};

class LpNormKernel : public Kernel {
 public:
  LpNormKernel(int64_t axis, int64_t p) : axis_(axis), p_(p) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "LpNormalization"));
    ASRC_ASSIGN_OR_RETURN(int axis, NormAxisOrScalar(axis_, x0.rank()));
    int64_t outer = 1, n = x.rank() ? x.dim(axis) : 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= x.dim(d);
    for (int d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
    Tensor y = ctx.NewTensor(DType::Float32, x.shape());
    if (y.numel() == 0) return FromFloat(ctx, 0, x0.dtype(), y);  // outer may be 2^40 over nothing
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const float* a = x.data<float>() + o * n * inner + i;
        float* b = y.data<float>() + o * n * inner + i;
        double norm = 0;
        for (int64_t k = 0; k < n; ++k) norm += p_ == 1 ? std::abs(a[k * inner]) : a[k * inner] * a[k * inner];
        if (p_ == 2) norm = std::sqrt(norm);
        for (int64_t k = 0; k < n; ++k) b[k * inner] = norm == 0 ? 0.f : static_cast<float>(a[k * inner] / norm);
      }
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  int64_t axis_, p_;
};

// LRN across channels: y = x / (bias + alpha / size * sum of squares in the window)^beta.
class LrnKernel : public Kernel {
 public:
  LrnKernel(float alpha, float beta, float bias, int64_t size)
      : alpha_(alpha), beta_(beta), bias_(bias), size_(size) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "LRN"));
    if (x0.rank() < 3) return Error("LRN input must have rank >= 3");
    int64_t N = x.dim(0), C = x.dim(1), sp = x.numel() / std::max<int64_t>(1, N * C);
    int64_t lo = (size_ - 1) / 2, hi = size_ - 1 - lo;
    Tensor y = ctx.NewTensor(DType::Float32, x.shape());
    if (y.numel() == 0) return FromFloat(ctx, 0, x0.dtype(), y);  // N may be 2^40 over nothing
    const float* px = x.data<float>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < sp; ++i) {
          double sq = 0;
          for (int64_t k = std::max<int64_t>(0, c - lo); k <= std::min(C - 1, c + hi); ++k) {
            double v = px[(n * C + k) * sp + i];
            sq += v * v;
          }
          int64_t o = (n * C + c) * sp + i;
          y.data<float>()[o] = static_cast<float>(px[o] / std::pow(bias_ + alpha_ / size_ * sq, static_cast<double>(beta_)));
        }
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  float alpha_, beta_, bias_;
  int64_t size_;
};

// BatchNormalization with training_mode=1 (opset 14+): normalizes with the batch statistics
// (biased variance) and returns running_mean/var = input * momentum + batch * (1 - momentum).
class BatchNormTrainKernel : public Kernel {
 public:
  BatchNormTrainKernel(float eps, float momentum) : eps_(eps), momentum_(momentum) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "BatchNormalization"));
    if (x0.rank() < 2) return Error("BatchNormalization: input rank must be >= 2");
    for (int k = 1; k < 5; ++k)
      if (!ctx.in(k) || ctx.in(k)->numel() != x0.dim(1)) return Error("BatchNormalization: scale, B, mean and var need one value per channel");
    Tensor p[4];
    for (int k = 1; k < 5; ++k) {
      ASRC_ASSIGN_OR_RETURN(p[k - 1], AsFloat(*ctx.in(k), "BatchNormalization"));
    }
    const Tensor &sc = p[0], &bi = p[1], &rm = p[2], &rv = p[3];
    int64_t N = x.dim(0), C = x.dim(1), sp = N * C != 0 ? x.numel() / (N * C) : 0;
    Tensor y = ctx.NewTensor(DType::Float32, x.shape());
    Tensor om(DType::Float32, {C}), ov(DType::Float32, {C});
    const float* px = x.data<float>();
    for (int64_t c = 0; c < C; ++c) {
      double mean = 0, var = 0, cnt = static_cast<double>(N * sp);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < sp; ++i) mean += px[(n * C + c) * sp + i];
      mean = cnt > 0 ? mean / cnt : 0.0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < sp; ++i) var += (px[(n * C + c) * sp + i] - mean) * (px[(n * C + c) * sp + i] - mean);
      var = cnt > 0 ? var / cnt : 0.0;
      double inv = 1.0 / std::sqrt(var + eps_), s = sc.data<float>()[c], b = bi.data<float>()[c];
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < sp; ++i) {
          int64_t o = (n * C + c) * sp + i;
          y.data<float>()[o] = static_cast<float>((px[o] - mean) * inv * s + b);
        }
      om.data<float>()[c] = static_cast<float>(rm.data<float>()[c] * momentum_ + mean * (1 - momentum_));
      ov.data<float>()[c] = static_cast<float>(rv.data<float>()[c] * momentum_ + var * (1 - momentum_));
    }
    ASRC_RETURN_IF_ERROR(FromFloat(ctx, 0, x0.dtype(), y));
    if (ctx.outputs->size() > 1 && ctx.node->output(1)) ASRC_RETURN_IF_ERROR(FromFloat(ctx, 1, ctx.in(3)->dtype(), om));
    if (ctx.outputs->size() > 2 && ctx.node->output(2)) ASRC_RETURN_IF_ERROR(FromFloat(ctx, 2, ctx.in(4)->dtype(), ov));
    return Status::Ok();
  }

 private:
  float eps_, momentum_;
};

}  // namespace

Result<std::unique_ptr<Kernel>> MakeBatchNormTraining(const KernelInit& i) {
  return Make<BatchNormTrainKernel>(i.node->attr_float("epsilon", 1e-5f), i.node->attr_float("momentum", 0.9f));
}

void RegisterNormKernels(KernelRegistry& r) {
  r.Register("", "InstanceNormalization", DType::Undefined, NeedInputs(3, [](const KernelInit& i) -> KernelPtr {
    return Make<GroupNormKernel>("InstanceNormalization", 0, i.node->attr_float("epsilon", 1e-5f));
  }));
  r.Register("", "GroupNormalization", DType::Undefined, NeedInputs(3, [](const KernelInit& i) -> KernelPtr {
    int64_t g = i.node->attr_int("num_groups", 0);
    if (g <= 0) return Error("GroupNormalization needs a positive num_groups");
    return Make<GroupNormKernel>("GroupNormalization", g, i.node->attr_float("epsilon", 1e-5f));
  }));
  r.Register("", "MeanVarianceNormalization", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    std::vector<int64_t> axes = i.node->attr_ints("axes");
    if (axes.empty()) axes = {0, 2, 3};
    return Make<MvnKernel>(std::move(axes));
  }));
  r.Register("", "LpNormalization", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    int64_t p = i.node->attr_int("p", 2);
    if (p != 1 && p != 2) return Error("LpNormalization p must be 1 or 2, got " + std::to_string(p));
    return Make<LpNormKernel>(i.node->attr_int("axis", -1), p);
  }));
  r.Register("", "LRN", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    int64_t size = i.node->attr_int("size", 0);
    if (size <= 0) return Error("LRN needs a positive size");
    return Make<LrnKernel>(
        i.node->attr_float("alpha", 1e-4f), i.node->attr_float("beta", 0.75f),
        i.node->attr_float("bias", 1.f), size);
  }));
}

}  // namespace asrc::runtime

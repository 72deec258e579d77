// Training losses with their gradients (contracts in runtime/kernels/loss.h): RNNTLoss, CTCLoss,
// TransducerKLLoss, TransducerCollapsedKLLoss, L2HintLoss. Lattice sums run in double in log
// space; each utterance is independent, so the batch is split over the thread pool.
#include "runtime/kernels/loss.h"

#include <cmath>
#include <limits>

#include "runtime/kernels/util.h"
#include "runtime/kernels/vmath.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {
namespace {

using namespace ku;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

enum class Reduction { kMean, kSum, kNone };

Result<Reduction> ParseReduction(const ir::Node& n, bool allow_none = true) {
  const std::string r = n.attr_string("reduction", "mean");
  if (r == "mean") return Reduction::kMean;
  if (r == "sum") return Reduction::kSum;
  if (r == "none" && allow_none) return Reduction::kNone;
  return Error("attribute reduction='" + r + "' must be \"mean\", \"sum\"" +
               (allow_none ? " or \"none\"" : ""));
}

double LogAdd(double a, double b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  return a > b ? a + std::log1p(std::exp(b - a)) : b + std::log1p(std::exp(a - b));
}

// Log-softmax denominator of a row of V floats that also leaves exp(x[k] - max) in e[k], so a
// gradient pass turns e into softmax(x) * c with one scaling (c / sum); returns log sum_k exp(x[k]).
double LogSumExpInto(const float* x, float* e, int64_t V, double* inv_sum) {
  const float m = vm::Max(x, V);
  const double s = vm::ExpShiftSum(x, e, V, m);
  *inv_sum = 1.0 / s;
  return m + std::log(s);
}

// The same in double throughout (e[k] = exp(x[k] - max) in double), for losses whose value is a
// small difference of two such denominators.
double LogSumExpExact(const float* x, double* e, int64_t V, double* inv_sum) {
  const float m = vm::Max(x, V);
  double s = 0;
  for (int64_t k = 0; k < V; ++k) s += e[k] = std::exp(static_cast<double>(x[k]) - m);
  *inv_sum = 1.0 / s;
  return m + std::log(s);
}

// Per-utterance lengths and labels, checked against the padded shapes.
struct Batch {
  int64_t B = 0, T = 0, U = 0;  // U: the targets' padded length
  std::vector<int64_t> frames, labels, targets;  // targets: [B, U] row-major
  int64_t Frames(int64_t b) const { return frames[b]; }
  int64_t Labels(int64_t b) const { return labels[b]; }
  const int64_t* Targets(int64_t b) const { return targets.data() + b * U; }
};

Result<std::vector<int64_t>> Lengths(const Tensor* t, int64_t B, int64_t lo, int64_t hi,
                                     const char* what) {
  if (!t) return Error(std::string("missing input ") + what);
  if (t->rank() != 1 || t->dim(0) != B)
    return Error(std::string(what) + " must have shape [" + std::to_string(B) + "], got " +
                 ir::ShapeStr(t->shape()));
  auto v = Int64s(*t);
  if (!v.ok()) return Error(std::string(what) + ": " + v.status().message());
  for (int64_t b = 0; b < B; ++b)
    if (v.value()[b] < lo || v.value()[b] > hi)
      return Error(std::string(what) + "[" + std::to_string(b) + "] = " + std::to_string(v.value()[b]) +
                   " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

// targets [B, U] (input -1: none) with labels in [0, V) other than blank; lengths; `max_labels`
// bounds target_lengths (the lattice's U dimension minus one for the transducer losses).
Result<Batch> ReadBatch(const KernelContext& ctx, int targets_in, int frames_in, int64_t B, int64_t T,
                        int64_t max_labels, int64_t V, int64_t blank) {
  Batch bt;
  bt.B = B;
  bt.T = T;
  ASRC_ASSIGN_OR_RETURN(bt.frames, Lengths(ctx.in(frames_in), B, 1, T, "logit_lengths"));
  if (targets_in >= 0) {
    if (blank < 0 || blank >= V)
      return Error("blank " + std::to_string(blank) + " is outside [0, " + std::to_string(V) + ")");
    const Tensor* tg = ctx.in(targets_in);
    if (!tg || tg->rank() != 2 || tg->dim(0) != B)
      return Error("targets must have shape [" + std::to_string(B) + ", U]" +
                   (tg ? ", got " + ir::ShapeStr(tg->shape()) : std::string()));
    bt.U = tg->dim(1);
    auto v = Int64s(*tg);
    if (!v.ok()) return Error("targets: " + v.status().message());
    bt.targets = std::move(v.value());
    max_labels = std::min(max_labels, bt.U);
  }
  ASRC_ASSIGN_OR_RETURN(bt.labels, Lengths(ctx.in(frames_in + 1), B, 0, max_labels, "target_lengths"));
  for (int64_t b = 0; targets_in >= 0 && b < B; ++b)
    for (int64_t u = 0; u < bt.labels[b]; ++u) {
      int64_t y = bt.Targets(b)[u];
      if (y < 0 || y >= V || y == blank)
        return Error("targets[" + std::to_string(b) + ", " + std::to_string(u) + "] = " + std::to_string(y) +
                     (y == blank ? " is the blank" : " is outside [0, " + std::to_string(V) + ")"));
    }
  return bt;
}

Result<const Tensor*> FloatInput(const KernelContext& ctx, int i, int rank, const char* what) {
  const Tensor* t = ctx.in(i);
  if (!t) return Error(std::string("missing input ") + what);
  if (t->dtype() != DType::Float32) return Error(std::string(what) + " must be float32, got " + ir::DTypeName(t->dtype()));
  if (rank > 0 && t->rank() != rank)
    return Error(std::string(what) + " must be " + std::to_string(rank) + "-D, got " + ir::ShapeStr(t->shape()));
  return t;
}

// Weight of each utterance's loss in the reduced loss (1 for "none": output 1 then holds each
// utterance's own gradient).
std::vector<double> Weights(Reduction r, int64_t B) {
  return std::vector<double>(B, r == Reduction::kMean ? 1.0 / static_cast<double>(B) : 1.0);
}

// Writes output 0 (sum of w_b * loss_b, or loss_b for "none").
void WriteLoss(KernelContext& ctx, Reduction r, const std::vector<double>& loss, const std::vector<double>& w) {
  const int64_t B = static_cast<int64_t>(loss.size());
  if (r == Reduction::kNone) {
    float* o = ctx.Alloc(0, DType::Float32, {B}).data<float>();
    for (int64_t b = 0; b < B; ++b) o[b] = static_cast<float>(loss[b]);
    return;
  }
  double s = 0;
  for (int64_t b = 0; b < B; ++b) s += w[b] * loss[b];
  ctx.Alloc(0, DType::Float32, {}).data<float>()[0] = static_cast<float>(s);
}

// Output 1 (the gradient, shape of input 0), or scratch returned to the pool when the node
// does not use it.
struct GradOut {
  KernelContext& ctx;
  Tensor scratch;
  float* data = nullptr;
  GradOut(KernelContext& c, const Shape& shape) : ctx(c) {
    const bool used = ctx.outputs->size() > 1 && ctx.node->outputs.size() > 1 && ctx.node->outputs[1];
    Tensor& t = used ? ctx.Alloc(1, DType::Float32, shape) : (scratch = ctx.NewTensor(DType::Float32, shape));
    data = t.data<float>();
    std::fill(data, data + ir::ShapeNumel(shape), 0.f);
  }
  ~GradOut() {
    if (scratch.defined() && ctx.buffers) ctx.buffers->Put(scratch);
  }
};

void ForEachUtterance(const KernelContext& ctx, int64_t B, const std::function<void(int64_t)>& fn) {
  ParallelFor(ctx.threads > 1 ? ctx.pool : nullptr, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) fn(b);
  });
}

// ---- RNN-T ----------------------------------------------------------------------------------

// One utterance: x and g point at its [T, U1, V] block; returns -log P(y | x).
double RnntUtterance(const float* x, float* g, int64_t U1, int64_t V, int64_t Tb, int64_t Ub,
                     const int64_t* y, int64_t blank, bool fused, double scale) {
  const int64_t N = Ub + 1;  // lattice width
  std::vector<double> lz(Tb * N, 0.0), inv_sum(Tb * N), lpb(Tb * N), lpy(Tb * N, kNegInf), alpha(Tb * N),
      beta(Tb * N);
  auto row = [&](int64_t t, int64_t u) { return x + (t * U1 + u) * V; };
  for (int64_t t = 0; t < Tb; ++t)
    for (int64_t u = 0; u <= Ub; ++u) {
      const float* r = row(t, u);
      const int64_t i = t * N + u;
      if (fused) lz[i] = LogSumExpInto(r, g + (r - x), V, &inv_sum[i]);
      lpb[i] = r[blank] - lz[i];
      if (u < Ub) lpy[i] = r[y[u]] - lz[i];
    }
  for (int64_t t = 0; t < Tb; ++t)
    for (int64_t u = 0; u <= Ub; ++u) {
      const int64_t i = t * N + u;
      double a = t == 0 && u == 0 ? 0.0 : kNegInf;
      if (t > 0) a = alpha[i - N] + lpb[i - N];
      if (u > 0) a = LogAdd(a, alpha[i - 1] + lpy[i - 1]);
      alpha[i] = a;
    }
  const int64_t last = (Tb - 1) * N + Ub;
  const double log_p = alpha[last] + lpb[last];
  for (int64_t t = Tb - 1; t >= 0; --t)
    for (int64_t u = Ub; u >= 0; --u) {
      const int64_t i = t * N + u;
      double v = i == last ? lpb[i] : kNegInf;
      if (t < Tb - 1) v = beta[i + N] + lpb[i];
      if (u < Ub) v = LogAdd(v, beta[i + 1] + lpy[i]);
      beta[i] = v;
    }
  // d(-log P)/d lp(t,u,k) = -(probability mass of the paths through that edge); with the fused
  // log-softmax every row also gets occupancy(t,u) * softmax(t,u) (its exps are in g already).
  for (int64_t t = 0; t < Tb; ++t)
    for (int64_t u = 0; u <= Ub; ++u) {
      const int64_t i = t * N + u;
      const float* r = row(t, u);
      float* gr = g + (r - x);
      const double next_blank = t < Tb - 1 ? beta[i + N] : (u == Ub ? 0.0 : kNegInf);
      const double eb = std::exp(alpha[i] + lpb[i] + next_blank - log_p);
      const double ey = u < Ub ? std::exp(alpha[i] + lpy[i] + beta[i + 1] - log_p) : 0.0;
      if (fused) vm::Scale(gr, V, static_cast<float>(std::exp(alpha[i] + beta[i] - log_p) * scale * inv_sum[i]));
      gr[blank] = static_cast<float>(gr[blank] - scale * eb);
      if (u < Ub) gr[y[u]] = static_cast<float>(gr[y[u]] - scale * ey);
    }
  return -log_p;
}

class RnntLossKernel : public Kernel {
 public:
  RnntLossKernel(int64_t blank, Reduction r, bool fused) : blank_(blank), red_(r), fused_(fused) {}
  Status Run(KernelContext& ctx) override {
    ASRC_ASSIGN_OR_RETURN(const Tensor* x, FloatInput(ctx, 0, 4, "logits"));
    const int64_t B = x->dim(0), T = x->dim(1), U1 = x->dim(2), V = x->dim(3);
    if (U1 < 1) return Error("logits " + ir::ShapeStr(x->shape()) + " has no label positions (dimension 2 is 0)");
    ASRC_ASSIGN_OR_RETURN(Batch bt, ReadBatch(ctx, 1, 2, B, T, U1 - 1, V, blank_));
    std::vector<double> loss(B), w = Weights(red_, B);
    GradOut g(ctx, x->shape());
    const int64_t stride = T * U1 * V;
    ForEachUtterance(ctx, B, [&](int64_t b) {
      loss[b] = RnntUtterance(x->data<float>() + b * stride, g.data + b * stride, U1, V, bt.Frames(b),
                              bt.Labels(b), bt.Targets(b), blank_, fused_, w[b]);
    });
    WriteLoss(ctx, red_, loss, w);
    return Status::Ok();
  }

 private:
  int64_t blank_;
  Reduction red_;
  bool fused_;
};

// ---- CTC ------------------------------------------------------------------------------------

// One utterance: x and g point at its [T, V] block; returns -log P(y | x) (inf when no
// alignment fits; the caller then zeroes the gradient).
double CtcUtterance(const float* x, float* g, int64_t V, int64_t Tb, int64_t L, const int64_t* y,
                    int64_t blank, bool fused, double scale) {
  const int64_t S = 2 * L + 1;
  auto label = [&](int64_t s) { return s % 2 ? y[s / 2] : blank; };
  // May alignment state s be entered from s - 2 (skipping a blank between two labels)?
  auto skip = [&](int64_t s) { return s >= 2 && s % 2 && label(s) != label(s - 2); };
  std::vector<double> lz(Tb, 0.0), inv_sum(Tb), alpha(Tb * S, kNegInf), beta(Tb * S, kNegInf);
  if (fused)
    for (int64_t t = 0; t < Tb; ++t) lz[t] = LogSumExpInto(x + t * V, g + t * V, V, &inv_sum[t]);
  auto lp = [&](int64_t t, int64_t s) { return x[t * V + label(s)] - lz[t]; };
  alpha[0] = lp(0, 0);
  if (S > 1) alpha[1] = lp(0, 1);
  for (int64_t t = 1; t < Tb; ++t)
    for (int64_t s = 0; s < S; ++s) {
      const double* prev = &alpha[(t - 1) * S];
      double a = prev[s];
      if (s >= 1) a = LogAdd(a, prev[s - 1]);
      if (skip(s)) a = LogAdd(a, prev[s - 2]);
      alpha[t * S + s] = a == kNegInf ? kNegInf : a + lp(t, s);
    }
  const int64_t e = (Tb - 1) * S;
  const double log_p = S > 1 ? LogAdd(alpha[e + S - 1], alpha[e + S - 2]) : alpha[e];
  if (log_p == kNegInf) return std::numeric_limits<double>::infinity();
  beta[e + S - 1] = lp(Tb - 1, S - 1);
  if (S > 1) beta[e + S - 2] = lp(Tb - 1, S - 2);
  for (int64_t t = Tb - 2; t >= 0; --t)
    for (int64_t s = 0; s < S; ++s) {
      const double* next = &beta[(t + 1) * S];
      double v = next[s];
      if (s + 1 < S) v = LogAdd(v, next[s + 1]);
      if (s + 2 < S && skip(s + 2)) v = LogAdd(v, next[s + 2]);
      beta[t * S + s] = v == kNegInf ? kNegInf : v + lp(t, s);
    }
  // alpha and beta both include frame t's emission: occupancy = exp(alpha + beta - lp - log P).
  for (int64_t t = 0; t < Tb; ++t) {
    float* gr = g + t * V;
    if (fused) vm::Scale(gr, V, static_cast<float>(scale * inv_sum[t]));
    for (int64_t s = 0; s < S; ++s) {
      const int64_t i = t * S + s;
      if (alpha[i] == kNegInf || beta[i] == kNegInf) continue;
      const double occ = std::exp(alpha[i] + beta[i] - lp(t, s) - log_p);
      gr[label(s)] = static_cast<float>(gr[label(s)] - scale * occ);
    }
  }
  return -log_p;
}

class CtcLossKernel : public Kernel {
 public:
  CtcLossKernel(int64_t blank, Reduction r, bool fused, bool zero_inf)
      : blank_(blank), red_(r), fused_(fused), zero_inf_(zero_inf) {}
  Status Run(KernelContext& ctx) override {
    ASRC_ASSIGN_OR_RETURN(const Tensor* x, FloatInput(ctx, 0, 3, "logits"));
    const int64_t B = x->dim(0), T = x->dim(1), V = x->dim(2);
    ASRC_ASSIGN_OR_RETURN(Batch bt, ReadBatch(ctx, 1, 2, B, T, std::numeric_limits<int64_t>::max(), V, blank_));
    std::vector<double> loss(B), w = Weights(red_, B);
    if (red_ == Reduction::kMean)  // torch's ctc_loss: each loss over its target length first
      for (int64_t b = 0; b < B; ++b) w[b] /= static_cast<double>(std::max<int64_t>(bt.Labels(b), 1));
    GradOut g(ctx, x->shape());
    ForEachUtterance(ctx, B, [&](int64_t b) {
      float* gb = g.data + b * T * V;
      loss[b] = CtcUtterance(x->data<float>() + b * T * V, gb, V, bt.Frames(b), bt.Labels(b), bt.Targets(b),
                             blank_, fused_, w[b]);
      if (std::isinf(loss[b])) {
        std::fill(gb, gb + T * V, 0.f);
        if (zero_inf_) loss[b] = 0;
      }
    });
    WriteLoss(ctx, red_, loss, w);
    return Status::Ok();
  }

 private:
  int64_t blank_;
  Reduction red_;
  bool fused_, zero_inf_;
};

// ---- Transducer knowledge distillation ------------------------------------------------------

// Shapes shared by the KD losses: student [B, T, U1, V], teacher [B, T, U1, teacher_v].
struct StudentTeacher {
  const Tensor* s;
  const Tensor* t;
};

// Inputs 0 and 1, the student's and the teacher's float32 tensors (`rank` dims, 0: any), of one
// shape; where `allow_three`, the teacher's last dimension may be 3 (the collapsed KL's classes).
// Rank-4 logits must have a vocabulary.
Result<StudentTeacher> StudentTeacherInputs(const KernelContext& ctx, int rank, const char* student,
                                            const char* teacher, bool allow_three) {
  ASRC_ASSIGN_OR_RETURN(const Tensor* s, FloatInput(ctx, 0, rank, student));
  ASRC_ASSIGN_OR_RETURN(const Tensor* t, FloatInput(ctx, 1, rank, teacher));
  if (rank == 4 && s->dim(3) < 1)
    return Error("student logits " + ir::ShapeStr(s->shape()) + " have an empty vocabulary");
  Shape want = s->shape();
  if (t->shape() == want) return StudentTeacher{s, t};
  if (!want.empty()) want.back() = 3;
  if (allow_three && t->shape() == want) return StudentTeacher{s, t};
  return Error("teacher " + ir::ShapeStr(t->shape()) + " does not match student " + ir::ShapeStr(s->shape()) +
               (allow_three ? " (or its 3-class form " + ir::ShapeStr(want) + ")" : std::string()));
}

class TransducerKlKernel : public Kernel {
 public:
  explicit TransducerKlKernel(Reduction r) : red_(r) {}
  Status Run(KernelContext& ctx) override {
    ASRC_ASSIGN_OR_RETURN(StudentTeacher in,
                          StudentTeacherInputs(ctx, 4, "student logits", "teacher logits", false));
    const Tensor *s = in.s, *t = in.t;
    const int64_t B = s->dim(0), T = s->dim(1), U1 = s->dim(2), V = s->dim(3);
    ASRC_ASSIGN_OR_RETURN(Batch bt, ReadBatch(ctx, -1, 2, B, T, U1 - 1, V, -1));
    std::vector<double> loss(B, 0.0), w = Weights(red_, B);
    GradOut g(ctx, s->shape());
    ForEachUtterance(ctx, B, [&](int64_t b) {
      std::vector<double> es(V), et(V);
      for (int64_t ti = 0; ti < bt.Frames(b); ++ti)
        for (int64_t u = 0; u <= bt.Labels(b); ++u) {
          const int64_t off = ((b * T + ti) * U1 + u) * V;
          const float *xs = s->data<float>() + off, *xt = t->data<float>() + off;
          // log p_t - log p_s = (xt - xs) - (zt - zs): small terms when the two are close, so
          // the KL of a close teacher keeps its digits if zt - zs does (hence double exps).
          double inv_s, inv_t;
          const double dz = LogSumExpExact(xt, et.data(), V, &inv_t) - LogSumExpExact(xs, es.data(), V, &inv_s);
          double kl = 0;
          float* gr = g.data + off;
          for (int64_t k = 0; k < V; ++k) {
            const double pt = et[k] * inv_t;
            if (pt > 0) kl += pt * ((static_cast<double>(xt[k]) - xs[k]) - dz);
            gr[k] = static_cast<float>(w[b] * (es[k] * inv_s - pt));
          }
          loss[b] += kl;
        }
    });
    WriteLoss(ctx, red_, loss, w);
    return Status::Ok();
  }

 private:
  Reduction red_;
};

// A node's distribution collapsed to (next label, blank, rest); label < 0: no next label (its
// class is empty). p[c] are probabilities, sum_exp the softmax denominator relative to `max`.
struct Collapsed {
  double p[3] = {0, 0, 0};
  float max = 0;
  double sum_exp = 0;
};

// Leaves exp(x[k] - max) in ex[k].
Collapsed Collapse(const float* x, float* ex, int64_t V, int64_t label, int64_t blank) {
  Collapsed c;
  c.max = vm::Max(x, V);
  vm::ExpShiftSum(x, ex, V, c.max);
  double e[3] = {0, 0, 0};  // summed apart, so a tiny "rest" keeps its precision
  for (int64_t k = 0; k < V; ++k) e[k == label ? 0 : k == blank ? 1 : 2] += ex[k];
  c.sum_exp = e[0] + e[1] + e[2];
  for (int i = 0; i < 3; ++i) c.p[i] = e[i] / c.sum_exp;
  return c;
}

class CollapsedKlKernel : public Kernel {
 public:
  CollapsedKlKernel(int64_t blank, Reduction r) : blank_(blank), red_(r) {}
  Status Run(KernelContext& ctx) override {
    ASRC_ASSIGN_OR_RETURN(StudentTeacher in,
                          StudentTeacherInputs(ctx, 4, "student logits", "teacher", true));
    const Tensor *s = in.s, *t = in.t;
    const int64_t B = s->dim(0), T = s->dim(1), U1 = s->dim(2), V = s->dim(3);
    if (V < 3) return Error("the collapsed KL needs a vocabulary of at least 3, got " + std::to_string(V));
    ASRC_ASSIGN_OR_RETURN(Batch bt, ReadBatch(ctx, 2, 3, B, T, U1 - 1, V, blank_));
    const bool three = t->dim(3) == 3 && V != 3;
    if (three)
      for (int64_t i = 0; i < t->numel(); ++i) {
        const float q = t->data<float>()[i];
        if (!(q >= 0.f && q <= 1.f))
          return Error("teacher 3-class probability at flat index " + std::to_string(i) + " is " + std::to_string(q) +
                       ", not in [0, 1]");
      }
    std::vector<double> loss(B, 0.0), w = Weights(red_, B);
    GradOut g(ctx, s->shape());
    ForEachUtterance(ctx, B, [&](int64_t b) {
      std::vector<float> et(three ? 0 : V);
      for (int64_t ti = 0; ti < bt.Frames(b); ++ti)
        for (int64_t u = 0; u <= bt.Labels(b); ++u) {
          const int64_t node = (b * T + ti) * U1 + u;
          const int64_t label = u < bt.Labels(b) ? bt.Targets(b)[u] : -1;
          double q[3];
          if (three) {
            const float* tq = t->data<float>() + node * 3;
            q[0] = label < 0 ? 0.0 : tq[0];
            q[1] = tq[1];
            q[2] = label < 0 ? tq[2] + tq[0] : tq[2];
          } else {
            Collapsed tc = Collapse(t->data<float>() + node * V, et.data(), V, label, blank_);
            for (int i = 0; i < 3; ++i) q[i] = tc.p[i];
          }
          float* gr = g.data + node * V;  // exp(xs - max) first, then the gradient
          const Collapsed sc = Collapse(s->data<float>() + node * V, gr, V, label, blank_);
          double kl = 0, ratio[3], qsum = q[0] + q[1] + q[2];
          for (int i = 0; i < 3; ++i) {
            if (q[i] > 0) kl += q[i] * (std::log(q[i]) - std::log(sc.p[i]));
            ratio[i] = sc.p[i] > 0 ? q[i] / sc.p[i] : 0.0;
          }
          loss[b] += kl;
          // d/dx_k of -sum_c q_c log p_c = p_k (sum_c q_c - q_c(k) / p_c(k)): one factor per class
          // on the exps in gr, the "rest" factor on the whole row first.
          float f[3];
          for (int i = 0; i < 3; ++i) f[i] = static_cast<float>(w[b] / sc.sum_exp * (qsum - ratio[i]));
          const float e_label = label >= 0 ? gr[label] : 0.f, e_blank = gr[blank_];
          vm::Scale(gr, V, f[2]);
          if (label >= 0) gr[label] = e_label * f[0];
          gr[blank_] = e_blank * f[1];
        }
    });
    WriteLoss(ctx, red_, loss, w);
    return Status::Ok();
  }

 private:
  int64_t blank_;
  Reduction red_;
};

// ---- Encoder hint ---------------------------------------------------------------------------

class L2HintKernel : public Kernel {
 public:
  explicit L2HintKernel(Reduction r) : red_(r) {}
  Status Run(KernelContext& ctx) override {
    ASRC_ASSIGN_OR_RETURN(StudentTeacher in, StudentTeacherInputs(ctx, 0, "student", "teacher", false));
    const Tensor *s = in.s, *t = in.t;
    // Valid elements: a prefix of `len[b]` frames of `inner` elements in each of B blocks.
    int64_t B = 1, T = 1;
    std::vector<int64_t> len(1, 1);
    if (ctx.in(2)) {
      if (s->rank() < 2) return Error("lengths need a student of rank >= 2, got " + ir::ShapeStr(s->shape()));
      B = s->dim(0);
      T = s->dim(1);
      ASRC_ASSIGN_OR_RETURN(len, Lengths(ctx.in(2), B, 0, T, "lengths"));
    }
    const int64_t inner = B * T > 0 ? s->numel() / (B * T) : 0;
    int64_t count = 0;
    for (int64_t b = 0; b < B; ++b) count += len[b] * inner;
    if (!ctx.in(2)) count = s->numel();
    const double scale = red_ == Reduction::kMean ? (count > 0 ? 1.0 / count : 0.0) : 1.0;
    GradOut g(ctx, s->shape());
    double sum = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t begin = b * T * inner, end = begin + (ctx.in(2) ? len[b] * inner : s->numel());
      for (int64_t i = begin; i < end; ++i) {
        const double d = static_cast<double>(s->data<float>()[i]) - t->data<float>()[i];
        sum += d * d;
        g.data[i] = static_cast<float>(2.0 * scale * d);
      }
    }
    ctx.Alloc(0, DType::Float32, {}).data<float>()[0] = static_cast<float>(sum * scale);
    return Status::Ok();
  }

 private:
  Reduction red_;
};

int64_t Blank(const KernelInit& i) { return i.node->attr_int("blank", 0); }
bool Fused(const KernelInit& i) { return i.node->attr_int("fused_log_softmax", 1) != 0; }

}  // namespace

void RegisterLossKernels(KernelRegistry& r) {
  r.Register("ai.asrc", "RNNTLoss", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(Reduction red, ParseReduction(*i.node));
    return Make<RnntLossKernel>(Blank(i), red, Fused(i));
  });
  r.Register("ai.asrc", "CTCLoss", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(Reduction red, ParseReduction(*i.node));
    return Make<CtcLossKernel>(Blank(i), red, Fused(i), i.node->attr_int("zero_infinity", 0) != 0);
  });
  r.Register("ai.asrc", "TransducerKLLoss", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(Reduction red, ParseReduction(*i.node));
    return Make<TransducerKlKernel>(red);
  });
  r.Register("ai.asrc", "TransducerCollapsedKLLoss", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(Reduction red, ParseReduction(*i.node));
    return Make<CollapsedKlKernel>(Blank(i), red);
  });
  r.Register("ai.asrc", "L2HintLoss", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(Reduction red, ParseReduction(*i.node, false));
    return Make<L2HintKernel>(red);
  });
}

}  // namespace asrc::runtime

// RNN, LSTM and GRU (ONNX semantics: gate orders iofc / zrh, directions forward/reverse/bidirectional,
// sequence_lens, initial states, peepholes, clip, layout 0/1, GRU linear_before_reset).
// The input projection of all time steps is one GEMM; each step multiplies the state by R
// (StepProduct); the two directions of a bidirectional pass run on two threads when there are two.
#include <cmath>
#include <functional>

#include "runtime/gemm.h"
#include "runtime/kernels/util.h"
#include "runtime/kernels/vmath.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {
namespace {

using namespace ku;

enum class Act { Sigmoid, Tanh, Relu, Softsign, Softplus };

float Apply(Act a, float x) {
  switch (a) {
    case Act::Sigmoid: return 1.f / (1.f + std::exp(-x));
    case Act::Tanh: return std::tanh(x);
    case Act::Relu: return x > 0 ? x : 0.f;
    case Act::Softsign: return x / (1.f + std::abs(x));
    case Act::Softplus: return std::log1p(std::exp(x));
  }
  return x;
}

// Applies an activation in place over n values (clip first when clip > 0).
void ActVec(Act a, float* x, int64_t n, float clip) {
  if (clip > 0)
    for (int64_t i = 0; i < n; ++i) x[i] = std::min(clip, std::max(-clip, x[i]));
  switch (a) {
    case Act::Sigmoid: vm::Sigmoid(x, x, n); return;
    case Act::Tanh: vm::Tanh(x, x, n); return;
    default:
      for (int64_t i = 0; i < n; ++i) x[i] = Apply(a, x[i]);
  }
}

struct RnnConfig {
  int dirs = 1;
  bool reverse_only = false;
  int64_t hidden = 0;
  float clip = 0;  // 0: none
  int layout = 0;
  std::vector<Act> acts;  // per direction: gates_per_dir entries
  bool lbr = false;       // GRU linear_before_reset
};

Result<RnnConfig> ParseConfig(const ir::Node& n, int acts_per_dir, const std::vector<Act>& defaults) {
  RnnConfig c;
  std::string dir = n.attr_string("direction", "forward");
  if (dir == "bidirectional") c.dirs = 2;
  else if (dir == "reverse") c.reverse_only = true;
  else if (dir != "forward") return Error("unsupported direction '" + dir + "'");
  c.hidden = n.attr_int("hidden_size", 0);
  c.clip = n.attr_float("clip", 0.f);
  c.layout = static_cast<int>(n.attr_int("layout", 0));
  c.lbr = n.attr_int("linear_before_reset", 0) != 0;
  if (c.layout != 0 && c.layout != 1) return Error("unsupported layout");
  if (n.attr_int("input_forget", 0) != 0) return Error("input_forget=1 is not supported");
  if (!n.attr_floats("activation_alpha").empty() || !n.attr_floats("activation_beta").empty())
    return Error("activation_alpha/activation_beta are not supported");
  const ir::Attribute* a = n.attr("activations");
  if (a && !a->strings.empty()) {
    if (static_cast<int>(a->strings.size()) != acts_per_dir * c.dirs) return Error("activations count mismatch");
    for (const auto& s : a->strings) {
      if (s == "Sigmoid") c.acts.push_back(Act::Sigmoid);
      else if (s == "Tanh") c.acts.push_back(Act::Tanh);
      else if (s == "Relu") c.acts.push_back(Act::Relu);
      else if (s == "Softsign") c.acts.push_back(Act::Softsign);
      else if (s == "Softplus") c.acts.push_back(Act::Softplus);
      else return Error("unsupported activation '" + s + "'");
    }
  } else {
    for (int d = 0; d < c.dirs; ++d) c.acts.insert(c.acts.end(), defaults.begin(), defaults.end());
  }
  return c;
}

// Shapes, the seq-major views and the outputs every cell needs.
struct RnnRun {
  int64_t seq = 0, batch = 0, in = 0;
  Tensor x;                    // [seq, batch, in] float
  std::vector<int64_t> lens;   // per batch
  Tensor h0, c0;               // [dirs, batch, H] or undefined
  const Tensor* W = nullptr;   // [dirs, gates*H, in]
  const Tensor* R = nullptr;   // [dirs, gates*H, H]
  const Tensor* B = nullptr;   // [dirs, 2*gates*H] or null
  Tensor y;                    // [seq, dirs, batch, H]
  Tensor hT;                   // [dirs, batch, H]
  Tensor cT;                   // [dirs, batch, H], LSTM only
};

Status Prepare(KernelContext& ctx, const RnnConfig& c, int gates, RnnRun& r) {
  const Tensor& x0 = *ctx.in(0);
  if (x0.dtype() != DType::Float32) return DTypeError(ctx.node->op_type.c_str(), x0.dtype());
  if (x0.rank() != 3) return Error("X must be 3-D");
  const Tensor& w = *ctx.in(1);
  if (w.rank() != 3 || w.dim(0) != c.dirs || w.dim(1) != gates * c.hidden)
    return Error("W shape " + ir::ShapeStr(w.shape()) + " does not match hidden_size/direction");
  if (c.layout == 0) {
    r.x = x0;
    r.seq = x0.dim(0);
    r.batch = x0.dim(1);
  } else {
    r.seq = x0.dim(1);
    r.batch = x0.dim(0);
    r.x = Tensor(DType::Float32, {r.seq, r.batch, x0.dim(2)});
    for (int64_t b = 0; b < r.batch; ++b)
      for (int64_t t = 0; t < r.seq; ++t)
        CopyBytes(r.x.data<float>() + (t * r.batch + b) * x0.dim(2), x0.data<float>() + (b * r.seq + t) * x0.dim(2),
                    x0.dim(2) * sizeof(float));
  }
  r.in = x0.dim(2);
  if (w.dim(2) != r.in) return Error("W input size differs from X");
  int64_t G = gates * c.hidden;
  r.W = &w;
  r.R = ctx.in(2);
  if (r.R->shape() != Shape{c.dirs, G, c.hidden}) return Error("R shape " + ir::ShapeStr(r.R->shape()));
  r.B = ctx.in(3);
  if (r.B && r.B->shape() != Shape{c.dirs, 2 * G}) return Error("B shape " + ir::ShapeStr(r.B->shape()));
  r.hT = Tensor(DType::Float32, {c.dirs, r.batch, c.hidden});
  r.lens.assign(r.batch, r.seq);
  if (ctx.in(4) && ctx.in(4)->numel() > 0) {
    ASRC_ASSIGN_OR_RETURN(r.lens, Int64s(*ctx.in(4)));
    if (static_cast<int64_t>(r.lens.size()) != r.batch) return Error("sequence_lens size differs from batch");
    for (int64_t l : r.lens)
      if (l < 0 || l > r.seq) return Error("sequence_lens value out of range");
  }
  // Y from the buffer pool when every row runs the whole sequence (each step then writes every
  // element); zeros past a shorter row's end otherwise.
  const Shape ys{r.seq, c.dirs, r.batch, c.hidden};
  const bool full = std::all_of(r.lens.begin(), r.lens.end(), [&](int64_t l) { return l == r.seq; });
  r.y = full ? ctx.NewTensor(DType::Float32, ys) : Tensor(DType::Float32, ys);
  auto state = [&](int idx, Tensor& out) -> Status {
    if (!ctx.in(idx)) return Status::Ok();
    const Tensor& s = *ctx.in(idx);
    if (c.layout == 0) {
      if (s.shape() != Shape{c.dirs, r.batch, c.hidden}) return Error("initial state shape " + ir::ShapeStr(s.shape()));
      out = s;
    } else {
      if (s.shape() != Shape{r.batch, c.dirs, c.hidden}) return Error("initial state shape " + ir::ShapeStr(s.shape()));
      out = Tensor(DType::Float32, {c.dirs, r.batch, c.hidden});
      for (int64_t b = 0; b < r.batch; ++b)
        for (int d = 0; d < c.dirs; ++d)
          CopyBytes(out.data<float>() + (d * r.batch + b) * c.hidden, s.data<float>() + (b * c.dirs + d) * c.hidden, c.hidden * sizeof(float));
    }
    return Status::Ok();
  };
  ASRC_RETURN_IF_ERROR(state(5, r.h0));
  if (ctx.node->op_type == "LSTM") ASRC_RETURN_IF_ERROR(state(6, r.c0));
  return Status::Ok();
}

// Direction d's input projection of every step, xw [seq*batch, G] = x W_d^T + Wb_d, plus Rb_d
// when add_rb (GRU adds Rb per step instead).
void Project(KernelContext& ctx, const RnnRun& r, int d, int64_t G, bool add_rb, float* xw) {
  int64_t rows = r.seq * r.batch;
  const float* w = r.W->data<float>() + d * G * r.in;
  if (rows > 0) Sgemm(false, true, rows, G, r.in, 1.f, r.x.data<float>(), r.in, w, r.in, 0.f, xw, G, ctx.threads);
  if (!r.B) return;
  const float* wb = r.B->data<float>() + d * 2 * G;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < G; ++j) xw[i * G + j] += add_rb ? wb[j] + wb[G + j] : wb[j];
}

// Direction d's slice of a state tensor [dirs, batch, H], set from init when it is given.
float* InitState(Tensor& state, const Tensor& init, int d, int64_t n) {
  float* p = state.data<float>() + d * n;
  if (init.defined()) CopyBytes(p, init.data<float>() + d * n, n * sizeof(float));
  return p;
}

// The time index step s reaches in batch row b (reversed over its own length), -1 past it.
inline int64_t StepTime(const RnnRun& r, int64_t b, int64_t s, bool rev) {
  if (s >= r.lens[b]) return -1;
  return rev ? r.lens[b] - 1 - s : s;
}

// Direction d of a cell's pass: its time order, its input projections xw [seq*batch, G] and its
// hidden state hs [batch, H].
struct Direction {
  const RnnConfig& c;
  RnnRun& r;
  int d;
  bool rev;
  int64_t G;
  const float* xw;
  float* hs;

  // Batch row b at step s: the time it reaches (t = -1 past the row's length), its input
  // projection gx (G floats), its hidden state h and its output row y (H floats each).
  struct Row {
    int64_t t;
    const float* gx;
    float* h;
    float* y;
  };
  Row At(int64_t b, int64_t s) const {
    const int64_t t = StepTime(r, b, s, rev);
    if (t < 0) return {-1, nullptr, nullptr, nullptr};
    return {t, xw + (t * r.batch + b) * G, hs + b * c.hidden,
            r.y.data<float>() + ((t * c.dirs + d) * r.batch + b) * c.hidden};
  }
};

// Writes Y [seq, dirs, batch, H] and states [dirs, batch, H] in the requested layout.
void EmitOutputs(KernelContext& ctx, const RnnConfig& c, const RnnRun& r) {
  const Tensor& y = r.y;
  int64_t H = c.hidden;
  auto state_out = [&](int idx, const Tensor& s) {
    if (static_cast<int>(ctx.outputs->size()) <= idx || !ctx.node->output(idx)) return;
    if (c.layout == 0) { ctx.out(idx) = s; return; }
    Tensor& o = ctx.Alloc(idx, DType::Float32, {r.batch, c.dirs, H});
    for (int64_t b = 0; b < r.batch; ++b)
      for (int d = 0; d < c.dirs; ++d)
        CopyBytes(o.data<float>() + (b * c.dirs + d) * H, s.data<float>() + (d * r.batch + b) * H, H * sizeof(float));
  };
  if (!ctx.outputs->empty() && ctx.node->output(0)) {
    if (c.layout == 0) {
      ctx.out(0) = y;
    } else {
      Tensor& o = ctx.Alloc(0, DType::Float32, {r.batch, r.seq, c.dirs, H});
      for (int64_t t = 0; t < r.seq; ++t)
        for (int d = 0; d < c.dirs; ++d)
          for (int64_t b = 0; b < r.batch; ++b)
            CopyBytes(o.data<float>() + ((b * r.seq + t) * c.dirs + d) * H,
                        y.data<float>() + ((t * c.dirs + d) * r.batch + b) * H, H * sizeof(float));
    }
  }
  state_out(1, r.hT);
  if (r.cT.defined()) state_out(2, r.cT);
}

// The recurrent product of one step, out[b, :] = h[b, :] R^T for R [G, H], where a call per step
// costs more than the arithmetic (a few thousand multiply-adds): R transposed once per run into
// rt [H, G], then each output row summed in registers 64 columns at a time, k ascending.
// Batches of 8 rows or more go to the GEMM, and so do a single step and large R (over 2^16
// elements: a decoder step's 2048 x 512 LSTM weight), where the per-call cost is small beside
// the product and transposing R on every call would cost more than the step (6 ms vs 0.1 ms).
class StepProduct {
 public:
  StepProduct(const float* R, int64_t G, int64_t H, int64_t batch, int64_t steps)
      : R_(R), G_(G), H_(H), gemm_(batch >= 8 || steps < 2 || G * H > (int64_t{1} << 16)) {
    if (gemm_) return;
    rt_.resize(static_cast<size_t>(G * H));
    for (int64_t j = 0; j < G; ++j)
      for (int64_t k = 0; k < H; ++k) rt_[k * G + j] = R[j * H + k];
  }
  void Run(const float* h, int64_t batch, float* out) const {
    if (gemm_) {
      Sgemm(false, true, batch, G_, H_, 1.f, h, H_, R_, H_, 0.f, out, G_, 1);
      return;
    }
    constexpr int64_t kCols = 64;
    for (int64_t b = 0; b < batch; ++b) {
      const float* hb = h + b * H_;
      float* ob = out + b * G_;
      int64_t j0 = 0;
      for (; j0 + kCols <= G_; j0 += kCols) {
        float acc[kCols] = {};
        for (int64_t k = 0; k < H_; ++k) {
          const float hk = hb[k];
          const float* r = rt_.data() + k * G_ + j0;
          for (int64_t j = 0; j < kCols; ++j) acc[j] += hk * r[j];
        }
        std::memcpy(ob + j0, acc, sizeof(acc));
      }
      if (j0 < G_) {
        float acc[kCols] = {};
        const int64_t n = G_ - j0;
        for (int64_t k = 0; k < H_; ++k) {
          const float hk = hb[k];
          const float* r = rt_.data() + k * G_ + j0;
          for (int64_t j = 0; j < n; ++j) acc[j] += hk * r[j];
        }
        std::memcpy(ob + j0, acc, n * sizeof(float));
      }
    }
  }

 private:
  const float* R_;
  int64_t G_, H_;
  bool gemm_;
  std::vector<float> rt_;
};

// Every direction's input projections, n floats each, from the session's buffer pool (a
// 300-step sequence's are over the allocator's mmap threshold: fresh zeroed pages every run
// otherwise); Project writes every element.
class ProjectionScratch {
 public:
  ProjectionScratch(KernelContext& ctx, int dirs, int64_t n) : ctx_(ctx), n_(n), t_(ctx.NewTensor(DType::Float32, {dirs, n})) {}
  ~ProjectionScratch() {
    if (ctx_.buffers) ctx_.buffers->Put(t_);
  }
  float* at(int d) { return t_.data<float>() + d * n_; }

 private:
  KernelContext& ctx_;
  int64_t n_;
  Tensor t_;
};

// Runs fn(d) for every direction; a bidirectional pass runs its two directions at once on two
// threads (they share nothing but the read-only inputs; each writes its own slices of Y and the
// states).
Status ForDirections(KernelContext& ctx, int dirs, const std::function<void(int)>& fn) {
  if (dirs == 2 && ctx.threads > 1 && ctx.pool) RunParts(2, fn);
  else
    for (int d = 0; d < dirs; ++d) fn(d);
  return Status::Ok();
}

inline float Clip(float v, float clip) { return clip > 0 ? std::min(clip, std::max(-clip, v)) : v; }

Status LstmCell(KernelContext& ctx, const RnnConfig& c, RnnRun& r) {
  int64_t H = c.hidden, G = 4 * H, S = r.seq, Bt = r.batch;
  const Tensor* P = ctx.in(7);
  if (P && P->shape() != Shape{c.dirs, 3 * H}) return Error("P shape " + ir::ShapeStr(P->shape()));
  r.cT = Tensor(DType::Float32, {c.dirs, Bt, H});
  ProjectionScratch xws(ctx, c.dirs, S * Bt * G);
  return ForDirections(ctx, c.dirs, [&](int d) {
    float* xw = xws.at(d);
    std::vector<float> hr(static_cast<size_t>(Bt * G));
    std::vector<float> gates(static_cast<size_t>(G)), hc(static_cast<size_t>(H));
    bool rev = c.reverse_only || d == 1;
    Act f = c.acts[d * 3], g = c.acts[d * 3 + 1], h = c.acts[d * 3 + 2];
    const StepProduct rstep(r.R->data<float>() + d * G * H, G, H, Bt, r.seq);
    Project(ctx, r, d, G, true, xw);
    float* hs = InitState(r.hT, r.h0, d, Bt * H);
    float* cs = InitState(r.cT, r.c0, d, Bt * H);
    const Direction dir{c, r, d, rev, G, xw, hs};
    const float* pi = P ? P->data<float>() + d * 3 * H : nullptr;
    const float* po = pi ? pi + H : nullptr;
    const float* pf = pi ? pi + 2 * H : nullptr;
    for (int64_t s = 0; s < S; ++s) {
      rstep.Run(hs, Bt, hr.data());
      for (int64_t b = 0; b < Bt; ++b) {
        const Direction::Row row = dir.At(b, s);
        if (row.t < 0) continue;
        const float* gh = hr.data() + b * G;
        float* cb = cs + b * H;
        // gate pre-activations (iofc) with peepholes on i, f from c_prev
        for (int64_t j = 0; j < G; ++j) gates[j] = row.gx[j] + gh[j];
        if (pi)
          for (int64_t j = 0; j < H; ++j) {
            gates[j] += pi[j] * cb[j];
            gates[2 * H + j] += pf[j] * cb[j];
          }
        ActVec(f, gates.data(), H, c.clip);           // i
        ActVec(f, gates.data() + 2 * H, H, c.clip);   // f
        ActVec(g, gates.data() + 3 * H, H, c.clip);   // c
        for (int64_t j = 0; j < H; ++j) cb[j] = gates[2 * H + j] * cb[j] + gates[j] * gates[3 * H + j];
        if (po)
          for (int64_t j = 0; j < H; ++j) gates[H + j] += po[j] * cb[j];
        ActVec(f, gates.data() + H, H, c.clip);       // o
        for (int64_t j = 0; j < H; ++j) hc[j] = cb[j];
        ActVec(h, hc.data(), H, 0.f);
        for (int64_t j = 0; j < H; ++j) {
          row.h[j] = gates[H + j] * hc[j];
          row.y[j] = row.h[j];
        }
      }
    }
  });
}

Status GruCell(KernelContext& ctx, const RnnConfig& c, RnnRun& r) {
  int64_t H = c.hidden, G = 3 * H, S = r.seq, Bt = r.batch;
  ProjectionScratch xws(ctx, c.dirs, S * Bt * G);
  return ForDirections(ctx, c.dirs, [&](int d) {
    float* xw = xws.at(d);
    std::vector<float> hr(static_cast<size_t>(Bt * G)),
        rh(static_cast<size_t>(Bt * H)), rhr(static_cast<size_t>(Bt * H)), zrh(static_cast<size_t>(3 * H));
    bool rev = c.reverse_only || d == 1;
    Act f = c.acts[d * 2], g = c.acts[d * 2 + 1];
    const float* rr = r.R->data<float>() + d * G * H;
    const float* rb = r.B ? r.B->data<float>() + d * 2 * G + G : nullptr;
    const StepProduct rstep(rr, G, H, Bt, S);
    Project(ctx, r, d, G, false, xw);
    float* hs = InitState(r.hT, r.h0, d, Bt * H);
    for (int64_t s = 0; s < S; ++s) {
      rstep.Run(hs, Bt, hr.data());
      if (rb)
        for (int64_t b = 0; b < Bt; ++b)
          for (int64_t j = 0; j < G; ++j) hr[b * G + j] += rb[j];
      if (!c.lbr) {
        // (r * h_prev) @ Rh^T needs r first.
        for (int64_t b = 0; b < Bt; ++b) {
          int64_t t = StepTime(r, b, s, rev);
          if (t < 0) { std::fill(rh.begin() + b * H, rh.begin() + (b + 1) * H, 0.f); continue; }
          const float* gx = xw + (t * Bt + b) * G;
          for (int64_t j = 0; j < H; ++j)
            rh[b * H + j] = Apply(f, Clip(gx[H + j] + hr[b * G + H + j], c.clip)) * hs[b * H + j];
        }
        Sgemm(false, true, Bt, H, H, 1.f, rh.data(), H, rr + 2 * H * H, H, 0.f, rhr.data(), H, 1);
      }
      for (int64_t b = 0; b < Bt; ++b) {
        int64_t t = StepTime(r, b, s, rev);
        if (t < 0) continue;
        const float* gx = xw + (t * Bt + b) * G;
        const float* gh = hr.data() + b * G;
        float* hb = hs + b * H;
        float* yb = r.y.data<float>() + ((t * c.dirs + d) * Bt + b) * H;
        // z and r, then the candidate, each as one vector activation over H.
        float* z = zrh.data();
        float* rv = z + H;
        float* hh = z + 2 * H;
        for (int64_t j = 0; j < 2 * H; ++j) z[j] = gx[j] + gh[j];
        ActVec(f, z, 2 * H, c.clip);
        for (int64_t j = 0; j < H; ++j)
          hh[j] = c.lbr ? gx[2 * H + j] + rv[j] * gh[2 * H + j]
                        : gx[2 * H + j] + rhr[b * H + j] + (rb ? rb[2 * H + j] : 0.f);
        ActVec(g, hh, H, c.clip);
        for (int64_t j = 0; j < H; ++j) {
          float h_new = (1.f - z[j]) * hh[j] + z[j] * hb[j];
          hb[j] = h_new;
          yb[j] = h_new;
        }
      }
    }
  });
}

// The simple RNN: h_t = f(x_t W^T + h_{t-1} R^T + Wb + Rb), f Tanh by default.
Status SimpleRnnCell(KernelContext& ctx, const RnnConfig& c, RnnRun& r) {
  int64_t H = c.hidden, S = r.seq, Bt = r.batch;
  ProjectionScratch xws(ctx, c.dirs, S * Bt * H);
  return ForDirections(ctx, c.dirs, [&](int d) {
    float* xw = xws.at(d);
    std::vector<float> hr(static_cast<size_t>(Bt * H));
    bool rev = c.reverse_only || d == 1;
    const StepProduct rstep(r.R->data<float>() + d * H * H, H, H, Bt, S);
    Project(ctx, r, d, H, true, xw);
    float* hs = InitState(r.hT, r.h0, d, Bt * H);
    const Direction dir{c, r, d, rev, H, xw, hs};
    for (int64_t s = 0; s < S; ++s) {
      rstep.Run(hs, Bt, hr.data());
      for (int64_t b = 0; b < Bt; ++b) {
        const Direction::Row row = dir.At(b, s);
        if (row.t < 0) continue;
        for (int64_t j = 0; j < H; ++j) row.h[j] = row.gx[j] + hr[b * H + j];
        ActVec(c.acts[d], row.h, H, c.clip);
        CopyBytes(row.y, row.h, H * sizeof(float));
      }
    }
  });
}

// One cell type's pass over every direction: fills r.y and r.hT (and r.cT for LSTM).
using CellFn = Status (*)(KernelContext& ctx, const RnnConfig& c, RnnRun& r);

// Every RNN-family kernel: Prepare, the cell's pass, EmitOutputs.
class RnnKernel : public Kernel {
 public:
  RnnKernel(RnnConfig c, int gates, CellFn cell) : c_(std::move(c)), gates_(gates), cell_(cell) {}
  Status Run(KernelContext& ctx) override {
    RnnRun r;
    ASRC_RETURN_IF_ERROR(Prepare(ctx, c_, gates_, r));
    ASRC_RETURN_IF_ERROR(cell_(ctx, c_, r));
    EmitOutputs(ctx, c_, r);
    return Status::Ok();
  }

 private:
  RnnConfig c_;
  int gates_;
  CellFn cell_;
};

}  // namespace

void RegisterRnnKernels(KernelRegistry& r) {
  auto reg = [&r](const char* op, int gates, std::vector<Act> defaults, CellFn cell) {
    r.Register("", op, DType::Undefined, [=](const KernelInit& i) -> KernelPtr {
      ASRC_ASSIGN_OR_RETURN(RnnConfig c, ParseConfig(*i.node, static_cast<int>(defaults.size()), defaults));
      if (c.hidden <= 0) return Error("hidden_size must be set");
      return Make<RnnKernel>(std::move(c), gates, cell);
    });
  };
  reg("RNN", 1, {Act::Tanh}, SimpleRnnCell);
  reg("LSTM", 4, {Act::Sigmoid, Act::Tanh, Act::Tanh}, LstmCell);
  reg("GRU", 3, {Act::Sigmoid, Act::Tanh}, GruCell);
}

}  // namespace asrc::runtime

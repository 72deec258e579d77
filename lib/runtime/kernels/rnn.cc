// RNN, LSTM and GRU (ONNX semantics: gate orders iofc / zrh, directions forward/reverse/bidirectional,
// sequence_lens, initial states, peepholes, clip, layout 0/1, GRU linear_before_reset).
// The input projection of all time steps is one GEMM; each step does one GEMM on the state.
#include <cmath>

#include "runtime/gemm.h"
#include "runtime/kernels/util.h"
#include "runtime/kernels/vmath.h"

namespace asrc::runtime {
namespace {

using namespace ku;
using KernelPtr = Result<std::unique_ptr<Kernel>>;

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

// Shapes and the seq-major views both cells need.
struct RnnRun {
  int64_t seq = 0, batch = 0, in = 0;
  Tensor x;                    // [seq, batch, in] float
  std::vector<int64_t> lens;   // per batch
  Tensor h0, c0;               // [dirs, batch, H] or undefined
};

Status Prepare(KernelContext& ctx, const RnnConfig& c, int gates, RnnRun& r) {
  const Tensor& x0 = *ctx.in(0);
  if (x0.dtype() != DType::Float32) return DTypeError(ctx.node->op_type.c_str(), x0.dtype());
  if (x0.rank() != 3) return Error("X must be 3-D");
  const Tensor& w = *ctx.in(1);
  if (w.rank() != 3 || w.dim(0) != c.dirs || w.dim(1) != gates * c.hidden)
    return Error("W shape " + ir::shape_str(w.shape()) + " does not match hidden_size/direction");
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
        std::memcpy(r.x.data<float>() + (t * r.batch + b) * x0.dim(2), x0.data<float>() + (b * r.seq + t) * x0.dim(2),
                    x0.dim(2) * sizeof(float));
  }
  r.in = x0.dim(2);
  if (w.dim(2) != r.in) return Error("W input size differs from X");
  r.lens.assign(r.batch, r.seq);
  if (ctx.in(4) && ctx.in(4)->numel() > 0) {
    ASRC_ASSIGN_OR_RETURN(r.lens, Int64s(*ctx.in(4)));
    if (static_cast<int64_t>(r.lens.size()) != r.batch) return Error("sequence_lens size differs from batch");
    for (int64_t l : r.lens)
      if (l < 0 || l > r.seq) return Error("sequence_lens value out of range");
  }
  auto state = [&](int idx, Tensor& out) -> Status {
    if (!ctx.in(idx)) return Status::Ok();
    const Tensor& s = *ctx.in(idx);
    if (c.layout == 0) {
      if (s.shape() != Shape{c.dirs, r.batch, c.hidden}) return Error("initial state shape " + ir::shape_str(s.shape()));
      out = s;
    } else {
      if (s.shape() != Shape{r.batch, c.dirs, c.hidden}) return Error("initial state shape " + ir::shape_str(s.shape()));
      out = Tensor(DType::Float32, {c.dirs, r.batch, c.hidden});
      for (int64_t b = 0; b < r.batch; ++b)
        for (int d = 0; d < c.dirs; ++d)
          std::memcpy(out.data<float>() + (d * r.batch + b) * c.hidden, s.data<float>() + (b * c.dirs + d) * c.hidden, c.hidden * sizeof(float));
    }
    return Status::Ok();
  };
  ASRC_RETURN_IF_ERROR(state(5, r.h0));
  if (ctx.node->op_type == "LSTM") ASRC_RETURN_IF_ERROR(state(6, r.c0));
  return Status::Ok();
}

// Writes Y [seq, dirs, batch, H] and states [dirs, batch, H] in the requested layout.
void EmitOutputs(KernelContext& ctx, const RnnConfig& c, const RnnRun& r, const Tensor& y,
                 const Tensor& hT, const Tensor* cT) {
  int64_t H = c.hidden;
  auto state_out = [&](int idx, const Tensor& s) {
    if (static_cast<int>(ctx.outputs->size()) <= idx || !ctx.node->output(idx)) return;
    if (c.layout == 0) { ctx.out(idx) = s; return; }
    Tensor& o = ctx.Alloc(idx, DType::Float32, {r.batch, c.dirs, H});
    for (int64_t b = 0; b < r.batch; ++b)
      for (int d = 0; d < c.dirs; ++d)
        std::memcpy(o.data<float>() + (b * c.dirs + d) * H, s.data<float>() + (d * r.batch + b) * H, H * sizeof(float));
  };
  if (!ctx.outputs->empty() && ctx.node->output(0)) {
    if (c.layout == 0) {
      ctx.out(0) = y;
    } else {
      Tensor& o = ctx.Alloc(0, DType::Float32, {r.batch, r.seq, c.dirs, H});
      for (int64_t t = 0; t < r.seq; ++t)
        for (int d = 0; d < c.dirs; ++d)
          for (int64_t b = 0; b < r.batch; ++b)
            std::memcpy(o.data<float>() + ((b * r.seq + t) * c.dirs + d) * H,
                        y.data<float>() + ((t * c.dirs + d) * r.batch + b) * H, H * sizeof(float));
    }
  }
  state_out(1, hT);
  if (cT) state_out(2, *cT);
}

inline float Clip(float v, float clip) { return clip > 0 ? std::min(clip, std::max(-clip, v)) : v; }

class LstmKernel : public Kernel {
 public:
  explicit LstmKernel(RnnConfig c) : c_(std::move(c)) {}
  Status Run(KernelContext& ctx) override {
    RnnRun r;
    ASRC_RETURN_IF_ERROR(Prepare(ctx, c_, 4, r));
    int64_t H = c_.hidden, G = 4 * H, S = r.seq, Bt = r.batch;
    const Tensor& W = *ctx.in(1);
    const Tensor& R = *ctx.in(2);
    if (R.shape() != Shape{c_.dirs, G, H}) return Error("R shape " + ir::shape_str(R.shape()));
    const Tensor* B = ctx.in(3);
    if (B && B->shape() != Shape{c_.dirs, 2 * G}) return Error("B shape " + ir::shape_str(B->shape()));
    const Tensor* P = ctx.in(7);
    if (P && P->shape() != Shape{c_.dirs, 3 * H}) return Error("P shape " + ir::shape_str(P->shape()));
    Tensor y(DType::Float32, {S, c_.dirs, Bt, H});
    Tensor hT(DType::Float32, {c_.dirs, Bt, H}), cT(DType::Float32, {c_.dirs, Bt, H});
    std::vector<float> xw(static_cast<size_t>(S * Bt * G)), hr(static_cast<size_t>(Bt * G));
    std::vector<float> gates(static_cast<size_t>(G)), hc(static_cast<size_t>(H));
    for (int d = 0; d < c_.dirs; ++d) {
      bool rev = c_.reverse_only || d == 1;
      Act f = c_.acts[d * 3], g = c_.acts[d * 3 + 1], h = c_.acts[d * 3 + 2];
      const float* w = W.data<float>() + d * G * r.in;
      const float* rr = R.data<float>() + d * G * H;
      if (S * Bt > 0) Sgemm(false, true, S * Bt, G, r.in, 1.f, r.x.data<float>(), r.in, w, r.in, 0.f, xw.data(), G, ctx.threads);
      if (B) {
        const float* wb = B->data<float>() + d * 2 * G;
        for (int64_t i = 0; i < S * Bt; ++i)
          for (int64_t j = 0; j < G; ++j) xw[i * G + j] += wb[j] + wb[G + j];
      }
      float* hs = hT.data<float>() + d * Bt * H;
      float* cs = cT.data<float>() + d * Bt * H;
      if (r.h0.defined()) std::memcpy(hs, r.h0.data<float>() + d * Bt * H, Bt * H * sizeof(float));
      if (r.c0.defined()) std::memcpy(cs, r.c0.data<float>() + d * Bt * H, Bt * H * sizeof(float));
      const float* pi = P ? P->data<float>() + d * 3 * H : nullptr;
      const float* po = pi ? pi + H : nullptr;
      const float* pf = pi ? pi + 2 * H : nullptr;
      for (int64_t s = 0; s < S; ++s) {
        Sgemm(false, true, Bt, G, H, 1.f, hs, H, rr, H, 0.f, hr.data(), G, 1);
        for (int64_t b = 0; b < Bt; ++b) {
          if (s >= r.lens[b]) continue;
          int64_t t = rev ? r.lens[b] - 1 - s : s;
          const float* gx = xw.data() + (t * Bt + b) * G;
          const float* gh = hr.data() + b * G;
          float* hb = hs + b * H;
          float* cb = cs + b * H;
          float* yb = y.data<float>() + ((t * c_.dirs + d) * Bt + b) * H;
          // gate pre-activations (iofc) with peepholes on i, f from c_prev
          for (int64_t j = 0; j < G; ++j) gates[j] = gx[j] + gh[j];
          if (pi)
            for (int64_t j = 0; j < H; ++j) {
              gates[j] += pi[j] * cb[j];
              gates[2 * H + j] += pf[j] * cb[j];
            }
          ActVec(f, gates.data(), H, c_.clip);           // i
          ActVec(f, gates.data() + 2 * H, H, c_.clip);   // f
          ActVec(g, gates.data() + 3 * H, H, c_.clip);   // c
          for (int64_t j = 0; j < H; ++j) cb[j] = gates[2 * H + j] * cb[j] + gates[j] * gates[3 * H + j];
          if (po)
            for (int64_t j = 0; j < H; ++j) gates[H + j] += po[j] * cb[j];
          ActVec(f, gates.data() + H, H, c_.clip);       // o
          for (int64_t j = 0; j < H; ++j) hc[j] = cb[j];
          ActVec(h, hc.data(), H, 0.f);
          for (int64_t j = 0; j < H; ++j) {
            hb[j] = gates[H + j] * hc[j];
            yb[j] = hb[j];
          }
        }
      }
    }
    EmitOutputs(ctx, c_, r, y, hT, &cT);
    return Status::Ok();
  }

 private:
  RnnConfig c_;
};

class GruKernel : public Kernel {
 public:
  explicit GruKernel(RnnConfig c) : c_(std::move(c)) {}
  Status Run(KernelContext& ctx) override {
    RnnRun r;
    ASRC_RETURN_IF_ERROR(Prepare(ctx, c_, 3, r));
    int64_t H = c_.hidden, G = 3 * H, S = r.seq, Bt = r.batch;
    const Tensor& W = *ctx.in(1);
    const Tensor& R = *ctx.in(2);
    if (R.shape() != Shape{c_.dirs, G, H}) return Error("R shape " + ir::shape_str(R.shape()));
    const Tensor* B = ctx.in(3);
    if (B && B->shape() != Shape{c_.dirs, 2 * G}) return Error("B shape " + ir::shape_str(B->shape()));
    Tensor y(DType::Float32, {S, c_.dirs, Bt, H});
    Tensor hT(DType::Float32, {c_.dirs, Bt, H});
    std::vector<float> xw(static_cast<size_t>(S * Bt * G)), hr(static_cast<size_t>(Bt * G)),
        rh(static_cast<size_t>(Bt * H)), rhr(static_cast<size_t>(Bt * H));
    for (int d = 0; d < c_.dirs; ++d) {
      bool rev = c_.reverse_only || d == 1;
      Act f = c_.acts[d * 2], g = c_.acts[d * 2 + 1];
      const float* w = W.data<float>() + d * G * r.in;
      const float* rr = R.data<float>() + d * G * H;
      const float* wb = B ? B->data<float>() + d * 2 * G : nullptr;
      const float* rb = wb ? wb + G : nullptr;
      if (S * Bt > 0) Sgemm(false, true, S * Bt, G, r.in, 1.f, r.x.data<float>(), r.in, w, r.in, 0.f, xw.data(), G, ctx.threads);
      if (wb)
        for (int64_t i = 0; i < S * Bt; ++i)
          for (int64_t j = 0; j < G; ++j) xw[i * G + j] += wb[j];
      float* hs = hT.data<float>() + d * Bt * H;
      if (r.h0.defined()) std::memcpy(hs, r.h0.data<float>() + d * Bt * H, Bt * H * sizeof(float));
      for (int64_t s = 0; s < S; ++s) {
        Sgemm(false, true, Bt, G, H, 1.f, hs, H, rr, H, 0.f, hr.data(), G, 1);
        if (rb)
          for (int64_t b = 0; b < Bt; ++b)
            for (int64_t j = 0; j < G; ++j) hr[b * G + j] += rb[j];
        if (!c_.lbr) {
          // (r * h_prev) @ Rh^T needs r first.
          for (int64_t b = 0; b < Bt; ++b) {
            if (s >= r.lens[b]) { std::fill(rh.begin() + b * H, rh.begin() + (b + 1) * H, 0.f); continue; }
            int64_t t = rev ? r.lens[b] - 1 - s : s;
            const float* gx = xw.data() + (t * Bt + b) * G;
            for (int64_t j = 0; j < H; ++j)
              rh[b * H + j] = Apply(f, Clip(gx[H + j] + hr[b * G + H + j], c_.clip)) * hs[b * H + j];
          }
          Sgemm(false, true, Bt, H, H, 1.f, rh.data(), H, rr + 2 * H * H, H, 0.f, rhr.data(), H, 1);
        }
        for (int64_t b = 0; b < Bt; ++b) {
          if (s >= r.lens[b]) continue;
          int64_t t = rev ? r.lens[b] - 1 - s : s;
          const float* gx = xw.data() + (t * Bt + b) * G;
          const float* gh = hr.data() + b * G;
          float* hb = hs + b * H;
          float* yb = y.data<float>() + ((t * c_.dirs + d) * Bt + b) * H;
          for (int64_t j = 0; j < H; ++j) {
            float z = Apply(f, Clip(gx[j] + gh[j], c_.clip));
            float rv = Apply(f, Clip(gx[H + j] + gh[H + j], c_.clip));
            float pre = c_.lbr ? gx[2 * H + j] + rv * gh[2 * H + j]
                               : gx[2 * H + j] + rhr[b * H + j] + (rb ? rb[2 * H + j] : 0.f);
            float hh = Apply(g, Clip(pre, c_.clip));
            float h_new = (1.f - z) * hh + z * hb[j];
            hb[j] = h_new;
            yb[j] = h_new;
          }
        }
      }
    }
    EmitOutputs(ctx, c_, r, y, hT, nullptr);
    return Status::Ok();
  }

 private:
  RnnConfig c_;
};

// The simple RNN: h_t = f(x_t W^T + h_{t-1} R^T + Wb + Rb), f Tanh by default.
class SimpleRnnKernel : public Kernel {
 public:
  explicit SimpleRnnKernel(RnnConfig c) : c_(std::move(c)) {}
  Status Run(KernelContext& ctx) override {
    RnnRun r;
    ASRC_RETURN_IF_ERROR(Prepare(ctx, c_, 1, r));
    int64_t H = c_.hidden, S = r.seq, Bt = r.batch;
    const Tensor& W = *ctx.in(1);
    const Tensor& R = *ctx.in(2);
    if (R.shape() != Shape{c_.dirs, H, H}) return Error("R shape " + ir::shape_str(R.shape()));
    const Tensor* B = ctx.in(3);
    if (B && B->shape() != Shape{c_.dirs, 2 * H}) return Error("B shape " + ir::shape_str(B->shape()));
    Tensor y(DType::Float32, {S, c_.dirs, Bt, H});
    Tensor hT(DType::Float32, {c_.dirs, Bt, H});
    std::vector<float> xw(static_cast<size_t>(S * Bt * H)), hr(static_cast<size_t>(Bt * H));
    for (int d = 0; d < c_.dirs; ++d) {
      bool rev = c_.reverse_only || d == 1;
      const float* w = W.data<float>() + d * H * r.in;
      const float* rr = R.data<float>() + d * H * H;
      if (S * Bt > 0) Sgemm(false, true, S * Bt, H, r.in, 1.f, r.x.data<float>(), r.in, w, r.in, 0.f, xw.data(), H, ctx.threads);
      if (B) {
        const float* wb = B->data<float>() + d * 2 * H;
        for (int64_t i = 0; i < S * Bt; ++i)
          for (int64_t j = 0; j < H; ++j) xw[i * H + j] += wb[j] + wb[H + j];
      }
      float* hs = hT.data<float>() + d * Bt * H;
      if (r.h0.defined()) std::memcpy(hs, r.h0.data<float>() + d * Bt * H, Bt * H * sizeof(float));
      for (int64_t s = 0; s < S; ++s) {
        Sgemm(false, true, Bt, H, H, 1.f, hs, H, rr, H, 0.f, hr.data(), H, 1);
        for (int64_t b = 0; b < Bt; ++b) {
          if (s >= r.lens[b]) continue;
          int64_t t = rev ? r.lens[b] - 1 - s : s;
          float* hb = hs + b * H;
          float* yb = y.data<float>() + ((t * c_.dirs + d) * Bt + b) * H;
          for (int64_t j = 0; j < H; ++j) hb[j] = xw[(t * Bt + b) * H + j] + hr[b * H + j];
          ActVec(c_.acts[d], hb, H, c_.clip);
          std::memcpy(yb, hb, H * sizeof(float));
        }
      }
    }
    EmitOutputs(ctx, c_, r, y, hT, nullptr);
    return Status::Ok();
  }

 private:
  RnnConfig c_;
};

}  // namespace

void RegisterRnnKernels(KernelRegistry& r) {
  r.Register("", "RNN", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(RnnConfig c, ParseConfig(*i.node, 1, {Act::Tanh}));
    if (c.hidden <= 0) return Error("hidden_size must be set");
    return std::unique_ptr<Kernel>(std::make_unique<SimpleRnnKernel>(std::move(c)));
  });
  r.Register("", "LSTM", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(RnnConfig c, ParseConfig(*i.node, 3, {Act::Sigmoid, Act::Tanh, Act::Tanh}));
    if (c.hidden <= 0) return Error("hidden_size must be set");
    return std::unique_ptr<Kernel>(std::make_unique<LstmKernel>(std::move(c)));
  });
  r.Register("", "GRU", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(RnnConfig c, ParseConfig(*i.node, 2, {Act::Sigmoid, Act::Tanh}));
    if (c.hidden <= 0) return Error("hidden_size must be set");
    return std::unique_ptr<Kernel>(std::make_unique<GruKernel>(std::move(c)));
  });
}

}  // namespace asrc::runtime

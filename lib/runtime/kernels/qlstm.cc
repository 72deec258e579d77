// com.microsoft DynamicQuantizeLSTM (ONNX Runtime's quantizer writes it for LSTM): ONNX LSTM
// (gate order iofc, directions, sequence_lens, initial states, peepholes, clip; the default
// Sigmoid/Tanh/Tanh activations) with 8-bit weights stored transposed, W [dirs, input, 4H] and
// R [dirs, H, 4H], with scales and zero points per direction ([dirs]) or per gate column
// ([dirs, 4H]). As ONNX Runtime runs it: the whole input sequence (per direction) and each step's
// hidden state [batch, H] are quantized dynamically to uint8 with DynamicQuantizeLinear's
// parameters, multiplied with the weights in exact integer arithmetic and scaled back to float;
// the gate arithmetic is float. Constant weights are packed once, at plan time.
#include <cmath>
#include <cstring>

#include "runtime/gemm.h"
#include "runtime/kernels/quant.h"
#include "runtime/kernels/util.h"
#include "runtime/kernels/vmath.h"

namespace asrc::runtime {
namespace {

using namespace ku;
using namespace qk;

// One direction's packed weight [K, 4H] and the per-column float scale of its products.
struct QWeight {
  PackedIgemmB packed;
  std::vector<float> scale;  // 4H entries
};

// Packs W or R (input w_in, scale w_in + 7 or + 8 and zero point one after) for every direction.
Result<std::vector<QWeight>> PackWeights(const Tensor& w, const Tensor& scale, const Tensor& zp, int dirs,
                                         int64_t K, int64_t G, const char* name) {
  const std::string what = std::string("DynamicQuantizeLSTM: ") + name;
  if (!IsQuant8(w.dtype())) return Error(what + " is " + ir::DTypeName(w.dtype()) + "; supported: uint8, int8");
  if (w.shape() != Shape{dirs, K, G})
    return Error(what + " shape " + ir::ShapeStr(w.shape()) + ", expected " + ir::ShapeStr({dirs, K, G}));
  if (zp.dtype() != w.dtype())
    return Error(what + " zero point is " + ir::DTypeName(zp.dtype()) + ", the weight " + ir::DTypeName(w.dtype()));
  ASRC_ASSIGN_OR_RETURN(std::vector<float> s, FloatValues(scale, (what + " scale").c_str()));
  ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> z, ZeroPoints(&zp, 1, "zero point"));
  const bool per_col = static_cast<int64_t>(s.size()) == dirs * G;
  if ((!per_col && static_cast<int64_t>(s.size()) != dirs) || z.size() != s.size())
    return Error(what + " scale and zero point must have [num_directions] or [num_directions, 4*hidden_size] entries, got " +
                 std::to_string(s.size()) + " and " + std::to_string(z.size()));
  std::vector<QWeight> out(static_cast<size_t>(dirs));
  for (int d = 0; d < dirs; ++d) {
    const int32_t* zd = per_col ? z.data() + d * G : z.data() + d;
    out[d].packed = PackIgemmB(K, G, w.raw() + d * K * G, w.dtype() == DType::Int8, zd, per_col);
    out[d].scale.assign(static_cast<size_t>(G), s[d]);
    if (per_col) out[d].scale.assign(s.begin() + d * G, s.begin() + (d + 1) * G);
  }
  return out;
}

// y[rows, G] (+)= dynamic_quantize(a[rows, K]) x W, scaled to float (accumulate: y += product).
void QuantProduct(const float* a, int64_t rows, int64_t K, const QWeight& w, bool accumulate, KernelContext& ctx,
                  std::vector<uint8_t>& aq, std::vector<int32_t>& acc, float* y) {
  const int64_t G = w.packed.N;
  aq.resize(static_cast<size_t>(rows * K));
  acc.resize(static_cast<size_t>(rows * G));
  float a_scale;
  uint8_t a_zp;
  DynamicQuantizeU8(a, rows * K, ctx.threads > 1 ? ctx.pool : nullptr, &a_scale, &a_zp, aq.data());
  IgemmPacked(rows, aq.data(), false, a_zp, w.packed, acc.data(), G, ctx.threads);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < G; ++j) {
      const float v = static_cast<float>(acc[r * G + j]) * (a_scale * w.scale[j]);
      y[r * G + j] = accumulate ? y[r * G + j] + v : v;
    }
}

inline float Clip(float v, float clip) { return clip > 0 ? std::min(clip, std::max(-clip, v)) : v; }

class DynamicQuantizeLstmKernel : public Kernel {
 public:
  Status Init(const KernelInit& init) {
    const ir::Node& n = *init.node;
    const std::string dir = n.attr_string("direction", "forward");
    if (dir == "bidirectional") dirs_ = 2;
    else if (dir == "reverse") reverse_ = true;
    else if (dir != "forward") return Error("DynamicQuantizeLSTM: unsupported direction '" + dir + "'");
    hidden_ = n.attr_int("hidden_size", 0);
    if (hidden_ <= 0) return Error("DynamicQuantizeLSTM: hidden_size must be set");
    clip_ = n.attr_float("clip", 0.f);
    if (n.attr_int("input_forget", 0) != 0) return Error("DynamicQuantizeLSTM: input_forget=1 is not supported");
    if (const ir::Attribute* a = n.attr("activations"); a && !a->strings.empty()) {
      for (size_t i = 0; i < a->strings.size(); ++i)
        if (a->strings[i] != (i % 3 == 0 ? "Sigmoid" : "Tanh"))
          return Error("DynamicQuantizeLSTM: activation '" + a->strings[i] +
                       "' is not supported (supported: the defaults Sigmoid, Tanh, Tanh)");
    }
    for (int i : {1, 2, 8, 9, 10, 11})
      if (!HasIn(init.node, i)) return Error("DynamicQuantizeLSTM: input " + std::to_string(i) + " is required");
    const Tensor *w = ConstIn(init, 1), *r = ConstIn(init, 2), *ws = ConstIn(init, 8), *wz = ConstIn(init, 9);
    const Tensor *rs = ConstIn(init, 10), *rz = ConstIn(init, 11);
    if (w && r && ws && wz && rs && rz) {
      if (w->rank() != 3) return Error("DynamicQuantizeLSTM: W must be 3-D, got " + ir::ShapeStr(w->shape()));
      ASRC_ASSIGN_OR_RETURN(w_, PackWeights(*w, *ws, *wz, dirs_, w->dim(1), 4 * hidden_, "W"));
      ASRC_ASSIGN_OR_RETURN(r_, PackWeights(*r, *rs, *rz, dirs_, hidden_, 4 * hidden_, "R"));
    }
    return Status::Ok();
  }

  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    if (x.dtype() != DType::Float32 || x.rank() != 3)
      return Error("DynamicQuantizeLSTM: X must be float32 [seq, batch, input], got " +
                   std::string(ir::DTypeName(x.dtype())) + " " + ir::ShapeStr(x.shape()));
    const int64_t S = x.dim(0), Bt = x.dim(1), I = x.dim(2), H = hidden_, G = 4 * H;
    std::vector<QWeight> wl, rl;
    if (w_.empty()) {
      ASRC_ASSIGN_OR_RETURN(wl, PackWeights(*ctx.in(1), *ctx.in(8), *ctx.in(9), dirs_, I, G, "W"));
      ASRC_ASSIGN_OR_RETURN(rl, PackWeights(*ctx.in(2), *ctx.in(10), *ctx.in(11), dirs_, H, G, "R"));
    }
    const std::vector<QWeight>& W = w_.empty() ? wl : w_;
    const std::vector<QWeight>& R = r_.empty() ? rl : r_;
    if (W[0].packed.K != I)
      return Error("DynamicQuantizeLSTM: W input size " + std::to_string(W[0].packed.K) + " differs from X's " + std::to_string(I));
    ASRC_ASSIGN_OR_RETURN(const Tensor* B, Optional(ctx, 3, {dirs_, 2 * G}, "B"));
    ASRC_ASSIGN_OR_RETURN(const Tensor* h0, Optional(ctx, 5, {dirs_, Bt, H}, "initial_h"));
    ASRC_ASSIGN_OR_RETURN(const Tensor* c0, Optional(ctx, 6, {dirs_, Bt, H}, "initial_c"));
    ASRC_ASSIGN_OR_RETURN(const Tensor* P, Optional(ctx, 7, {dirs_, 3 * H}, "P"));
    std::vector<int64_t> lens(static_cast<size_t>(Bt), S);
    if (const Tensor* sl = ctx.in(4); sl && sl->numel() > 0) {
      ASRC_ASSIGN_OR_RETURN(lens, Int64s(*sl));
      if (static_cast<int64_t>(lens.size()) != Bt) return Error("DynamicQuantizeLSTM: sequence_lens size differs from batch");
      for (int64_t l : lens)
        if (l < 0 || l > S) return Error("DynamicQuantizeLSTM: sequence_lens value " + std::to_string(l) + " out of range");
    }
    Tensor y(DType::Float32, {S, dirs_, Bt, H}), hT(DType::Float32, {dirs_, Bt, H}), cT(DType::Float32, {dirs_, Bt, H});
    SetBytes(y.raw(), 0, y.nbytes());
    SetBytes(hT.raw(), 0, hT.nbytes());
    SetBytes(cT.raw(), 0, cT.nbytes());
    if (h0) CopyBytes(hT.raw(), h0->raw(), hT.nbytes());
    if (c0) CopyBytes(cT.raw(), c0->raw(), cT.nbytes());
    std::vector<float> xw(static_cast<size_t>(S * Bt * G)), hr(static_cast<size_t>(Bt * G)), gates(static_cast<size_t>(G));
    std::vector<float> bias(static_cast<size_t>(G), 0.f);
    std::vector<uint8_t> aq;
    std::vector<int32_t> acc;
    for (int d = 0; d < dirs_; ++d) {
      const bool rev = reverse_ || d == 1;
      if (B)
        for (int64_t j = 0; j < G; ++j) bias[j] = B->data<float>()[d * 2 * G + j] + B->data<float>()[d * 2 * G + G + j];
      if (S * Bt > 0) QuantProduct(x.data<float>(), S * Bt, I, W[d], false, ctx, aq, acc, xw.data());
      float* hs = hT.data<float>() + d * Bt * H;
      float* cs = cT.data<float>() + d * Bt * H;
      const float* pi = P ? P->data<float>() + d * 3 * H : nullptr;
      for (int64_t s = 0; s < S; ++s) {
        QuantProduct(hs, Bt, H, R[d], false, ctx, aq, acc, hr.data());
        for (int64_t b = 0; b < Bt; ++b) {
          if (s >= lens[b]) continue;
          const int64_t t = rev ? lens[b] - 1 - s : s;
          Step(xw.data() + (t * Bt + b) * G, hr.data() + b * G, bias.data(), pi, gates.data(), hs + b * H, cs + b * H);
          CopyBytes(y.data<float>() + ((t * dirs_ + d) * Bt + b) * H, hs + b * H, H * sizeof(float));
        }
      }
    }
    if (!ctx.outputs->empty() && ctx.node->output(0)) ctx.out(0) = y;
    if (ctx.outputs->size() > 1 && ctx.node->output(1)) ctx.out(1) = hT;
    if (ctx.outputs->size() > 2 && ctx.node->output(2)) ctx.out(2) = cT;
    return Status::Ok();
  }

 private:
  // Input i when given (non-empty) with shape `want`; nullptr when omitted.
  static Result<const Tensor*> Optional(const KernelContext& ctx, int i, const Shape& want, const char* what) {
    const Tensor* t = ctx.in(i);
    if (!t || t->numel() == 0) return static_cast<const Tensor*>(nullptr);
    if (t->dtype() != DType::Float32 || t->shape() != want)
      return Error(std::string("DynamicQuantizeLSTM: ") + what + " must be float32 " + ir::ShapeStr(want) + ", got " +
                   ir::DTypeName(t->dtype()) + " " + ir::ShapeStr(t->shape()));
    return t;
  }

  // One batch row's step: gate pre-activations xw + hr + bias (iofc), peepholes on i and f from
  // c_prev and on o from c_new; h and c updated in place.
  void Step(const float* gx, const float* gh, const float* bias, const float* pi, float* g, float* h, float* c) const {
    const int64_t H = hidden_;
    for (int64_t j = 0; j < 4 * H; ++j) g[j] = gx[j] + gh[j] + bias[j];
    if (pi)
      for (int64_t j = 0; j < H; ++j) {
        g[j] += pi[j] * c[j];
        g[2 * H + j] += pi[2 * H + j] * c[j];
      }
    for (int64_t j = 0; j < 4 * H; ++j)
      if (j < H || j >= 2 * H) g[j] = Clip(g[j], clip_);
    vm::Sigmoid(g, g, H);                  // i
    vm::Sigmoid(g + 2 * H, g + 2 * H, H);  // f
    vm::Tanh(g + 3 * H, g + 3 * H, H);     // c~
    for (int64_t j = 0; j < H; ++j) c[j] = g[2 * H + j] * c[j] + g[j] * g[3 * H + j];
    if (pi)
      for (int64_t j = 0; j < H; ++j) g[H + j] += pi[H + j] * c[j];
    for (int64_t j = 0; j < H; ++j) g[H + j] = Clip(g[H + j], clip_);
    vm::Sigmoid(g + H, g + H, H);  // o
    for (int64_t j = 0; j < H; ++j) h[j] = c[j];
    vm::Tanh(h, h, H);
    for (int64_t j = 0; j < H; ++j) h[j] *= g[H + j];
  }

  int dirs_ = 1;
  bool reverse_ = false;
  int64_t hidden_ = 0;
  float clip_ = 0.f;
  std::vector<QWeight> w_, r_;
};

}  // namespace

void RegisterQLstmKernels(KernelRegistry& r) {
  r.Register("com.microsoft", "DynamicQuantizeLSTM", DType::Undefined, WithInit<DynamicQuantizeLstmKernel>());
}

}  // namespace asrc::runtime

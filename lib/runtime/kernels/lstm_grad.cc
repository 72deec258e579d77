// ai.asrc LSTMGrad: backpropagation through time of an ONNX LSTM, for lib/grad's LSTM rule.
//
// Inputs  (X, W, R, B, initial_h, initial_c, dY, dY_h, dY_c); B, the initial states and any of
//         the output gradients may be omitted (zeros).
// Outputs (dX, dW, dR, dB, d_initial_h, d_initial_c), shaped like the forward's inputs (dB
//         [1, 8H] even when B was omitted).
// Supported: float32, direction forward, layout 0, no sequence_lens, no peepholes, default
// activations, no clip (the rule refuses the rest with the node's name). The forward pass is
// recomputed (gates of every step kept), then the steps are walked backwards; the products over
// all steps (dX, dW, dR) are single GEMMs over the step-stacked gate gradients.
#include <cmath>

#include "runtime/gemm.h"
#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

float Sig(float x) { return 1.f / (1.f + std::exp(-x)); }

class LstmGradKernel : public Kernel {
 public:
  explicit LstmGradKernel(int64_t hidden) : H_(hidden) {}

  Status Run(KernelContext& ctx) override {
    const Tensor &x = *ctx.in(0), &w = *ctx.in(1), &r = *ctx.in(2);
    for (int i = 0; i < 9; ++i)
      if (ctx.in(i) && ctx.in(i)->dtype() != DType::Float32) return DTypeError("LSTMGrad", ctx.in(i)->dtype());
    if (x.rank() != 3) return Error("LSTMGrad: X must be 3-D, got " + ir::ShapeStr(x.shape()));
    const int64_t T = x.dim(0), Bn = x.dim(1), I = x.dim(2), H = H_, G = 4 * H;
    if (w.shape() != Shape{1, G, I} || r.shape() != Shape{1, G, H})
      return Error("LSTMGrad: W " + ir::ShapeStr(w.shape()) + " / R " + ir::ShapeStr(r.shape()) +
                   " do not match hidden_size " + std::to_string(H) + " and input size " + std::to_string(I));
    auto optional = [&](int i, const Shape& s, const char* what) -> Result<const float*> {
      const Tensor* t = ctx.in(i);
      if (!t || t->numel() == 0) return static_cast<const float*>(nullptr);
      if (t->shape() != s) return Error(std::string("LSTMGrad: ") + what + " has shape " + ir::ShapeStr(t->shape()) + ", expected " + ir::ShapeStr(s));
      return t->data<float>();
    };
    ASRC_ASSIGN_OR_RETURN(const float* bias, optional(3, {1, 2 * G}, "B"));
    ASRC_ASSIGN_OR_RETURN(const float* h0, optional(4, {1, Bn, H}, "initial_h"));
    ASRC_ASSIGN_OR_RETURN(const float* c0, optional(5, {1, Bn, H}, "initial_c"));
    ASRC_ASSIGN_OR_RETURN(const float* dy, optional(6, {T, 1, Bn, H}, "dY"));
    ASRC_ASSIGN_OR_RETURN(const float* dyh, optional(7, {1, Bn, H}, "dY_h"));
    ASRC_ASSIGN_OR_RETURN(const float* dyc, optional(8, {1, Bn, H}, "dY_c"));
    const float *X = x.data<float>(), *W = w.data<float>(), *R = r.data<float>();
    const int64_t BH = Bn * H;

    // Forward: acts[t] = activated gates (i, o, f, c~) per batch row; hs/cs hold h and c with
    // the initial state at step 0 (so hs + t * BH is h_{t-1}).
    std::vector<float> acts(static_cast<size_t>(T * Bn * G)), hs(static_cast<size_t>((T + 1) * BH), 0.f),
        cs(static_cast<size_t>((T + 1) * BH), 0.f);
    if (h0) std::copy(h0, h0 + BH, hs.begin());
    if (c0) std::copy(c0, c0 + BH, cs.begin());
    if (T * Bn > 0) Sgemm(false, true, T * Bn, G, I, 1.f, X, I, W, I, 0.f, acts.data(), G, 1);
    for (int64_t t = 0; t < T; ++t) {
      float* a = acts.data() + t * Bn * G;
      Sgemm(false, true, Bn, G, H, 1.f, hs.data() + t * BH, H, R, H, 1.f, a, G, 1);
      for (int64_t b = 0; b < Bn; ++b) {
        float* ab = a + b * G;
        const float* cp = cs.data() + t * BH + b * H;
        float* cn = cs.data() + (t + 1) * BH + b * H;
        float* hn = hs.data() + (t + 1) * BH + b * H;
        for (int64_t j = 0; j < G; ++j)
          if (bias) ab[j] += bias[j] + bias[G + j];
        for (int64_t k = 0; k < H; ++k) {
          float i = Sig(ab[k]), o = Sig(ab[H + k]), f = Sig(ab[2 * H + k]), cc = std::tanh(ab[3 * H + k]);
          ab[k] = i, ab[H + k] = o, ab[2 * H + k] = f, ab[3 * H + k] = cc;
          cn[k] = f * cp[k] + i * cc;
          hn[k] = o * std::tanh(cn[k]);
        }
      }
    }

    // Backward through time: dgates[t] = d loss / d (pre-activation gates of step t).
    std::vector<float> dgates(static_cast<size_t>(T * Bn * G)), dh(static_cast<size_t>(BH), 0.f),
        dc(static_cast<size_t>(BH), 0.f);
    if (dyh) std::copy(dyh, dyh + BH, dh.begin());
    if (dyc) std::copy(dyc, dyc + BH, dc.begin());
    for (int64_t t = T - 1; t >= 0; --t) {
      for (int64_t b = 0; b < Bn; ++b) {
        const float* ab = acts.data() + (t * Bn + b) * G;
        float* db = dgates.data() + (t * Bn + b) * G;
        const float* cp = cs.data() + t * BH + b * H;
        const float* cn = cs.data() + (t + 1) * BH + b * H;
        for (int64_t k = 0; k < H; ++k) {
          float& dhk = dh[b * H + k];
          float& dck = dc[b * H + k];
          if (dy) dhk += dy[t * BH + b * H + k];
          float i = ab[k], o = ab[H + k], f = ab[2 * H + k], cc = ab[3 * H + k], tc = std::tanh(cn[k]);
          dck += dhk * o * (1.f - tc * tc);
          db[k] = dck * cc * i * (1.f - i);
          db[H + k] = dhk * tc * o * (1.f - o);
          db[2 * H + k] = dck * cp[k] * f * (1.f - f);
          db[3 * H + k] = dck * i * (1.f - cc * cc);
          dck *= f;  // d c_{t-1}
        }
      }
      // d h_{t-1} = dgates[t] R
      Sgemm(false, false, Bn, H, G, 1.f, dgates.data() + t * Bn * G, G, R, H, 0.f, dh.data(), H, 1);
    }

    float* dX = ctx.Alloc(0, DType::Float32, x.shape()).data<float>();
    float* dW = ctx.Alloc(1, DType::Float32, w.shape()).data<float>();
    float* dR = ctx.Alloc(2, DType::Float32, r.shape()).data<float>();
    float* dB = ctx.Alloc(3, DType::Float32, {1, 2 * G}).data<float>();
    const int64_t rows = T * Bn;
    if (rows > 0) {
      Sgemm(false, false, rows, I, G, 1.f, dgates.data(), G, W, I, 0.f, dX, I, 1);
      Sgemm(true, false, G, I, rows, 1.f, dgates.data(), G, X, I, 0.f, dW, I, 1);
      Sgemm(true, false, G, H, rows, 1.f, dgates.data(), G, hs.data(), H, 0.f, dR, H, 1);
    } else {
      std::fill(dW, dW + G * I, 0.f);
      std::fill(dR, dR + G * H, 0.f);
    }
    for (int64_t j = 0; j < G; ++j) {
      double s = 0;
      for (int64_t k = 0; k < rows; ++k) s += dgates[k * G + j];
      dB[j] = dB[G + j] = static_cast<float>(s);
    }
    std::copy(dh.begin(), dh.end(), ctx.Alloc(4, DType::Float32, {1, Bn, H}).data<float>());
    std::copy(dc.begin(), dc.end(), ctx.Alloc(5, DType::Float32, {1, Bn, H}).data<float>());
    return Status::Ok();
  }

 private:
  int64_t H_;
};

}  // namespace

void RegisterLstmGradKernels(KernelRegistry& r) {
  r.Register("ai.asrc", "LSTMGrad", DType::Undefined, [](const KernelInit& i) -> Result<std::unique_ptr<Kernel>> {
    int64_t h = i.node->attr_int("hidden_size", 0);
    if (h <= 0) return Error("LSTMGrad needs a positive hidden_size");
    return Make<LstmGradKernel>(h);
  });
}

}  // namespace asrc::runtime

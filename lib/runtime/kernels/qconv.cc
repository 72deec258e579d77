// QLinearConv, the plain reference: int32 accumulation of (x - x_zp) * (w - w_zp) over the
// window (Conv's geometry: any spatial rank, groups, dilations, pads, auto_pad), plus the int32
// bias, then requantized as ONNX Runtime does: nearbyint(acc * (x_scale * w_scale / y_scale))
// + y_zp, saturated. uint8 or int8 activations and weights; w_scale/w_zp per tensor or per
// output channel.
#include <cmath>

#include "runtime/kernels/nn.h"
#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

// Integer tensor (int8/uint8/int32) values as int32.
Result<std::vector<int32_t>> Ints(const Tensor& t, const char* what) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  switch (t.dtype()) {
    case DType::Uint8: for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.data<uint8_t>()[i]; break;
    case DType::Int8: for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.data<int8_t>()[i]; break;
    case DType::Int32: for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.data<int32_t>()[i]; break;
    default: return Error(std::string("QLinearConv: ") + what + " must be uint8, int8 or int32, got " + ir::DTypeName(t.dtype()));
  }
  return v;
}

Result<std::vector<float>> Floats(const Tensor& t) {
  if (t.dtype() != DType::Float32) return Error("QLinearConv: scales must be float32");
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

class QLinearConvKernel : public Kernel {
 public:
  explicit QLinearConvKernel(ConvGeometry g) : g0_(std::move(g)) {}
  Status Run(KernelContext& ctx) override {
    for (int i = 0; i < 8; ++i)
      if (!ctx.in(i)) return Error("QLinearConv: input " + std::to_string(i) + " is required");
    const Tensor& xt = *ctx.in(0);
    const Tensor& wt = *ctx.in(3);
    const Tensor& yzp_t = *ctx.in(7);
    ConvGeometry g = g0_;
    ASRC_RETURN_IF_ERROR(g.Resolve(xt.shape(), wt.shape()));
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> x, Ints(xt, "x"));
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> w, Ints(wt, "w"));
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> xzp, Ints(*ctx.in(2), "x_zero_point"));
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> wzp, Ints(*ctx.in(5), "w_zero_point"));
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> yzp, Ints(yzp_t, "y_zero_point"));
    ASRC_ASSIGN_OR_RETURN(std::vector<float> xs, Floats(*ctx.in(1)));
    ASRC_ASSIGN_OR_RETURN(std::vector<float> ws, Floats(*ctx.in(4)));
    ASRC_ASSIGN_OR_RETURN(std::vector<float> ys, Floats(*ctx.in(6)));
    std::vector<int32_t> bias;
    if (ctx.in(8)) { ASRC_ASSIGN_OR_RETURN(bias, Ints(*ctx.in(8), "B")); }
    auto per_m = [&](size_t n) { return n == 1 || n == static_cast<size_t>(g.M); };
    if (xs.size() != 1 || xzp.size() != 1 || ys.size() != 1 || yzp.size() != 1 || !per_m(ws.size()) ||
        !per_m(wzp.size()) || (!bias.empty() && bias.size() != static_cast<size_t>(g.M)))
      return Error("QLinearConv: x/y scale and zero point must be scalars; w's per tensor or per output channel");
    const int sr = static_cast<int>(g.in.size());
    int64_t on = 1, kn = 1, in_n = 1, cg = g.C / g.group, mg = g.M / g.group;
    for (int d = 0; d < sr; ++d) { on *= g.out[d]; kn *= g.k[d]; in_n *= g.in[d]; }
    Shape os = {g.N, g.M};
    os.insert(os.end(), g.out.begin(), g.out.end());
    Tensor& y = ctx.Alloc(0, yzp_t.dtype(), os);
    const int32_t lo = yzp_t.dtype() == DType::Uint8 ? 0 : -128, hi = yzp_t.dtype() == DType::Uint8 ? 255 : 127;
    std::vector<int64_t> oc(sr), kc(sr);
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t m = 0; m < g.M; ++m) {
        const int32_t wz = wzp[wzp.size() == 1 ? 0 : m];
        const float mult = xs[0] * ws[ws.size() == 1 ? 0 : m] / ys[0];
        const int64_t grp = m / mg;
        for (int64_t o = 0; o < on; ++o) {
          for (int64_t d = sr - 1, r = o; d >= 0; --d) { oc[d] = r % g.out[d]; r /= g.out[d]; }
          int32_t acc = bias.empty() ? 0 : bias[m];
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t kk = 0; kk < kn; ++kk) {
              int64_t off = 0;
              bool inside = true;
              for (int64_t d = sr - 1, r = kk; d >= 0; --d) { kc[d] = r % g.k[d]; r /= g.k[d]; }
              for (int d = 0; d < sr && inside; ++d) {
                int64_t p = oc[d] * g.stride[d] + kc[d] * g.dil[d] - g.pb[d];
                inside = p >= 0 && p < g.in[d];
                off = off * g.in[d] + p;
              }
              if (!inside) continue;  // padding holds x_zero_point: contributes 0
              acc += (x[(n * g.C + grp * cg + c) * in_n + off] - xzp[0]) * (w[(m * cg + c) * kn + kk] - wz);
            }
          // A NaN or huge scale saturates (a plain float->int cast is UB; onnx_run_fuzzer).
          const int64_t q64 = int64_t{SaturateCast<int32_t>(std::nearbyint(static_cast<float>(acc) * mult))} + yzp[0];
          const int32_t q = static_cast<int32_t>(std::min<int64_t>(hi, std::max<int64_t>(lo, q64)));
          int64_t idx = (n * g.M + m) * on + o;
          if (yzp_t.dtype() == DType::Uint8) y.data<uint8_t>()[idx] = static_cast<uint8_t>(q);
          else y.data<int8_t>()[idx] = static_cast<int8_t>(q);
        }
      }
    return Status::Ok();
  }

 private:
  ConvGeometry g0_;
};

}  // namespace

void RegisterQLinearConvKernels(KernelRegistry& r) {
  r.Register("", "QLinearConv", DType::Undefined, NeedInputs(8, [](const KernelInit& i) -> KernelPtr {
    ConvGeometry g;
    bool relu = false;
    ASRC_RETURN_IF_ERROR(ConvAttributes(*i.node, "", &g, &relu));
    return Make<QLinearConvKernel>(std::move(g));
  }));
}

}  // namespace asrc::runtime

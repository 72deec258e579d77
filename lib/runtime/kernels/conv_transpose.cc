// ConvTranspose over any spatial rank: group, strides, dilations, pads, output_padding,
// output_shape and auto_pad as the ONNX spec defines them. Float16/float64 compute in float32.
// The plain scatter loop (each input element adds its kernel-weighted contribution to the outputs
// it reaches) is the reference; the fast path does one GEMM per batch item and group,
// cols[M/G * kernel, positions] = W_g^T X_g, and adds each column entry into the output position
// it reaches (col2im). ASRC_CONVT=ref (read at plan time) runs the reference loop.
#include <cstdlib>

#include "runtime/gemm.h"
#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

struct ConvTAttrs {
  std::string auto_pad = "NOTSET";
  int64_t group = 1;
  std::vector<int64_t> strides, dilations, pads, output_padding, output_shape, kernel_shape;
};

class ConvTransposeKernel : public Kernel {
 public:
  explicit ConvTransposeKernel(ConvTAttrs a) : a_(std::move(a)) {
    const char* e = std::getenv("ASRC_CONVT");
    ref_ = e && std::string(e) == "ref";
  }
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    const Tensor& w0 = *ctx.in(1);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "ConvTranspose"));
    int sr = x0.rank() - 2;
    if (sr < 1 || w0.rank() != sr + 2) return Error("ConvTranspose: X " + ir::ShapeStr(x0.shape()) + " and W " + ir::ShapeStr(w0.shape()) + " ranks");
    int64_t N = x0.dim(0), C = x0.dim(1), G = a_.group;
    if (G <= 0 || C % G != 0 || w0.dim(0) != C) return Error("ConvTranspose: W " + ir::ShapeStr(w0.shape()) + " does not fit " + std::to_string(C) + " channels in " + std::to_string(G) + " groups");
    int64_t mg = w0.dim(1), M = mg * G;
    std::vector<int64_t> in(x0.shape().begin() + 2, x0.shape().end()), k(w0.shape().begin() + 2, w0.shape().end());
    std::vector<int64_t> pb, out;
    ASRC_RETURN_IF_ERROR(Geometry(in, k, &pb, &out));
    ASRC_ASSIGN_OR_RETURN(Tensor w, AsFloat(w0, "ConvTranspose"));
    Tensor b;
    if (ctx.in(2)) {
      ASRC_ASSIGN_OR_RETURN(b, AsFloat(*ctx.in(2), "ConvTranspose"));
      if (b.numel() != M) return Error("ConvTranspose: bias has " + std::to_string(b.numel()) + " values for " + std::to_string(M) + " outputs");
    }
    Shape os = {N, M};
    os.insert(os.end(), out.begin(), out.end());
    Tensor y = ctx.NewTensor(DType::Float32, os);
    if (y.numel() == 0) return FromFloat(ctx, 0, x0.dtype(), y);  // N or M may be 2^40 over nothing
    int64_t in_n = 1, out_n = 1, k_n = 1, taps = 0;
    for (int d = 0; d < sr; ++d) { in_n *= in[d]; out_n *= out[d]; k_n *= k[d]; }
    if (__builtin_mul_overflow(k_n, in_n, &taps)) taps = -1;
    ASRC_RETURN_IF_ERROR(CheckScratch(taps, sizeof(int64_t), "ConvTranspose: the tap positions"));
    float* py = y.data<float>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = 0; m < M; ++m)
        std::fill(py + (n * M + m) * out_n, py + (n * M + m + 1) * out_n, b.defined() ? b.data<float>()[m] : 0.f);
    // For every kernel tap kk and input position i, the output position it reaches (-1: none).
    std::vector<int64_t> pos(static_cast<size_t>(taps));
    std::vector<int64_t> ic(sr), kc(sr);
    for (int64_t kk = 0; kk < k_n; ++kk) {
      for (int64_t d = sr - 1, r = kk; d >= 0; --d) { kc[d] = r % k[d]; r /= k[d]; }
      for (int64_t i = 0; i < in_n; ++i) {
        for (int64_t d = sr - 1, r = i; d >= 0; --d) { ic[d] = r % in[d]; r /= in[d]; }
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < sr && inside; ++d) {
          int64_t p = ic[d] * Stride(d) + kc[d] * Dil(d) - pb[d];
          inside = p >= 0 && p < out[d];
          off = off * out[d] + p;
        }
        pos[kk * in_n + i] = inside ? off : -1;
      }
    }
    const int64_t cg = C / G;
    const float* px = x.data<float>();
    const float* pw = w.data<float>();
    if (ref_) {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) {
          int64_t g = c / cg;
          for (int64_t i = 0; i < in_n; ++i) {
            float xv = px[(n * C + c) * in_n + i];
            for (int64_t kk = 0; kk < k_n; ++kk) {
              const int64_t off = pos[kk * in_n + i];
              if (off < 0) continue;
              for (int64_t m = 0; m < mg; ++m) py[(n * M + g * mg + m) * out_n + off] += xv * pw[(c * mg + m) * k_n + kk];
            }
          }
        }
    } else {
      Tensor cols = ctx.NewTensor(DType::Float32, {mg * k_n, in_n});
      float* pc = cols.data<float>();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t g = 0; g < G; ++g) {
          if (in_n > 0 && cg > 0)
            Sgemm(true, false, mg * k_n, in_n, cg, 1.f, pw + g * cg * mg * k_n, mg * k_n, px + (n * C + g * cg) * in_n, in_n,
                  0.f, pc, in_n, ctx.threads);
          else
            std::fill(pc, pc + mg * k_n * in_n, 0.f);
          for (int64_t m = 0; m < mg; ++m) {
            float* o = py + (n * M + g * mg + m) * out_n;
            for (int64_t kk = 0; kk < k_n; ++kk) {
              const float* row = pc + (m * k_n + kk) * in_n;
              const int64_t* p = pos.data() + kk * in_n;
              for (int64_t i = 0; i < in_n; ++i)
                if (p[i] >= 0) o[p[i]] += row[i];
            }
          }
        }
      if (ctx.buffers) ctx.buffers->Put(cols);
    }
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  int64_t Stride(int d) const { return a_.strides.empty() ? 1 : a_.strides[d]; }
  int64_t Dil(int d) const { return a_.dilations.empty() ? 1 : a_.dilations[d]; }

  // Leading pads and output lengths, from output_shape, auto_pad or pads.
  Status Geometry(const std::vector<int64_t>& in, const std::vector<int64_t>& k, std::vector<int64_t>* pb,
                  std::vector<int64_t>* out) const {
    const int sr = static_cast<int>(in.size());
    auto sized = [&](const std::vector<int64_t>& v, size_t n) { return v.empty() || v.size() == n; };
    if (!sized(a_.strides, sr) || !sized(a_.dilations, sr) || !sized(a_.output_padding, sr) || !sized(a_.pads, 2 * sr))
      return Error("ConvTranspose: strides/dilations/output_padding/pads lengths do not match the spatial rank");
    if (!a_.kernel_shape.empty() && a_.kernel_shape != k) return Error("ConvTranspose: kernel_shape differs from W");
    std::vector<int64_t> os = a_.output_shape;
    if (os.size() == static_cast<size_t>(sr + 2)) os.erase(os.begin(), os.begin() + 2);
    if (!os.empty() && os.size() != static_cast<size_t>(sr)) return Error("ConvTranspose: output_shape length");
    for (int64_t v : os)  // an attribute: full - v below must not overflow
      if (v < 0) return Error("ConvTranspose: negative output_shape " + std::to_string(v));
    pb->assign(sr, 0);
    out->assign(sr, 0);
    for (int d = 0; d < sr; ++d) {
      int64_t op = a_.output_padding.empty() ? 0 : a_.output_padding[d];
      int64_t full = Stride(d) * (in[d] - 1) + op + (k[d] - 1) * Dil(d) + 1;
      bool same = a_.auto_pad == "SAME_UPPER" || a_.auto_pad == "SAME_LOWER";
      if (!os.empty() || same) {
        (*out)[d] = !os.empty() ? os[d] : in[d] * Stride(d);
        int64_t total = std::max<int64_t>(0, full - (*out)[d]);
        (*pb)[d] = a_.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      } else {
        int64_t b = 0, e = 0;
        if (!a_.pads.empty() && a_.auto_pad != "VALID") { b = a_.pads[d]; e = a_.pads[d + sr]; }
        (*pb)[d] = b;
        (*out)[d] = full - b - e;
      }
      if ((*out)[d] < 0) return Error("ConvTranspose: negative output length");
    }
    return Status::Ok();
  }

  ConvTAttrs a_;
  bool ref_ = false;
};

}  // namespace

void RegisterConvTransposeKernels(KernelRegistry& r) {
  r.Register("", "ConvTranspose", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    const ir::Node& n = *i.node;
    ConvTAttrs a;
    a.auto_pad = n.attr_string("auto_pad", "NOTSET");
    if (a.auto_pad != "NOTSET" && a.auto_pad != "SAME_UPPER" && a.auto_pad != "SAME_LOWER" && a.auto_pad != "VALID")
      return Error("unsupported auto_pad '" + a.auto_pad + "'");
    a.group = n.attr_int("group", 1);
    a.strides = n.attr_ints("strides");
    a.dilations = n.attr_ints("dilations");
    a.pads = n.attr_ints("pads");
    a.output_padding = n.attr_ints("output_padding");
    a.output_shape = n.attr_ints("output_shape");
    a.kernel_shape = n.attr_ints("kernel_shape");
    return Make<ConvTransposeKernel>(std::move(a));
  }));
}

}  // namespace asrc::runtime

// The ONNX classification losses: NegativeLogLikelihoodLoss (opset 12/13) and
// SoftmaxCrossEntropyLoss (opset 12/13), as the ONNX operator text defines them.
//   input/scores [N, C, d1..dk] (float32/float16/float64), target/labels [N, d1..dk] (int32/int64),
//   optional weight [C]; attributes reduction ("mean" default | "sum" | "none") and
//   ignore_index (only when present: targets equal to it contribute 0 loss and 0 weight).
//   loss[n, d] = -w[t] * x[n, t, d] with t = target[n, d]; "mean" divides the sum by the sum of
//   the w[t] over the elements not ignored (so with no weight and no ignore_index it is the mean).
// SoftmaxCrossEntropyLoss applies log-softmax over axis 1 first and can return it (output 1).
// Float16/float64 are read as float32; the sums are in double. A target outside [0, C) that is not ignore_index is an error.
#include <cmath>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

class ClassLossKernel : public Kernel {
 public:
  ClassLossKernel(const ir::Node& n, bool softmax, std::string reduction)
      : softmax_(softmax), reduction_(std::move(reduction)) {
    has_ignore_ = n.attr("ignore_index") != nullptr;
    ignore_ = n.attr_int("ignore_index", 0);
  }

  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    const Tensor& target = *ctx.in(1);
    const Tensor* weight = ctx.in(2);
    const char* op = softmax_ ? "SoftmaxCrossEntropyLoss" : "NegativeLogLikelihoodLoss";
    ASRC_ASSIGN_OR_RETURN(Tensor xf, AsFloat(x, op));
    if (x.rank() < 2) return Error(std::string("input must be at least 2-D [N, C, ...], got ") + ir::ShapeStr(x.shape()));
    const int64_t N = x.dim(0), C = x.dim(1), D = x.numel() / std::max<int64_t>(1, N * C);
    Shape tshape = x.shape();
    tshape.erase(tshape.begin() + 1);
    if (target.shape() != tshape)
      return Error("target must have shape " + ir::ShapeStr(tshape) + " (input's without C), got " +
                   ir::ShapeStr(target.shape()));
    if (target.dtype() != DType::Int32 && target.dtype() != DType::Int64)
      return Error(std::string("target must be int32 or int64, got ") + ir::DTypeName(target.dtype()));
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> t, Int64s(target));
    std::vector<double> w;
    if (weight) {
      if (!IsFloatish(weight->dtype()) || weight->shape() != Shape{C})
        return Error("weight must be a float tensor of shape [" + std::to_string(C) + "], got " +
                     ir::DTypeName(weight->dtype()) + ir::ShapeStr(weight->shape()));
      ASRC_ASSIGN_OR_RETURN(Tensor wf, AsFloat(*weight, op));
      w.assign(wf.data<float>(), wf.data<float>() + C);
    }
    std::vector<double> logp(xf.data<float>(), xf.data<float>() + xf.numel());
    if (softmax_) LogSoftmaxAxis1(logp, N, C, D);

    ASRC_RETURN_IF_ERROR(CheckScratch(N * D, sizeof(double), std::string(op) + ": the losses"));  // C = 0: x empty
    std::vector<double> loss(static_cast<size_t>(N * D), 0.0);
    double wsum = 0, lsum = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t d = 0; d < D; ++d) {
        const int64_t c = t[n * D + d];
        if (has_ignore_ && c == ignore_) continue;
        if (c < 0 || c >= C)
          return Error("target value " + std::to_string(c) + " at flat index " + std::to_string(n * D + d) +
                       " is outside [0, " + std::to_string(C) + ")" +
                       (has_ignore_ ? " and is not ignore_index " + std::to_string(ignore_) : std::string()));
        const double wc = weight ? w[c] : 1.0;
        loss[n * D + d] = -wc * logp[(n * C + c) * D + d];
        wsum += wc;
        lsum += loss[n * D + d];
      }
    Tensor out = reduction_ == "none" ? Tensor(DType::Float32, tshape) : Tensor(DType::Float32, {});
    if (reduction_ == "none")
      for (size_t i = 0; i < loss.size(); ++i) out.data<float>()[i] = static_cast<float>(loss[i]);
    else
      out.data<float>()[0] = static_cast<float>(reduction_ == "sum" ? lsum : lsum / wsum);
    ASRC_RETURN_IF_ERROR(FromFloat(ctx, 0, x.dtype(), out));
    if (softmax_ && ctx.outputs->size() > 1 && (*ctx.node).output(1)) {
      Tensor lp(DType::Float32, x.shape());
      for (size_t i = 0; i < logp.size(); ++i) lp.data<float>()[i] = static_cast<float>(logp[i]);
      ASRC_RETURN_IF_ERROR(FromFloat(ctx, 1, x.dtype(), lp));
    }
    return Status::Ok();
  }

 private:
  static void LogSoftmaxAxis1(std::vector<double>& v, int64_t N, int64_t C, int64_t D) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t d = 0; d < D; ++d) {
        double* p = v.data() + n * C * D + d;
        double mx = -INFINITY, s = 0;
        for (int64_t c = 0; c < C; ++c) mx = std::max(mx, p[c * D]);
        for (int64_t c = 0; c < C; ++c) s += std::exp(p[c * D] - mx);
        const double lse = mx + std::log(s);
        for (int64_t c = 0; c < C; ++c) p[c * D] -= lse;
      }
  }

  bool softmax_;
  std::string reduction_;
  bool has_ignore_ = false;
  int64_t ignore_ = 0;
};

KernelFactory Factory(bool softmax) {
  return NeedInputs(2, [softmax](const KernelInit& init) -> KernelPtr {
    std::string r = init.node->attr_string("reduction", "mean");
    if (r != "mean" && r != "sum" && r != "none")
      return Error("attribute reduction='" + r + "' must be \"mean\", \"sum\" or \"none\"");
    return Make<ClassLossKernel>(*init.node, softmax, r);
  });
}

}  // namespace

void RegisterClassLossKernels(KernelRegistry& r) {
  r.Register("", "NegativeLogLikelihoodLoss", DType::Undefined, Factory(false));
  r.Register("", "SoftmaxCrossEntropyLoss", DType::Undefined, Factory(true));
}

}  // namespace asrc::runtime

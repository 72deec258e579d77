// The ONNX training-preview optimizer steps (domain ai.onnx.preview.training): Adagrad,
// Momentum (standard and Nesterov) and Adam, each over any number of tensors, as the ONNX spec
// writes them. Inputs: R (learning rate), T (step count), then the groups (X..., G..., state...).
// Float32 / float64 tensors; computed in double.
#include <cmath>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

enum class Opt { Adagrad, Momentum, Adam };

struct OptAttrs {
  float alpha = 0, beta = 0, epsilon = 0, decay = 0, norm = 0, norm_post = 0;
  bool nesterov = false;
};

class OptimizerKernel : public Kernel {
 public:
  OptimizerKernel(Opt op, OptAttrs a) : op_(op), a_(a) {}
  Status Run(KernelContext& ctx) override {
    const int groups = op_ == Opt::Adagrad || op_ == Opt::Momentum ? 3 : 4;  // X, G, states
    const int n_in = static_cast<int>(ctx.inputs.size()) - 2;
    if (n_in <= 0 || n_in % groups != 0) return Error("optimizer: inputs must be R, T and " + std::to_string(groups) + " equal groups");
    const int n = n_in / groups;
    ASRC_ASSIGN_OR_RETURN(double R, ScalarAsDouble(*ctx.in(0)));
    ASRC_ASSIGN_OR_RETURN(const int64_t T, ScalarAsInt64(*ctx.in(1), "optimizer: T"));
    for (int k = 0; k < n; ++k) {
      const Tensor& x0 = *ctx.in(2 + k);
      std::vector<Tensor> in;  // X, G, states as float64
      for (int g = 0; g < groups; ++g) {
        if (!ctx.in(2 + g * n + k)) return Error("optimizer: input " + std::to_string(2 + g * n + k) + " is missing");
        const Tensor& t = *ctx.in(2 + g * n + k);
        if ((t.dtype() != DType::Float32 && t.dtype() != DType::Float64) || t.shape() != x0.shape())
          return Error("optimizer: tensor " + std::to_string(k) + " of group " + std::to_string(g) + " must be float with X's shape");
        Tensor d(DType::Float64, t.shape());
        ASRC_RETURN_IF_ERROR(ConvertInto(t, d));
        in.push_back(std::move(d));
      }
      Step(R, T, in);
      for (int g = 0; g < groups - 1; ++g) {  // X_new, then each new state
        int slot = g * n + k;
        if (static_cast<size_t>(slot) >= ctx.outputs->size()) break;
        Tensor& o = ctx.Alloc(slot, ctx.in(2 + (g == 0 ? 0 : g + 1) * n + k)->dtype(), x0.shape());
        ASRC_RETURN_IF_ERROR(ConvertInto(in[g == 0 ? 0 : g + 1], o));
      }
    }
    return Status::Ok();
  }

 private:
  // Updates in[0] (X) and the states in[2..] in place; in[1] is G.
  void Step(double R, int64_t T, std::vector<Tensor>& in) const {
    double* x = in[0].data<double>();
    const double* g = in[1].data<double>();
    double* s1 = in[2].data<double>();
    double* s2 = in.size() > 3 ? in[3].data<double>() : nullptr;
    const double al = a_.alpha, be = a_.beta;
    double r_adj = R;
    if (op_ == Opt::Adagrad) r_adj = R / (1 + T * a_.decay);
    if (op_ == Opt::Adam && T > 0) r_adj = R * std::sqrt(1 - std::pow(be, T)) / (1 - std::pow(al, T));
    for (int64_t i = 0; i < in[0].numel(); ++i) {
      double gr = a_.norm * x[i] + g[i];
      switch (op_) {
        case Opt::Adagrad:
          s1[i] += gr * gr;
          x[i] -= r_adj * gr / (std::sqrt(s1[i]) + a_.epsilon);
          break;
        case Opt::Momentum:
          s1[i] = al * s1[i] + (T > 0 ? be : 1.0) * gr;
          x[i] -= R * (a_.nesterov ? gr + al * s1[i] : s1[i]);
          break;
        case Opt::Adam:
          s1[i] = al * s1[i] + (1 - al) * gr;
          s2[i] = be * s2[i] + (1 - be) * gr * gr;
          x[i] = (1 - a_.norm_post) * (x[i] - r_adj * s1[i] / (std::sqrt(s2[i]) + a_.epsilon));
          break;
      }
    }
  }

  Opt op_;
  OptAttrs a_;
};

}  // namespace

void RegisterOptimizerKernels(KernelRegistry& r) {
  const char* domain = "ai.onnx.preview.training";
  r.Register(domain, "Adagrad", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    OptAttrs a;
    a.decay = i.node->attr_float("decay_factor", 0.f);
    a.epsilon = i.node->attr_float("epsilon", 1e-6f);
    a.norm = i.node->attr_float("norm_coefficient", 0.f);
    return Make<OptimizerKernel>(Opt::Adagrad, a);
  }));
  r.Register(domain, "Momentum", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    OptAttrs a;
    a.alpha = i.node->attr_float("alpha", 0.f);
    a.beta = i.node->attr_float("beta", 0.f);
    a.norm = i.node->attr_float("norm_coefficient", 0.f);
    std::string mode = i.node->attr_string("mode", "standard");
    if (mode != "standard" && mode != "nesterov") return Error("Momentum: unsupported mode '" + mode + "'");
    a.nesterov = mode == "nesterov";
    return Make<OptimizerKernel>(Opt::Momentum, a);
  }));
  r.Register(domain, "Adam", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    OptAttrs a;
    a.alpha = i.node->attr_float("alpha", 0.9f);
    a.beta = i.node->attr_float("beta", 0.999f);
    a.epsilon = i.node->attr_float("epsilon", 1e-6f);
    a.norm = i.node->attr_float("norm_coefficient", 0.f);
    a.norm_post = i.node->attr_float("norm_coefficient_post", 0.f);
    return Make<OptimizerKernel>(Opt::Adam, a);
  }));
}

}  // namespace asrc::runtime

// Random ops: RandomNormal, RandomUniform, RandomNormalLike, RandomUniformLike, Bernoulli,
// Multinomial. Each node owns a std::mt19937 seeded from its `seed` attribute (so a seeded
// model repeats its sequence from session to session; successive runs continue it), or from
// std::random_device when the attribute is absent. The numbers differ from NumPy's and ONNX
// Runtime's generators: only the distributions are the same.
#include <cmath>
#include <random>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

enum class Rnd { Normal, Uniform, Bernoulli, Multinomial };

struct RandomAttrs {
  Rnd kind = Rnd::Normal;
  bool like = false;                 // shape (and default dtype) from input 0
  DType dtype = DType::Undefined;    // Undefined: the input's (the Like ops, Bernoulli)
  float a = 0, b = 1;                // mean/scale or low/high
  Shape shape;                       // RandomNormal / RandomUniform
  int64_t samples = 1;               // Multinomial
  bool seeded = false;
  float seed = 0;
};

// Writes doubles into a fresh output of dtype dt (float or, for Bernoulli/Multinomial, any).
Status Store(KernelContext& ctx, DType dt, const Tensor& d) {
  Tensor& y = ctx.Alloc(0, dt, d.shape());
  return ConvertInto(d, y);
}

class RandomKernel : public Kernel {
 public:
  explicit RandomKernel(RandomAttrs a) : a_(std::move(a)) {
    // The seed is a float attribute: NaN or beyond int64 saturates (a plain cast is UB; onnx_run_fuzzer).
    if (a_.seeded) rng_.seed(static_cast<uint32_t>(SaturateCast<int64_t>(a_.seed)));
    else rng_.seed(std::random_device{}());
  }
  bool Deterministic() const override { return false; }
  Status Run(KernelContext& ctx) override {
    if (a_.kind == Rnd::Multinomial) return Multinomial(ctx);
    Shape shape = a_.shape;
    DType dt = a_.dtype;
    const Tensor* in = ctx.in(0);
    if (a_.like || a_.kind == Rnd::Bernoulli) {
      if (!in) return Error("needs input 0");
      shape = in->shape();
      if (dt == DType::Undefined) dt = in->dtype();
    }
    // The values as float64, in a tensor: its size (from a shape attribute or input) is checked
    // against the memory budget, with int64 overflow, before anything is drawn.
    Tensor vt(DType::Float64, shape);
    const int64_t n = vt.numel();
    double* v = vt.data<double>();
    if (a_.kind == Rnd::Bernoulli) {
      ASRC_ASSIGN_OR_RETURN(Tensor p, AsFloat(*in, "Bernoulli"));
      std::uniform_real_distribution<double> u(0.0, 1.0);
      for (int64_t i = 0; i < n; ++i) v[i] = u(rng_) < p.data<float>()[i] ? 1.0 : 0.0;
    } else {
      if (!IsFloatish(dt)) return FloatDTypeError(a_.kind == Rnd::Normal ? "RandomNormal" : "RandomUniform", dt);
      if (a_.kind == Rnd::Normal) {
        std::normal_distribution<double> d(a_.a, a_.b);
        for (int64_t i = 0; i < n; ++i) v[i] = d(rng_);
      } else {
        std::uniform_real_distribution<double> d(a_.a, a_.b);
        for (int64_t i = 0; i < n; ++i) v[i] = d(rng_);
      }
    }
    return Store(ctx, dt, vt);
  }

 private:
  // Multinomial(input [batch, classes] of unnormalized log-probabilities) -> [batch, samples].
  Status Multinomial(KernelContext& ctx) {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "Multinomial"));
    if (x0.rank() != 2) return Error("Multinomial: input must be [batch, classes]");
    int64_t B = x.dim(0), C = x.dim(1);
    Tensor vt(DType::Float64, {B, a_.samples});  // budget- and overflow-checked (sample_size)
    double* v = vt.data<double>();
    std::vector<double> w(static_cast<size_t>(C));
    for (int64_t b = 0; b < B; ++b) {
      double mx = -INFINITY;
      for (int64_t c = 0; c < C; ++c) mx = std::max<double>(mx, x.data<float>()[b * C + c]);
      for (int64_t c = 0; c < C; ++c) w[c] = std::exp(x.data<float>()[b * C + c] - mx);
      std::discrete_distribution<int64_t> d(w.begin(), w.end());
      for (int64_t s = 0; s < a_.samples; ++s) v[b * a_.samples + s] = static_cast<double>(d(rng_));
    }
    DType dt = a_.dtype == DType::Undefined ? DType::Int32 : a_.dtype;
    if (dt != DType::Int32 && dt != DType::Int64) return Error("Multinomial: dtype must be int32 or int64");
    return Store(ctx, dt, vt);
  }

  RandomAttrs a_;
  std::mt19937 rng_;
};

Result<RandomAttrs> ReadAttrs(const KernelInit& i, Rnd kind, bool like) {
  const ir::Node& n = *i.node;
  RandomAttrs a;
  a.kind = kind;
  a.like = like;
  const ir::Attribute* dt = n.attr("dtype");
  if (dt) {
    if (!ir::DTypeKnown(static_cast<int32_t>(dt->i))) return Error("unknown dtype " + std::to_string(dt->i));
    a.dtype = static_cast<DType>(dt->i);
  } else if (!like && kind != Rnd::Bernoulli && kind != Rnd::Multinomial) {
    a.dtype = DType::Float32;
  }
  if (kind == Rnd::Normal) { a.a = n.attr_float("mean", 0.f); a.b = n.attr_float("scale", 1.f); }
  if (kind == Rnd::Uniform) { a.a = n.attr_float("low", 0.f); a.b = n.attr_float("high", 1.f); }
  if (kind == Rnd::Uniform && !(a.a < a.b)) return Error("RandomUniform: low must be below high");
  if ((kind == Rnd::Normal || kind == Rnd::Uniform) && !like) {
    if (!n.attr("shape")) return Error("needs a shape attribute");
    a.shape = n.attr_ints("shape");
    for (int64_t d : a.shape)
      if (d < 0) return Error("shape has a negative dimension");
  }
  a.samples = n.attr_int("sample_size", 1);
  if (a.samples < 1) return Error("Multinomial: sample_size must be positive");
  a.seeded = n.attr("seed") != nullptr;
  a.seed = n.attr_float("seed", 0.f);
  return a;
}

}  // namespace

void RegisterRandomKernels(KernelRegistry& r) {
  auto reg = [&](const char* op, Rnd kind, bool like) {
    int inputs = like || kind == Rnd::Bernoulli || kind == Rnd::Multinomial ? 1 : 0;
    r.Register("", op, DType::Undefined, NeedInputs(inputs, [kind, like](const KernelInit& i) -> KernelPtr {
      ASRC_ASSIGN_OR_RETURN(RandomAttrs a, ReadAttrs(i, kind, like));
      return Make<RandomKernel>(std::move(a));
    }));
  };
  reg("RandomNormal", Rnd::Normal, false);
  reg("RandomUniform", Rnd::Uniform, false);
  reg("RandomNormalLike", Rnd::Normal, true);
  reg("RandomUniformLike", Rnd::Uniform, true);
  reg("Bernoulli", Rnd::Bernoulli, false);
  reg("Multinomial", Rnd::Multinomial, false);
}

}  // namespace asrc::runtime

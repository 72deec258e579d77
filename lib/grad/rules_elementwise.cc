// Gradient rules of elementwise ops: arithmetic with numpy broadcasting (each input's gradient
// summed back to its own shape), activations (written with the forward output where that is
// cheaper), Where, Identity, Dropout, Cast.
#include <cmath>

#include "grad/rules.h"

namespace asrc::grad {
namespace {

bool IsFloatCode(int64_t to) {
  auto d = static_cast<ir::DType>(to);
  return d == ir::DType::Float32 || d == ir::DType::Float64 || d == ir::DType::Float16;
}

// Each input i of a broadcasting op gets SumToShape(f(i), Y, X(i)) when it needs a gradient.
template <class F>
void PerInput(RuleContext& c, F f) {
  for (int i = 0; i < c.node().num_inputs(); ++i)
    if (c.Needs(i)) c.SetGrad(i, c.SumToShape(f(i), c.Y(0), c.X(i)));
}

Status AddRule(RuleContext& c) {
  ir::Value* g = c.G(0);
  PerInput(c, [&](int) { return g; });
  return Status::Ok();
}

Status SubRule(RuleContext& c) {
  ir::Value* g = c.G(0);
  PerInput(c, [&](int i) { return i == 0 ? g : c.Neg(g); });
  return Status::Ok();
}

Status MulRule(RuleContext& c) {
  ir::Value* g = c.G(0);
  PerInput(c, [&](int i) { return c.Mul(g, c.X(1 - i)); });
  return Status::Ok();
}

Status DivRule(RuleContext& c) {
  ir::Value* g = c.G(0);
  // d(a/b)/db = -(a/b)/b.
  PerInput(c, [&](int i) {
    return i == 0 ? c.Div(g, c.X(1)) : c.Neg(c.Mul(g, c.Div(c.Y(0), c.X(1))));
  });
  return Status::Ok();
}

Status PowRule(RuleContext& c) {
  ir::Value* g = c.G(0);
  ir::Value *a = c.X(0), *b = c.X(1);
  if (c.Needs(0)) {
    std::optional<double> p = c.ConstScalar(b);
    if (!p) {
      auto ints = c.ConstInts(b);
      if (ints && ints->size() == 1) p = static_cast<double>((*ints)[0]);
    }
    ir::Value* d = p ? c.Mul(c.Scalar(*p), c.Op("Pow", {a, c.Scalar(*p - 1)}))
                     : c.Mul(b, c.Op("Pow", {a, c.Sub(b, c.Scalar(1))}));
    c.SetGrad(0, c.SumToShape(c.Mul(g, d), c.Y(0), a));
  }
  if (c.Needs(1)) c.SetGrad(1, c.SumToShape(c.Mul(g, c.Mul(c.Y(0), c.Op("Log", {a}))), c.Y(0), b));
  return Status::Ok();
}

Status SumRule(RuleContext& c) { return AddRule(c); }

Status NegRule(RuleContext& c) {
  c.SetGrad(0, c.Neg(c.G(0)));
  return Status::Ok();
}

Status IdentityRule(RuleContext& c) {
  c.SetGrad(0, c.G(0));
  return Status::Ok();
}

Status ReluRule(RuleContext& c) {
  ir::Value* pos = c.Op("Greater", {c.Y(0), c.Scalar(0)});
  c.SetGrad(0, c.Op("Where", {pos, c.G(0), c.Scalar(0)}));
  return Status::Ok();
}

Status SigmoidRule(RuleContext& c) {
  ir::Value* y = c.Y(0);
  c.SetGrad(0, c.Mul(c.G(0), c.Mul(y, c.Sub(c.Scalar(1), y))));
  return Status::Ok();
}

Status TanhRule(RuleContext& c) {
  ir::Value* y = c.Y(0);
  c.SetGrad(0, c.Mul(c.G(0), c.Sub(c.Scalar(1), c.Mul(y, y))));
  return Status::Ok();
}

// silu(x) = x s(x); d/dx = s (1 + x (1 - s)).
Status SiluRule(RuleContext& c) {
  ir::Value* x = c.X(0);
  ir::Value* s = c.Op("Sigmoid", {x});
  ir::Value* d = c.Mul(s, c.Add(c.Scalar(1), c.Mul(x, c.Sub(c.Scalar(1), s))));
  c.SetGrad(0, c.Mul(c.G(0), d));
  return Status::Ok();
}

Status ExpRule(RuleContext& c) {
  c.SetGrad(0, c.Mul(c.G(0), c.Y(0)));
  return Status::Ok();
}

Status LogRule(RuleContext& c) {
  c.SetGrad(0, c.Div(c.G(0), c.X(0)));
  return Status::Ok();
}

Status SqrtRule(RuleContext& c) {
  c.SetGrad(0, c.Div(c.Mul(c.G(0), c.Scalar(0.5)), c.Y(0)));
  return Status::Ok();
}

Status ReciprocalRule(RuleContext& c) {
  ir::Value* y = c.Y(0);
  c.SetGrad(0, c.Neg(c.Mul(c.G(0), c.Mul(y, y))));
  return Status::Ok();
}

// erf'(x) = 2/sqrt(pi) exp(-x^2).
Status ErfRule(RuleContext& c) {
  ir::Value* x = c.X(0);
  ir::Value* e = c.Op("Exp", {c.Neg(c.Mul(x, x))});
  c.SetGrad(0, c.Mul(c.G(0), c.Mul(e, c.Scalar(2.0 / std::sqrt(M_PI)))));
  return Status::Ok();
}

Status WhereRule(RuleContext& c) {
  ir::Value *cond = c.X(0), *g = c.G(0), *zero = c.Scalar(0);
  if (c.Needs(1)) c.SetGrad(1, c.SumToShape(c.Op("Where", {cond, g, zero}), c.Y(0), c.X(1)));
  if (c.Needs(2)) c.SetGrad(2, c.SumToShape(c.Op("Where", {cond, zero, g}), c.Y(0), c.X(2)));
  return Status::Ok();
}

// Inference mode: identity. Training mode: the forward node's mask output selects the kept
// elements, scaled by 1 / (1 - ratio) as the forward pass scaled them.
Status DropoutRule(RuleContext& c) {
  const ir::Node& n = c.node();
  bool training = false;
  if (ir::Value* t = n.input(2)) {
    const ir::Tensor* mode = t->initializer ? &*t->initializer : nullptr;
    if (!mode || mode->numel() != 1 || mode->dtype() != ir::DType::Bool)
      return c.Fail("training_mode must be a constant bool for the gradient");
    training = mode->data<bool>()[0];
  }
  if (!training) return IdentityRule(c);
  if (!c.Y(1)) return c.Fail("training-mode Dropout needs its mask output for the gradient");
  double ratio = 0.5;
  if (n.input(1)) {
    auto r = c.ConstScalar(n.input(1));
    if (!r) return c.Fail("training-mode Dropout with a non-constant ratio");
    ratio = *r;
  }
  ir::Node* mask = c.Emit("Cast", {c.Y(1)});
  mask->set_attr_int("to", static_cast<int64_t>(c.dtype()));
  c.SetGrad(0, c.Mul(c.Mul(c.G(0), mask->outputs[0]), c.Scalar(1.0 / (1.0 - ratio))));
  return Status::Ok();
}

bool CastDifferentiable(const ir::Node& n, int input) {
  return input == 0 && IsFloatCode(n.attr_int("to", 0));
}

Status CastRule(RuleContext& c) {
  ir::Value* x = c.X(0);
  ir::DType from = x->initializer ? x->initializer->dtype() : x->type.has_type ? x->type.dtype : c.dtype();
  ir::Value* g = c.G(0);
  if (static_cast<int64_t>(from) != c.node().attr_int("to", 0)) {
    ir::Node* back = c.Emit("Cast", {g});
    back->set_attr_int("to", static_cast<int64_t>(from));
    g = back->outputs[0];
  }
  c.SetGrad(0, g);
  return Status::Ok();
}

bool NotInput0(const ir::Node&, int input) { return input != 0; }

}  // namespace

void RegisterElementwiseRules(RuleTable& t) {
  t.Add("", "Add", {AddRule});
  t.Add("", "Sub", {SubRule});
  t.Add("", "Mul", {MulRule});
  t.Add("", "Div", {DivRule});
  t.Add("", "Pow", {PowRule});
  t.Add("", "Sum", {SumRule});
  t.Add("", "Neg", {NegRule});
  t.Add("", "Identity", {IdentityRule});
  t.Add("", "Relu", {ReluRule});
  t.Add("", "Sigmoid", {SigmoidRule});
  t.Add("", "Tanh", {TanhRule});
  t.Add("ai.asrc", "Silu", {SiluRule});
  t.Add("", "Exp", {ExpRule});
  t.Add("", "Log", {LogRule});
  t.Add("", "Sqrt", {SqrtRule});
  t.Add("", "Reciprocal", {ReciprocalRule});
  t.Add("", "Erf", {ErfRule});
  t.Add("", "Where", {WhereRule, NotInput0});
  t.Add("", "Dropout", {DropoutRule, OnlyInput0});
  t.Add("", "Cast", {CastRule, CastDifferentiable});
  // Comparisons, logic and rounding give no gradient (piecewise constant or boolean).
  for (const char* op : {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Not", "And",
                         "Or", "Xor", "Sign", "Floor", "Ceil", "Round", "IsNaN", "IsInf"})
    t.AddNoGradient("", op);
}

}  // namespace asrc::grad

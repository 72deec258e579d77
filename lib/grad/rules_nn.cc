// Gradient rules of the matrix products (MatMul, Gemm), the normalizations (Softmax,
// LogSoftmax, LayerNormalization) and the reductions (ReduceSum, ReduceMean).
#include <optional>

#include "grad/rules.h"

namespace asrc::grad {
namespace {

std::vector<int64_t> SwapLastTwo(int rank) {
  std::vector<int64_t> perm;
  for (int i = 0; i < rank; ++i) perm.push_back(i);
  std::swap(perm[rank - 1], perm[rank - 2]);
  return perm;
}

// Whether x's batch dimensions may differ from the product's (so its gradient needs summing).
bool MayBroadcast(RuleContext& c, ir::Value* x, ir::Value* other) {
  auto so = c.StaticShape(other);
  if (so && so->size() == 2) return false;
  auto sx = c.StaticShape(x);
  if (!sx || !so || sx->size() != so->size()) return true;
  return !std::equal(sx->begin(), sx->end() - 2, so->begin());
}

ir::Value* GemmOf(RuleContext& c, ir::Value* p, ir::Value* q, bool tp, bool tq, float alpha) {
  ir::Node* n = c.Emit("Gemm", {p, q});
  if (tp) n->set_attr_int("transA", 1);
  if (tq) n->set_attr_int("transB", 1);
  if (alpha != 1.f) n->set_attr_float("alpha", alpha);
  return n->outputs[0];
}

// Y = A @ B (rank >= 2 both). dA = g @ B^T, dB = A^T @ g, each summed over broadcast batch dims.
// A 2-D B (a weight) gets GEMMs over the flattened rows instead: dA = flat(g) B^T reshaped to A,
// dB = flat(A)^T flat(g) (B read transposed by the GEMM: no Transpose node, no reduction).
Status MatMulRule(RuleContext& c) {
  ir::Value *a = c.X(0), *b = c.X(1), *g = c.G(0);
  auto ra = c.Rank(a), rb = c.Rank(b);
  if ((ra && *ra < 2) || (rb && *rb < 2)) return c.Fail("1-D operands are not supported");
  if (rb && *rb == 2) {
    auto flat = [&](ir::Value* v) {
      ir::Node* f = c.Emit("Flatten", {v});
      f->set_attr_int("axis", -1);
      return f->outputs[0];
    };
    ir::Value* fg = flat(g);
    if (c.Needs(0)) c.SetGrad(0, c.Reshape(GemmOf(c, fg, b, false, true, 1.f), c.ShapeOf(a)));
    if (c.Needs(1)) c.SetGrad(1, GemmOf(c, flat(a), fg, true, false, 1.f));
    return Status::Ok();
  }
  if (c.Needs(0)) {
    if (!rb) return c.Fail("rank of input '" + b->name + "' is unknown");
    ir::Value* da = c.Op("MatMul", {g, c.Transpose(b, SwapLastTwo(*rb))});
    c.SetGrad(0, MayBroadcast(c, a, b) ? c.SumToShape(da, nullptr, a) : da);
  }
  if (c.Needs(1)) {
    if (!ra) return c.Fail("rank of input '" + a->name + "' is unknown");
    ir::Value* db = c.Op("MatMul", {c.Transpose(a, SwapLastTwo(*ra)), g});
    c.SetGrad(1, MayBroadcast(c, b, a) ? c.SumToShape(db, nullptr, b) : db);
  }
  return Status::Ok();
}

// Y = alpha A' B' + beta C with A' = transA ? A^T : A, B' likewise.
Status GemmRule(RuleContext& c) {
  const ir::Node& n = c.node();
  bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
  float alpha = n.attr_float("alpha", 1.f), beta = n.attr_float("beta", 1.f);
  ir::Value *a = c.X(0), *b = c.X(1), *g = c.G(0);
  // dA' = alpha g B'^T; dA = dA' or its transpose.
  if (c.Needs(0)) c.SetGrad(0, ta ? GemmOf(c, b, g, tb, true, alpha) : GemmOf(c, g, b, false, !tb, alpha));
  // dB' = alpha A'^T g; dB = dB' or its transpose.
  if (c.Needs(1)) c.SetGrad(1, tb ? GemmOf(c, g, a, true, ta, alpha) : GemmOf(c, a, g, !ta, false, alpha));
  if (c.Needs(2)) {
    ir::Value* gc = beta == 1.f ? g : c.Mul(g, c.Scalar(beta));
    c.SetGrad(2, c.SumToShape(gc, c.Y(0), c.X(2)));
  }
  return Status::Ok();
}

// y = softmax(x): dx = y (g - sum(g y)).
Status SoftmaxRule(RuleContext& c) {
  ir::Value *y = c.Y(0), *g = c.G(0);
  int64_t axis = c.node().attr_int("axis", -1);
  ir::Value* s = c.ReduceSum(c.Mul(g, y), {axis}, true);
  c.SetGrad(0, c.Mul(y, c.Sub(g, s)));
  return Status::Ok();
}

// y = log_softmax(x): dx = g - exp(y) sum(g).
Status LogSoftmaxRule(RuleContext& c) {
  ir::Value *y = c.Y(0), *g = c.G(0);
  int64_t axis = c.node().attr_int("axis", -1);
  ir::Value* s = c.ReduceSum(g, {axis}, true);
  c.SetGrad(0, c.Sub(g, c.Mul(c.Op("Exp", {y}), s)));
  return Status::Ok();
}

// One ai.asrc LayerNormalizationGrad node (statistics recomputed per row; one pass) gives the
// input, scale and bias gradients.
Status LayerNormRule(RuleContext& c) {
  const ir::Node& n = c.node();
  for (int i = 1; i < 3; ++i)
    if (c.Y(i) && c.G(i)) return c.Fail("gradients through the Mean/InvStdDev outputs are not supported");
  std::vector<ir::Value*> in = {c.G(0), c.X(0), c.X(1)};
  if (c.X(2)) in.push_back(c.X(2));
  ir::Node* k = c.Emit("LayerNormalizationGrad", in, 3, "ai.asrc");
  k->set_attr_int("axis", n.attr_int("axis", -1));
  k->set_attr_float("epsilon", n.attr_float("epsilon", 1e-5f));
  for (int i = 0; i < 3; ++i) c.SetGrad(i, k->outputs[i]);
  return Status::Ok();
}

// The axes of a reduction (empty: all), from the input (ReduceSum from 13, the others from 18)
// or the attribute.
Result<std::vector<int64_t>> ReduceAxes(RuleContext& c, bool input_from_13) {
  const ir::Node& n = c.node();
  bool as_input = input_from_13 ? c.opset() >= 13 : c.opset() >= 18;
  if (!as_input) return n.attr_ints("axes");
  if (!n.input(1)) return std::vector<int64_t>{};
  auto axes = c.ConstInts(n.input(1));
  if (!axes) return c.Fail("axes are not a constant");
  return *axes;
}

// g broadcast back to x's shape (reinserting the reduced axes when keepdims is 0).
Result<ir::Value*> ExpandBack(RuleContext& c, bool input_from_13) {
  ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ReduceAxes(c, input_from_13));
  ir::Value* g = c.G(0);
  if (axes.empty() && c.node().attr_int("noop_with_empty_axes", 0)) return g;
  if (!c.node().attr_int("keepdims", 1) && !axes.empty()) g = c.Unsqueeze(g, axes);
  return c.Op("Expand", {g, c.ShapeOf(c.X(0))});
}

Status ReduceSumRule(RuleContext& c) {
  ASRC_ASSIGN_OR_RETURN(ir::Value * g, ExpandBack(c, true));
  c.SetGrad(0, g);
  return Status::Ok();
}

Status ReduceMeanRule(RuleContext& c) {
  ASRC_ASSIGN_OR_RETURN(ir::Value * g, ExpandBack(c, false));
  ir::Value* ratio = nullptr;  // elements out / elements in
  auto sx = c.StaticShape(c.X(0)), sy = c.StaticShape(c.Y(0));
  if (g == c.G(0)) {  // noop_with_empty_axes: identity
    c.SetGrad(0, g);
    return Status::Ok();
  }
  if (sx && sy) {
    ratio = c.Scalar(static_cast<double>(ir::ShapeNumel(*sy)) / static_cast<double>(ir::ShapeNumel(*sx)));
  } else {
    ir::Node* ny = c.Emit("Cast", {c.Op("Size", {c.Y(0)})});
    ir::Node* nx = c.Emit("Cast", {c.Op("Size", {c.X(0)})});
    ny->set_attr_int("to", static_cast<int64_t>(c.dtype()));
    nx->set_attr_int("to", static_cast<int64_t>(c.dtype()));
    ratio = c.Div(ny->outputs[0], nx->outputs[0]);
  }
  c.SetGrad(0, c.Mul(g, ratio));
  return Status::Ok();
}

}  // namespace

void RegisterNNRules(RuleTable& t) {
  t.Add("", "MatMul", {MatMulRule});
  t.Add("", "Gemm", {GemmRule});
  t.Add("", "Softmax", {SoftmaxRule});
  t.Add("", "LogSoftmax", {LogSoftmaxRule});
  t.Add("", "LayerNormalization", {LayerNormRule});
  t.Add("", "ReduceSum", {ReduceSumRule, OnlyInput0});
  t.Add("", "ReduceMean", {ReduceMeanRule, OnlyInput0});
  t.AddNoGradient("", "ArgMax");
  t.AddNoGradient("", "ArgMin");
}

}  // namespace asrc::grad

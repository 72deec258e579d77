// Gradient rules of data-movement ops (the gradient moves back the way the data came) and the
// index and shape ops that pass no gradient.
#include "grad/rules.h"

namespace asrc::grad {
namespace {

Status TransposeRule(RuleContext& c) {
  std::vector<int64_t> perm = c.node().attr_ints("perm");
  ir::Value* g = c.G(0);
  if (perm.empty()) {  // reversed axes: its own inverse
    c.SetGrad(0, c.Op("Transpose", {g}));
    return Status::Ok();
  }
  std::vector<int64_t> inv(perm.size(), 0);
  for (size_t i = 0; i < perm.size(); ++i) {
    int64_t p = perm[i] < 0 ? perm[i] + static_cast<int64_t>(perm.size()) : perm[i];
    if (p < 0 || p >= static_cast<int64_t>(perm.size())) return c.Fail("perm out of range");
    inv[p] = static_cast<int64_t>(i);
  }
  c.SetGrad(0, c.Transpose(g, inv));
  return Status::Ok();
}

// Reshape, Flatten, Squeeze, Unsqueeze: the gradient takes the input's shape back.
Status ReshapeLikeRule(RuleContext& c) {
  c.SetGrad(0, c.Reshape(c.G(0), c.ShapeOf(c.X(0))));
  return Status::Ok();
}

Status ExpandRule(RuleContext& c) {
  c.SetGrad(0, c.SumToShape(c.G(0), c.Y(0), c.X(0)));
  return Status::Ok();
}

// The output gradient split back into the inputs' extents along the axis (constants where the
// static shapes are known, else read from Shape at run time).
Status ConcatRule(RuleContext& c) {
  const ir::Node& n = c.node();
  int64_t axis = n.attr_int("axis", 0);
  std::vector<int64_t> sizes;
  std::vector<ir::Value*> parts;
  bool all_static = true;
  for (int i = 0; i < n.num_inputs(); ++i) {
    auto s = c.StaticShape(c.X(i));
    int64_t r = s ? static_cast<int64_t>(s->size()) : 0;
    if (s && axis >= -r && axis < r) sizes.push_back((*s)[axis < 0 ? axis + r : axis]);
    else all_static = false;
  }
  ir::Value* split;
  if (all_static) {
    split = c.Ints(sizes);
  } else {
    for (int i = 0; i < n.num_inputs(); ++i) parts.push_back(c.Op("Gather", {c.ShapeOf(c.X(i)), c.Ints({axis})}));
    ir::Node* cat = c.Emit("Concat", parts);
    cat->set_attr_int("axis", 0);
    split = cat->outputs[0];
  }
  ir::Node* sp = c.Emit("Split", {c.G(0), split}, n.num_inputs());
  sp->set_attr_int("axis", axis);
  for (int i = 0; i < n.num_inputs(); ++i) c.SetGrad(i, sp->outputs[i]);
  return Status::Ok();
}

Status SplitRule(RuleContext& c) {
  std::vector<ir::Value*> parts;
  for (size_t i = 0; i < c.node().outputs.size(); ++i) parts.push_back(c.GOrZeros(static_cast<int>(i)));
  ir::Node* cat = c.Emit("Concat", parts);
  cat->set_attr_int("axis", c.node().attr_int("axis", 0));
  c.SetGrad(0, cat->outputs[0]);
  return Status::Ok();
}

// The gradient placed back at the sliced positions of zeros of the input's shape.
Status SliceRule(RuleContext& c) {
  const ir::Node& n = c.node();
  std::vector<ir::Value*> in = {c.G(0), c.ShapeOf(c.X(0))};
  for (int i = 1; i < n.num_inputs(); ++i) in.push_back(n.input(i));
  while (!in.back()) in.pop_back();
  if (in.size() < 4) return c.Fail("starts and ends are required");
  c.SetGrad(0, c.Op("SliceGrad", in, "ai.asrc"));
  return Status::Ok();
}

// Scatter-add of the output gradient into zeros of the data's shape (embedding lookups).
Status GatherRule(RuleContext& c) {
  ir::Node* gg = c.Emit("GatherGrad", {c.G(0), c.X(1), c.ShapeOf(c.X(0))}, 1, "ai.asrc");
  gg->set_attr_int("axis", c.node().attr_int("axis", 0));
  c.SetGrad(0, gg->outputs[0]);
  return Status::Ok();
}

// Constant-mode Pad: the gradient is g padded by the negated pads (a positive pad crops what the
// forward added, a negative one restores zeros where it cropped); pads may be computed.
Status PadRule(RuleContext& c) {
  const ir::Node& n = c.node();
  if (n.attr_string("mode", "constant") != "constant")
    return c.Fail("mode '" + n.attr_string("mode", "") + "' is not supported (constant only)");
  ir::Value* pads = n.input(1);
  if (!pads) return c.Fail("pads are attributes (opset < 11), not supported");
  ir::Value* neg;
  if (auto p = c.ConstInts(pads)) {
    for (int64_t& v : *p) v = -v;
    neg = c.Ints(*p);
  } else {
    neg = c.Neg(pads);
  }
  std::vector<ir::Value*> in = {c.G(0), neg};
  if (n.input(3)) in = {c.G(0), neg, nullptr, n.input(3)};
  c.SetGrad(0, c.Op("Pad", in));
  return Status::Ok();
}

}  // namespace

void RegisterShapeRules(RuleTable& t) {
  t.Add("", "Transpose", {TransposeRule});
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}) t.Add("", op, {ReshapeLikeRule, OnlyInput0});
  t.Add("", "Expand", {ExpandRule, OnlyInput0});
  t.Add("", "Concat", {ConcatRule});
  t.Add("", "Split", {SplitRule, OnlyInput0});
  t.Add("", "Slice", {SliceRule, OnlyInput0});
  t.Add("", "Gather", {GatherRule, OnlyInput0});
  t.Add("", "Pad", {PadRule, OnlyInput0});
  for (const char* op : {"Shape", "Size", "ConstantOfShape", "Range", "NonZero", "EyeLike", "OneHot",
                         "Constant"})
    t.AddNoGradient("", op);
}

}  // namespace asrc::grad

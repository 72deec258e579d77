// Gradient rule of Conv (any spatial rank, groups, strides, dilations, pads, auto_pad): the data
// and weight gradients through the ai.asrc ConvGradData / ConvGradWeight kernels, which take the
// forward node's attributes; the bias gradient is g summed over batch and spatial axes.
#include "grad/rules.h"

namespace asrc::grad {
namespace {

Status ConvRule(RuleContext& c) {
  const ir::Node& n = c.node();
  ir::Value *g = c.G(0), *x = c.X(0), *w = c.X(1);
  auto with_attrs = [&](const char* op, ir::Value* other, ir::Value* like) {
    ir::Node* k = c.Emit(op, {g, other, c.ShapeOf(like)}, 1, "ai.asrc");
    k->attributes = n.attributes;
    return k->outputs[0];
  };
  if (c.Needs(0)) c.SetGrad(0, with_attrs("ConvGradData", w, x));
  if (c.Needs(1)) c.SetGrad(1, with_attrs("ConvGradWeight", x, w));
  if (c.Needs(2)) {
    auto r = c.Rank(w);
    if (!r) r = c.Rank(x);
    if (!r) return c.Fail("rank of the weight and the input unknown (needed for the bias gradient)");
    std::vector<int64_t> axes = {0};
    for (int64_t a = 2; a < *r; ++a) axes.push_back(a);
    c.SetGrad(2, c.ReduceSum(g, axes, false));
  }
  return Status::Ok();
}

}  // namespace

void RegisterConvRules(RuleTable& t) { t.Add("", "Conv", {ConvRule}); }

}  // namespace asrc::grad

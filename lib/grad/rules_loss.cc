// Gradient rules of the `ai.asrc` loss ops whose forward kernel already computes the gradient
// (lib/runtime/kernels/loss.h on the losses branch states the same contract):
// output 0 is the loss (a scalar, or per utterance [B] for reduction "none"), output 1 is
// d(output 0)/d(input 0) with input 0's shape — for [B], row b of it is d loss_b / d input0[b].
// The rule scales it by the incoming gradient, g broadcast over input 0's trailing dimensions:
// d input0 = reshape(g, [-1, 1, ..., 1]) * output1. Only input 0 (the student's logits or
// output) gets a gradient; targets, lengths and the teacher are constants.
#include "grad/rules.h"

namespace asrc::grad {
namespace {

// [-1, 1, ..., 1] with the rank of `like`: a constant when the rank is known, else built from
// Size(Shape(like)) at run time.
ir::Value* BatchBroadcastShape(RuleContext& c, ir::Value* like, ir::Value* rank_of) {
  if (auto r = c.Rank(rank_of)) {
    std::vector<int64_t> shape(static_cast<size_t>(*r), 1);
    shape[0] = -1;
    return c.Ints(shape);
  }
  ir::Value* rank = c.Op("Size", {c.Op("Shape", {like})});
  ir::Node* ones = c.Emit("ConstantOfShape", {c.Sub(rank, c.Ints({1}))});
  ones->set_attr_tensor("value", ir::Tensor::FromVector(ir::DType::Int64, {1}, std::vector<int64_t>{1}));
  ir::Node* cat = c.Emit("Concat", {c.Ints({-1}), ones->outputs[0]});
  cat->set_attr_int("axis", 0);
  return cat->outputs[0];
}

Status PrecomputedGradRule(RuleContext& c) {
  if (!c.Y(1)) return c.Fail("the gradient output (output 1) is omitted");
  if (c.G(1)) return c.Fail("a gradient through the loss's gradient output is not supported");
  ir::Value* g = c.Reshape(c.G(0), BatchBroadcastShape(c, c.Y(1), c.X(0)));
  c.SetGrad(0, c.Mul(g, c.Y(1)));
  return Status::Ok();
}

}  // namespace

void RegisterLossRules(RuleTable& t) {
  for (const char* op : {"RNNTLoss", "CTCLoss", "TransducerKLLoss", "TransducerCollapsedKLLoss", "L2HintLoss"})
    t.Add("ai.asrc", op, {PrecomputedGradRule, OnlyInput0});
}

}  // namespace asrc::grad

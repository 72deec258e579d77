// Gradient rules of the `ai.asrc` loss ops whose forward kernel already computes the gradient.
//
// Contract with the loss kernels (lib/runtime/kernels): output 0 is the loss (per utterance,
// shape [B], or a scalar), output 1 is d(sum of output 0)/d(input 0), i.e. batch row b of it is
// d loss[b] / d input0[b]. The rule scales each row by the incoming gradient of its loss:
// dX = reshape(g, [-1, 1, ..., 1]) * output1. Only input 0 (the logits) gets a gradient.
#include "grad/rules.h"

namespace asrc::grad {
namespace {

Status PrecomputedGradRule(RuleContext& c) {
  if (!c.Y(1)) return c.Fail("the gradient output (output 1) is omitted");
  int rank = c.Rank(c.X(0)).value_or(4);
  std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
  shape[0] = -1;
  ir::Value* g = c.Reshape(c.G(0), c.Ints(shape));
  c.SetGrad(0, c.Mul(g, c.Y(1)));
  return Status::Ok();
}

}  // namespace

void RegisterLossRules(RuleTable& t) {
  t.Add("ai.asrc", "RNNTLoss", {PrecomputedGradRule, OnlyInput0});
  t.Add("ai.asrc", "TransducerKLLoss", {PrecomputedGradRule, OnlyInput0});
}

}  // namespace asrc::grad

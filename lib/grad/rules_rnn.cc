// Gradient rule of LSTM through the ai.asrc LSTMGrad kernel (backpropagation through time,
// lib/runtime/kernels/lstm_grad.cc). Covered: forward direction, layout 0, no sequence_lens,
// no peepholes, default activations, no clip, input_forget 0 — the prediction network's LSTM;
// anything else is refused naming the node.
#include "grad/rules.h"

namespace asrc::grad {
namespace {

Status LstmRule(RuleContext& c) {
  const ir::Node& n = c.node();
  if (n.attr_string("direction", "forward") != "forward") return c.Fail("only direction 'forward' is supported");
  if (n.attr_int("layout", 0) != 0) return c.Fail("only layout 0 is supported");
  if (n.input(4)) return c.Fail("sequence_lens is not supported");
  if (n.input(7)) return c.Fail("peepholes are not supported");
  if (n.attr_float("clip", 0.f) != 0.f || n.attr_int("input_forget", 0) != 0) return c.Fail("clip/input_forget are not supported");
  if (const ir::Attribute* a = n.attr("activations")) {
    if (!a->strings.empty() && a->strings != std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"})
      return c.Fail("only the default activations are supported");
  }
  // Inputs X, W, R, B, initial_h, initial_c, then the three output gradients.
  std::vector<ir::Value*> in = {c.X(0), c.X(1), c.X(2), c.X(3), c.X(5), c.X(6), c.G(0), c.G(1), c.G(2)};
  ir::Node* k = c.Emit("LSTMGrad", in, 6, "ai.asrc");
  k->set_attr_int("hidden_size", n.attr_int("hidden_size", 0));
  const int forward_input[6] = {0, 1, 2, 3, 5, 6};
  for (int i = 0; i < 6; ++i) c.SetGrad(forward_input[i], k->outputs[i]);
  return Status::Ok();
}

bool NotSequenceLens(const ir::Node&, int input) { return input != 4; }

}  // namespace

void RegisterRnnRules(RuleTable& t) { t.Add("", "LSTM", {LstmRule, NotSequenceLens}); }

}  // namespace asrc::grad

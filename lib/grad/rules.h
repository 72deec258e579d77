// Gradient rules: one per op, in one explicit table (RegisterAllRules in rules.cc lists the
// families; each rules_*.cc file has one Register<Family>Rules function).
//
// A rule reads one forward node through a RuleContext and emits the backward nodes that turn the
// gradients of the node's outputs into gradients of its inputs (SetGrad). It emits ordinary
// forward ops; the emitted values carry no type information.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace asrc::grad {

class Builder;  // grad.cc: the state of one BuildGradient call

class RuleContext {
 public:
  RuleContext(Builder& b, const ir::Node& node) : b_(b), node_(node) {}

  const ir::Node& node() const { return node_; }
  int64_t opset() const;
  ir::DType dtype() const;  // element type of the gradients (the trainables' dtype)

  ir::Value* X(int i) const { return node_.input(i); }
  ir::Value* Y(int i) const { return node_.output(i); }
  // Gradient of output i (nullptr when no path from it reaches the loss).
  ir::Value* G(int i);
  // Gradient of output i, or zeros of its shape when it has none.
  ir::Value* GOrZeros(int i);
  // Whether input i needs a gradient (it is on a path from a trainable to the loss).
  bool Needs(int i) const;
  // Records the gradient of input i (ignored unless Needs(i)).
  void SetGrad(int i, ir::Value* g);
  // "grad: node 'n' (Op): <message>".
  Status Fail(const std::string& message) const;

  // --- emitting ---
  ir::Node* Emit(const std::string& op, const std::vector<ir::Value*>& inputs, int num_outputs = 1,
                 const std::string& domain = "");
  ir::Value* Op(const std::string& op, const std::vector<ir::Value*>& inputs,
                const std::string& domain = "") {
    return Emit(op, inputs, 1, domain)->outputs[0];
  }
  ir::Value* Add(ir::Value* a, ir::Value* b) { return Op("Add", {a, b}); }
  ir::Value* Sub(ir::Value* a, ir::Value* b) { return Op("Sub", {a, b}); }
  ir::Value* Mul(ir::Value* a, ir::Value* b) { return Op("Mul", {a, b}); }
  ir::Value* Div(ir::Value* a, ir::Value* b) { return Op("Div", {a, b}); }
  ir::Value* Neg(ir::Value* a) { return Op("Neg", {a}); }
  // A scalar constant of dtype().
  ir::Value* Scalar(double v);
  // A 1-D int64 constant.
  ir::Value* Ints(const std::vector<int64_t>& v);
  // Shape of a value: a constant for initializers and fully known static shapes, else Shape(v).
  ir::Value* ShapeOf(ir::Value* v);
  // g (shaped like `like`, the forward value it is the gradient of) summed over the axes along
  // which `x` was broadcast to `like`; nothing is emitted when both static shapes are known and
  // equal.
  ir::Value* SumToShape(ir::Value* g, ir::Value* like, ir::Value* x);
  ir::Value* ReduceSum(ir::Value* x, const std::vector<int64_t>& axes, bool keepdims);
  ir::Value* ReduceMean(ir::Value* x, const std::vector<int64_t>& axes, bool keepdims);
  ir::Value* Unsqueeze(ir::Value* x, const std::vector<int64_t>& axes);
  ir::Value* Transpose(ir::Value* x, const std::vector<int64_t>& perm);
  ir::Value* Reshape(ir::Value* x, ir::Value* shape) { return Op("Reshape", {x, shape}); }

  // --- static facts about forward values ---
  // Rank when known (initializer, value_info, or propagated through common ops).
  std::optional<int> Rank(ir::Value* v) const;
  // Fully known static shape, when known.
  std::optional<ir::Shape> StaticShape(ir::Value* v) const;
  // Integer values of a constant input (initializer or Constant node), when it is one.
  std::optional<std::vector<int64_t>> ConstInts(ir::Value* v) const;
  // A float scalar constant input, when it is one.
  std::optional<double> ConstScalar(ir::Value* v) const;

 private:
  Builder& b_;
  const ir::Node& node_;
};

using RuleFn = std::function<Status(RuleContext&)>;

struct GradRule {
  // nullptr: the op passes no gradient (index and shape ops).
  RuleFn fn;
  // Whether input i can carry a gradient for this node (e.g. not Reshape's shape, Gather's
  // indices); nullptr: every input can.
  bool (*differentiable)(const ir::Node& node, int input) = nullptr;
};

class RuleTable {
 public:
  void Add(const std::string& domain, const std::string& op, GradRule rule);
  void AddNoGradient(const std::string& domain, const std::string& op) { Add(domain, op, {}); }
  const GradRule* Find(const std::string& domain, const std::string& op) const;
  std::vector<std::string> Ops() const;  // "domain::op", sorted
  static const RuleTable& Global();

 private:
  std::map<std::pair<std::string, std::string>, GradRule> table_;
};

void RegisterAllRules(RuleTable& t);

// Input i is differentiable only when it is input 0 (Reshape's data, Gather's ... see callers).
bool OnlyInput0(const ir::Node& node, int input);

}  // namespace asrc::grad

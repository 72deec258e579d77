// BuildGradient: find the nodes on the trainables-to-loss path, check every one has a rule,
// then walk them in reverse topological order, accumulating output gradients (Adds where a value
// has several consumers) and calling each node's rule.
#include "grad/grad.h"

#include <algorithm>
#include <set>

#include "grad/builder.h"

namespace asrc::grad {

Builder::Builder(ir::Graph& graph, const GradientOptions& options, ir::DType dtype)
    : graph_(graph), options_(options), dtype_(dtype) {}

std::string Builder::NewName(const std::string& base) {
  return graph_.UniqueName(base + "_" + std::to_string(counter_++));
}

ir::Node* Builder::Emit(const std::string& prefix, const std::string& op,
                        const std::vector<ir::Value*>& inputs, int num_outputs,
                        const std::string& domain) {
  std::vector<std::string> outs;
  for (int i = 0; i < num_outputs; ++i) outs.push_back(NewName(prefix + "/" + op));
  ++num_nodes_;
  emitted_.push_back(graph_.AddNode(op, inputs, outs, outs[0], domain));
  return emitted_.back();
}

void Builder::Rollback() {
  for (auto it = emitted_.rbegin(); it != emitted_.rend(); ++it) graph_.RemoveNode(*it);
  for (ir::Value* v : constant_values_) graph_.RemoveValue(v);
  emitted_.clear();
  constant_values_.clear();
}

ir::Value* Builder::Constant(const std::string& key, ir::Tensor t) {
  auto it = constants_.find(key);
  if (it != constants_.end()) return it->second;
  ir::Value* v = graph_.AddInitializer(NewName("grad/const"), std::move(t));
  constants_[key] = v;
  constant_values_.push_back(v);
  return v;
}

ir::Value* Builder::Accumulated(ir::Value* v) {
  auto it = contributions_.find(v);
  if (it == contributions_.end() || it->second.empty()) return nullptr;
  std::vector<ir::Value*>& parts = it->second;
  if (parts.size() == 2) {
    parts.assign(1, Emit("grad/" + v->name, "Add", {parts[0], parts[1]}, 1, "")->outputs[0]);
  } else if (parts.size() > 2) {
    // One Sum, not a chain of Adds: a weight shared by every unrolled chunk or decoder step has
    // one contribution per copy, and the runtime sums same-shape float inputs in one pass.
    parts.assign(1, Emit("grad/" + v->name, "Sum", parts, 1, "")->outputs[0]);
  }
  return parts[0];
}

void Builder::AddContribution(ir::Value* v, ir::Value* g) { contributions_[v].push_back(g); }

ir::Tensor ScalarTensor(ir::DType dtype, double v) {
  ir::Tensor t(dtype, {});
  switch (dtype) {
    case ir::DType::Float64: t.data<double>()[0] = v; break;
    case ir::DType::Float16: t.data<uint16_t>()[0] = ir::FloatToHalf(static_cast<float>(v)); break;
    default: t.data<float>()[0] = static_cast<float>(v); break;
  }
  return t;
}

namespace {

bool IsFloat(ir::DType d) {
  return d == ir::DType::Float32 || d == ir::DType::Float64 || d == ir::DType::Float16;
}

std::string NodeLabel(const ir::Node& n) {
  return "node '" + (n.name.empty() ? n.outputs.empty() || !n.outputs[0] ? std::string("?")
                                                                         : n.outputs[0]->name
                                    : n.name) +
         "' (" + (n.domain.empty() ? "" : n.domain + "::") + n.op_type + ")";
}

bool InputDifferentiable(const GradRule* rule, const ir::Node& n, int i) {
  return !rule || !rule->differentiable || rule->differentiable(n, i);
}

// The nodes on a path from a trainable to the loss, in reverse topological order, and in
// *needed the values on such paths (the ones whose gradients are wanted). Checks that every such
// node has a rule and every trainable is reached.
Result<std::vector<ir::Node*>> FindPath(const ir::Graph& graph, ir::Value* loss_v,
                                        const std::vector<ir::Value*>& weights,
                                        std::set<ir::Value*>* needed) {
  ASRC_ASSIGN_OR_RETURN(std::vector<ir::Node*> order, graph.TopoOrder());
  const RuleTable& rules = RuleTable::Global();

  // Forward: values that depend on a trainable through differentiable inputs. A node without a
  // rule passes the dependence on (so that it is found on the path and reported).
  std::set<ir::Value*> reach(weights.begin(), weights.end());
  for (ir::Node* n : order) {
    const GradRule* rule = rules.Find(n->domain, n->op_type);
    if (rule && !rule->fn) continue;  // passes no gradient
    bool any = false;
    for (int i = 0; i < n->num_inputs() && !any; ++i)
      any = n->inputs[i] && reach.count(n->inputs[i]) && InputDifferentiable(rule, *n, i);
    if (any)
      for (ir::Value* o : n->outputs)
        if (o) reach.insert(o);
  }
  // Backward: of those, the ones the loss depends on, and the nodes between.
  if (reach.count(loss_v)) needed->insert(loss_v);
  std::vector<ir::Node*> path;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    ir::Node* n = *it;
    bool on = false;
    for (ir::Value* o : n->outputs) on = on || (o && needed->count(o));
    if (!on) continue;
    const GradRule* rule = rules.Find(n->domain, n->op_type);
    bool any = false;
    for (int i = 0; i < n->num_inputs(); ++i) {
      ir::Value* in = n->inputs[i];
      if (in && reach.count(in) && InputDifferentiable(rule, *n, i)) {
        needed->insert(in);
        any = true;
      }
    }
    if (any) path.push_back(n);
  }
  for (ir::Node* n : path)
    if (!rules.Find(n->domain, n->op_type)) return Error("grad: " + NodeLabel(*n) + ": no gradient rule");
  for (ir::Value* w : weights)
    if (!needed->count(w))
      return Error("grad: loss '" + loss_v->name + "' does not depend on trainable '" + w->name +
                   "' (through differentiable ops)");
  return path;
}

}  // namespace

std::string Builder::Label(const ir::Node& n) { return NodeLabel(n); }

Result<GradientGraph> BuildGradient(ir::Graph& graph, const std::string& loss,
                                    const std::vector<std::string>& trainable,
                                    const GradientOptions& options) {
  if (options.opset < 13)
    return Error("grad: opset " + std::to_string(options.opset) + " is not supported (13 or later)");
  ir::Value* loss_v = graph.FindValue(loss);
  if (!loss_v) return Error("grad: loss '" + loss + "' is not a value of graph '" + graph.name + "'");
  if (trainable.empty()) return Error("grad: no trainable initializers given");
  std::vector<ir::Value*> weights;
  for (const std::string& name : trainable) {
    ir::Value* w = graph.FindValue(name);
    if (!w || !w->is_constant())
      return Error("grad: trainable '" + name + "' is not an initializer of graph '" + graph.name + "'");
    if (!IsFloat(w->initializer->dtype()))
      return Error("grad: trainable '" + name + "' is " + ir::DTypeName(w->initializer->dtype()) +
                   ", not a float type");
    if (std::find(weights.begin(), weights.end(), w) != weights.end())
      return Error("grad: trainable '" + name + "' is listed twice");
    weights.push_back(w);
  }
  ir::DType dtype = weights[0]->initializer->dtype();
  std::set<ir::Value*> needed;
  ASRC_ASSIGN_OR_RETURN(std::vector<ir::Node*> path, FindPath(graph, loss_v, weights, &needed));

  const RuleTable& rules = RuleTable::Global();
  Builder b(graph, options, dtype);
  {
    ir::Node* seed = b.Emit("grad/" + loss, "ConstantOfShape", {b.ShapeOf(loss_v)}, 1, "");
    seed->set_attr_tensor("value", ScalarTensor(dtype, 1.0).Reshaped({1}));
    b.AddContribution(loss_v, seed->outputs[0]);
  }
  b.SetNeeded(&needed);
  for (ir::Node* n : path) {
    bool any = false;
    for (ir::Value* o : n->outputs) any = any || (o && b.Accumulated(o));
    if (!any) continue;  // every output's gradient path ended in a rule that gave none
    RuleContext ctx(b, *n);
    Status st = rules.Find(n->domain, n->op_type)->fn(ctx);
    if (!st.ok()) {
      b.Rollback();
      return st;
    }
  }
  std::vector<ir::Value*> grads;
  for (ir::Value* w : weights) {
    grads.push_back(b.Accumulated(w));
    if (!grads.back()) {
      b.Rollback();
      return Error("grad: no gradient reached trainable '" + w->name + "'");
    }
  }
  GradientGraph out;
  for (size_t k = 0; k < weights.size(); ++k) {
    ir::Value* w = weights[k];
    ir::Node* id = graph.AddNode("Identity", {grads[k]}, {graph.UniqueName(w->name + "_grad")},
                                  "grad/" + w->name + "/output");
    ++out.num_backward_nodes;
    graph.outputs.push_back(id->outputs[0]);
    out.gradient_outputs.push_back(id->outputs[0]->name);
  }
  out.num_backward_nodes += b.num_nodes();
  if (options.trainables_as_inputs) {
    for (ir::Value* w : weights) {
      out.trainable_values.push_back(std::move(*w->initializer));
      w->initializer.reset();
      graph.initializers.erase(std::remove(graph.initializers.begin(), graph.initializers.end(), w),
                               graph.initializers.end());
      graph.inputs.push_back(w);
    }
  }
  return out;
}

}  // namespace asrc::grad

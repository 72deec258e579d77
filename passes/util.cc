#include "passes/util.h"

#include <algorithm>

#include "pass/pass.h"

namespace asrc::passes {

bool IsFloatConstant(const ir::Value* v, int rank) {
  const ir::Tensor* t = ConstantOf(v);
  return t && t->dtype() == ir::DType::Float32 && (rank < 0 || t->rank() == rank);
}

bool IsGraphOutput(const ir::Graph& g, const ir::Value* v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

TensorKey KeyOf(const ir::Tensor& t) {
  return TensorKey{t.buffer().get(), t.offset(), t.dtype(), t.shape()};
}

bool NameSelected(const ir::Node* n, const std::vector<std::string>& nodes,
                  const std::vector<std::string>& exclude) {
  return pass::AnyGlobMatch(nodes, n->name) && !pass::AnyGlobMatch(exclude, n->name);
}

void TakeOverOutput(ir::Node* old_node, int old_out, ir::Node* new_node, int new_out) {
  ir::Value* keep = old_node->outputs[old_out];
  ir::Value* tmp = new_node->outputs[new_out];
  new_node->outputs[new_out] = keep;
  old_node->outputs[old_out] = tmp;
  keep->producer = new_node;
  keep->producer_output = new_out;
  if (tmp) {
    tmp->producer = old_node;
    tmp->producer_output = old_out;
  }
}

ir::Value* AddConst(ir::Graph& g, const std::string& base, ir::Tensor t) {
  return g.AddInitializer(g.UniqueName(base), std::move(t));
}

std::string NodeLabel(const ir::Node* n) {
  if (!n->name.empty()) return n->name;
  std::string out = n->op_type;
  if (!n->outputs.empty() && n->outputs[0]) out += " producing '" + n->outputs[0]->name + "'";
  return out;
}

int RemoveDeadCode(ir::Graph& g) {
  int removed = 0;
  bool again = true;
  while (again) {
    again = false;
    std::vector<ir::Node*> nodes = g.nodes();
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      ir::Node* n = *it;
      bool live = false;
      for (ir::Value* o : n->outputs) {
        if (!o) continue;
        if (!o->uses.empty() || IsGraphOutput(g, o)) {
          live = true;
          break;
        }
      }
      if (live) continue;
      g.RemoveNode(n);
      ++removed;
      again = true;
    }
  }
  std::vector<ir::Value*> inits = g.initializers;
  for (ir::Value* v : inits) {
    if (!v->uses.empty()) continue;
    if (IsGraphOutput(g, v)) continue;
    if (std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end()) continue;
    g.RemoveValue(v);
    ++removed;
  }
  return removed;
}

}  // namespace asrc::passes

#include "passes/util.h"

#include <algorithm>
#include <functional>

namespace asrc::passes {

const ir::Tensor* ConstantOf(const ir::Value* v) {
  if (!v) return nullptr;
  if (v->initializer) return &*v->initializer;
  const ir::Node* p = v->producer;
  if (p && p->op_type == "Constant" && p->domain.empty()) {
    const ir::Attribute* a = p->attr("value");
    if (a && a->kind == ir::Attribute::Kind::Tensor) return &a->t;
  }
  return nullptr;
}

bool IsFloatConstant(const ir::Value* v, int rank) {
  const ir::Tensor* t = ConstantOf(v);
  return t && t->dtype() == ir::DType::Float32 && (rank < 0 || t->rank() == rank);
}

void TakeOverOutput(ir::Graph& g, ir::Node* old_node, int old_out, ir::Node* new_node,
                    int new_out) {
  ir::Value* keep = old_node->outputs[old_out];
  ir::Value* tmp = new_node->outputs[new_out];
  new_node->outputs[new_out] = keep;
  old_node->outputs[old_out] = tmp;
  // The output's static type may change in dtype only if the pass says so; keep it.
  g.rebuild_uses();
}

ir::Value* AddConst(ir::Graph& g, const std::string& base, ir::Tensor t) {
  return g.add_initializer(g.unique_name(base), std::move(t));
}

std::string NodeLabel(const ir::Node* n) {
  if (!n->name.empty()) return n->name;
  std::string out = n->op_type;
  if (!n->outputs.empty() && n->outputs[0]) out += " producing '" + n->outputs[0]->name + "'";
  return out;
}

std::vector<float> FloatValues(const ir::Tensor& t) {
  std::vector<float> v(t.numel());
  if (t.dtype() == ir::DType::Float32 && t.numel() > 0) {
    std::copy(t.data<float>(), t.data<float>() + t.numel(), v.begin());
  }
  return v;
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
        if (!o->uses.empty() ||
            std::find(g.outputs.begin(), g.outputs.end(), o) != g.outputs.end()) {
          live = true;
          break;
        }
      }
      if (live) continue;
      g.remove_node(n);
      ++removed;
      again = true;
    }
  }
  std::vector<ir::Value*> inits = g.initializers;
  for (ir::Value* v : inits) {
    if (!v->uses.empty()) continue;
    if (std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end()) continue;
    if (std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end()) continue;
    g.remove_value(v);
    ++removed;
  }
  return removed;
}

void ForEachGraph(ir::Graph& g, const std::function<void(ir::Graph&)>& fn) {
  for (ir::Node* n : g.nodes()) {
    for (auto& a : n->attributes) {
      if (a.g) ForEachGraph(*a.g, fn);
      for (auto& sg : a.graphs) ForEachGraph(*sg, fn);
    }
  }
  fn(g);
}

}  // namespace asrc::passes

#include "runtime/fusion.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace asrc::runtime {

namespace {

bool IsOp(const ir::Node* n, const char* op) {
  return n && (n->domain.empty() || n->domain == "ai.onnx") && n->op_type == op;
}

// The other input of a two-input node, given one of them; nullptr when `v` is not an input.
ir::Value* OtherInput(const ir::Node* n, const ir::Value* v) {
  if (n->num_inputs() != 2) return nullptr;
  if (n->inputs[0] == v && n->inputs[1] != v) return n->inputs[1];
  if (n->inputs[1] == v && n->inputs[0] != v) return n->inputs[0];
  return nullptr;
}

class Matcher {
 public:
  Matcher(const std::vector<ir::Node*>& order, const FusionInputs& in) : in_(in) {
    for (ir::Node* n : order) {
      in_order_.insert(n);
      for (ir::Value* v : n->inputs)
        if (v) readers_[v].push_back(n);
    }
  }

  // The one node of this order that reads `v`, when `v` is read exactly once (counting
  // subgraphs) and is not a graph output; else nullptr.
  ir::Node* SoleReader(const ir::Value* v) const {
    if (!v || in_.is_graph_output(v) || in_.uses(v) != 1) return nullptr;
    auto it = readers_.find(v);
    return it != readers_.end() && it->second.size() == 1 ? it->second[0] : nullptr;
  }
  bool ReadOnlyBy(const ir::Value* v, const ir::Node* n, int times) const {
    if (!v || in_.is_graph_output(v) || in_.uses(v) != times) return false;
    auto it = readers_.find(v);
    if (it == readers_.end()) return false;
    for (const ir::Node* r : it->second)
      if (r != n) return false;
    return static_cast<int>(it->second.size()) == times;
  }
  bool Planned(const ir::Node* n) const { return in_order_.count(n) > 0; }
  const ir::Tensor* Const(const ir::Value* v) const { return v ? in_.constant(v) : nullptr; }

  // A float32 constant of at most one dimension with 1 or `n` entries (`allow_one`) or n.
  const ir::Tensor* VectorConst(const ir::Value* v, int64_t n, bool allow_one) const {
    const ir::Tensor* t = Const(v);
    if (!t || t->dtype() != ir::DType::Float32 || t->rank() > 1) return nullptr;
    return t->numel() == n || (allow_one && t->numel() == 1) ? t : nullptr;
  }

  struct Chain {
    std::vector<ir::Node*> nodes;  // absorbed, in execution order
    std::unique_ptr<ir::Node> fused;
  };

  // The quantized-product chain whose MatMulInteger is `mm`, if it matches (see fusion.h).
  bool MatchQuantMatMul(ir::Node* mm, Chain* chain) const {
    if (!IsOp(mm, "MatMulInteger") || mm->num_inputs() < 3 || mm->outputs.size() != 1) return false;
    ir::Value *xq = mm->input(0), *w = mm->input(1), *xzp = mm->input(2), *wzp = mm->input(3);
    if (!xq || !xzp || !xq->producer) return false;
    ir::Node* dql = xq->producer;
    if (!IsOp(dql, "DynamicQuantizeLinear") || !Planned(dql) || dql->outputs.size() != 3 ||
        dql->output(0) != xq || dql->output(2) != xzp || !dql->output(1))
      return false;
    const ir::Tensor* wt = Const(w);
    if (!wt || wt->rank() != 2 ||
        (wt->dtype() != ir::DType::Int8 && wt->dtype() != ir::DType::Uint8))
      return false;
    if (wzp && !Const(wzp)) return false;
    const int64_t N = wt->dim(1);

    ir::Node* cast = SoleReader(mm->output(0));
    if (!IsOp(cast, "Cast") || cast->attr_int("to", 0) != static_cast<int64_t>(ir::DType::Float32))
      return false;
    ir::Node* mul = SoleReader(cast->output(0));
    if (!IsOp(mul, "Mul")) return false;
    ir::Value* scale = OtherInput(mul, cast->output(0));
    if (!scale || !scale->producer) return false;
    ir::Node* smul = scale->producer;
    if (!IsOp(smul, "Mul") || !Planned(smul) || SoleReader(scale) != mul) return false;
    ir::Value* xs = dql->output(1);
    ir::Value* ws = OtherInput(smul, xs);
    if (!ws || !VectorConst(ws, N, true)) return false;
    ir::Node* last = mul;
    ir::Value* bias = nullptr;
    if (ir::Node* add = SoleReader(mul->output(0)); IsOp(add, "Add")) {
      ir::Value* b = OtherInput(add, mul->output(0));
      if (b && VectorConst(b, N, false)) {
        bias = b;
        last = add;
      }
    }

    const bool own_dql = ReadOnlyBy(xq, mm, 1) && ReadOnlyBy(xzp, mm, 1) && ReadOnlyBy(xs, smul, 1);
    auto f = std::make_unique<ir::Node>();
    f->domain = "com.microsoft";
    f->owner = mm->owner;
    if (own_dql) {
      f->op_type = "DynamicQuantizeMatMul";
      f->inputs = {dql->input(0), w, ws, wzp, bias};
      chain->nodes = {dql};
    } else {
      f->op_type = "MatMulIntegerToFloat";
      f->inputs = {xq, w, xs, ws, xzp, wzp, bias};
      chain->nodes = {};
    }
    while (!f->inputs.empty() && !f->inputs.back()) f->inputs.pop_back();
    f->outputs = {last->output(0)};
    f->name = mm->name + (own_dql ? "+dql" : "") + "+cast+mul" + (bias ? "+add" : "");
    for (ir::Node* n : {mm, cast, smul, mul}) chain->nodes.push_back(n);
    if (bias) chain->nodes.push_back(last);
    chain->fused = std::move(f);
    return true;
  }

 private:
  const FusionInputs& in_;
  std::unordered_set<const ir::Node*> in_order_;
  std::unordered_map<const ir::Value*, std::vector<ir::Node*>> readers_;
};

}  // namespace

FusionResult FuseNodes(const std::vector<ir::Node*>& order, const FusionInputs& in) {
  FusionResult r;
  Matcher m(order, in);
  std::unordered_map<const ir::Node*, size_t> pos;
  for (size_t i = 0; i < order.size(); ++i) pos[order[i]] = i;
  std::unordered_set<const ir::Node*> absorbed;
  std::unordered_map<const ir::Node*, ir::Node*> replace_last;  // chain's last node -> fused
  for (ir::Node* n : order) {
    Matcher::Chain c;
    if (!m.MatchQuantMatMul(n, &c)) continue;
    bool taken = false;
    for (ir::Node* a : c.nodes) taken |= absorbed.count(a) > 0;
    if (taken) continue;
    // The chain's last node in execution order is where the fused node goes.
    ir::Node* last = c.nodes[0];
    for (ir::Node* a : c.nodes) {
      absorbed.insert(a);
      if (pos[a] > pos[last]) last = a;
    }
    replace_last[last] = c.fused.get();
    r.owned.push_back(std::move(c.fused));
    ++r.fused_chains;
  }
  for (ir::Node* n : order) {
    auto it = replace_last.find(n);
    if (it != replace_last.end()) r.order.push_back(it->second);
    else if (!absorbed.count(n)) r.order.push_back(n);
  }
  return r;
}

}  // namespace asrc::runtime

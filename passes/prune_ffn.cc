// Structured pruning of feed-forward hidden units (pattern in prune.h).
#include <cmath>
#include <set>

#include "passes/prune_rules.h"

namespace asrc::passes::prune {

namespace {

// Elementwise ops that act on each channel independently (other inputs must be scalar constants).
bool ElementwiseOp(const std::string& op) {
  static const std::set<std::string> ops = {"Sigmoid", "Mul", "Relu", "Tanh", "Erf", "Add", "Div",
                                            "Sub", "Gelu", "LeakyRelu", "Elu", "Softplus",
                                            "HardSigmoid", "HardSwish", "Clip", "Identity", "Neg"};
  return ops.count(op) > 0;
}

struct FfnMatch {
  Linear l1;  // [d, ff] (+ b1)
  ir::Node* mm2;
};

// Follows the activation region from `h` (the [.., ff] hidden value) to the single MatMul that
// consumes it; every node in between must be elementwise with scalar-constant side inputs.
ir::Node* FindSecondMatMul(const ir::Graph& g, ir::Value* h) {
  std::set<const ir::Value*> region = {h};
  std::vector<ir::Value*> work = {h};
  ir::Node* mm2 = nullptr;
  std::set<const ir::Node*> seen;
  while (!work.empty()) {
    ir::Value* v = work.back();
    work.pop_back();
    if (IsGraphOutput(g, v)) return nullptr;
    for (const ir::Use& u : v->uses) {
      ir::Node* c = u.node;
      if (c->owner != &g) return nullptr;
      if (c->op_type == "MatMul" && u.input_index == 0 && IsFloatConstant(c->input(1), 2)) {
        if (mm2 && mm2 != c) return nullptr;
        mm2 = c;
        continue;
      }
      if (!c->domain.empty() || !ElementwiseOp(c->op_type) || c->outputs.size() != 1) return nullptr;
      if (!seen.insert(c).second) continue;
      for (ir::Value* in : c->inputs) {
        if (!in || region.count(in)) continue;
        const ir::Tensor* t = ConstantOf(in);
        if (!t || t->numel() != 1) return nullptr;  // a non-scalar side input would need slicing
      }
      region.insert(c->outputs[0]);
      work.push_back(c->outputs[0]);
    }
  }
  return mm2;
}

std::vector<FfnMatch> FindFfns(ir::Graph& g, const std::vector<std::string>& nodes,
                               const std::vector<std::string>& exclude) {
  std::vector<FfnMatch> out;
  for (ir::Node* mm1 : g.nodes()) {
    if (!IsWeightMatMul(mm1) || !NameSelected(mm1, nodes, exclude)) continue;
    FfnMatch m{LinearAt(g, mm1), nullptr};
    ir::Value* h = m.l1.out();
    if (IsGraphOutput(g, h)) continue;
    if (!m.l1.add && h->uses.size() == 1 && h->uses[0].node->op_type == "MatMul") continue;  // low-rank pair, no activation
    m.mm2 = FindSecondMatMul(g, h);
    if (!m.mm2 || m.mm2 == mm1) continue;
    if (ConstantOf(m.mm2->input(1))->dim(0) != m.l1.w().dim(1)) continue;
    if (!NameSelected(m.mm2, nodes, exclude)) continue;
    out.push_back(m);
  }
  return out;
}

// data_aware taps: the input of each W2.
void FfnTaps(const GraphSite& site, pass::PassContext& ctx, std::vector<std::string>* taps) {
  for (const FfnMatch& m : FindFfns(site.graph, ctx.GetStrings("nodes"), ctx.GetStrings("exclude_nodes"))) {
    taps->push_back(m.mm2->input(0)->name);
  }
}

bool PruneFfns(GraphSite& site, const pass::StatsMap* stats, pass::PassContext& ctx) {
  ir::Graph& g = site.graph;
  const double sparsity = ctx.GetFloat("sparsity");
  const int64_t multiple = ctx.GetInt("multiple_of");
  bool changed = false;
  for (const FfnMatch& m : FindFfns(g, ctx.GetStrings("nodes"), ctx.GetStrings("exclude_nodes"))) {
    const Linear l2 = LinearAt(g, m.mm2);
    const ir::Tensor& w1 = m.l1.w();
    const ir::Tensor& w2 = l2.w();
    const int64_t d = w1.dim(0), ff = w1.dim(1), n2 = w2.dim(1);
    const int64_t keep_n = KeepCount(ff, sparsity, multiple, 1);
    if (keep_n >= ff) {
      ctx.Bump("skipped_nothing_to_remove");
      continue;
    }
    std::vector<double> score(ff);
    const std::vector<float> rms = CalibrationRms(stats, m.mm2->input(0), ff, ctx);
    for (int64_t j = 0; j < ff; ++j) {
      score[j] = (rms.empty() ? std::sqrt(ColNorm2(w1, j)) : rms[j]) * std::sqrt(RowNorm2(w2, j));
    }
    const std::vector<int64_t> keep = TopK(score, keep_n);
    SliceLinearOut(g, m.l1, keep);
    SliceLinearIn(g, l2, keep);
    ctx.Bump("ffn_pruned");
    ctx.Bump("hidden_units_removed", ff - keep_n);
    ctx.Bump("params_removed", (ff - keep_n) * (d + n2 + (m.l1.add ? 1 : 0)));
    changed = true;
  }
  return changed;
}

}  // namespace

const PruneRule kFfnRule = {"ffn", FfnTaps, PruneFfns};

}  // namespace asrc::passes::prune

// Unstructured magnitude pruning (prune.h): zeros, stored densely.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "passes/prune_rules.h"

namespace asrc::passes::prune {

namespace {

struct Target {
  ir::Graph* g;
  ir::Node* n;  // its input 1 is the weight
};

// One threshold for all targets (scope=global): the k-th smallest |w| over every target's
// weight (a weight read by several nodes counts once per reader). Null when k is 0.
std::optional<float> GlobalThreshold(const std::vector<Target>& targets, double sparsity) {
  std::vector<float> all;
  for (const auto& t : targets) {
    const ir::Tensor& w = *ConstantOf(t.n->input(1));
    for (int64_t k = 0; k < w.numel(); ++k) all.push_back(std::fabs(w.data<float>()[k]));
  }
  size_t k = static_cast<size_t>(sparsity * all.size());
  if (k == 0) return std::nullopt;
  std::nth_element(all.begin(), all.begin() + (k - 1), all.end());
  return all[k - 1];
}

struct Zeroed {
  ir::Tensor w;
  int64_t zeros;  // entries at or below the threshold (zero already, or set to zero)
};

// `w` with its smallest-|w| entries zeroed: those <= `global` (when set), else exactly the
// fraction `sparsity` of them. Null when that is no entry.
std::optional<Zeroed> Zero(const ir::Tensor& w, double sparsity, std::optional<float> global) {
  float threshold = global.value_or(0.f);
  size_t k = static_cast<size_t>(sparsity * w.numel());
  if (!global) {
    if (k == 0) return std::nullopt;
    std::vector<float> mags(w.numel());
    for (int64_t i = 0; i < w.numel(); ++i) mags[i] = std::fabs(w.data<float>()[i]);
    std::nth_element(mags.begin(), mags.begin() + (k - 1), mags.end());
    threshold = mags[k - 1];
  }
  ir::Tensor out = w.Clone();
  int64_t z = 0;
  float* p = out.data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    // Ties at the threshold: stop at exactly k zeros per layer.
    if (std::fabs(p[i]) <= threshold && (global || z < static_cast<int64_t>(k))) {
      if (p[i] != 0) p[i] = 0;
      ++z;
    }
  }
  return Zeroed{std::move(out), z};
}

}  // namespace

Result<bool> PruneMagnitude(ir::Model& model, pass::PassContext& ctx) {
  const double sparsity = ctx.GetFloat("sparsity");
  const bool global = ctx.GetString("scope") == "global";
  const int64_t min_elements = ctx.GetInt("min_elements");
  const auto graphs = ctx.GetStrings("graphs"), nodes = ctx.GetStrings("nodes"),
             exclude = ctx.GetStrings("exclude_nodes");
  std::vector<Target> targets;
  for (const GraphSite& site : SelectGraphs(model, graphs)) {
    for (ir::Node* n : site.graph.nodes()) {
      if (!n->domain.empty() || !NameSelected(n, nodes, exclude)) continue;
      if (n->op_type != "MatMul" && n->op_type != "Gemm" && n->op_type != "Conv") continue;
      if (!IsFloatConstant(n->input(1)) || ConstantOf(n->input(1))->numel() < min_elements) continue;
      targets.push_back({&site.graph, n});
    }
  }
  if (targets.empty()) return false;
  std::optional<float> threshold;
  if (global) {
    threshold = GlobalThreshold(targets, sparsity);
    if (!threshold) return false;
  }
  int64_t zeroed = 0, total = 0;
  std::map<const ir::Value*, ir::Value*> done;  // a weight read by several nodes of one graph
  std::map<TensorKey, ir::Tensor> tied;         // a weight whose buffer several graphs share
  auto rewrite = [&](GraphSite& site) -> Result<bool> {
    bool changed = false;
    for (const Target& t : targets) {
      if (t.g != &site.graph) continue;
      ir::Value* wv = t.n->input(1);
      auto it = done.find(wv);
      if (it != done.end()) {
        t.g->set_input(t.n, 1, it->second);
        continue;
      }
      const ir::Tensor& w = *ConstantOf(wv);
      const TensorKey key = KeyOf(w);
      auto tt = tied.find(key);
      if (tt == tied.end()) {
        std::optional<Zeroed> out = Zero(w, sparsity, threshold);
        if (!out) continue;
        zeroed += out->zeros;
        total += out->w.numel();
        tt = tied.emplace(key, std::move(out->w)).first;
      }
      ir::Value* nv = AddConst(*t.g, wv->name + "_pruned", tt->second);  // shares the buffer
      t.g->set_input(t.n, 1, nv);
      done[wv] = nv;
      changed = true;
    }
    return changed;
  };
  ASRC_ASSIGN_OR_RETURN(bool changed, RewriteGraphs(model, graphs, rewrite));
  ctx.Bump("weights_zeroed", zeroed);
  ctx.Bump("weights_considered", total);
  ctx.Note("magnitude pruning: " + std::to_string(zeroed) + " of " + std::to_string(total) +
           " weights are zero, but they are still stored and multiplied densely: bytes on disk "
           "and latency do not change (only a compressor or sparse kernels would gain)");
  return changed;
}

}  // namespace asrc::passes::prune

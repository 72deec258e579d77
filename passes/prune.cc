#include "passes/prune.h"

#include <algorithm>
#include <set>

#include "passes/driver.h"
#include "passes/prune_rules.h"

namespace asrc::passes {

namespace {

// Intermediate value_info may record old widths: drop it (graph inputs/outputs are exact).
void DropIntermediateValueInfo(ir::Graph& g) {
  for (const auto& v : g.values()) {
    if (v->producer && !v->initializer && v->has_value_info && !IsGraphOutput(g, v.get())) {
      v->has_value_info = false;
      v->type = ir::TypeInfo{};
    }
  }
}

Result<bool> Structured(ir::Model& model, pass::PassContext& ctx) {
  // Every structured target, in the order they run whatever the option's order.
  const std::vector<const prune::PruneRule*> all = {&prune::kFfnRule, &prune::kHeadsRule, &prune::kConvRule};
  std::set<std::string> targets;
  for (const std::string& t : ctx.GetStrings("targets")) {
    if (std::none_of(all.begin(), all.end(), [&](const prune::PruneRule* r) { return t == r->target; })) {
      return Error("prune: option 'targets': unknown target '" + t + "' (ffn, heads, conv)");
    }
    targets.insert(t);
  }
  std::vector<const prune::PruneRule*> rules;
  for (const prune::PruneRule* r : all) {
    if (targets.count(r->target)) rules.push_back(r);
  }
  const auto graphs = ctx.GetStrings("graphs");
  // data_aware: one calibration run over the unmodified model, tapping the input of each closing
  // projection (FFN W2, attention Wo) of the top-level graphs (calibration runs those); rewrites
  // keep those value names.
  pass::ModelStats stats;
  const bool data_aware = ctx.GetBool("data_aware");
  if (data_aware) {
    pass::Taps taps;
    for (const GraphSite& site : SelectGraphs(model, graphs)) {
      if (site.is_subgraph()) continue;
      std::vector<std::string> names;
      for (const prune::PruneRule* r : rules) {
        if (r->taps) r->taps(site, ctx, &names);
      }
      if (names.empty()) continue;
      auto& role_taps = taps[site.file.role];
      role_taps.insert(role_taps.end(), names.begin(), names.end());
    }
    if (!taps.empty()) {
      if (!ctx.calibrate) {
        return Error("prune: data_aware=true needs calibration data (pipeline \"calibration\" or the eval set)");
      }
      ASRC_ASSIGN_OR_RETURN(stats, ctx.calibrate(model, taps));
    }
  }
  ASRC_ASSIGN_OR_RETURN(bool changed, RewriteGraphs(model, graphs, [&](GraphSite& site) -> Result<bool> {
    const std::string& role = site.file.role;
    const pass::StatsMap* st = data_aware && stats.count(role) ? &stats[role] : nullptr;
    bool g_changed = false;
    for (const prune::PruneRule* r : rules) g_changed |= r->apply(site, st, ctx);
    if (g_changed) DropIntermediateValueInfo(site.graph);
    return g_changed;
  }));
  const auto& c = ctx.counters();
  auto count = [&](const char* k) { return c.count(k) ? c.at(k) : int64_t{0}; };
  if (targets.count("ffn")) {
    ctx.Note(count("ffn_pruned") ? "structured ffn: hidden units removed physically (params, bytes and compute shrink)"
                                 : "structured ffn: no FFN pattern MatMul -> activation -> MatMul found");
  }
  if (targets.count("heads")) {
    ctx.Note(count("attention_pruned")
                 ? "structured heads: whole heads removed from Q/K/V/output projections and head-count "
                   "reshapes; exact for heads whose value or output weights are zero, otherwise lossy"
                 : "structured heads: no prunable multi-head attention found");
  }
  if (targets.count("conv")) {
    ctx.Note(count("conv_pruned")
                 ? "structured conv: depthwise channels removed (GLU halves, depthwise weights, norm, "
                   "pw2 rows); approximate: the inner LayerNorm is rescaled as if each removed channel "
                   "sat at the per-frame mean, and its activation at that point is folded into the pw2 bias"
                 : "structured conv: no conformer convolution module found");
  }
  return changed;
}

}  // namespace

std::vector<pass::OptionSpec> PrunePass::options() const {
  using nlohmann::json;
  return {
      {"method", "magnitude",
       "magnitude: unstructured zeros (saves nothing unless stored/run sparse); structured: "
       "remove FFN hidden units, attention heads and/or depthwise-conv channels physically",
       {"magnitude", "structured"}},
      {"sparsity", 0.3, "magnitude: fraction of weights zeroed; structured: fraction of FFN hidden units removed",
       {}, 0, 0.99},
      {"targets", json::array({"ffn"}),
       "structured: what to remove, any of \"ffn\" (hidden units), \"heads\" (attention heads), "
       "\"conv\" (depthwise-conv channels of the conformer conv module)", {}},
      {"heads_sparsity", 0.25,
       "structured heads: fraction of each attention's heads removed (rounded to whole heads)", {}, 0, 0.99},
      {"min_heads", int64_t{1}, "structured heads: never keep fewer heads than this", {}, 1, 4096},
      {"conv_sparsity", 0.25,
       "structured conv: fraction of depthwise-conv channels removed (lossy: see prune.h)", {}, 0, 0.99},
      {"data_aware", false,
       "structured ffn/heads: score units by their calibration activation RMS at the closing "
       "projection's input times its row norms (FFN W2, attention Wo) instead of weights alone; "
       "needs calibration data. Conv channels are always scored from weights (see prune.h)", {}},
      {"resize_caches", true,
       "structured heads/conv: narrow streaming caches (graph inputs/outputs and model.json "
       "streaming.cache shapes) with the pruned layers; false leaves cached layers alone", {}},
      {"scope", "per-layer", "magnitude: one threshold per layer or one global threshold",
       {"per-layer", "global"}},
      {"multiple_of", int64_t{8}, "structured ffn/conv: keep a multiple of this many units or channels",
       {}, 1, 4096},
      {"min_elements", int64_t{1024}, "magnitude: leave smaller weights alone", {}, 0, 1e12},
      {"graphs", json::array({"*"}), "graph roles (glob patterns)", {}},
      {"nodes", json::array({"*"}),
       "node names (glob patterns); structured: every MatMul/Conv of a unit must match", {}},
      {"exclude_nodes", json::array(), "node names to leave alone (glob patterns)", {}},
  };
}

Result<bool> PrunePass::Run(ir::Model& model, pass::PassContext& ctx) {
  if (ctx.GetString("method") == "structured") return Structured(model, ctx);
  return prune::PruneMagnitude(model, ctx);
}

}  // namespace asrc::passes

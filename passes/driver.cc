#include "passes/driver.h"

#include "pass/pass.h"
#include "passes/util.h"

namespace asrc::passes {

namespace {

void AddTree(ir::Model& model, ir::GraphFile& file, ir::Graph& g, std::vector<GraphSite>* out) {
  for (ir::Node* n : g.nodes()) {
    for (auto& a : n->attributes) {
      if (a.g) AddTree(model, file, *a.g, out);
      for (auto& sg : a.graphs) {
        if (sg) AddTree(model, file, *sg, out);
      }
    }
  }
  out->push_back(GraphSite{model, file, g});
}

}  // namespace

std::vector<GraphSite> SelectGraphs(ir::Model& model, const std::vector<std::string>& roles) {
  std::vector<GraphSite> out;
  for (auto& gf : model.graphs) {
    if (gf.graph && pass::AnyGlobMatch(roles, gf.role)) AddTree(model, gf, *gf.graph, &out);
  }
  return out;
}

Result<bool> RewriteGraphs(ir::Model& model, const std::vector<std::string>& roles,
                           const std::function<Result<bool>(GraphSite&)>& rewrite,
                           const RewriteOptions& options) {
  bool any = false, tree_changed = false;
  for (GraphSite& site : SelectGraphs(model, roles)) {
    ASRC_ASSIGN_OR_RETURN(bool changed, rewrite(site));
    tree_changed |= changed;
    any |= changed;
    // The top-level graph comes last in its tree: sweep it when anything in the tree changed.
    const bool sweep = site.is_subgraph() ? changed : tree_changed;
    if (sweep && options.remove_dead_code) RemoveDeadCode(site.graph);
    if (!site.is_subgraph()) tree_changed = false;
  }
  return any;
}

}  // namespace asrc::passes

// The driver every pass rewrites through: which graphs, in which order, and the clean-up after
// each graph's batch of rewrites.
//
// A pass selects graph roles (its `graphs` option); the driver visits each selected top-level
// graph together with every subgraph it holds (If branches, Loop and Scan bodies, at any depth),
// each subgraph before the graph that holds it. A rewrite works on one graph at a time (new nodes
// and initializers go into that graph; a subgraph may read values of the graphs around it).
// After a graph's batch (one call of the rewrite) the use lists are already in sync (passes edit
// through the Graph helpers and util.h's TakeOverOutput, none of which rebuilds them), so the
// only clean-up is one dead-code sweep: of every graph whose batch changed something, and of
// each top-level graph one of whose subgraphs changed (its initializers may have lost their last
// reader).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/model.h"

namespace asrc::passes {

struct GraphSite {
  ir::Model& model;
  ir::GraphFile& file;  // the top-level graph file (role, opsets) that holds `graph`
  ir::Graph& graph;     // file.graph itself, or a subgraph inside it
  bool is_subgraph() const { return graph.parent != nullptr; }
};

// Every graph of the files whose role matches one of `roles` (glob patterns), subgraphs first.
std::vector<GraphSite> SelectGraphs(ir::Model& model, const std::vector<std::string>& roles);

struct RewriteOptions {
  // Sweep dead code after a batch that changed the graph (off for passes that sweep themselves
  // and count what they remove, as cleanup does).
  bool remove_dead_code = true;
};

// Runs `rewrite` once per graph of SelectGraphs(model, roles); its bool says whether it changed
// that graph. Returns whether any graph changed; the first error stops the walk.
Result<bool> RewriteGraphs(ir::Model& model, const std::vector<std::string>& roles,
                           const std::function<Result<bool>(GraphSite&)>& rewrite,
                           const RewriteOptions& options = {});

}  // namespace asrc::passes

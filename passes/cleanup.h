// cleanup: what onnx-simplifier does, as far as our graphs need it.
//   - Constant nodes become initializers (so later passes see every weight the same way);
//   - identity elimination: Identity, inference-mode Dropout (mask unused), Cast to the same dtype;
//   - constant folding: a default-domain node whose inputs are all constant is run once with the
//     runtime's own kernels and replaced by initializers (e.g. shape arithmetic on constant shapes);
//     Shape/Size of a value whose static shape is fully known fold too;
//   - dead code: nodes whose outputs nobody reads, initializers nobody reads.
// In every graph and, through the driver (driver.h), every If/Loop subgraph.
// Preserves: graph input/output names and results (bit-exact: folding runs the same kernels).
// Skips: identities whose output is a graph output (skipped_identity_graph_output); folding of
// nodes whose output is a graph output, nodes with subgraphs and random ops; folds the runtime
// cannot run (skipped_fold_unsupported, skipped_fold_failed) or whose results exceed
// max_folded_mb (skipped_fold_too_large), and folds that would make the model larger: results
// more than 1 KiB over the initializers only the folded node reads (skipped_fold_grows_model: a
// Transpose of a weight another node reads too, a Cast of float16 weights to float32).
// Counters: constants_to_initializers, identities_removed, nodes_folded, shapes_folded,
// dead_removed.
#pragma once

#include "pass/pass.h"

namespace asrc::passes {

class CleanupPass : public pass::Pass {
 public:
  std::string name() const override { return "cleanup"; }
  std::string description() const override {
    return "dead code, identity elimination and constant folding (onnx-simplifier's core)";
  }
  std::vector<pass::OptionSpec> options() const override;
  Result<bool> Run(ir::Model& model, pass::PassContext& ctx) override;
};

}  // namespace asrc::passes

// cleanup: what onnx-simplifier does, as far as our graphs need it.
//   - Constant nodes become initializers (so later passes see every weight the same way);
//   - identity elimination: Identity, inference-mode Dropout (mask unused), Cast to the same dtype;
//   - constant folding: a default-domain node whose inputs are all constant is run once with the
//     runtime's own kernels and replaced by initializers (e.g. shape arithmetic on constant shapes);
//     Shape/Size of a value whose static shape is fully known fold too;
//   - dead code: nodes whose outputs nobody reads, initializers nobody reads.
// Preserves: graph input/output names and results (bit-exact: folding runs the same kernels).
// Skips (counted): nodes whose output is a graph output, nodes with subgraphs, random ops, folded
// results larger than max_folded_mb.
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

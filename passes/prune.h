// prune: two kinds.
//   magnitude   unstructured: zero the smallest-|w| fraction `sparsity` of MatMul/Gemm/Conv
//               weights, per layer or with one global threshold. Honest accounting: the weights
//               are still stored and multiplied densely, so bytes and latency do not change (a
//               compressor such as zip would shrink the file); it is a step towards sparse kernels
//               or towards structured pruning, not a saving by itself.
//   structured  physically removes feed-forward hidden units: finds MatMul(x, W1 [d, ff])
//               [-> Add(b1)] -> elementwise activation (SiLU as Sigmoid+Mul, Relu, Gelu/Erf
//               pieces, ...) -> MatMul(., W2 [ff, d]) and keeps the `1 - sparsity` fraction of
//               units with the largest ||W1[:, j]|| * ||W2[j, :]|| (rounded to `multiple_of`), so
//               params, bytes and latency all shrink. Attention heads and convolution channels are
//               not pruned yet (their reshape constants and LayerNorms need more rewriting).
#pragma once

#include "pass/pass.h"

namespace asrc::passes {

class PrunePass : public pass::Pass {
 public:
  std::string name() const override { return "prune"; }
  std::string description() const override {
    return "magnitude (unstructured) or structured (removes FFN hidden units) pruning";
  }
  std::vector<pass::OptionSpec> options() const override;
  Result<bool> Run(ir::Model& model, pass::PassContext& ctx) override;
};

}  // namespace asrc::passes

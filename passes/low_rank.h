// low-rank: SVD factorization of MatMul/Gemm weights, W [K,N] ~= A [K,r] * B [r,N], so
// MatMul(x, W) becomes MatMul(MatMul(x, A), B) (Gemm keeps its bias and transB on the second
// factor). The rank is `ratio` * min(K, N), or the smallest rank keeping `energy` of the squared
// singular values, rounded up to `multiple_of`; a weight is left alone where r * (K + N) would not
// be smaller than K * N (no saving). data_aware: the factorization minimizes the error of the
// product on calibration activations rather than of W itself, by scaling W's rows with the RMS of
// the input channels before the SVD (and unscaling A after), as in activation-aware SVD methods.
// SVD: Eigen's BDCSVD (or JacobiSVD). Graphs: the roles in `graphs`, each with its If/Loop
// subgraphs; data_aware weights come from calibrating the top-level graphs, so a subgraph's
// weights factorize unweighted (skipped_data_aware_no_stats). Readers of one initializer in a
// graph share one A/B pair (shared_weight_reused). A run that factorizes nothing says why (note).
#pragma once

#include "pass/pass.h"

namespace asrc::passes {

class LowRankPass : public pass::Pass {
 public:
  std::string name() const override { return "low-rank"; }
  std::string description() const override {
    return "SVD factorization of MatMul/Gemm weights (rank by ratio or retained energy; "
           "optionally weighted by calibration activations)";
  }
  std::vector<pass::OptionSpec> options() const override;
  Result<bool> Run(ir::Model& model, pass::PassContext& ctx) override;
};

}  // namespace asrc::passes

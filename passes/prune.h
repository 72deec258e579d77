// prune: two kinds.
//   magnitude   unstructured: zero the smallest-|w| fraction `sparsity` of MatMul/Gemm/Conv
//               weights, per layer or with one global threshold. Honest accounting: the weights
//               are still stored and multiplied densely, so bytes and latency do not change (a
//               compressor such as zip would shrink the file); it is a step towards sparse kernels
//               or towards structured pruning, not a saving by itself.
//   structured  physically removes units, so params, bytes and latency all shrink. `targets`
//               chooses which (default ["ffn"]); each unit is kept or removed as a whole, scored
//               from the weights alone, or with `data_aware` (ffn, heads) from calibration
//               activations: the per-channel RMS at the input of the closing projection (FFN W2,
//               attention Wo) times that projection's row norms, i.e. the energy the unit adds to
//               the output on that data (cross-channel terms ignored). Conv channels are always
//               scored from weights: a sound data score for them needs per-channel means (the
//               removed channel's constant is folded), which the calibration statistics lack.
//
// targets:
//   ffn    MatMul(x, W1 [d, ff]) [-> Add(b1)] -> elementwise activation (SiLU as Sigmoid+Mul,
//          Relu, Gelu/Erf pieces, ...) -> MatMul(., W2 [ff, d]): keeps the `1 - sparsity`
//          fraction of hidden units with the largest ||W1[:, j]|| * ||W2[j, :]|| (rounded up to
//          `multiple_of`). Removing a unit whose W1 column or W2 row is zero is exact.
//   heads  multi-head attention as torch exports it:
//            Q/K/V = Linear(x) (MatMul [+ Add bias], width h*dk) -> Reshape [N, T, h, dk]
//            -> Transpose (0,2,1,3) for Q and V, (0,2,3,1) for K;
//            S = MatMul(Qh, KhT) -> Mul/Div/Add/Sub/Where (scale, mask) -> Softmax(last axis)
//            -> MatMul(., Vh) -> Transpose (0,2,1,3) -> Reshape [N, T, h*dk] -> MatMul(Wo).
//          Removes round(heads_sparsity * h) whole heads per attention (keeping >= min_heads):
//          the heads with the smallest ||Wv slice, bv slice|| * ||Wo rows|| — the most a head can
//          add to the output, zero when its value or output weights are zero, in which case the
//          removal is exact. Slices the Q/K/V columns and biases and the Wo rows, and rewrites
//          the h entries of the three head reshapes and the h*dk entry of the merge reshape
//          (constant shapes, or Concat pieces that are constants; a width read at run time from
//          Shape(projection) follows by itself). dk, the 1/sqrt(dk) scale and Wo's bias are
//          unchanged. Not matched (left alone): per-head side inputs on the score path (a
//          relative-position bias with a head axis; unknown shapes are assumed to broadcast,
//          as the teacher's masks do), fused attention ops, and K/V shared across layers.
//   conv   the conformer convolution module:
//            pw1 Linear [d, 2C] -> GLU (Slice first/second half on the last axis, Sigmoid, Mul,
//            either half the gate; bounds constant or computed from Shape(pw1)) [-> Mul by a
//            mask that broadcasts over channels] -> Transpose (0,2,1) -> [Pad on time only |
//            Concat(cache, .) on time] -> depthwise Conv1d (group = C, weight [C, 1, K]) ->
//            Transpose (0,2,1) -> LayerNormalization over C -> SiLU | Relu | none -> pw2 MatMul
//            [C, n] -> Add(b2).
//          Removes the `conv_sparsity` fraction of channels (kept count rounded up to
//          `multiple_of`): both GLU columns of pw1, the depthwise filter and bias, the norm's
//          gamma/beta entries, the pw2 rows, and the GLU slice bounds. The channels with the
//          smallest |gamma_j| * ||W2[j, :]|| go first.
//          LOSSY, by construction: the norm normalizes over all C channels, so no channel can be
//          removed exactly in general. The rewrite assumes each removed channel sat at the
//          per-frame mean (normalized value 0): then the mean over C equals the mean over the
//          kept k channels and the variance over C is k/C of theirs, so the norm becomes a norm
//          over the kept channels with gamma * sqrt(C/k) and epsilon * C/k, and each removed
//          channel's output act(beta_j) * W2[j, :] is a constant folded into b2. Exact when the
//          removed channels do sit at the mean (tests build such a case); otherwise the error
//          grows with how far they stray, weighted by |gamma_j| * ||W2[j, :]|| — which is why
//          that is the score. Measure WER after it (asrc compress does).
//
// Streaming caches (heads and conv): a causal encoder whose layers read a stacked cache graph
// input [layers, N, L, h*dk] (K, V) or [layers, N, C, K-1] (conv history) through
// Gather(cache, i) -> Concat(cache slice, fresh, on a non-channel axis), and write it back through
// Slice -> Unsqueeze(0) -> Concat(axis 0) to a graph output. Every layer reading one cache must be
// pruned to the same width (they are, with one sparsity for equal layers); then, with
// `resize_caches` (default), the cache graph input and output shapes shrink to that width, and for
// the `encoder_causal` role model.json's streaming.cache shapes are updated too, so the streaming
// runner (which allocates the caches from model.json) keeps working and its caches shrink. Names
// stay. When the layers of a cache would disagree (e.g. `exclude_nodes` leaves one layer out), or
// `resize_caches` is false, the layers reading that cache are left alone (skipped_*_cache_*
// counters).
//
// Graphs: the roles in `graphs`, each with its If/Loop subgraphs (driver.h). Streaming caches are
// matched on top-level graphs only, and data_aware statistics exist for top-level graphs only (a
// subgraph's units are scored from weights, counted in skipped_data_aware_no_stats). The targets
// are rules over one shared matcher (prune_rules.h): prune_ffn.cc, prune_heads.cc, prune_conv.cc;
// magnitude is prune_magnitude.cc. A weight tied across graphs (one buffer) is zeroed once and
// stays one buffer.
//
// Counters: ffn_pruned, hidden_units_removed, attention_pruned, heads_removed, conv_pruned,
// conv_channels_removed, params_removed (all targets), data_aware_scored,
// skipped_data_aware_no_stats, skipped_nothing_to_remove,
// skipped_{heads,conv}_cache_{mismatch,resize_off}; magnitude: weights_zeroed,
// weights_considered. Intermediate value_info entries are dropped
// (they may record old widths); graph inputs/outputs keep exact types.
#pragma once

#include "pass/pass.h"

namespace asrc::passes {

class PrunePass : public pass::Pass {
 public:
  std::string name() const override { return "prune"; }
  std::string description() const override {
    return "magnitude (unstructured) or structured (removes FFN hidden units, attention heads, "
           "depthwise-conv channels) pruning";
  }
  std::vector<pass::OptionSpec> options() const override;
  Result<bool> Run(ir::Model& model, pass::PassContext& ctx) override;
};

}  // namespace asrc::passes

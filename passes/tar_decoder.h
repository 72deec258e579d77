// tar-decoder: replaces a transducer bundle's prediction network (an LSTM, or any decoder graph)
// with the tied-and-reduced (TAR) decoder of Botros et al., "Tied & Reduced RNN-T Decoder"
// (Interspeech 2021). The new decoder is stateless: input y [N, context] int64 (the last
// `context` non-blank labels, blank-padded at the start), output decoder_out [N, D], no state.
//
//   E      = T[y]                                   [N, C, D]   T: the tied matrix [V, D]
//   w[c]   = sum_h cos(E[c], P[h, c])                [N, C]      P: position vectors [H, C, D]
//   out    = sum_c w[c] E[c] / (H * C)               [N, D]      (the weighted average)
//   post:  out = Swish(LayerNorm(Linear(out)))      (WeNet's EmbeddingPredictor; optional)
//
// Tying: T is the joiner's output layer (the Gemm/MatMul producing its output, weight [V, D] or
// its transpose) — the decoder's Gather and the joiner's output layer read one ir::Buffer, so
// size accounting counts it once and the bundle stores it once (shared_weights.bin); a
// transposed Gemm is normalized to Gemm(transB=1) on [V, D]; a MatMul output layer reads T through
// a Transpose node (quantize-int8 does not see through it: that layer stays float, and the
// decoder's table becomes an int8 buffer of its own). `init`: "joiner" takes T from the
// joiner's output weights; "embedding" from the old decoder's embedding table (a Gather of a
// constant [V, D] fed by y), which then also becomes the joiner's output weights.
//
// `dim` (tied embedding reduction, 0 = keep): T = U S V^T (truncated SVD) becomes U_r S_r [V, r],
// and the joiner's hidden width shrinks to r: its encoder-side projection is multiplied by V_r^T
// (weights and bias), so embedding and output layer shrink together. Exact before the joiner's
// activation; the activation (tanh) makes it an approximation that `distill` then trains away.
//
// The joiner's decoder side: the decoder output lives in the tied space (width D, or r), so the
// joiner's decoder projection (the Linear reading its decoder_out input) becomes a square [D, D]
// identity with the old bias (projected by V_r^T under `dim`). Where decoder_out feeds the
// joiner's hidden Add directly, it is left so. Graph interfaces keep their names.
//
// Matches: joiner = output layer <- unary activations <- Add(encoder side, decoder side), each
// side a Gemm/MatMul (+ bias Add) of a constant weight, or the graph input itself. Anything else
// is an error naming the graph, before the model is touched. model.json: decoding.decoder_type
// "stateless", context_size = `context`, decoder_state removed.
#pragma once

#include "pass/pass.h"

namespace asrc::passes {

class TarDecoderPass : public pass::Pass {
 public:
  std::string name() const override { return "tar-decoder"; }
  std::string description() const override {
    return "replace the prediction network with a stateless tied-and-reduced decoder (last N labels, "
           "embedding tied to the joiner's output layer, cosine-weighted multi-head average; "
           "optional SVD reduction of the tied width)";
  }
  std::vector<pass::OptionSpec> options() const override;
  Result<bool> Run(ir::Model& model, pass::PassContext& ctx) override;
};

}  // namespace asrc::passes

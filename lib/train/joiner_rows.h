// The joiner of a transducer bundle rewritten for the training lattice the way the PyTorch recipe
// computes it (experiments/teacher/model.py, Joiner: enc_proj(enc)[:, :, None] + dec_proj(dec)[:, None]):
// the nodes that read only the encoder rows run on the T encoder rows, the nodes that read only
// the decoder rows on the U+1 decoder rows, and only the nodes that join the two sides run on the
// T x (U+1) grid. Composing the inference joiner on expanded pairs instead runs every projection
// (U+1) or T times over; on the demo teacher that was half of the joiner's forward and backward.
//
// FactorJoiner(joiner, B) matches a joiner graph with inputs "encoder_out" [N, De] and
// "decoder_out" [N, Dd] and returns a graph with the same input and output names where
// "encoder_out" is the rows [B * T, De] of B utterances, "decoder_out" [B * U1, Dd] and every
// output is [B * T * U1, ...] (row (b * T + t) * U1 + u is the inference joiner's output on the
// pair (t, u) of utterance b). Initializers keep their names.
// A one-sided node must be row-wise (its output row r reads only row r of its one-sided
// input): Gemm (transA 0, B and C not one-sided), MatMul by a constant 2-D B, unary elementwise
// ops, Add/Sub/Mul/Div by a constant of at most one row. A node reading both sides runs on the
// grid: a binary elementwise op broadcasts [B, T, 1, J] against [B, 1, U1, J]; any other op gets
// its one-sided inputs expanded to the pairs. Returns null (not an error) when the joiner has
// a one-sided node that is not row-wise, a subgraph, or an output that does not read both
// sides; the caller then expands the inputs to pairs as before.
#pragma once

#include <memory>

#include "core/status.h"
#include "ir/graph.h"

namespace asrc::train {

Result<std::unique_ptr<ir::Graph>> FactorJoiner(const ir::Graph& joiner, int64_t batch = 1);

}  // namespace asrc::train

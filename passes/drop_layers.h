// drop-layers: removes whole blocks (conformer layers) from an encoder graph.
//
// Blocks are found in the graph's structure, not by names, so the pass works on exports it has
// never seen (drop_blocks.cc):
//   1. The residual stream runs from the graph's stream input (option `input`, default its first
//      input) to its stream output (`output`, default its first output). A value is on it when it
//      is computed from the input (Shape/Size do not carry data) and the output is computed from
//      it. Cut values are the stream values every path from input to output goes through (the
//      dominator chain of the output); consecutive cuts bound the segments of the stream.
//   2. Each segment gets a signature (its op types and weight shapes). The longest run of a
//      repeated sequence of segments (k >= 2 repeats of p segments) is the block stack: block b
//      is entered by one cut value and left by the next one p segments on. Where the exporter's
//      names carry layer indices ("enc.layers.3.ff1.l1.bias", "/encoder/layers.3/..."), the
//      rotation of the repeat whose blocks each carry one distinct index wins (a conformer whose
//      front end ends in a LayerNorm has a second valid rotation); without names, the latest one.
//      Without any repeat, runs of segments named by one layer index are the blocks.
//   A node belongs to a block when it computes a stream value of the block's segments, or a side
//   output from them (a cache update), or a side input only the block reads (its cache Gathers).
//
// Removing block b: readers of its output read its input instead (a graph output keeps its name
// through an Identity); its nodes then are dead code. Streaming caches:
//   - stacked per-layer caches (graph input [layers, ...] read as Gather(cache, i, axis 0) by each
//     block; graph output Concat(axis 0) of one piece per block, as the demo teacher exports):
//     the dropped blocks' slices leave, the kept blocks' Gather indices are renumbered, dim 0 of
//     the input and output shrinks, and so does model.json's streaming.cache shape;
//   - a graph input or output only one block reads or writes leaves with the block, and so does
//     its model.json streaming.cache entry;
//   - an input shared by all blocks (the offset) stays.
// model.json's info.model_config.{causal,noncausal}_layers and info.params follow the graph.
//
// Which blocks (`method`): `index` (the `blocks` list, 0-based along the stream), `spread`
// (`count` blocks spread evenly over the stack), `importance` (greedy: drop the block whose
// removal costs the least WER on a small dev subset, measure again, repeat; needs the WER probe
// that asrc compress provides). `keep` >= 0 sets count = blocks - keep. At least one block stays.
//
// Errors, before anything changes: no block structure in a selected graph; more blocks asked for
// than the graph has; an index out of range; a block whose values are read outside it other than
// through its output and the cache patterns above.
//
// Counters: blocks_found, blocks_dropped, params_removed, caches_shrunk, cache_inputs_removed,
// cache_outputs_removed, dev_probes (importance).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "pass/pass.h"

namespace asrc::passes {

class DropLayersPass : public pass::Pass {
 public:
  std::string name() const override { return "drop-layers"; }
  std::string description() const override {
    return "remove whole encoder blocks (conformer layers) found structurally, by index, spread "
           "evenly or by measured importance; their streaming caches leave with them";
  }
  std::vector<pass::OptionSpec> options() const override;
  Result<bool> Run(ir::Model& model, pass::PassContext& ctx) override;
};

namespace drop {

struct Block {
  ir::Value* in = nullptr;   // the cut value that enters it
  ir::Value* out = nullptr;  // the cut value that leaves it
  std::string label;         // the exporter's layer name ("layers.3"), or ""
};

struct BlockStack {
  std::string graph;  // role, for messages
  ir::Value* stream_in = nullptr;
  ir::Value* stream_out = nullptr;
  std::vector<Block> blocks;
  std::string found_by;  // "repetition", "repetition+names" or "names"
  // Owning block of each node (absent: front end, shared or outside the stream).
  std::map<const ir::Node*, int> owner;
};

// Finds the block stack of `g` (see the header comment); `input`/`output` name the stream ends
// ("" = the first graph input/output). Error naming `role` when there is none.
Result<BlockStack> FindBlocks(ir::Graph& g, const std::string& role, const std::string& input,
                              const std::string& output);

// Removes blocks `drop` (indices into s.blocks, at least one block kept) from graph `role` of
// `model`, with their caches (graph and model.json). Checks everything before changing anything;
// a block whose values escape it otherwise is an error naming the node. Bumps ctx's counters when
// `ctx` is given.
Status DropBlocks(ir::Model& model, const std::string& role, const BlockStack& s,
                  const std::set<int>& drop, pass::PassContext* ctx);

}  // namespace drop

}  // namespace asrc::passes

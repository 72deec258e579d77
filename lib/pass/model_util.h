// Transitional, to ease merging branches written before the move: the IR owns these now
// (ir::Graph::clone, copying an ir::Model, ir::content_hash, ir::hash_hex, ir::graph_bytes).
// Nothing in this branch includes this header; delete it once no merged branch does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ir/model.h"

namespace asrc::pass {

inline ir::Model CloneModel(const ir::Model& model) { return model; }
inline std::unique_ptr<ir::Graph> CloneGraph(const ir::Graph& graph, ir::Graph* parent = nullptr) {
  return graph.clone(parent);
}
inline uint64_t ModelHash(const ir::Model& model) { return ir::content_hash(model); }
inline std::string HashHex(uint64_t h) { return ir::hash_hex(h); }

}  // namespace asrc::pass

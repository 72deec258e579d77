// Model helpers the pass machinery needs: deep copies (for rollback and the teacher snapshot),
// a content hash (the evaluation cache key) and per-graph size accounting.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "ir/model.h"

namespace asrc::pass {

// Deep copy of graphs, nodes and values. Weight tensors share their buffers with the original
// (passes never write into buffers, see pass.h), so a copy is cheap.
ir::Model CloneModel(const ir::Model& model);
std::unique_ptr<ir::Graph> CloneGraph(const ir::Graph& graph, ir::Graph* parent = nullptr);

// 64-bit hash of everything that defines the model's behaviour: graphs (nodes, attributes,
// initializer bytes, inputs/outputs), config and tokens. Names of intermediate values count too.
uint64_t ModelHash(const ir::Model& model);
std::string HashHex(uint64_t h);

// Unique bytes of weights (initializers and Constant-node tensors) of one graph.
int64_t GraphBytes(const ir::Graph& graph);

// {"params": N, "bytes": N, "graphs": {role: {"params", "bytes", "nodes"}}}.
nlohmann::json SizeJson(const ir::Model& model);

}  // namespace asrc::pass

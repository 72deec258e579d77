// Graph validation before a session plans a graph: what the ONNX operator schemas say about each
// node of the default domain, checked once at plan time so that no kernel sees a node the
// specification forbids (a missing required input, an input dtype outside the op's type
// constraint, an attribute of the wrong type). The schemas are ONNX's own (libonnx's
// OpSchemaRegistry, the table the ONNX checker uses), looked up at the node's opset.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "ir/tensor.h"

namespace asrc::runtime {

// The highest default-domain opset the runtime accepts (the newest ONNX release's). Above the
// highest opset libonnx's schemas know (17 for ONNX 1.12), only the checks that newer opsets
// cannot have relaxed run: required inputs present, attribute types of known attributes.
constexpr int64_t kMaxOpset = 24;

// Errors for an opset outside [1, kMaxOpset]: "graph 'g': opset 0 of the default domain ...".
Status ValidateOpset(const ir::Graph& g, int64_t opset);

// Checks one node of the default domain ("" or "ai.onnx") against its ONNX schema at `opset`:
// input and output counts, every non-optional input present, input dtypes (where known:
// `input_dtypes[i]`, Undefined for unknown) in the op's type constraints and equal where the
// schema ties them to one type parameter, required attributes present, attribute types as the
// schema declares. Ops of other domains and ops without a schema pass (the kernel registry
// decides about those). Errors are about the node, which the caller names: "input 1 (slope) is
// missing: the op needs at least 2 inputs, the node has 1".
Status ValidateNode(const ir::Node& n, int64_t opset, const std::vector<ir::DType>& input_dtypes);

// ValidateOpset, then ValidateNode on each node of `g` (not of its subgraphs: their sessions
// check them), with the dtypes known before planning (initializers, declared value types), and
// on nodes of every domain the window attributes of convolutions and pools (strides, dilations,
// kernel_shape at least 1; pads, output_padding not negative).
// Errors name the node and graph: "node 'g0' (Gemm) in graph 'g': input 0 (A) is missing ...".
Status ValidateGraph(const ir::Graph& g, int64_t opset);

}  // namespace asrc::runtime

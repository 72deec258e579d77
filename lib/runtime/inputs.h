// Generated graph inputs for benchmarks and parity checks, from the graph's declared input types.
// Static dims are used as is; a symbolic dim takes its value from `dims` (by name, e.g. T=300),
// else 1 on axis 0 and for batch-like names ("N", "B", "*batch*"), and `default_dim` elsewhere. Values are seeded:
//  - float inputs: uniform in [-1, 1);
//  - integer inputs whose name contains "len": the value of the first float input's dim 1
//    (the time axis of [N, T, F] features), so length inputs agree with the data;
//  - other integer inputs named like tokens ("y", "token", "label", "ids"): uniform in [1, 10);
//  - other integer inputs (offsets, counters): zeros; bool inputs: true.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace asrc::runtime {

Result<std::vector<ir::Tensor>> MakeInputs(const ir::Graph& g,
                                           const std::map<std::string, int64_t>& dims,
                                           int64_t default_dim, uint32_t seed);

// Static shape of a graph input with symbolic dims resolved as above.
Result<ir::Shape> ResolveInputShape(const ir::Value& v, const std::map<std::string, int64_t>& dims,
                                    int64_t default_dim);

}  // namespace asrc::runtime

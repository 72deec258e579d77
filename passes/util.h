// Small graph-rewriting helpers shared by the passes (the driver that walks graphs is driver.h).
#pragma once

#include <cstddef>
#include <string>
#include <tuple>
#include <vector>

#include "ir/graph.h"
#include "ir/constant.h"
#include "ir/model.h"

namespace asrc::passes {

// The constant tensor behind `v`: an initializer, or the `value` of a Constant node; else null.
using ir::ConstantOf;
// True when `v` is a float32 constant of rank `rank` (any rank when rank < 0).
bool IsFloatConstant(const ir::Value* v, int rank = -1);
bool IsGraphOutput(const ir::Graph& g, const ir::Value* v);

// Identity of a constant's data: initializers (of one graph or of several) whose tensors view the
// same buffer region with the same dtype and shape are one tied weight, rewritten once.
using TensorKey = std::tuple<const ir::Buffer*, size_t, ir::DType, ir::Shape>;
TensorKey KeyOf(const ir::Tensor& t);

// `n` is selected by node-name globs: matches one of `nodes` and none of `exclude`.
bool NameSelected(const ir::Node* n, const std::vector<std::string>& nodes,
                  const std::vector<std::string>& exclude);

// Makes `new_node`'s output `new_out` take over `old_node`'s output `old_out` (same Value, same
// name, same uses — graph outputs keep their names) and leaves `old_node` with the unused output
// `new_node` had. Use lists stay in sync (the two Values keep their readers; only their producer
// links swap), so a batch of these needs no Graph::RebuildUses().
void TakeOverOutput(ir::Node* old_node, int old_out, ir::Node* new_node, int new_out);

// Removes nodes none of whose outputs are used or graph outputs (repeatedly), and initializers
// nobody reads. Returns the number of nodes + initializers removed.
int RemoveDeadCode(ir::Graph& g);

// Adds an initializer named after `base` (made unique).
ir::Value* AddConst(ir::Graph& g, const std::string& base, ir::Tensor t);

// "name" of a node for messages: its name, else "<op> producing <first output>".
std::string NodeLabel(const ir::Node* n);

}  // namespace asrc::passes

// Small graph-rewriting helpers shared by the passes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/model.h"

namespace asrc::passes {

// The constant tensor behind `v`: an initializer, or the `value` of a Constant node; else null.
const ir::Tensor* ConstantOf(const ir::Value* v);
// True when `v` is a float32 constant of rank `rank` (any rank when rank < 0).
bool IsFloatConstant(const ir::Value* v, int rank = -1);

// Makes `new_node`'s output `new_out` take over `old_node`'s output `old_out` (same Value, same
// name, same uses — graph outputs keep their names) and leaves `old_node` with an unused output.
// Call Graph::rebuild_uses() once after a batch of these (done here).
void TakeOverOutput(ir::Graph& g, ir::Node* old_node, int old_out, ir::Node* new_node, int new_out);

// Removes nodes none of whose outputs are used or graph outputs (repeatedly), and initializers
// nobody reads. Returns the number of nodes + initializers removed.
int RemoveDeadCode(ir::Graph& g);

// Adds an initializer named after `base` (made unique).
ir::Value* AddConst(ir::Graph& g, const std::string& base, ir::Tensor t);

// "name" of a node for messages: its name, else "<op> producing <first output>".
std::string NodeLabel(const ir::Node* n);

// Float copy of a constant's values (float32 only).
std::vector<float> FloatValues(const ir::Tensor& t);

// All subgraphs first, then `g` itself: the order passes visit graphs in.
void ForEachGraph(ir::Graph& g, const std::function<void(ir::Graph&)>& fn);

}  // namespace asrc::passes

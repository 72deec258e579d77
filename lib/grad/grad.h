// grad:: — gradients as a graph transformation (IR in, IR out; no runtime).
//
// BuildGradient appends to a forward graph the backward nodes that compute the gradient of a
// loss value with respect to chosen initializers, and adds one graph output per initializer.
// Running the graph (any executor, e.g. runtime::Session) then yields the forward outputs and
// the gradients in one pass.
//
// What it builds:
//   - The seed is ones of the loss's shape (ConstantOfShape(Shape(loss))): the gradients are of
//     the SUM of the loss's elements (a scalar loss is the usual case; a per-utterance loss [B]
//     gives the gradient of its sum).
//   - Only nodes on a path from a trainable initializer to the loss are differentiated: a value
//     gets a gradient when it depends on a trainable through differentiable inputs and the loss
//     depends on it. Each such node's op has one rule (grad/rules.h, one table); the rule emits
//     ordinary forward ops (MatMul, Mul, ReduceSum, ...) plus a few `ai.asrc` helper ops whose
//     kernels sit beside the forward kernels in lib/runtime/kernels/grad.cc:
//       ReduceSumToShape(x, shape)          sum x over its broadcast axes down to `shape`
//       GatherGrad(g, indices, shape){axis} scatter-add of a Gather's output gradient
//       SliceGrad(g, shape, starts, ends[, axes, steps])  g placed into zeros of `shape`
//       ConvGradData / ConvGradWeight       a Conv's input and weight gradients
//       LSTMGrad                            an LSTM's backpropagation through time
//       LayerNormalizationGrad              a LayerNormalization's three gradients, one pass
//     Ops with rules: Add Sub Mul Div Pow Sum Neg Identity Relu Sigmoid Tanh ai.asrc::Silu Exp
//     Log Sqrt Reciprocal Erf Where Dropout Cast MatMul Gemm Softmax LogSoftmax
//     LayerNormalization ReduceSum ReduceMean Transpose Reshape Flatten Squeeze Unsqueeze Expand
//     Concat Split Slice Gather Pad Conv LSTM, and the ai.asrc losses whose output 1 is their
//     gradient (RNNTLoss CTCLoss TransducerKLLoss TransducerCollapsedKLLoss L2HintLoss)
//     (RuleTable::Global().Ops() lists them with the no-gradient ones).
//   - Some rules need a value's rank (MatMul's batched operands, Conv's bias): it comes from
//     initializers, value_info, or propagation through common ops (including computed Reshape
//     shapes); where it cannot be found the error says so.
//   - Where a value has several consumers, its gradient is the Sum of their contributions.
//   - Index and shape ops (Shape, Size, ConstantOfShape, Range, comparisons, ArgMax, Cast to
//     integer types, ...) pass no gradient: values computed only through them do not depend on
//     the trainables as far as gradients go.
//   - Gradient outputs are named "<initializer>_grad" (made unique with "_1", ... when taken);
//     the names are returned in trainable order and appended to graph.outputs in that order.
//     Intermediate backward values are named "<forward value>_grad..." / "grad/<node>/...".
//   - The forward graph's nodes, values and outputs are left as they were.
//
// Errors (Status messages; on any error the graph is left exactly as it was):
//   - the loss is not a value of the graph, a trainable is not an initializer of the graph;
//   - "grad: node 'enc.3.conv' (Conv): no gradient rule" for an op without a rule on the path;
//   - a rule that cannot handle a node's attributes or ranks names the node and the reason;
//   - a trainable that the loss does not depend on (through differentiable ops) is an error
//     naming it: its gradient would be identically zero, which is almost always a wrong list.
//   - opset < 13 is refused (the rules emit opset-13 forms: ReduceSum/Squeeze/Unsqueeze/Split
//     take axes and sizes as inputs).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace asrc::grad {

struct GradientOptions {
  // Opset of the default ONNX domain the graph runs under: the forward nodes are read and the
  // backward nodes written with its semantics (e.g. ReduceMean's axes: attribute before 18).
  int64_t opset = 17;
  // After building, turn the trainables into graph inputs (appended to graph.inputs in the order
  // given; their values move to GradientGraph::trainable_values). An executor that folds or
  // prepacks constants at plan time (runtime::Session does both) then reads the weights fed on
  // each run, so one plan serves every training step.
  bool trainables_as_inputs = false;
};

struct GradientGraph {
  // Names of the gradient outputs, one per trainable in the order given.
  std::vector<std::string> gradient_outputs;
  // Number of backward nodes appended.
  int num_backward_nodes = 0;
  // With trainables_as_inputs: the trainables' values, in the order given.
  std::vector<ir::Tensor> trainable_values;
};

// Appends the backward graph to `graph` (see the contract above). `loss` names a value of the
// graph; `trainable` names initializers of the graph.
Result<GradientGraph> BuildGradient(ir::Graph& graph, const std::string& loss,
                                    const std::vector<std::string>& trainable,
                                    const GradientOptions& options = {});

}  // namespace asrc::grad

// Plan-time fusion: the session planner hands its execution order to FuseNodes, which replaces
// chains of nodes by single nodes of fused ops; those run through the kernel registry like any
// other node. The graph itself is never modified: fused nodes are owned by the session.
//
// Chains fused (the int8 products that ONNX Runtime's dynamic quantizer and our quantize-int8
// pass write), as ONNX Runtime's own graph optimizer fuses them:
//   DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W, x_zp[, W_zp]) -> Cast(float)
//     -> Mul(., Mul(x_scale, W_scale)) [-> Add(., bias)]
//   becomes com.microsoft DynamicQuantizeMatMul(x, W, W_scale[, W_zp][, bias]); when x's
//   quantization is shared with other products, DynamicQuantizeLinear stays and the rest becomes
//   com.microsoft MatMulIntegerToFloat(x_q, W, x_scale, W_scale, x_zp[, W_zp][, bias]).
//   ConvInteger(x_q, W, x_zp[, W_zp]) -> Cast(float) -> Mul(., Mul(x_scale, W_scale))
//     [-> Add(., bias)] [-> Relu] becomes our ai.asrc ConvIntegerToFloat(x_q, W, x_scale,
//     W_scale, x_zp[, W_zp][, bias]) with activation "Relu" or none; W_scale and bias hold one
//     value per output channel ([M, 1, ..., 1]); the DynamicQuantizeLinear stays.
// And five float chains: MatMul by a constant 2-D float32 weight -> Add of a constant row of N
// floats becomes our ai.asrc MatMulBias(x, W, bias), whose threads add the bias to the rows they
// computed; Conv -> Relu becomes com.microsoft FusedConv(activation "Relu");
// Sigmoid(x) -> Mul(x, .) becomes our ai.asrc Silu(x); PyTorch's exact GELU, Div(x, d) -> Erf ->
// Add(., a) -> Mul(x, .) -> Mul(., h) with scalar constants, becomes our ai.asrc GeluErf; and a convolutional subsampling front
// end, Conv [-> Relu] -> Conv [-> Relu] with 2-D constant weights, the first of small K
// (C * KH * KW <= 32), becomes our ai.asrc ConvPair(x, w1, b1, w2, b2), which hands the first's
// output to the second in channels-last order without an NCHW intermediate (kernels/nn.cc).
//
// Contract: a chain is fused only when every intermediate value is read by the chain alone
// (not by other nodes, subgraphs or as a graph output), W, W_zp, W_scale and bias are plan-time
// constants (W_scale and bias at most 1-D, float32, with 1 or N and N entries), and W is 2-D.
// The fused kernels reproduce the unfused nodes' arithmetic step by step (the same quantization,
// the scale product x_scale * W_scale, one multiply and then one add per element), so outputs
// are bit-identical to the unfused plan. SessionOptions::fuse = false or ASRC_NO_FUSE=1 in the
// environment turns fusion off (for checking exactly that).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "ir/graph.h"

namespace asrc::runtime {

struct FusionInputs {
  // How many times a value is read by the nodes being planned, subgraph reads included.
  std::function<int(const ir::Value*)> uses;
  std::function<bool(const ir::Value*)> is_graph_output;
  // The value's plan-time constant (an initializer), or nullptr.
  std::function<const ir::Tensor*(const ir::Value*)> constant;
};

struct FusionResult {
  std::vector<ir::Node*> order;                   // the new execution order
  std::vector<std::unique_ptr<ir::Node>> owned;   // the fused nodes in it
  int fused_chains = 0;
};

// `order` is a valid topological order of one graph's nodes; the result is one too (each fused
// node takes the place of its chain's last node).
FusionResult FuseNodes(const std::vector<ir::Node*>& order, const FusionInputs& in);

}  // namespace asrc::runtime

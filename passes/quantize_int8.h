// quantize-int8: int8 weights everywhere the options select, in the forms ONNX Runtime writes.
//
// Weights are symmetric int8 (zero point 0; [-127, 127], or [-63, 63] with reduce_range), per
// output channel or per tensor; dynamic-mode matmul weights are stored as uint8 (the same values
// + 128, zero point 128) unless weight_type=int8, because ONNX Runtime's u8s8 kernel on AVX2
// without VNNI saturates 16-bit pair sums (results 10%+ off) while its u8u8 path is exact. Per
// mode, for MatMul/Gemm whose right operand is a 2-D constant:
//   dynamic     x -> DynamicQuantizeLinear -> MatMulInteger(x_q, W_q, x_zp) -> Cast(float)
//               -> Mul(x_scale * W_scale) [-> Add(bias) for Gemm]   (ORT's quantize_dynamic form;
//               one DynamicQuantizeLinear per activation, shared by its MatMuls)
//   static      x -> QuantizeLinear -> DequantizeLinear (ranges calibrated on audio: minmax or
//               percentile) and W -> DequantizeLinear (QDQ form; ORT fuses it to integer ops)
//   weight-only W -> DequantizeLinear, float compute
// In every mode the weights of Conv (axis 0), ConvTranspose (axis 1: its output channels),
// LSTM/GRU/RNN W and R (axis 1) are stored int8 behind a DequantizeLinear, and Gather tables (embeddings) as Gather(int8 table) -> Cast -> Mul(Gather of
// per-row scales), so no full-table dequantization runs per step.
// Selection: graph roles (`graphs`, each with its If/Loop subgraphs), op types (`ops`), node
// names (`nodes`, `exclude_nodes`), and weights of at least `min_elements`. Preserves graph
// interfaces; float weights left without readers are removed.
// Shared weights: a weight read by several nodes, or tied across graphs (initializers viewing one
// buffer, e.g. a decoder embedding that is also the joiner's output layer), is quantized once and
// its int8 data stays one buffer, counted once (float_weight_bytes_quantized too). Where the
// readers of a tied weight need different int8 layouts (a Gather table and a Gemm(transB) weight
// in dynamic mode), it is stored once as is (int8, per row when a Gather reads it) and the readers
// that needed another layout read it through a DequantizeLinear with float compute
// (tied_weight_dequantized counts them), rather than untying it.
// Counters: matmul_integer, gemm_integer, matmul_qdq, gemm_qdq, matmul_weight_only,
// gemm_weight_only, conv_weight_only, conv_transpose_weight_only, lstm_weight_only,
// gru_weight_only, rnn_weight_only, gather_int8,
// activations_calibrated, float_weight_bytes_quantized, tied_weight_dequantized and skipped_*.
#pragma once

#include "pass/pass.h"

namespace asrc::passes {

class QuantizeInt8Pass : public pass::Pass {
 public:
  std::string name() const override { return "quantize-int8"; }
  std::string description() const override {
    return "int8 quantization: dynamic (MatMulInteger), static (QDQ, calibrated) or weight-only";
  }
  std::vector<pass::OptionSpec> options() const override;
  Result<bool> Run(ir::Model& model, pass::PassContext& ctx) override;
};

// Symmetric int8 quantization of a float tensor along `axis` (-1: per tensor). Returns the int8
// tensor and the float scales (shape [dim(axis)], or [] per tensor); qmax 127 (63 reduced).
struct QuantizedWeight {
  ir::Tensor q, scale;
};
QuantizedWeight QuantizeSymmetric(const ir::Tensor& w, int axis, bool reduce_range);

}  // namespace asrc::passes

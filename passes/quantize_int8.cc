#include "passes/quantize_int8.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "passes/util.h"

namespace asrc::passes {

namespace {

using ir::DType;
using ir::Tensor;

bool IsGraphOutput(const ir::Graph& g, const ir::Value* v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

Tensor Transpose2D(const Tensor& w) {
  const int64_t r = w.dim(0), c = w.dim(1);
  Tensor t(DType::Float32, {c, r});
  const float* s = w.data<float>();
  float* d = t.data<float>();
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) d[j * r + i] = s[i * c + j];
  return t;
}

// Per-graph rewriting state: created initializers are reused for a weight read by several nodes.
struct Rewriter {
  ir::Graph& g;
  pass::PassContext& ctx;
  bool per_channel, reduce_range;
  // (source value, layout key) -> (q, scale, zero point) values in this graph
  std::map<std::pair<const ir::Value*, std::string>, std::tuple<ir::Value*, ir::Value*, ir::Value*>> weights;
  std::map<const ir::Value*, std::tuple<ir::Value*, ir::Value*, ir::Value*>> dyn_inputs;  // x -> q, s, zp
  std::map<const ir::Value*, ir::Value*> static_inputs;  // x -> its QuantizeLinear/DequantizeLinear
  int64_t float_bytes = 0;
  std::set<std::string> node_names;

  // Node names must be unique in a graph (ONNX Runtime rejects duplicates).
  std::string NodeName(const std::string& base) {
    if (node_names.empty()) {
      for (const ir::Node* n : g.nodes()) node_names.insert(n->name);
    }
    std::string name = base;
    for (int k = 1; node_names.count(name); ++k) name = base + "_" + std::to_string(k);
    node_names.insert(name);
    return name;
  }

  // Quantized weight initializers for `w` (optionally transposed first), per channel along `axis`
  // when per_channel, with the scale reshaped to `scale_shape` when given.
  std::tuple<ir::Value*, ir::Value*, ir::Value*> Weight(const ir::Value* w, bool transpose, int axis,
                                                       const ir::Shape& scale_shape = {},
                                                       bool as_uint8 = false) {
    std::string key = std::to_string(transpose) + "/" + std::to_string(axis) + "/" +
                      ir::shape_str(scale_shape) + (as_uint8 ? "/u8" : "/s8");
    auto it = weights.find({w, key});
    if (it != weights.end()) return it->second;
    const Tensor* src = ConstantOf(w);
    Tensor f = transpose ? Transpose2D(*src) : *src;
    QuantizedWeight q = QuantizeSymmetric(f, per_channel ? axis : -1, reduce_range);
    if (!scale_shape.empty() && per_channel) q.scale = q.scale.Reshaped(scale_shape);
    Tensor zp(DType::Int8, q.scale.shape());
    if (as_uint8) {
      // Same values shifted by 128 with zero point 128: ONNX Runtime's u8u8 integer kernels are
      // exact, while its u8s8 path on AVX2 without VNNI saturates 16-bit pair sums.
      Tensor u(DType::Uint8, q.q.shape());
      for (int64_t i = 0; i < u.numel(); ++i) {
        u.data<uint8_t>()[i] = static_cast<uint8_t>(q.q.data<int8_t>()[i] + 128);
      }
      q.q = std::move(u);
      zp = Tensor(DType::Uint8, q.scale.shape());
      for (int64_t i = 0; i < zp.numel(); ++i) zp.data<uint8_t>()[i] = 128;
    }
    ir::Value* vq = AddConst(g, w->name + "_quantized", std::move(q.q));
    ir::Value* vs = AddConst(g, w->name + "_scale", std::move(q.scale));
    ir::Value* vz = AddConst(g, w->name + "_zero_point", std::move(zp));
    float_bytes += static_cast<int64_t>(src->nbytes());
    auto r = std::make_tuple(vq, vs, vz);
    weights[{w, key}] = r;
    return r;
  }

  ir::Value* Dequantized(ir::Node* before, const ir::Value* w, bool transpose, int axis) {
    auto [q, s, z] = Weight(w, transpose, axis);
    ir::Node* dq = g.insert_node_before(before, "DequantizeLinear", {q, s, z},
                                        {g.unique_name(w->name + "_dequantized")},
                                        NodeName(w->name + "_DequantizeLinear"));
    if (per_channel) dq->set_attr_int("axis", axis);
    return dq->outputs[0];
  }

  std::tuple<ir::Value*, ir::Value*, ir::Value*> DynamicInput(ir::Node* before, ir::Value* x) {
    auto it = dyn_inputs.find(x);
    if (it != dyn_inputs.end()) return it->second;
    ir::Node* n = g.insert_node_before(
        before, "DynamicQuantizeLinear", {x},
        {g.unique_name(x->name + "_quantized"), g.unique_name(x->name + "_scale"),
         g.unique_name(x->name + "_zero_point")},
        NodeName(x->name + "_QuantizeLinear"));
    auto r = std::make_tuple(n->outputs[0], n->outputs[1], n->outputs[2]);
    dyn_inputs[x] = r;
    return r;
  }
};

bool Selected(const ir::Node* n, const std::vector<std::string>& ops,
              const std::vector<std::string>& nodes, const std::vector<std::string>& exclude) {
  if (!n->domain.empty()) return false;
  if (std::find(ops.begin(), ops.end(), n->op_type) == ops.end()) return false;
  return pass::AnyGlobMatch(nodes, n->name) && !pass::AnyGlobMatch(exclude, n->name);
}

}  // namespace

QuantizedWeight QuantizeSymmetric(const Tensor& w, int axis, bool reduce_range) {
  const float qmax = reduce_range ? 63.f : 127.f;
  QuantizedWeight out;
  out.q = Tensor(DType::Int8, w.shape());
  const float* src = w.data<float>();
  int8_t* dst = out.q.data<int8_t>();
  int64_t channels = 1, inner = w.numel(), outer = 1;
  if (axis >= 0) {
    channels = w.dim(axis);
    inner = 1;
    for (int d = axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
    outer = w.numel() / std::max<int64_t>(1, channels * inner);
  }
  std::vector<float> amax(channels, 0.f);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i)
        amax[c] = std::max(amax[c], std::fabs(src[(o * channels + c) * inner + i]));
  std::vector<float> scale(channels);
  for (int64_t c = 0; c < channels; ++c) scale[c] = amax[c] > 0 ? amax[c] / qmax : 1.f;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t k = (o * channels + c) * inner + i;
        float v = std::nearbyint(src[k] / scale[c]);
        dst[k] = static_cast<int8_t>(std::clamp(v, -qmax, qmax));
      }
  if (axis >= 0) {
    out.scale = Tensor::FromVector(DType::Float32, {channels}, scale);
  } else {
    out.scale = Tensor::Scalar(scale[0]);
  }
  return out;
}

std::vector<pass::OptionSpec> QuantizeInt8Pass::options() const {
  using nlohmann::json;
  return {
      {"mode", "dynamic",
       "dynamic: DynamicQuantizeLinear + MatMulInteger (integer matmuls, activations quantized at "
       "run time); static: QDQ with calibrated activation ranges; weight-only: int8 storage, float "
       "compute",
       {"dynamic", "static", "weight-only"}},
      {"per_channel", true, "one scale per output channel (else one per tensor)", {}},
      {"weight_type", "uint8",
       "dynamic mode: matmul weight storage: uint8 (symmetric values + 128, zero point 128; exact "
       "in ONNX Runtime on every CPU) or int8 (ORT's default; its AVX2 u8s8 kernel can saturate "
       "unless reduce_range)",
       {"uint8", "int8"}},
      {"reduce_range", false, "7-bit weights ([-63, 63]) and, in static mode, 7-bit activations", {}},
      {"graphs", json::array({"*"}), "graph roles to quantize (glob patterns)", {}},
      {"ops", json::array({"MatMul", "Gemm", "Conv", "LSTM", "GRU", "Gather"}),
       "op types whose weights are quantized",
       {"MatMul", "Gemm", "Conv", "LSTM", "GRU", "Gather"}},
      {"nodes", json::array({"*"}), "node names to quantize (glob patterns)", {}},
      {"exclude_nodes", json::array(), "node names to leave in float (glob patterns)", {}},
      {"min_elements", int64_t{256}, "leave weights with fewer elements in float", {}, 0, 1e12},
      {"calibration", "minmax", "static mode: activation range from min/max or percentiles",
       {"minmax", "percentile"}},
      {"percentile", 99.99, "static mode, calibration=percentile: the percentile kept", {}, 50, 100},
  };
}

Result<bool> QuantizeInt8Pass::Run(ir::Model& model, pass::PassContext& ctx) {
  const std::string mode = ctx.GetString("mode");
  const auto graphs = ctx.GetStrings("graphs");
  const auto ops = ctx.GetStrings("ops");
  const auto nodes = ctx.GetStrings("nodes");
  const auto exclude = ctx.GetStrings("exclude_nodes");
  const int64_t min_elements = ctx.GetInt("min_elements");
  const bool per_channel = ctx.GetBool("per_channel");
  const bool reduce_range = ctx.GetBool("reduce_range");
  const bool weight_u8 = ctx.GetString("weight_type") == "uint8";

  auto matmul_weight = [&](const ir::Node* n) -> bool {
    if (n->op_type == "MatMul") {
      return n->num_inputs() == 2 && IsFloatConstant(n->input(1), 2) &&
             !ConstantOf(n->input(0)) && ConstantOf(n->input(1))->numel() >= min_elements;
    }
    if (n->op_type == "Gemm") {
      return n->num_inputs() >= 2 && IsFloatConstant(n->input(1), 2) && !ConstantOf(n->input(0)) &&
             n->attr_int("transA", 0) == 0 && n->attr_float("alpha", 1.f) == 1.f &&
             (n->num_inputs() < 3 || !n->input(2) || n->attr_float("beta", 1.f) == 1.f) &&
             ConstantOf(n->input(1))->numel() >= min_elements;
    }
    return false;
  };

  // Static mode: calibrate the activations entering the selected matrix products first.
  pass::ModelStats stats;
  if (mode == "static") {
    pass::Taps taps;
    for (auto& gf : model.graphs) {
      if (!gf.graph || !pass::AnyGlobMatch(graphs, gf.role)) continue;
      for (ir::Node* n : gf.graph->nodes()) {
        if (Selected(n, ops, nodes, exclude) && matmul_weight(n)) {
          taps[gf.role].push_back(n->input(0)->name);
        }
      }
    }
    if (!taps.empty()) {
      if (!ctx.calibrate) {
        return Error("mode=static needs calibration data (pipeline \"calibration\" or the eval set)");
      }
      ASRC_ASSIGN_OR_RETURN(stats, ctx.calibrate(model, taps));
    }
  }

  bool changed = false;
  int64_t float_bytes = 0;
  for (auto& gf : model.graphs) {
    if (!gf.graph || !pass::AnyGlobMatch(graphs, gf.role)) continue;
    ir::Graph& g = *gf.graph;
    Rewriter rw{g, ctx, per_channel, reduce_range, {}, {}, {}, 0, {}};
    for (ir::Node* n : g.nodes()) {
      if (!Selected(n, ops, nodes, exclude)) continue;
      const std::string& op = n->op_type;
      if (op == "MatMul" || op == "Gemm") {
        if (!matmul_weight(n)) {
          // Products of two activations (attention scores) have no weight to quantize.
          if (ConstantOf(n->input(1))) ctx.Bump("skipped_" + op + "_weight");
          continue;
        }
        const bool gemm = op == "Gemm";
        const bool trans_b = gemm && n->attr_int("transB", 0) != 0;
        ir::Value* x = n->input(0);
        ir::Value* w = n->input(1);
        ir::Value* bias = gemm && n->num_inputs() >= 3 ? n->input(2) : nullptr;
        if (mode == "dynamic") {
          auto [xq, xs, xz] = rw.DynamicInput(n, x);
          const bool u8 = weight_u8;
          auto [wq, ws, wz] = rw.Weight(w, trans_b, 1, {}, u8);
          const std::string base = n->name.empty() ? g.unique_name(op) : n->name;
          // int8 weights are symmetric: no b_zero_point; uint8 ones carry their 128s.
          std::vector<ir::Value*> mm_inputs = {xq, wq, xz};
          if (u8) mm_inputs.push_back(wz);
          ir::Node* mmi = g.insert_node_before(n, "MatMulInteger", mm_inputs,
                                               {g.unique_name(base + "_output_quantized")},
                                               rw.NodeName(base + "_quant"));
          ir::Node* cast = g.insert_node_before(n, "Cast", {mmi->outputs[0]},
                                                {g.unique_name(base + "_output_quantized_cast")},
                                                rw.NodeName(base + "_quant_cast"));
          cast->set_attr_int("to", static_cast<int64_t>(DType::Float32));
          ir::Node* sc = g.insert_node_before(n, "Mul", {xs, ws}, {g.unique_name(base + "_scales")},
                                              rw.NodeName(base + "_quant_scales_mul"));
          ir::Node* mul = g.insert_node_before(n, "Mul", {cast->outputs[0], sc->outputs[0]},
                                               {g.unique_name(base + "_output_dequantized")},
                                               rw.NodeName(base + "_quant_output_scale_mul"));
          ir::Node* last = mul;
          if (bias) {
            last = g.insert_node_before(n, "Add", {mul->outputs[0], bias},
                                        {g.unique_name(base + "_output_bias")},
                                        rw.NodeName(base + "_bias_add"));
          }
          TakeOverOutput(g, n, 0, last, 0);
          g.remove_node(n);
          ctx.Bump(gemm ? "gemm_integer" : "matmul_integer");
        } else {
          ir::Value* wdq = rw.Dequantized(n, w, false, trans_b ? 0 : 1);
          g.set_input(n, 1, wdq);
          if (mode == "static") {
            auto it = rw.static_inputs.find(x);
            if (it != rw.static_inputs.end()) {
              g.set_input(n, 0, it->second);
            } else {
              ir::Value *s = nullptr, *z = nullptr;
              const auto& st = stats[gf.role][x->name];
              float lo = st.min, hi = st.max;
              if (ctx.GetString("calibration") == "percentile") {
                double p = ctx.GetFloat("percentile") / 100.0;
                lo = st.Quantile(1 - p);
                hi = st.Quantile(p);
              }
              lo = std::min(lo, 0.f);
              hi = std::max(hi, 0.f);
              const float qmax = reduce_range ? 127.f : 255.f;
              float scale = hi > lo ? (hi - lo) / qmax : 1.f;
              float zp = std::clamp(std::nearbyint(-lo / scale), 0.f, qmax);
              Tensor zt(DType::Uint8, {});
              zt.data<uint8_t>()[0] = static_cast<uint8_t>(zp);
              s = AddConst(g, x->name + "_scale", Tensor::Scalar(scale));
              z = AddConst(g, x->name + "_zero_point", std::move(zt));
              ctx.Bump("activations_calibrated");
              ir::Node* q = g.insert_node_before(n, "QuantizeLinear", {x, s, z},
                                                 {g.unique_name(x->name + "_QuantizeLinear_Output")},
                                                 rw.NodeName(x->name + "_QuantizeLinear"));
              ir::Node* dq = g.insert_node_before(n, "DequantizeLinear", {q->outputs[0], s, z},
                                                  {g.unique_name(x->name + "_DequantizeLinear_Output")},
                                                  rw.NodeName(x->name + "_DequantizeLinear"));
              rw.static_inputs[x] = dq->outputs[0];
              g.set_input(n, 0, dq->outputs[0]);
            }
            ctx.Bump(gemm ? "gemm_qdq" : "matmul_qdq");
          } else {
            ctx.Bump(gemm ? "gemm_weight_only" : "matmul_weight_only");
          }
        }
        changed = true;
      } else if (op == "Conv") {
        if (!IsFloatConstant(n->input(1)) || ConstantOf(n->input(1))->numel() < min_elements) {
          ctx.Bump("skipped_conv_small_or_not_constant");
          continue;
        }
        g.set_input(n, 1, rw.Dequantized(n, n->input(1), false, 0));
        ctx.Bump("conv_weight_only");
        changed = true;
      } else if (op == "LSTM" || op == "GRU") {
        bool any = false;
        for (int k : {1, 2}) {
          ir::Value* w = n->input(k);
          if (!IsFloatConstant(w, 3) || ConstantOf(w)->numel() < min_elements) continue;
          g.set_input(n, k, rw.Dequantized(n, w, false, 1));
          any = true;
        }
        if (!any) {
          ctx.Bump("skipped_" + op + "_not_constant");
          continue;
        }
        ctx.Bump(op == "LSTM" ? "lstm_weight_only" : "gru_weight_only");
        changed = true;
      } else if (op == "Gather") {
        ir::Value* table = n->input(0);
        if (!IsFloatConstant(table, 2)) continue;  // shape arithmetic, not an embedding
        if (n->attr_int("axis", 0) != 0 || ConstantOf(table)->numel() < min_elements ||
            IsGraphOutput(g, n->output(0))) {
          ctx.Bump("skipped_gather");
          continue;
        }
        const int64_t rows = ConstantOf(table)->dim(0);
        auto [q, s, z] = rw.Weight(table, false, 0, {rows, 1});
        (void)z;
        const std::string base = n->name.empty() ? g.unique_name("Gather") : n->name;
        ir::Node* gq = g.insert_node_before(n, "Gather", {q, n->input(1)},
                                            {g.unique_name(base + "_quantized")},
                                            rw.NodeName(base + "_quant"));
        ir::Node* cast = g.insert_node_before(n, "Cast", {gq->outputs[0]},
                                              {g.unique_name(base + "_quantized_cast")},
                                              rw.NodeName(base + "_quant_cast"));
        cast->set_attr_int("to", static_cast<int64_t>(DType::Float32));
        ir::Value* scale = s;
        if (per_channel) {
          ir::Node* gs = g.insert_node_before(n, "Gather", {s, n->input(1)},
                                              {g.unique_name(base + "_scales")},
                                              rw.NodeName(base + "_quant_scales"));
          scale = gs->outputs[0];
        }
        ir::Node* mul = g.insert_node_before(n, "Mul", {cast->outputs[0], scale},
                                             {g.unique_name(base + "_dequantized")},
                                             rw.NodeName(base + "_quant_scale_mul"));
        TakeOverOutput(g, n, 0, mul, 0);
        g.remove_node(n);
        ctx.Bump("gather_int8");
        changed = true;
      }
    }
    if (changed) RemoveDeadCode(g);
    float_bytes += rw.float_bytes;
  }
  ctx.Bump("float_weight_bytes_quantized", float_bytes);
  if (changed && mode == "static") {
    ctx.Note("static QDQ: asrc runs QuantizeLinear/DequantizeLinear pairs as written (float "
             "matmuls on dequantized values); ONNX Runtime fuses them into integer kernels");
  }
  if (changed && mode == "weight-only") {
    ctx.Note("weight-only: int8 storage, weights dequantized to float at run time");
  }
  return changed;
}

}  // namespace asrc::passes

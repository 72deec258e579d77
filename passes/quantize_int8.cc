#include "passes/quantize_int8.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "passes/driver.h"
#include "passes/util.h"

namespace asrc::passes {

namespace {

using ir::DType;
using ir::Tensor;

struct Options {
  std::string mode;
  bool per_channel, reduce_range, weight_u8;
  int64_t min_elements;
  std::vector<std::string> ops, nodes, exclude;
};

// How a weight is stored in int8: as is or transposed (2-D), quantized per channel along `axis`
// of that layout (-1: per tensor), int8 or uint8 (the same values + 128, zero point 128).
struct Form {
  bool transpose = false;
  int axis = -1;
  bool u8 = false;
  auto tie() const { return std::make_tuple(transpose, axis, u8); }
  bool operator<(const Form& o) const { return tie() < o.tie(); }
  bool operator==(const Form& o) const { return tie() == o.tie(); }
  bool operator!=(const Form& o) const { return !(*this == o); }
};

// One quantized weight: int8/uint8 values, float scales, zero points.
struct Quantized {
  Tensor q, scale, zp;
};

Tensor Transpose2D(const Tensor& w) {
  const int64_t r = w.dim(0), c = w.dim(1);
  Tensor t(DType::Float32, {c, r});
  const float* s = w.data<float>();
  float* d = t.data<float>();
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) d[j * r + i] = s[i * c + j];
  return t;
}

Quantized Quantize(const Tensor& src, const Form& f, bool reduce_range) {
  QuantizedWeight q = QuantizeSymmetric(f.transpose ? Transpose2D(src) : src, f.axis, reduce_range);
  Tensor zp(DType::Int8, q.scale.shape());
  Quantized out{std::move(q.q), std::move(q.scale), std::move(zp)};
  if (f.u8) {
    // Same values shifted by 128 with zero point 128: ONNX Runtime's u8u8 integer kernels are
    // exact, while its u8s8 path on AVX2 without VNNI saturates 16-bit pair sums.
    Tensor u(DType::Uint8, out.q.shape());
    for (int64_t i = 0; i < u.numel(); ++i) {
      u.data<uint8_t>()[i] = static_cast<uint8_t>(out.q.data<int8_t>()[i] + 128);
    }
    out.q = std::move(u);
    out.zp = Tensor(DType::Uint8, out.scale.shape());
    for (int64_t i = 0; i < out.zp.numel(); ++i) out.zp.data<uint8_t>()[i] = 128;
  }
  return out;
}

// The quantized weights of the whole model, by source data (util.h's TensorKey): a weight tied
// across graphs (or read twice in one) is quantized once, and every graph's initializers view
// the same int8 buffers. A tied weight whose readers want different forms (a decoder's Gather
// table that is also the joiner's Gemm(transB) weight) is stored once in one form — as is, int8,
// per row when a Gather reads it — and readers that wanted another form dequantize it
// (DequantizeLinear, float compute), so the tie survives.
class WeightStore {
 public:
  explicit WeightStore(bool reduce_range) : reduce_range_(reduce_range) {}

  // Records that a reader wants `src` in form `f` (the pre-scan).
  void Want(const Tensor& src, const Form& f, bool gather) {
    Wants& w = wants_[KeyOf(src)];
    w.forms.insert(f);
    w.gather |= gather;
    if (w.forms.size() == 1) w.first = f;
  }

  // The form `src` is stored in, given a reader that wants `f`.
  Form Resolve(const Tensor& src, const Form& f) const {
    auto it = wants_.find(KeyOf(src));
    if (it == wants_.end() || it->second.forms.size() < 2) return f;
    const Wants& w = it->second;
    Form c;  // as stored, int8; per channel along the rows a Gather reads, else the first reader's axis
    const int first_axis = w.first.transpose ? 1 - w.first.axis : w.first.axis;
    c.axis = w.first.axis < 0 ? -1 : (w.gather ? 0 : first_axis);
    return c;
  }

  // `src` quantized in form `f` (quantized on first request; later ones share its buffers).
  const Quantized& Get(const Tensor& src, const Form& f) {
    auto key = std::make_pair(KeyOf(src), f);
    auto it = done_.find(key);
    if (it != done_.end()) return it->second;
    if (counted_.insert(KeyOf(src)).second) float_bytes_ += static_cast<int64_t>(src.nbytes());
    return done_.emplace(key, Quantize(src, f, reduce_range_)).first->second;
  }

  int64_t float_bytes() const { return float_bytes_; }

 private:
  struct Wants {
    std::set<Form> forms;
    Form first;
    bool gather = false;
  };
  bool reduce_range_;
  std::map<TensorKey, Wants> wants_;
  std::map<std::pair<TensorKey, Form>, Quantized> done_;
  std::set<TensorKey> counted_;
  int64_t float_bytes_ = 0;
};

bool Selected(const ir::Node* n, const Options& o) {
  if (!n->domain.empty()) return false;
  if (std::find(o.ops.begin(), o.ops.end(), n->op_type) == o.ops.end()) return false;
  return NameSelected(n, o.nodes, o.exclude);
}

bool MatMulWeight(const ir::Node* n, const Options& o) {
  if (n->op_type == "MatMul") {
    return n->num_inputs() == 2 && IsFloatConstant(n->input(1), 2) && !ConstantOf(n->input(0)) &&
           ConstantOf(n->input(1))->numel() >= o.min_elements;
  }
  if (n->op_type == "Gemm") {
    return n->num_inputs() >= 2 && IsFloatConstant(n->input(1), 2) && !ConstantOf(n->input(0)) &&
           n->attr_int("transA", 0) == 0 && n->attr_float("alpha", 1.f) == 1.f &&
           (n->num_inputs() < 3 || !n->input(2) || n->attr_float("beta", 1.f) == 1.f) &&
           ConstantOf(n->input(1))->numel() >= o.min_elements;
  }
  return false;
}

// The weight inputs of selected node `n` this pass quantizes, each with the form its rewrite
// wants; empty when `n` is left alone (counted when `ctx` is given: the rewrite, not the scan).
std::vector<std::pair<int, Form>> WantedForms(const ir::Graph& g, const ir::Node* n, const Options& o,
                                              pass::PassContext* ctx) {
  const std::string& op = n->op_type;
  auto skip = [&](const std::string& counter) {
    if (ctx) ctx->Bump(counter);
    return std::vector<std::pair<int, Form>>{};
  };
  auto form = [&](bool transpose, int axis, bool u8) { return Form{transpose, o.per_channel ? axis : -1, u8}; };
  if (op == "MatMul" || op == "Gemm") {
    if (!MatMulWeight(n, o)) {
      // Products of two activations (attention scores) have no weight to quantize.
      if (ConstantOf(n->input(1))) return skip("skipped_" + op + "_weight");
      return {};
    }
    const bool trans_b = op == "Gemm" && n->attr_int("transB", 0) != 0;
    if (o.mode == "dynamic") return {{1, form(trans_b, 1, o.weight_u8)}};
    return {{1, form(false, trans_b ? 0 : 1, false)}};
  }
  if (op == "Conv" || op == "ConvTranspose") {
    // Output channels: W [C_out, C_in/group, k...] for Conv, [C_in, C_out/group, k...] for
    // ConvTranspose.
    const bool transposed = op == "ConvTranspose";
    const ir::Value* w = n->input(1);
    if (!IsFloatConstant(w) || ConstantOf(w)->numel() < o.min_elements || ConstantOf(w)->rank() < 3) {
      return skip(transposed ? "skipped_conv_transpose_small_or_not_constant" : "skipped_conv_small_or_not_constant");
    }
    return {{1, form(false, transposed ? 1 : 0, false)}};
  }
  if (op == "LSTM" || op == "GRU" || op == "RNN") {
    std::vector<std::pair<int, Form>> out;
    for (int k : {1, 2}) {
      const ir::Value* w = n->input(k);
      if (IsFloatConstant(w, 3) && ConstantOf(w)->numel() >= o.min_elements) out.push_back({k, form(false, 1, false)});
    }
    return out.empty() ? skip("skipped_" + op + "_not_constant") : out;
  }
  if (op == "Gather") {
    const ir::Value* table = n->input(0);
    if (!IsFloatConstant(table, 2)) return {};  // shape arithmetic, not an embedding
    if (n->attr_int("axis", 0) != 0 || ConstantOf(table)->numel() < o.min_elements ||
        IsGraphOutput(g, n->output(0))) {
      return skip("skipped_gather");
    }
    return {{0, form(false, 0, false)}};
  }
  return {};
}

// The counter of a node whose weights are stored int8 behind a DequantizeLinear.
std::string WeightOnlyCounter(const std::string& op) {
  if (op == "ConvTranspose") return "conv_transpose_weight_only";
  std::string lower = op;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower + "_weight_only";  // conv, lstm, gru, rnn
}

// Per-graph rewriting state: initializers and activation quantizers created once per graph and
// reused by every node that reads the same weight or activation.
struct Rewriter {
  ir::Graph& g;
  pass::PassContext& ctx;
  const Options& o;
  WeightStore& store;
  const pass::StatsMap* stats;  // static mode: calibration statistics of this graph's role
  // (source value, form, scale shape) -> (q, scale, zero point) values in this graph
  std::map<std::tuple<const ir::Value*, Form, ir::Shape>, std::tuple<ir::Value*, ir::Value*, ir::Value*>> weights;
  std::map<const ir::Value*, std::tuple<ir::Value*, ir::Value*, ir::Value*>> dyn_inputs;  // x -> q, s, zp
  std::map<const ir::Value*, ir::Value*> static_inputs;  // x -> its QuantizeLinear/DequantizeLinear
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

  // Initializers of `w` quantized in form `f`, with the scale (and zero point) reshaped to
  // `scale_shape` when given and per channel.
  std::tuple<ir::Value*, ir::Value*, ir::Value*> Weight(const ir::Value* w, const Form& f,
                                                       const ir::Shape& scale_shape = {}) {
    auto key = std::make_tuple(w, f, scale_shape);
    auto it = weights.find(key);
    if (it != weights.end()) return it->second;
    const Quantized& q = store.Get(*ConstantOf(w), f);
    const bool reshape = !scale_shape.empty() && o.per_channel;
    ir::Value* vq = AddConst(g, w->name + "_quantized", q.q);
    ir::Value* vs = AddConst(g, w->name + "_scale", reshape ? q.scale.Reshaped(scale_shape) : q.scale);
    ir::Value* vz = AddConst(g, w->name + "_zero_point", reshape ? q.zp.Reshaped(scale_shape) : q.zp);
    auto r = std::make_tuple(vq, vs, vz);
    weights[key] = r;
    return r;
  }

  // DequantizeLinear of `w` stored in form `f` (never transposed: the float reader sees W as is).
  ir::Value* Dequantized(ir::Node* before, const ir::Value* w, const Form& f) {
    auto [q, s, z] = Weight(w, f);
    ir::Node* dq = g.InsertNodeBefore(before, "DequantizeLinear", {q, s, z},
                                        {g.UniqueName(w->name + "_dequantized")},
                                        NodeName(w->name + "_DequantizeLinear"));
    if (o.per_channel) dq->set_attr_int("axis", f.axis);
    return dq->outputs[0];
  }

  std::tuple<ir::Value*, ir::Value*, ir::Value*> DynamicInput(ir::Node* before, ir::Value* x) {
    auto it = dyn_inputs.find(x);
    if (it != dyn_inputs.end()) return it->second;
    ir::Node* n = g.InsertNodeBefore(
        before, "DynamicQuantizeLinear", {x},
        {g.UniqueName(x->name + "_quantized"), g.UniqueName(x->name + "_scale"),
         g.UniqueName(x->name + "_zero_point")},
        NodeName(x->name + "_QuantizeLinear"));
    auto r = std::make_tuple(n->outputs[0], n->outputs[1], n->outputs[2]);
    dyn_inputs[x] = r;
    return r;
  }

  // Static mode: x -> QuantizeLinear -> DequantizeLinear with the calibrated range, once per x.
  ir::Value* StaticInput(ir::Node* before, ir::Value* x) {
    auto it = static_inputs.find(x);
    if (it != static_inputs.end()) return it->second;
    static const pass::ActivationStats kNone;
    const pass::ActivationStats* found = nullptr;
    if (stats) {
      auto it = stats->find(x->name);
      if (it != stats->end()) found = &it->second;
    }
    const pass::ActivationStats& st = found ? *found : kNone;
    float lo = st.min, hi = st.max;
    if (ctx.GetString("calibration") == "percentile") {
      double p = ctx.GetFloat("percentile") / 100.0;
      lo = st.Quantile(1 - p);
      hi = st.Quantile(p);
    }
    lo = std::min(lo, 0.f);
    hi = std::max(hi, 0.f);
    const float qmax = o.reduce_range ? 127.f : 255.f;
    float scale = hi > lo ? (hi - lo) / qmax : 1.f;
    float zp = std::clamp(std::nearbyint(-lo / scale), 0.f, qmax);
    Tensor zt(DType::Uint8, {});
    zt.data<uint8_t>()[0] = static_cast<uint8_t>(zp);
    ir::Value* s = AddConst(g, x->name + "_scale", Tensor::Scalar(scale));
    ir::Value* z = AddConst(g, x->name + "_zero_point", std::move(zt));
    ctx.Bump("activations_calibrated");
    ir::Node* q = g.InsertNodeBefore(before, "QuantizeLinear", {x, s, z},
                                       {g.UniqueName(x->name + "_QuantizeLinear_Output")},
                                       NodeName(x->name + "_QuantizeLinear"));
    ir::Node* dq = g.InsertNodeBefore(before, "DequantizeLinear", {q->outputs[0], s, z},
                                        {g.UniqueName(x->name + "_DequantizeLinear_Output")},
                                        NodeName(x->name + "_DequantizeLinear"));
    static_inputs[x] = dq->outputs[0];
    return dq->outputs[0];
  }

  // x -> DynamicQuantizeLinear -> MatMulInteger(x_q, W_q, x_zp) -> Cast -> Mul(x_scale * W_scale)
  // [-> Add(bias)], taking over n's output.
  void MatMulInteger(ir::Node* n, const Form& f) {
    const std::string& op = n->op_type;
    const bool gemm = op == "Gemm";
    ir::Value* bias = gemm && n->num_inputs() >= 3 ? n->input(2) : nullptr;
    auto [xq, xs, xz] = DynamicInput(n, n->input(0));
    auto [wq, ws, wz] = Weight(n->input(1), f);
    const std::string base = n->name.empty() ? g.UniqueName(op) : n->name;
    // int8 weights are symmetric: no b_zero_point; uint8 ones carry their 128s.
    std::vector<ir::Value*> mm_inputs = {xq, wq, xz};
    if (f.u8) mm_inputs.push_back(wz);
    ir::Node* mmi = g.InsertNodeBefore(n, "MatMulInteger", mm_inputs,
                                         {g.UniqueName(base + "_output_quantized")},
                                         NodeName(base + "_quant"));
    ir::Node* cast = g.InsertNodeBefore(n, "Cast", {mmi->outputs[0]},
                                          {g.UniqueName(base + "_output_quantized_cast")},
                                          NodeName(base + "_quant_cast"));
    cast->set_attr_int("to", static_cast<int64_t>(DType::Float32));
    ir::Node* sc = g.InsertNodeBefore(n, "Mul", {xs, ws}, {g.UniqueName(base + "_scales")},
                                        NodeName(base + "_quant_scales_mul"));
    ir::Node* mul = g.InsertNodeBefore(n, "Mul", {cast->outputs[0], sc->outputs[0]},
                                         {g.UniqueName(base + "_output_dequantized")},
                                         NodeName(base + "_quant_output_scale_mul"));
    ir::Node* last = mul;
    if (bias) {
      last = g.InsertNodeBefore(n, "Add", {mul->outputs[0], bias}, {g.UniqueName(base + "_output_bias")},
                                  NodeName(base + "_bias_add"));
    }
    TakeOverOutput(n, 0, last, 0);
    g.RemoveNode(n);
    ctx.Bump(gemm ? "gemm_integer" : "matmul_integer");
  }

  // MatMul/Gemm in every mode. Dynamic mode falls back to a dequantized weight where the weight
  // is tied to a reader that needs another int8 form (WeightStore).
  void MatMul(ir::Node* n, const Form& wanted) {
    const bool gemm = n->op_type == "Gemm";
    const Form f = store.Resolve(*ConstantOf(n->input(1)), wanted);
    if (o.mode == "dynamic" && f == wanted) return MatMulInteger(n, f);
    g.set_input(n, 1, Dequantized(n, n->input(1), f));
    if (o.mode == "static") {
      g.set_input(n, 0, StaticInput(n, n->input(0)));
      ctx.Bump(gemm ? "gemm_qdq" : "matmul_qdq");
    } else {
      ctx.Bump(gemm ? "gemm_weight_only" : "matmul_weight_only");
    }
    if (f != wanted) ctx.Bump("tied_weight_dequantized");
  }

  // Gather(table) -> Gather(int8 table) -> Cast -> Mul(Gather of per-row scales), taking over
  // n's output.
  void Gather(ir::Node* n, const Form& f) {
    ir::Value* table = n->input(0);
    const int64_t rows = ConstantOf(table)->dim(0);
    auto [q, s, z] = Weight(table, f, {rows, 1});
    (void)z;
    const std::string base = n->name.empty() ? g.UniqueName("Gather") : n->name;
    ir::Node* gq = g.InsertNodeBefore(n, "Gather", {q, n->input(1)}, {g.UniqueName(base + "_quantized")},
                                        NodeName(base + "_quant"));
    ir::Node* cast = g.InsertNodeBefore(n, "Cast", {gq->outputs[0]}, {g.UniqueName(base + "_quantized_cast")},
                                          NodeName(base + "_quant_cast"));
    cast->set_attr_int("to", static_cast<int64_t>(DType::Float32));
    ir::Value* scale = s;
    if (o.per_channel) {
      ir::Node* gs = g.InsertNodeBefore(n, "Gather", {s, n->input(1)}, {g.UniqueName(base + "_scales")},
                                          NodeName(base + "_quant_scales"));
      scale = gs->outputs[0];
    }
    ir::Node* mul = g.InsertNodeBefore(n, "Mul", {cast->outputs[0], scale}, {g.UniqueName(base + "_dequantized")},
                                         NodeName(base + "_quant_scale_mul"));
    TakeOverOutput(n, 0, mul, 0);
    g.RemoveNode(n);
    ctx.Bump("gather_int8");
  }

  // Rewrites every selected node of the graph; true when any changed.
  bool Run() {
    bool changed = false;
    for (ir::Node* n : g.nodes()) {
      if (!Selected(n, o)) continue;
      const auto forms = WantedForms(g, n, o, &ctx);
      if (forms.empty()) continue;
      const std::string& op = n->op_type;
      if (op == "MatMul" || op == "Gemm") {
        MatMul(n, forms[0].second);
      } else if (op == "Gather") {
        Gather(n, store.Resolve(*ConstantOf(n->input(0)), forms[0].second));
      } else {  // Conv, ConvTranspose, LSTM, GRU, RNN: int8 weights behind a DequantizeLinear
        for (const auto& [k, f] : forms) {
          g.set_input(n, k, Dequantized(n, n->input(k), store.Resolve(*ConstantOf(n->input(k)), f)));
        }
        ctx.Bump(WeightOnlyCounter(op));
      }
      changed = true;
    }
    return changed;
  }
};

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
      {"ops", json::array({"MatMul", "Gemm", "Conv", "ConvTranspose", "LSTM", "GRU", "RNN", "Gather"}),
       "op types whose weights are quantized",
       {"MatMul", "Gemm", "Conv", "ConvTranspose", "LSTM", "GRU", "RNN", "Gather"}},
      {"nodes", json::array({"*"}), "node names to quantize (glob patterns)", {}},
      {"exclude_nodes", json::array(), "node names to leave in float (glob patterns)", {}},
      {"min_elements", int64_t{256}, "leave weights with fewer elements in float", {}, 0, 1e12},
      {"calibration", "minmax", "static mode: activation range from min/max or percentiles",
       {"minmax", "percentile"}},
      {"percentile", 99.99, "static mode, calibration=percentile: the percentile kept", {}, 50, 100},
  };
}

Result<bool> QuantizeInt8Pass::Run(ir::Model& model, pass::PassContext& ctx) {
  const Options o{ctx.GetString("mode"),          ctx.GetBool("per_channel"),
                  ctx.GetBool("reduce_range"),    ctx.GetString("weight_type") == "uint8",
                  ctx.GetInt("min_elements"),     ctx.GetStrings("ops"),
                  ctx.GetStrings("nodes"),        ctx.GetStrings("exclude_nodes")};
  const auto graphs = ctx.GetStrings("graphs");
  // Scan first: which form each reader wants of each weight (tied weights), and in static mode
  // the activations entering the selected matrix products, calibrated before any rewrite.
  WeightStore store(o.reduce_range);
  pass::Taps taps;
  for (const GraphSite& site : SelectGraphs(model, graphs)) {
    for (ir::Node* n : site.graph.nodes()) {
      if (!Selected(n, o)) continue;
      for (const auto& [k, f] : WantedForms(site.graph, n, o, nullptr)) {
        store.Want(*ConstantOf(n->input(k)), f, n->op_type == "Gather");
        const bool matmul = n->op_type == "MatMul" || n->op_type == "Gemm";
        // Calibration runs the top-level graphs (a subgraph's activations get no range).
        if (o.mode == "static" && matmul && !site.is_subgraph()) {
          taps[site.file.role].push_back(n->input(0)->name);
        }
      }
    }
  }
  pass::ModelStats stats;
  if (!taps.empty()) {
    if (!ctx.calibrate) {
      return Error("mode=static needs calibration data (pipeline \"calibration\" or the eval set)");
    }
    ASRC_ASSIGN_OR_RETURN(stats, ctx.calibrate(model, taps));
  }
  ASRC_ASSIGN_OR_RETURN(bool changed, RewriteGraphs(model, graphs, [&](GraphSite& site) -> Result<bool> {
    auto it = stats.find(site.file.role);
    Rewriter rw{site.graph, ctx, o, store, it == stats.end() ? nullptr : &it->second, {}, {}, {}, {}};
    return rw.Run();
  }));
  ctx.Bump("float_weight_bytes_quantized", store.float_bytes());
  if (ctx.counters().count("tied_weight_dequantized")) {
    ctx.Note("tied weights: a weight shared by readers that need different int8 layouts is stored "
             "once, and the readers that needed another layout dequantize it (float compute)");
  }
  if (changed && o.mode == "static") {
    ctx.Note("static QDQ: asrc runs QuantizeLinear/DequantizeLinear pairs as written (float "
             "matmuls on dequantized values); ONNX Runtime fuses them into integer kernels");
  }
  if (changed && o.mode == "weight-only") {
    ctx.Note("weight-only: int8 storage, weights dequantized to float at run time");
  }
  return changed;
}

}  // namespace asrc::passes

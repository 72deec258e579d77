#include "passes/sherpa_export.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "asr/stream.h"
#include "passes/util.h"

namespace asrc::passes {
namespace {

using ValueMap = std::map<const ir::Value*, ir::Value*>;

void SetType(ir::Value* v, ir::DType dtype, const std::vector<ir::Dim>& dims) {
  v->type.has_type = true;
  v->type.dtype = dtype;
  v->type.has_shape = true;
  v->type.dims = dims;
}

ir::Dim Known(int64_t n) { return ir::Dim{n, ""}; }
ir::Dim Sym(const std::string& s) { return ir::Dim{-1, s}; }

std::vector<ir::Dim> DimsOf(const ir::Shape& shape) {
  std::vector<ir::Dim> d;
  for (int64_t n : shape) d.push_back(Known(n));
  return d;
}

ir::Value* I64(ir::Graph& g, const std::string& base, const std::vector<int64_t>& v) {
  return AddConst(g, base, ir::Tensor::FromVector(ir::DType::Int64, {static_cast<int64_t>(v.size())}, v));
}

ir::Value* Op(ir::Graph& g, const std::string& op, const std::vector<ir::Value*>& in, const std::string& base) {
  // Output names are unique (in scope), so node names taken from them are too.
  const std::string out = g.UniqueName(base);
  return g.AddNode(op, in, {out}, "glue:" + out)->outputs[0];
}

ir::Value* Concat0(ir::Graph& g, const std::vector<ir::Value*>& in, const std::string& base) {
  ir::Value* v = Op(g, "Concat", in, base);
  v->producer->set_attr_int("axis", 0);
  return v;
}

// Slice of `x` along `axis` from `start` (a 1-element int64 value) to `end`.
ir::Value* SliceAxis(ir::Graph& g, ir::Value* x, ir::Value* start, ir::Value* end, int64_t axis,
                     const std::string& base) {
  return Op(g, "Slice", {x, start, end, I64(g, base + "_axis", {axis})}, base);
}

int FindIndex(const std::vector<ir::Value*>& vs, const std::string& name) {
  for (size_t i = 0; i < vs.size(); ++i)
    if (vs[i] && vs[i]->name == name) return static_cast<int>(i);
  return -1;
}

// Copies src's initializers and nodes into dst, names prefixed, src's inputs read from `bound`.
// Returns the map from src values to dst values (graph outputs of src are found through it).
Result<ValueMap> CopyInto(const ir::Graph& src, ir::Graph& dst, const std::string& prefix,
                          ValueMap bound, const std::string& where) {
  for (const ir::Value* in : src.inputs)
    if (!bound.count(in)) return Error(where + ": unexpected input '" + in->name + "'");
  for (const ir::Value* init : src.initializers) {
    ir::Value* v = dst.AddInitializer(dst.UniqueName(prefix + init->name), *init->initializer);
    v->type = init->type;
    bound[init] = v;
  }
  ASRC_ASSIGN_OR_RETURN(auto order, src.TopoOrder());
  for (const ir::Node* n : order) {
    std::vector<ir::Value*> ins;
    for (const ir::Value* v : n->inputs) {
      if (!v) {
        ins.push_back(nullptr);
        continue;
      }
      auto it = bound.find(v);
      if (it == bound.end()) return Error(where + ": node '" + NodeLabel(n) + "' reads undefined '" + v->name + "'");
      ins.push_back(it->second);
    }
    for (const auto& a : n->attributes)
      if (a.g || !a.graphs.empty())
        return Error(where + ": node '" + NodeLabel(n) + "' has a subgraph (" + n->op_type +
                     "); merging graphs with control flow is not supported");
    std::vector<std::string> outs;
    for (const ir::Value* o : n->outputs) outs.push_back(o ? dst.UniqueName(prefix + o->name) : "");
    ir::Node* c = dst.AddNode(n->op_type, ins, outs, n->name.empty() ? "" : prefix + n->name, n->domain);
    c->attributes = n->attributes;
    c->doc_string = n->doc_string;
    c->raw_extras = n->raw_extras;
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      if (!n->outputs[i]) continue;
      c->outputs[i]->type = n->outputs[i]->type;
      bound[n->outputs[i]] = c->outputs[i];
    }
  }
  return bound;
}

ir::Value* SrcOutput(const ir::Graph& g, const std::string& name) {
  int i = FindIndex(g.outputs, name);
  return i < 0 ? nullptr : g.outputs[i];
}

ir::Value* SrcInput(const ir::Graph& g, const std::string& name) {
  int i = FindIndex(g.inputs, name);
  return i < 0 ? nullptr : g.inputs[i];
}

// The encoder's graph inputs x [N,T,F] and x_lens [N], x shifted by `offset`; returns x + offset
// (or x) and sets *x_lens.
ir::Value* OfflineInputs(ir::Graph& g, int64_t feat_dim, float offset, ir::Value** x_lens) {
  ir::Value* x = g.AddValue("x");
  SetType(x, ir::DType::Float32, {Sym("N"), Sym("T"), Known(feat_dim)});
  g.inputs.push_back(x);
  *x_lens = g.AddValue("x_lens");
  SetType(*x_lens, ir::DType::Int64, {Sym("N")});
  g.inputs.push_back(*x_lens);
  if (offset == 0) return x;
  // sherpa-onnx's fbank of samples in [-1, 1] + 2 ln(waveform_scale) = asrc's fbank.
  ir::Value* c = AddConst(g, "sherpa/waveform_scale_offset", ir::Tensor::Scalar(offset));
  return Op(g, "Add", {x, c}, "sherpa/x_scaled");
}

void SetOutputs(ir::Graph& g, ir::Value* enc, ir::Value* lens, int64_t dim) {
  ir::Value* e = g.AddNode("Identity", {enc}, {"encoder_out"}, "glue:encoder_out")->outputs[0];
  SetType(e, ir::DType::Float32, {Sym("N"), Sym("T_out"), dim > 0 ? Known(dim) : Sym("D")});
  ir::Value* l = g.AddNode("Identity", {lens}, {"encoder_out_lens"}, "glue:encoder_out_lens")->outputs[0];
  SetType(l, ir::DType::Int64, {Sym("N")});
  g.outputs = {e, l};
}

int64_t LastDim(const ir::Value* v) {
  if (!v || !v->type.has_shape || v->type.dims.empty()) return -1;
  return v->type.dims.back().value;
}

// Runs `src` (an offline encoder: x, optional x_lens -> encoder_out, optional encoder_out_lens)
// inside `g` on x / lens; sets g's outputs.
Status AppendOffline(const ir::Graph& src, ir::Graph& g, ir::Value* x, ir::Value* lens,
                     const std::string& prefix, const std::string& where) {
  ir::Value* sx = SrcInput(src, "x");
  ir::Value* sl = SrcInput(src, "x_lens");
  ir::Value* so = SrcOutput(src, "encoder_out");
  if (!sx) return Error(where + ": graph has no input 'x'");
  if (!so) return Error(where + ": graph has no output 'encoder_out'");
  ValueMap bound{{sx, x}};
  if (sl) bound[sl] = lens;
  ASRC_ASSIGN_OR_RETURN(ValueMap m, CopyInto(src, g, prefix, bound, where));
  ir::Value* sol = SrcOutput(src, "encoder_out_lens");
  SetOutputs(g, m.at(so), sol ? m.at(sol) : lens, LastDim(so));
  return Status::Ok();
}

// The Loop body: (iteration, cond, caches...) -> (cond, new caches..., encoder_out of the chunk
// [1, chunk_frames / subsampling_factor, D]), the window sliced from `xpad` of the outer graph.
Result<std::shared_ptr<ir::Graph>> ChunkBody(const ir::Graph& causal, ir::Graph& outer, ir::Value* xpad,
                                             const asr::BundleConfig& cfg) {
  auto body = std::make_shared<ir::Graph>("causal_chunk");
  body->parent = &outer;
  ir::Graph& b = *body;
  ir::Value* iter = b.AddValue(b.UniqueName("causal/iteration"));
  SetType(iter, ir::DType::Int64, {});
  ir::Value* cond = b.AddValue(b.UniqueName("causal/cond"));
  SetType(cond, ir::DType::Bool, {});
  b.inputs = {iter, cond};
  ir::Value* sx = SrcInput(causal, "x");
  if (!sx) return Error("encoder_causal: graph has no input 'x'");
  ValueMap bound;
  for (const auto& c : cfg.cache) {
    ir::Value* s = SrcInput(causal, c.input);
    if (!s) return Error("encoder_causal: graph has no cache input '" + c.input + "' (model.json streaming.cache)");
    if (!SrcOutput(causal, c.output))
      return Error("encoder_causal: graph has no cache output '" + c.output + "' (model.json streaming.cache)");
    ir::Value* v = b.AddValue(b.UniqueName("causal/" + c.input));
    SetType(v, c.dtype, DimsOf(c.shape));
    b.inputs.push_back(v);
    bound[s] = v;
  }
  ir::Value* it1 = Op(b, "Unsqueeze", {iter, I64(b, "causal/axes0", {0})}, "causal/iteration_1d");
  ir::Value* start = Op(b, "Mul", {it1, I64(b, "causal/chunk", {cfg.chunk_frames})}, "causal/start");
  ir::Value* end = Op(b, "Add", {start, I64(b, "causal/window", {cfg.chunk_frames + cfg.right_context_frames})},
                      "causal/end");
  bound[sx] = SliceAxis(b, xpad, start, end, 1, "causal/x_window");
  ASRC_ASSIGN_OR_RETURN(ValueMap m, CopyInto(causal, b, "causal/", bound, "encoder_causal"));
  ir::Value* so = SrcOutput(causal, "encoder_out");
  if (!so) return Error("encoder_causal: graph has no output 'encoder_out'");
  ir::Value* cond_out = Op(b, "Identity", {cond}, "causal/cond_out");
  SetType(cond_out, ir::DType::Bool, {});
  b.outputs = {cond_out};
  for (const auto& c : cfg.cache) {
    // A body output must be a value of its own (not the carried input passed through).
    ir::Value* o = Op(b, "Identity", {m.at(SrcOutput(causal, c.output))}, "causal/" + c.output);
    SetType(o, c.dtype, DimsOf(c.shape));
    b.outputs.push_back(o);
  }
  const int64_t keep = cfg.chunk_frames / cfg.subsampling_factor;
  ir::Value* chunk = SliceAxis(b, m.at(so), I64(b, "causal/zero", {0}), I64(b, "causal/keep", {keep}), 1,
                               "causal/encoder_out");
  SetType(chunk, ir::DType::Float32, {Known(1), Known(keep), LastDim(so) > 0 ? Known(LastDim(so)) : Sym("D")});
  b.outputs.push_back(chunk);
  return body;
}

// The cascade in look-ahead mode as one graph (see the header).
Result<ir::GraphFile> MergeCascade(const ir::Model& bundle, const asr::BundleConfig& cfg, float offset) {
  const ir::GraphFile* cf = bundle.find("encoder_causal");
  const ir::GraphFile* nf = bundle.find("encoder_noncausal");
  if (!cf || !cf->graph || !nf || !nf->graph)
    return Error("cascaded bundle without encoder_causal and encoder_noncausal graphs");
  for (const ir::GraphFile* f : {cf, nf})
    if (f->opset("") < 13)
      return Error(f->role + ": opset " + std::to_string(f->opset("")) +
                   " (the merged encoder needs opset >= 13 for Slice/Unsqueeze with axes inputs)");
  if (cfg.chunk_frames <= 0 || cfg.subsampling_factor <= 0 || cfg.chunk_frames % cfg.subsampling_factor != 0)
    return Error("model.json: streaming.chunk_frames (" + std::to_string(cfg.chunk_frames) +
                 ") must be a positive multiple of decoding.subsampling_factor (" +
                 std::to_string(cfg.subsampling_factor) + ")");
  ir::GraphFile gf;
  gf.role = "encoder";
  gf.file = "encoder.onnx";
  gf.ir_version = std::max(cf->ir_version, nf->ir_version);
  gf.opsets = cf->opset("") >= nf->opset("") ? cf->opsets : nf->opsets;
  gf.producer_name = "asrc";
  gf.graph = std::make_unique<ir::Graph>("encoder");
  ir::Graph& g = *gf.graph;
  ir::Value* lens = nullptr;
  ir::Value* x = OfflineInputs(g, cfg.frontend.feature_dim(), offset, &lens);
  // T = x_lens (batch 1; frames past it are batch padding), n = ceil(T / chunk) windows.
  ir::Value* zero = I64(g, "sherpa/zero", {0});
  ir::Value* xt = SliceAxis(g, x, zero, lens, 1, "sherpa/x_valid");
  const int64_t chunk = cfg.chunk_frames, rc = cfg.right_context_frames, sub = cfg.subsampling_factor;
  ir::Value* n = Op(g, "Div", {Op(g, "Add", {lens, I64(g, "sherpa/chunk_m1", {chunk - 1})}, "sherpa/t_plus"),
                               I64(g, "sherpa/chunk", {chunk})}, "sherpa/num_chunks");
  ir::Value* padded = Op(g, "Add", {Op(g, "Mul", {n, I64(g, "sherpa/chunk2", {chunk})}, "sherpa/n_chunk"),
                                    I64(g, "sherpa/right_context", {rc})}, "sherpa/padded_frames");
  ir::Value* pad_len = Op(g, "Sub", {padded, lens}, "sherpa/pad_frames");
  ir::Value* pads = Concat0(g, {I64(g, "sherpa/pads_head", {0, 0, 0, 0}), pad_len, I64(g, "sherpa/pads_tail", {0})},
                            "sherpa/pads");
  ir::Value* pad_value = AddConst(g, "sherpa/pad_value", ir::Tensor::Scalar(cfg.pad_value));
  ir::Value* xpad = Op(g, "Pad", {xt, pads, pad_value}, "sherpa/x_padded");
  ASRC_ASSIGN_OR_RETURN(auto body, ChunkBody(*cf->graph, g, xpad, cfg));

  std::vector<ir::Value*> loop_in = {Op(g, "Squeeze", {n, I64(g, "sherpa/axes0", {0})}, "sherpa/trip_count"),
                                     nullptr};
  std::vector<std::string> loop_out;
  for (const auto& c : cfg.cache) {
    ir::Tensor t(c.dtype, c.shape);  // zero-filled: the caches of a fresh stream
    loop_in.push_back(AddConst(g, "sherpa/" + c.input + "_init", std::move(t)));
    loop_out.push_back(g.UniqueName("sherpa/" + c.output + "_final"));
  }
  loop_out.push_back(g.UniqueName("sherpa/causal_chunks"));
  ir::Node* loop = g.AddNode("Loop", loop_in, loop_out, "glue:causal_loop");
  ir::Attribute a;
  a.name = "body";
  a.kind = ir::Attribute::Kind::Graph;
  a.g = body;
  loop->attributes.push_back(std::move(a));

  // [n, 1, keep, D] -> [1, n * keep, D] -> the first ceil(T / sub) frames.
  ir::Value* scan = loop->outputs.back();
  ir::Value* shape = Op(g, "Shape", {scan}, "sherpa/chunks_shape");
  ir::Value* d = SliceAxis(g, shape, I64(g, "sherpa/three", {3}), I64(g, "sherpa/four", {4}), 0, "sherpa/d");
  ir::Value* new_shape = Concat0(g, {I64(g, "sherpa/one_m1", {1, -1}), d}, "sherpa/joined_shape");
  ir::Value* joined = Op(g, "Reshape", {scan, new_shape}, "sherpa/causal_joined");
  ir::Value* t_out = Op(g, "Div", {Op(g, "Add", {lens, I64(g, "sherpa/sub_m1", {sub - 1})}, "sherpa/t_plus_sub"),
                                   I64(g, "sherpa/sub", {sub})}, "sherpa/t_out");
  ir::Value* causal_out = SliceAxis(g, joined, zero, t_out, 1, "sherpa/causal_out");
  ASRC_RETURN_IF_ERROR(AppendOffline(*nf->graph, g, causal_out, t_out, "noncausal/", "encoder_noncausal"));
  ASRC_RETURN_IF_ERROR(g.Verify().With("merged encoder"));
  return gf;
}

// Puts op(v, operand) between graph input `v` and all its readers (subgraph reads included).
void Intercept(ir::Graph& g, ir::Value* v, const std::string& op, ir::Value* operand, const std::string& name) {
  const std::vector<ir::Value*> in = {v, operand};
  const std::vector<std::string> out = {g.UniqueName("sherpa/" + name)};
  ir::Node* n = g.num_nodes() == 0 ? g.AddNode(op, in, out, "glue:" + name)
                                   : g.InsertNodeBefore(g.nodes().front(), op, in, out, "glue:" + name);
  g.ReplaceAllUses(v, n->outputs[0]);  // n's own input too: set back below
  g.set_input(n, 0, v);
}

// Puts the values named `names` first, in that order (sherpa-onnx binds inputs and outputs by
// position); error naming what is missing.
Status Reorder(std::vector<ir::Value*>* vs, const std::vector<std::string>& names, const std::string& what) {
  std::vector<ir::Value*> front;
  for (const auto& n : names) {
    int i = FindIndex(*vs, n);
    if (i < 0) return Error(what + " '" + n + "'");
    front.push_back((*vs)[i]);
  }
  for (ir::Value* v : *vs)
    if (std::find(front.begin(), front.end(), v) == front.end()) front.push_back(v);
  *vs = front;
  return Status::Ok();
}

// The offline encoder of a `transducer` bundle, edited in place (so control flow inside it
// survives): x + offset in front, inputs and outputs in sherpa-onnx's order.
Result<ir::GraphFile> OfflineEncoder(const ir::Model& bundle, float offset) {
  const ir::GraphFile* ef = bundle.find("encoder");
  if (!ef || !ef->graph) return Error("transducer bundle without an 'encoder' graph");
  ir::GraphFile gf = *ef;
  gf.file = "encoder.onnx";
  ir::Graph& g = *gf.graph;
  ASRC_RETURN_IF_ERROR(Reorder(&g.inputs, {"x", "x_lens"}, "encoder: graph has no input"));
  ASRC_RETURN_IF_ERROR(Reorder(&g.outputs, {"encoder_out", "encoder_out_lens"}, "encoder: graph has no output"));
  if (g.inputs.size() != 2)
    return Error("encoder: graph has " + std::to_string(g.inputs.size()) +
                 " inputs; sherpa-onnx feeds two (x, x_lens)");
  if (offset != 0) {
    // sherpa-onnx's fbank of samples in [-1, 1] + 2 ln(waveform_scale) = asrc's fbank.
    Intercept(g, g.inputs[0], "Add", AddConst(g, "sherpa/waveform_scale_offset", ir::Tensor::Scalar(offset)),
              "x_scaled");
  }
  ASRC_RETURN_IF_ERROR(g.Verify().With("encoder"));
  return gf;
}

// Front-end settings sherpa-onnx's OfflineRecognizer cannot be given (its FeatureExtractorConfig
// defaults, knf::FbankOptions): each must match, or the features differ.
Status CheckFrontend(const asr::FbankOptions& f) {
  auto bad = [](const std::string& key, const std::string& ours, const std::string& theirs) {
    return Error("model.json: frontend." + key + " is " + ours + "; sherpa-onnx's front end uses " + theirs +
                 " (and cannot be configured otherwise from its OfflineRecognizer feature config)");
  };
  auto num = [](double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  const std::vector<std::tuple<std::string, double, double>> nums = {
      {"frame_length_ms", f.frame_length_ms, 25.0}, {"frame_shift_ms", f.frame_shift_ms, 10.0},
      {"low_freq", f.low_freq, 20.0},              {"high_freq", f.high_freq, -400.0},
      {"dither", f.dither, 0.0},                    {"preemphasis_coefficient", f.preemphasis_coefficient, 0.97}};
  for (const auto& [key, ours, theirs] : nums)
    if (std::abs(ours - theirs) > 1e-9) return bad(key, num(ours), num(theirs));
  const std::vector<std::tuple<std::string, bool, bool>> flags = {
      {"snip_edges", f.snip_edges, false},       {"remove_dc_offset", f.remove_dc_offset, true},
      {"round_to_power_of_two", f.round_to_power_of_two, true}, {"use_energy", f.use_energy, false},
      {"use_log_fbank", f.use_log_fbank, true},   {"use_power", f.use_power, true}};
  for (const auto& [key, ours, theirs] : flags)
    if (ours != theirs) return bad(key, ours ? "true" : "false", theirs ? "true" : "false");
  if (f.window_type != "povey") return bad("window_type", "'" + f.window_type + "'", "'povey'");
  if (!(f.waveform_scale > 0)) return bad("waveform_scale", num(f.waveform_scale), "a positive scale");
  return Status::Ok();
}

// A copy of the bundle's `role` graph, renamed to sherpa-onnx's file name. Unshare() gives its
// weights buffers of their own: a tied weight would otherwise go to shared_weights.bin, which
// sherpa-onnx-node 1.13.8 resolves, but runtimes that read each model from a memory buffer
// (Android assets) cannot; self-contained files load everywhere.
Result<ir::GraphFile> OwnCopy(const ir::Model& bundle, const std::string& role) {
  const ir::GraphFile* f = bundle.find(role);
  if (!f || !f->graph) return Error("bundle has no '" + role + "' graph");
  ir::GraphFile c = *f;
  c.file = role + ".onnx";
  return c;
}

void Unshare(ir::Graph& g) {
  for (ir::Value* v : g.initializers) *v->initializer = v->initializer->Clone();
  for (ir::Node* n : g.nodes())
    for (auto& a : n->attributes) {
      if (a.kind == ir::Attribute::Kind::Tensor) a.t = a.t.Clone();
      for (auto& t : a.tensors) t = t.Clone();
      if (a.g) Unshare(*a.g);
      for (auto& sg : a.graphs) Unshare(*sg);
    }
}

void SetMeta(ir::GraphFile& f, const std::string& key, const std::string& value) {
  for (auto& [k, v] : f.metadata_props)
    if (k == key) {
      v = value;
      return;
    }
  f.metadata_props.emplace_back(key, value);
}

// sherpa-onnx starts a hypothesis with the context [-1, ..., -1, blank] (icefall's "no label"),
// asrc with [blank, ..., blank]: y = max(y, 0) in front of the decoder makes the two the same.
Status ClampContext(ir::GraphFile& dec) {
  if (dec.opset("") < 12)
    return Error("decoder: opset " + std::to_string(dec.opset("")) + " (mapping sherpa-onnx's -1 start labels to "
                 "blank needs Max on int64, opset >= 12)");
  ir::Graph& g = *dec.graph;
  Intercept(g, g.inputs[0], "Max", I64(g, "sherpa/blank", {0}), "y_no_negative");
  return g.Verify().With("decoder");
}

Status CheckDecoding(const ir::Model& bundle, const asr::BundleConfig& cfg) {
  if (cfg.decoder_type != "stateless") {
    std::string state;
    for (const auto& t : cfg.decoder_state) state += (state.empty() ? "" : ", ") + t.input;
    return Error("decoder: model.json decoding.decoder_type is '" + cfg.decoder_type + "' (state inputs " + state +
                 "); sherpa-onnx's transducer decoder is stateless (y [N, context_size] -> "
                 "decoder_out): make the decoder stateless first (e.g. the tar-decoder pass)");
  }
  if (cfg.blank_id != 0)
    return Error("model.json: decoding.blank_id is " + std::to_string(cfg.blank_id) +
                 "; sherpa-onnx's transducer search takes blank as token 0");
  const ir::GraphFile* d = bundle.find("decoder");
  if (!d || !d->graph) return Error("bundle has no 'decoder' graph");
  if (d->graph->inputs.size() != 1)
    return Error("decoder: graph has " + std::to_string(d->graph->inputs.size()) +
                 " inputs; sherpa-onnx feeds one (y [N, context_size])");
  const ir::Value* y = d->graph->inputs[0];
  if (y->type.has_shape && (y->type.dims.size() != 2 ||
                            (y->type.dims[1].known() && y->type.dims[1].value != cfg.context_size)))
    return Error("decoder: input '" + y->name + "' is declared with " + std::to_string(y->type.dims.size()) +
                 " dims" + (y->type.dims.size() == 2 ? " [N, " + std::to_string(y->type.dims[1].value) + "]" : "") +
                 "; sherpa-onnx feeds [N, context_size] = [N, " + std::to_string(cfg.context_size) +
                 "] (model.json decoding.context_size)");
  if (static_cast<int>(bundle.tokens.size()) != cfg.vocab_size)
    return Error("tokens.txt has " + std::to_string(bundle.tokens.size()) + " symbols, model.json decoding.vocab_size is " +
                 std::to_string(cfg.vocab_size));
  return Status::Ok();
}

}  // namespace

Result<SherpaExport> ExportSherpaOnnx(const ir::Model& bundle) {
  ASRC_ASSIGN_OR_RETURN(asr::BundleConfig cfg, asr::BundleConfig::FromModel(bundle));
  ASRC_RETURN_IF_ERROR(CheckDecoding(bundle, cfg));
  ASRC_RETURN_IF_ERROR(CheckFrontend(cfg.frontend));
  SherpaExport out;
  out.feature_offset = cfg.frontend.waveform_scale == 1.0
                           ? 0.f
                           : static_cast<float>(2.0 * std::log(cfg.frontend.waveform_scale));
  ir::GraphFile enc;
  if (cfg.streaming()) {
    ASRC_ASSIGN_OR_RETURN(enc, MergeCascade(bundle, cfg, out.feature_offset));
    out.chunk_frames = cfg.chunk_frames;
  } else {
    ASRC_ASSIGN_OR_RETURN(enc, OfflineEncoder(bundle, out.feature_offset));
  }
  ASRC_ASSIGN_OR_RETURN(ir::GraphFile dec, OwnCopy(bundle, "decoder"));
  ASRC_ASSIGN_OR_RETURN(ir::GraphFile join, OwnCopy(bundle, "joiner"));
  if (cfg.context_size > 1) ASRC_RETURN_IF_ERROR(ClampContext(dec));
  ASRC_RETURN_IF_ERROR(Reorder(&dec.graph->outputs, {"decoder_out"}, "decoder: graph has no output"));
  ASRC_RETURN_IF_ERROR(Reorder(&join.graph->inputs, {"encoder_out", "decoder_out"}, "joiner: graph has no input"));
  ASRC_RETURN_IF_ERROR(Reorder(&join.graph->outputs, {"logit"}, "joiner: graph has no output"));
  SetMeta(dec, "vocab_size", std::to_string(cfg.vocab_size));
  SetMeta(dec, "context_size", std::to_string(cfg.context_size));
  // sherpa-onnx picks its recognizer from the encoder's model_type when the user names none;
  // "conformer" selects the icefall transducer one (the teacher is a conformer).
  SetMeta(enc, "model_type", "conformer");
  SetMeta(enc, "producer", cfg.streaming() ? "asrc export: cascade in look-ahead mode (causal chunks in a Loop, then non-causal)"
                                           : "asrc export: offline encoder");
  SetMeta(enc, "feature_offset", std::to_string(out.feature_offset));
  for (auto* f : {&enc, &dec, &join}) Unshare(*f->graph);

  ir::Model& m = out.model;
  m.is_bundle = true;
  m.tokens = bundle.tokens;
  m.graphs.push_back(std::move(enc));
  m.graphs.push_back(std::move(dec));
  m.graphs.push_back(std::move(join));
  // model.json: the same bundle as an asrc `transducer` whose front end is sherpa-onnx's.
  m.config = bundle.config;
  m.config["model_type"] = "transducer";
  m.config.erase("streaming");
  m.config["decoding"].erase("lookahead_input");
  m.config["frontend"]["waveform_scale"] = 1.0;
  m.config["info"]["sherpa_onnx_export"] = {{"format", "sherpa-onnx"},
                        {"from_model_type", cfg.model_type},
                        {"feature_offset", out.feature_offset},
                        {"note", "encoder adds 2 ln(source waveform_scale) to x: sherpa-onnx's fbank takes samples in [-1, 1]"}};
  return out;
}

}  // namespace asrc::passes

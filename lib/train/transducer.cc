#include "train/transducer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <regex>
#include <set>

#include "grad/grad.h"
#include "train/joiner_rows.h"
#include "runtime/session.h"

namespace asrc::train {
namespace {

using ValueMap = std::map<std::string, ir::Value*>;

// Records a value's rank (dimensions unknown): gradient rules need ranks (grad/grad.h).
ir::Value* SetRank(ir::Value* v, ir::DType t, int rank) {
  v->type.has_type = true;
  v->type.dtype = t;
  v->type.has_shape = true;
  v->type.dims.assign(rank, ir::Dim{});
  return v;
}

ir::Value* Input(ir::Graph& g, const std::string& name, ir::DType t, int rank) {
  ir::Value* v = g.AddValue(name);
  SetRank(v, t, rank);
  g.inputs.push_back(v);
  return v;
}

ir::Value* Ints(ir::Graph& g, const std::string& base, const std::vector<int64_t>& v) {
  return g.AddInitializer(g.UniqueName("const/" + base),
                           ir::Tensor::FromVector(ir::DType::Int64, {static_cast<int64_t>(v.size())}, v));
}

ir::Value* Op(ir::Graph& g, const std::string& op, const std::vector<ir::Value*>& in, const std::string& out,
              const std::string& domain = "") {
  std::string name = g.UniqueName(out);
  return g.AddNode(op, in, {name}, name, domain)->outputs[0];
}

ir::Value* Flatten(ir::Graph& g, ir::Value* x, int64_t axis, const std::string& out) {
  ir::Value* v = Op(g, "Flatten", {x}, out);
  v->producer->set_attr_int("axis", axis);
  return SetRank(v, ir::DType::Float32, 2);
}

// x[.., start:end, ..] along `axis`; `end` null: ends = the given constant.
ir::Value* SliceAxis(ir::Graph& g, ir::Value* x, int64_t axis, int64_t start, int64_t end, ir::Value* end_value,
                     const std::string& out) {
  ir::Value* e = end_value ? end_value : Ints(g, "end", {end});
  return Op(g, "Slice", {x, Ints(g, "start", {start}), e, Ints(g, "axis", {axis})}, out);
}

// Copies `src`'s nodes into `dst`. Graph inputs are bound by name from `bind`; float and other
// initializers become "ROLE/<name>" initializers of dst, added once and shared by every copy;
// the other values are named prefix + name. Returns the copy's graph outputs by name.
Result<ValueMap> Inline(ir::Graph& dst, const ir::Graph& src, const std::string& role, const std::string& prefix,
                        const ValueMap& bind) {
  std::map<const ir::Value*, ir::Value*> vmap;
  for (ir::Value* w : src.initializers) {
    std::string n = role + "/" + w->name;
    ir::Value* v = dst.FindValue(n);
    if (!v) {
      v = dst.AddInitializer(n, *w->initializer);
      v->type = w->type;
    }
    vmap[w] = v;
  }
  for (ir::Value* in : src.inputs) {
    if (vmap.count(in)) continue;
    auto it = bind.find(in->name);
    if (it == bind.end()) return Error(role + ": graph input '" + in->name + "' is not one the bundle protocol feeds");
    ir::Value* b = it->second;
    if (!b->type.has_shape && in->type.has_shape) SetRank(b, in->type.dtype, static_cast<int>(in->type.dims.size()));
    vmap[in] = b;
  }
  ASRC_ASSIGN_OR_RETURN(std::vector<ir::Node*> order, src.TopoOrder());
  int k = 0;
  for (ir::Node* n : order) {
    for (const ir::Attribute& a : n->attributes)
      if (a.kind == ir::Attribute::Kind::Graph || a.kind == ir::Attribute::Kind::Graphs)
        return Error(role + ": node '" + n->name + "' (" + n->op_type + ") has a subgraph; training does not compose those");
    std::vector<ir::Value*> ins;
    for (ir::Value* v : n->inputs) {
      if (!v) {
        ins.push_back(nullptr);
        continue;
      }
      auto it = vmap.find(v);
      if (it == vmap.end()) return Error(role + ": node '" + n->name + "' reads '" + v->name + "', defined nowhere");
      ins.push_back(it->second);
    }
    std::vector<std::string> outs;
    for (ir::Value* o : n->outputs) outs.push_back(o ? prefix + o->name : "");
    std::string name = prefix + (n->name.empty() ? n->op_type + "_" + std::to_string(k) : n->name);
    ++k;
    ir::Node* c = dst.AddNode(n->op_type, ins, outs, name, n->domain);
    c->attributes = n->attributes;
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      if (!n->outputs[i]) continue;
      c->outputs[i]->type = n->outputs[i]->type;
      vmap[n->outputs[i]] = c->outputs[i];
    }
  }
  ValueMap out;
  for (ir::Value* o : src.outputs) out[o->name] = vmap.at(o);
  return out;
}

Result<ir::Value*> OutputOf(const ValueMap& m, const std::string& name, const std::string& role) {
  auto it = m.find(name);
  if (it == m.end()) return Error(role + ": graph has no output '" + name + "'");
  return it->second;
}

Result<const ir::Graph*> GraphOf(const ir::Model& model, const std::string& role) {
  const ir::GraphFile* gf = model.find(role);
  if (!gf || !gf->graph) return Error("bundle has no '" + role + "' graph");
  return gf->graph.get();
}

ir::Value* Zeros(ir::Graph& g, const std::string& name, const asr::TensorSpec& s) {
  return g.AddInitializer(name, ir::Tensor(s.dtype, s.shape));
}

// A state or cache of B utterances: zeros of the spec's shape with axis 1 (the batch axis of
// model.json's shapes, docs/bundle.md) B long; a rank-1 value (the causal encoder's frame
// offset) is one for the whole batch, as the batch's utterances run their chunks in lockstep.
Result<ir::Value*> BatchZeros(ir::Graph& g, const std::string& name, const asr::TensorSpec& s, int64_t batch) {
  if (batch == 1 || s.shape.size() < 2) return Zeros(g, name, s);
  if (s.shape[1] != 1)
    return Error("compose: state '" + s.input + "' " + ir::ShapeStr(s.shape) + " has no batch axis 1 of extent 1; train with batch 1");
  ir::Shape shape = s.shape;
  shape[1] = batch;
  return g.AddInitializer(name, ir::Tensor(s.dtype, shape));
}

// The causal chunk graph exported for N = 1, for N = B: Reshape shapes that start with the
// exported batch 1 start with 0 (copy the input's batch) instead; every other op of the demo
// architecture broadcasts or keeps the batch axis. Value dims are forgotten (ranks kept).
std::unique_ptr<ir::Graph> BatchedCopy(const ir::Graph& src) {
  std::unique_ptr<ir::Graph> g = src.Clone();
  for (ir::Node* n : g->nodes()) {
    if (n->op_type != "Reshape" || n->inputs.size() < 2 || !n->inputs[1] || n->attr_int("allowzero", 0) != 0) continue;
    const ir::Value* sv = n->inputs[1];
    const ir::Tensor* t = sv->initializer ? &*sv->initializer : nullptr;
    if (!t && sv->producer && sv->producer->op_type == "Constant")
      for (const ir::Attribute& a : sv->producer->attributes)
        if (a.name == "value" && a.kind == ir::Attribute::Kind::Tensor) t = &a.t;
    if (!t || t->dtype() != ir::DType::Int64 || t->numel() < 2 || t->data<int64_t>()[0] != 1) continue;
    std::vector<int64_t> v(t->data<int64_t>(), t->data<int64_t>() + t->numel());
    v[0] = 0;
    ir::Value* nv = g->AddInitializer(g->UniqueName(n->name + "/batched_shape"),
                                       ir::Tensor::FromVector(ir::DType::Int64, {t->numel()}, v));
    g->set_input(n, 1, nv);
  }
  for (const auto& v : g->values())
    if (v->type.has_shape && !v->initializer)
      for (ir::Dim& d : v->type.dims) d = ir::Dim{};
  return g;
}

// The causal encoder unrolled over the chunks, then the non-causal one: {causal, lookahead}
// encoder outputs [B, T, D], both cut to the longest of encoder_lengths [B].
Result<std::vector<ir::Value*>> CascadedEncoders(ir::Graph& g, const ir::Model& model, const asr::BundleConfig& cfg,
                                                 int64_t chunks, int64_t batch, ir::Value* lengths) {
  ASRC_ASSIGN_OR_RETURN(const ir::Graph* causal, GraphOf(model, "encoder_causal"));
  ASRC_ASSIGN_OR_RETURN(const ir::Graph* noncausal, GraphOf(model, "encoder_noncausal"));
  std::unique_ptr<ir::Graph> batched;
  if (batch > 1) causal = (batched = BatchedCopy(*causal)).get();
  ir::Value* windows = Input(g, "chunks", ir::DType::Float32, 4);
  std::vector<ir::Value*> caches;
  for (const auto& c : cfg.cache) {
    ASRC_ASSIGN_OR_RETURN(ir::Value* z, BatchZeros(g, "init/" + c.input, c, batch));
    caches.push_back(z);
  }
  const int64_t keep = cfg.chunk_frames / cfg.subsampling_factor;
  std::vector<ir::Value*> parts;
  for (int64_t k = 0; k < chunks; ++k) {
    const std::string p = "encoder_causal." + std::to_string(k) + "/";
    ir::Value* idx = g.AddInitializer(p + "index", ir::Tensor::ScalarInt64(k));
    ir::Value* x = g.AddNode("Gather", {windows, idx}, {p + "x"}, p + "window")->outputs[0];
    ValueMap bind = {{"x", x}};
    for (size_t c = 0; c < caches.size(); ++c) bind[cfg.cache[c].input] = caches[c];
    ASRC_ASSIGN_OR_RETURN(ValueMap out, Inline(g, *causal, "encoder_causal", p, bind));
    for (size_t c = 0; c < caches.size(); ++c) {
      ASRC_ASSIGN_OR_RETURN(caches[c], OutputOf(out, cfg.cache[c].output, "encoder_causal"));
    }
    ASRC_ASSIGN_OR_RETURN(ir::Value* e, OutputOf(out, "encoder_out", "encoder_causal"));
    parts.push_back(SliceAxis(g, e, 1, 0, keep, nullptr, p + "kept"));
  }
  ir::Value* cat = g.AddNode("Concat", parts, {"causal/concat"}, "causal/concat")->outputs[0];
  cat->producer->set_attr_int("axis", 1);
  ir::Value* cut = batch == 1 ? lengths : Input(g, "encoder_frames", ir::DType::Int64, 1);  // the longest
  ir::Value* enc = SetRank(SliceAxis(g, cat, 1, 0, 0, cut, "causal/encoder_out"), ir::DType::Float32, 3);
  ASRC_ASSIGN_OR_RETURN(ValueMap la, Inline(g, *noncausal, "encoder_noncausal", "encoder_noncausal/",
                                            {{"x", enc}, {"x_lens", lengths}}));
  ASRC_ASSIGN_OR_RETURN(ir::Value* la_out, OutputOf(la, "encoder_out", "encoder_noncausal"));
  return std::vector<ir::Value*>{enc, la_out};
}

// Decoder outputs as rows [B * (U+1), D] (utterance-major).
Result<ir::Value*> DecoderRows(ir::Graph& g, const ir::Model& model, const asr::BundleConfig& cfg, int64_t labels,
                               int64_t batch) {
  ASRC_ASSIGN_OR_RETURN(const ir::Graph* dec, GraphOf(model, "decoder"));
  if (cfg.decoder_type == "stateless") {
    ir::Value* ctx = Input(g, "decoder_context", ir::DType::Int64, 2);
    ASRC_ASSIGN_OR_RETURN(ValueMap out, Inline(g, *dec, "decoder", "decoder/", {{"y", ctx}}));
    ASRC_ASSIGN_OR_RETURN(ir::Value* d, OutputOf(out, "decoder_out", "decoder"));
    return Flatten(g, d, 1, "decoder/rows");
  }
  ir::Value* ys = Input(g, "decoder_input", ir::DType::Int64, 2);
  std::vector<ir::Value*> states, rows;
  for (const auto& s : cfg.decoder_state) {
    ASRC_ASSIGN_OR_RETURN(ir::Value* z, BatchZeros(g, "init/" + s.input, s, batch));
    states.push_back(z);
  }
  for (int64_t u = 0; u <= labels; ++u) {
    const std::string p = "decoder." + std::to_string(u) + "/";
    ValueMap bind = {{"y", SliceAxis(g, ys, 1, u, u + 1, nullptr, p + "y")}};
    for (size_t s = 0; s < states.size(); ++s) bind[cfg.decoder_state[s].input] = states[s];
    ASRC_ASSIGN_OR_RETURN(ValueMap out, Inline(g, *dec, "decoder", p, bind));
    for (size_t s = 0; s < states.size(); ++s) {
      ASRC_ASSIGN_OR_RETURN(states[s], OutputOf(out, cfg.decoder_state[s].output, "decoder"));
    }
    ASRC_ASSIGN_OR_RETURN(ir::Value* d, OutputOf(out, "decoder_out", "decoder"));
    ir::Value* row = Flatten(g, d, 1, p + "row");  // [B, D]
    rows.push_back(batch == 1 ? row : SetRank(Op(g, "Unsqueeze", {row, Ints(g, "axes", {1})}, p + "step"), ir::DType::Float32, 3));
  }
  if (batch == 1) {
    ir::Value* cat = g.AddNode("Concat", rows, {"decoder/rows"}, "decoder/rows")->outputs[0];
    cat->producer->set_attr_int("axis", 0);
    return cat;
  }
  ir::Value* cat = g.AddNode("Concat", rows, {"decoder/steps"}, "decoder/steps")->outputs[0];  // [B, U+1, D]
  cat->producer->set_attr_int("axis", 1);
  SetRank(cat, ir::DType::Float32, 3);
  return Flatten(g, cat, 2, "decoder/rows");
}

// The joiner on every (t, u) pair of enc [B, T, De] x dec rows [B * (U+1), Dd] -> [B, T, U+1, V]:
// `factored` (FactorJoiner's graph for B) when the joiner factors, else `joiner` on expanded
// pairs (B = 1 only).
Result<ir::Value*> JoinAll(ir::Graph& g, const ir::Graph& joiner, const ir::Graph* factored, ir::Value* enc,
                           ir::Value* dec, int64_t batch, const std::string& lattice) {
  const std::string p = "joiner." + lattice + "/";
  ir::Value* e = Flatten(g, enc, 2, p + "enc_rows");  // [B * T, De]
  ir::Value* se = Op(g, "Shape", {batch == 1 ? e : enc}, p + "enc_shape");
  ir::Value* sd = Op(g, "Shape", {dec}, p + "dec_shape");
  ir::Value* t = batch == 1 ? SliceAxis(g, se, 0, 0, 1, nullptr, p + "T") : SliceAxis(g, se, 0, 1, 2, nullptr, p + "T");
  ir::Value* u = batch == 1 ? SliceAxis(g, sd, 0, 0, 1, nullptr, p + "U1") : Ints(g, "minus_one", {-1});
  auto concat = [&](const std::vector<ir::Value*>& in, const std::string& name) {
    ir::Value* v = Op(g, "Concat", in, p + name);
    v->producer->set_attr_int("axis", 0);
    return v;
  };
  ValueMap bind = {{"encoder_out", e}, {"decoder_out", dec}};
  if (!factored) {  // the inference joiner on the T x (U+1) pairs of rows
    ir::Value* de = SliceAxis(g, se, 0, 1, 2, nullptr, p + "De");
    ir::Value* dd = SliceAxis(g, sd, 0, 1, 2, nullptr, p + "Dd");
    ir::Value* eu = Op(g, "Unsqueeze", {e, Ints(g, "axes", {1})}, p + "enc3");
    ir::Value* du = Op(g, "Unsqueeze", {dec, Ints(g, "axes", {0})}, p + "dec3");
    ir::Value* ee = Op(g, "Expand", {eu, concat({t, u, de}, "enc_grid_shape")}, p + "enc_grid");
    ir::Value* dg = Op(g, "Expand", {du, concat({t, u, dd}, "dec_grid_shape")}, p + "dec_grid");
    bind = {{"encoder_out", Flatten(g, ee, 2, p + "enc_pairs")}, {"decoder_out", Flatten(g, dg, 2, p + "dec_pairs")}};
  }
  ASRC_ASSIGN_OR_RETURN(ValueMap out, Inline(g, factored ? *factored : joiner, "joiner", p, bind));
  ASRC_ASSIGN_OR_RETURN(ir::Value* rows, OutputOf(out, "logit", "joiner"));
  ir::Value* v = batch == 1 ? Ints(g, "minus_one", {-1}) : SliceAxis(g, Op(g, "Shape", {rows}, p + "rows_shape"), 0, 1, 2, nullptr, p + "V");
  ir::Value* shape = concat({Ints(g, "batch", {batch}), t, u, v}, "logit_shape");
  return SetRank(Op(g, "Reshape", {rows, shape}, "logits_" + lattice), ir::DType::Float32, 4);
}

ir::Value* Weighted(ir::Graph& g, ir::Value* x, double w, const std::string& name) {
  if (w == 1) return x;
  return Op(g, "Mul", {x, g.AddInitializer(g.UniqueName("const/" + name), ir::Tensor::Scalar(float(w)))}, name);
}

// alpha * KD + (1 - alpha) * RNNT on one lattice, both reduction "sum".
std::vector<ir::Value*> LatticeLoss(ir::Graph& g, const asr::BundleConfig& cfg, const TransducerLoss& loss,
                                    ir::Value* logits, ir::Value* lengths, ir::Value* targets, ir::Value* tlens,
                                    const std::string& lattice) {
  std::vector<ir::Value*> terms;
  const double a = loss.rnnt && loss.kd ? loss.alpha : (loss.kd ? 1.0 : 0.0);
  if (loss.rnnt) {
    std::string n = "loss/rnnt_" + lattice;
    ir::Node* r = g.AddNode("RNNTLoss", {logits, targets, lengths, tlens}, {n, n + "_grad"}, n, "ai.asrc");
    r->set_attr_int("blank", cfg.blank_id);
    r->set_attr_string("reduction", "sum");
    terms.push_back(Weighted(g, r->outputs[0], 1 - a, n + "_weighted"));
  }
  if (loss.kd) {
    std::string n = "loss/kd_" + lattice;
    ir::Value* teacher = Input(g, "teacher_logits_" + lattice, ir::DType::Float32, 4);
    ir::Node* k = loss.collapsed
                      ? g.AddNode("TransducerCollapsedKLLoss", {logits, teacher, targets, lengths, tlens},
                                   {n, n + "_grad"}, n, "ai.asrc")
                      : g.AddNode("TransducerKLLoss", {logits, teacher, lengths, tlens}, {n, n + "_grad"}, n,
                                   "ai.asrc");
    if (loss.collapsed) k->set_attr_int("blank", cfg.blank_id);
    k->set_attr_string("reduction", "sum");
    terms.push_back(Weighted(g, k->outputs[0], a, n + "_weighted"));
  }
  return terms;
}

}  // namespace

Result<TransducerLoss> TransducerLoss::Parse(const std::string& loss, const std::string& kd_form, double alpha) {
  TransducerLoss l;
  if (loss == "rnnt") {
    l.rnnt = true, l.kd = false;
  } else if (loss == "kd") {
    l.rnnt = false, l.kd = true;
  } else if (loss == "rnnt+kd") {
    l.rnnt = true, l.kd = true;
  } else {
    return Error("loss: expected 'rnnt', 'kd' or 'rnnt+kd', got '" + loss + "'");
  }
  if (kd_form != "full" && kd_form != "collapsed")
    return Error("kd form: expected 'full' or 'collapsed', got '" + kd_form + "'");
  l.collapsed = kd_form == "collapsed";
  if (!(alpha >= 0 && alpha <= 1)) return Error("alpha: expected a value in [0, 1]");
  l.alpha = alpha;
  return l;
}

Result<std::unique_ptr<ir::Graph>> ComposeTransducer(const ir::Model& model, const asr::BundleConfig& cfg,
                                                     const ComposeShape& shape, const TransducerLoss* loss) {
  auto g = std::make_unique<ir::Graph>("transducer_train");
  std::vector<ir::Value*> encoders;
  std::vector<std::string> lattices;
  ir::Value* lengths = nullptr;
  if (cfg.streaming()) {
    if (shape.chunks < 1) return Error("compose: an utterance needs at least one chunk");
    lengths = Input(*g, "encoder_lengths", ir::DType::Int64, 1);
    ASRC_ASSIGN_OR_RETURN(encoders, CascadedEncoders(*g, model, cfg, shape.chunks, shape.batch, lengths));
    lattices = {"causal", "lookahead"};
  } else {
    ASRC_ASSIGN_OR_RETURN(const ir::Graph* enc, GraphOf(model, "encoder"));
    ir::Value* x = Input(*g, "features", ir::DType::Float32, 3);
    ir::Value* xl = Input(*g, "feature_lengths", ir::DType::Int64, 1);
    ASRC_ASSIGN_OR_RETURN(ValueMap out, Inline(*g, *enc, "encoder", "encoder/", {{"x", x}, {"x_lens", xl}}));
    ASRC_ASSIGN_OR_RETURN(ir::Value* e, OutputOf(out, "encoder_out", "encoder"));
    ASRC_ASSIGN_OR_RETURN(ir::Value* el, OutputOf(out, "encoder_out_lens", "encoder"));
    ir::Value* cast = Op(*g, "Cast", {el}, "encoder/lengths");
    cast->producer->set_attr_int("to", static_cast<int64_t>(ir::DType::Int64));
    lengths = cast;
    encoders = {e};
    lattices = {"lookahead"};
  }
  if (shape.batch < 1) return Error("compose: batch must be at least 1");
  if (shape.batch > 1 && !cfg.streaming()) return Error("compose: batches of more than one utterance need a cascaded transducer");
  ASRC_ASSIGN_OR_RETURN(ir::Value* dec, DecoderRows(*g, model, cfg, shape.labels, shape.batch));
  ASRC_ASSIGN_OR_RETURN(const ir::Graph* joiner, GraphOf(model, "joiner"));
  ASRC_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> factored, FactorJoiner(*joiner, shape.batch));
  if (shape.batch > 1 && !factored) return Error("compose: the joiner does not factor (train/joiner_rows.h); train with batch 1");
  std::vector<ir::Value*> logits;
  for (size_t i = 0; i < encoders.size(); ++i) {
    ASRC_ASSIGN_OR_RETURN(ir::Value* l, JoinAll(*g, *joiner, factored.get(), encoders[i], dec, shape.batch, lattices[i]));
    logits.push_back(l);
  }
  if (loss) {
    ir::Value* targets = Input(*g, "targets", ir::DType::Int32, 2);
    ir::Value* tlens = Input(*g, "target_lengths", ir::DType::Int32, 1);
    std::vector<ir::Value*> terms;
    for (size_t i = 0; i < logits.size(); ++i)
      for (ir::Value* t : LatticeLoss(*g, cfg, *loss, logits[i], lengths, targets, tlens, lattices[i]))
        terms.push_back(t);
    ir::Value* sum = terms.size() == 1 ? terms[0] : Op(*g, "Sum", terms, "loss/sum");
    ir::Value* scale = Input(*g, "loss_scale", ir::DType::Float32, 0);
    g->outputs.push_back(Op(*g, "Mul", {sum, scale}, "loss"));
  }
  for (ir::Value* l : logits) g->outputs.push_back(l);
  ASRC_RETURN_IF_ERROR(g->Verify().With("compose"));
  return g;
}

ComposeShape ShapeOf(const asr::BundleConfig& cfg, const Utterance& u, int64_t label_pad, int64_t chunk_pad) {
  ComposeShape s;
  if (cfg.streaming()) {
    const int64_t c = (u.frames + cfg.chunk_frames - 1) / cfg.chunk_frames, cp = std::max<int64_t>(1, chunk_pad);
    s.chunks = (c + cp - 1) / cp * cp;
  }
  const int64_t n = std::max<int64_t>(1, static_cast<int64_t>(u.labels.size()));
  const int64_t pad = std::max<int64_t>(1, label_pad);
  s.labels = (n + pad - 1) / pad * pad;
  return s;
}

ComposeShape ShapeOf(const asr::BundleConfig& cfg, const std::vector<const Utterance*>& utts, int64_t label_pad,
                     int64_t chunk_pad) {
  ComposeShape s;
  for (const Utterance* u : utts) {
    const ComposeShape one = ShapeOf(cfg, *u, label_pad, chunk_pad);
    s.chunks = std::max(s.chunks, one.chunks);
    s.labels = std::max(s.labels, one.labels);
  }
  s.batch = static_cast<int64_t>(utts.size());
  return s;
}

std::vector<std::pair<std::string, ir::Tensor>> TransducerFeeds(const asr::BundleConfig& cfg, const Utterance& u,
                                                                const ComposeShape& shape, float loss_scale) {
  return TransducerFeeds(cfg, std::vector<const Utterance*>{&u}, shape, loss_scale);
}

std::vector<std::pair<std::string, ir::Tensor>> TransducerFeeds(const asr::BundleConfig& cfg,
                                                                const std::vector<const Utterance*>& utts,
                                                                const ComposeShape& shape, float loss_scale) {
  std::vector<std::pair<std::string, ir::Tensor>> feeds;
  const int64_t F = cfg.frontend.feature_dim(), B = static_cast<int64_t>(utts.size());
  if (cfg.streaming()) {
    const int64_t win = cfg.chunk_frames + cfg.right_context_frames;
    ir::Tensor w(ir::DType::Float32, {shape.chunks, B, win, F});
    float* d = w.data<float>();
    std::vector<int64_t> lengths;
    for (int64_t b = 0; b < B; ++b) {
      const Utterance& u = *utts[b];
      for (int64_t k = 0; k < shape.chunks; ++k)
        for (int64_t r = 0; r < win; ++r) {
          const int64_t f = k * cfg.chunk_frames + r;
          float* row = d + ((k * B + b) * win + r) * F;
          if (f < u.frames)
            std::memcpy(row, u.features.data() + f * F, F * sizeof(float));
          else
            std::fill(row, row + F, cfg.pad_value);
        }
      lengths.push_back((u.frames + cfg.subsampling_factor - 1) / cfg.subsampling_factor);
    }
    feeds.emplace_back("chunks", std::move(w));
    const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
    feeds.emplace_back("encoder_lengths", ir::Tensor::FromVector(ir::DType::Int64, {B}, lengths));
    feeds.emplace_back("encoder_frames", ir::Tensor::FromVector(ir::DType::Int64, {1}, std::vector<int64_t>{longest}));
  } else {  // ComposeTransducer composes batch 1 only here
    const Utterance& u = *utts[0];
    feeds.emplace_back("features", ir::Tensor::FromVector(ir::DType::Float32, {1, u.frames, F}, u.features));
    feeds.emplace_back("feature_lengths", ir::Tensor::FromVector(ir::DType::Int64, {1}, std::vector<int64_t>{u.frames}));
  }
  const int64_t U = shape.labels, ctx = cfg.context_size;
  // Padding past the utterance's labels is ignored by the losses; a non-blank id keeps it valid.
  const int32_t pad_label = (cfg.blank_id + 1) % cfg.vocab_size;
  std::vector<int32_t> targets, tlens;
  std::vector<int64_t> dec_in, context;
  for (const Utterance* u : utts) {
    std::vector<int32_t> t(U, pad_label);
    for (size_t i = 0; i < u->labels.size() && i < static_cast<size_t>(U); ++i) t[i] = u->labels[i];
    targets.insert(targets.end(), t.begin(), t.end());
    tlens.push_back(static_cast<int32_t>(u->labels.size()));
    std::vector<int64_t> prefix(1, cfg.blank_id);  // blank, then the labels: the decoder's inputs
    for (int32_t l : t) prefix.push_back(l);
    dec_in.insert(dec_in.end(), prefix.begin(), prefix.end());
    for (int64_t p = 0; p <= U; ++p)
      for (int64_t i = 0; i < ctx; ++i) {
        const int64_t k = p - ctx + i;  // label index (prefix[1 + k])
        context.push_back(k >= 0 ? prefix[1 + k] : cfg.blank_id);
      }
  }
  feeds.emplace_back("targets", ir::Tensor::FromVector(ir::DType::Int32, {B, U}, targets));
  feeds.emplace_back("target_lengths", ir::Tensor::FromVector(ir::DType::Int32, {B}, tlens));
  if (cfg.decoder_type == "stateless")
    feeds.emplace_back("decoder_context", ir::Tensor::FromVector(ir::DType::Int64, {B * (U + 1), ctx}, context));
  else
    feeds.emplace_back("decoder_input", ir::Tensor::FromVector(ir::DType::Int64, {B, U + 1}, dec_in));
  feeds.emplace_back("loss_scale", ir::Tensor::Scalar(loss_scale));
  return feeds;
}

bool SplitWeightName(const std::string& full, std::string* role, std::string* name) {
  size_t p = full.find('/');
  if (p == std::string::npos || p == 0) return false;
  *role = full.substr(0, p);
  *name = full.substr(p + 1);
  return true;
}

}  // namespace asrc::train

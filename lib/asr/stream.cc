#include "asr/stream.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>

#include "asr/stream_internal.h"

namespace asrc::asr {
using internal::Clock;
using internal::MsSince;
using internal::SecondsToEncoderFrames;
namespace {

// --- model.json reading, errors naming the JSON path ---

Result<const nlohmann::json*> Obj(const nlohmann::json& j, const std::string& key,
                                  const std::string& path, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return static_cast<const nlohmann::json*>(nullptr);
    return Error("model.json: " + path + key + ": missing");
  }
  return &*it;
}

template <class T>
Status Get(const nlohmann::json& j, const std::string& key, const std::string& path, T* out,
           bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return Error("model.json: " + path + key + ": missing");
    return Status::Ok();
  }
  // An integer field must hold an integer in T's range: nlohmann converts a float such as 1e107
  // to an integer type without a check (undefined behaviour; found by tests/fuzz/config_fuzzer).
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    const bool in_range =
        (it->is_number_unsigned() && it->template get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())) ||
        (it->is_number_integer() && !it->is_number_unsigned() &&
         it->template get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
         it->template get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max()));
    if (!in_range)
      return Error("model.json: " + path + key + ": expected an integer in range, got " + it->dump());
  }
  try {
    *out = it->get<T>();
  } catch (const std::exception&) {
    return Error("model.json: " + path + key + ": wrong type (" + it->dump() + ")");
  }
  return Status::Ok();
}

Result<ir::DType> ParseDType(const std::string& s, const std::string& path) {
  if (s == "float32" || s == "float") return ir::DType::Float32;
  if (s == "int64") return ir::DType::Int64;
  if (s == "int32") return ir::DType::Int32;
  if (s == "float16") return ir::DType::Float16;
  return Error("model.json: " + path + ": unsupported dtype '" + s + "'");
}

Result<std::vector<TensorSpec>> ParseSpecs(const nlohmann::json& j, const std::string& path) {
  if (!j.is_array()) return Error("model.json: " + path + ": expected a list");
  std::vector<TensorSpec> specs;
  for (size_t i = 0; i < j.size(); ++i) {
    std::string p = path + "[" + std::to_string(i) + "].";
    const auto& e = j[i];
    if (!e.is_object()) return Error("model.json: " + path + "[" + std::to_string(i) + "]: expected an object");
    TensorSpec s;
    std::string dtype = "float32";
    ASRC_RETURN_IF_ERROR(Get(e, "input", p, &s.input, true));
    ASRC_RETURN_IF_ERROR(Get(e, "output", p, &s.output, true));
    if (e.contains("shape") && e["shape"].is_array())
      for (const auto& d : e["shape"])
        if (!d.is_number_integer())
          return Error("model.json: " + p + "shape: expected a list of integers, got " + e["shape"].dump());
    ASRC_RETURN_IF_ERROR(Get(e, "shape", p, &s.shape, true));
    ASRC_RETURN_IF_ERROR(Get(e, "dtype", p, &dtype, false));
    ASRC_ASSIGN_OR_RETURN(s.dtype, ParseDType(dtype, p + "dtype"));
    // A state tensor is allocated per utterance: refuse sizes no device holds (2^28 elements,
    // 1 GiB of float32) before anything allocates them.
    constexpr int64_t kMaxStateElements = int64_t{1} << 28;
    int64_t elements = 1;
    for (int64_t d : s.shape) {
      if (d < 0) return Error("model.json: " + p + "shape: negative dimension");
      if (d > 0 && elements > kMaxStateElements / d)
        return Error("model.json: " + p + "shape: " + e["shape"].dump() + " is over 2^28 elements");
      elements *= d;
    }
    specs.push_back(std::move(s));
  }
  return specs;
}

int IndexOf(const std::vector<std::string>& names, const std::string& n) {
  auto it = std::find(names.begin(), names.end(), n);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

// A NaN weight does not always reach a graph's outputs as NaN (the runtime's Tanh and Sigmoid
// squash it, so an LSTM decoder with NaN weights decodes garbage with finite outputs): refuse it.
// Inf is left alone: attention masks hold -inf constants.
Status CheckNoNaNWeights(const ir::Graph& g, const std::string& where) {
  for (const ir::Value* v : g.initializers) {
    const ir::Tensor& t = *v->initializer;
    if (t.dtype() != ir::DType::Float32 || !t.buffer()) continue;
    const float* p = t.data<float>();
    int64_t nan = 0;
    for (int64_t i = 0; i < t.numel(); ++i) nan += std::isnan(p[i]) ? 1 : 0;
    if (nan > 0)
      return Error(where + ": weight '" + v->name + "' holds NaN (" + std::to_string(nan) + " of " +
                   std::to_string(t.numel()) + " values)");
  }
  return Status::Ok();
}

Result<std::unique_ptr<runtime::Session>> MakeSession(const ir::Model& model, const std::string& role,
                                                      const runtime::SessionOptions& options) {
  const ir::GraphFile* gf = model.find(role);
  if (!gf || !gf->graph) return Error("bundle has no '" + role + "' graph");
  ASRC_RETURN_IF_ERROR(CheckNoNaNWeights(*gf->graph, gf->file.empty() ? role : gf->file));
  auto s = runtime::Session::Create(*gf->graph, gf->opset(""), options);
  if (!s.ok()) return s.status().With(gf->file.empty() ? role : gf->file);
  return std::move(s).value();
}

// NaN weights or audio otherwise decode silently into garbage (Tanh(NaN) = -1 picks a token).
Status CheckFinite(const float* v, int64_t n, const std::string& graph, const char* output) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i]))
      return Error(graph + ": output '" + output +
                   "' is not finite (NaN or Inf; check the graph's weights and the audio)");
  return Status::Ok();
}

// How audio that an encoder cannot cut into segments is run anyway (error messages end with it).
constexpr const char* kEncodeWholeHint =
    "; pass --lookahead-segment 0 to encode the audio whole (memory grows with the square of its length)";

// A `transducer` encoder's output length is probed at kProbeBlocks x subsampling_factor input
// frames and checked to grow by kCheckBlocks over kCheckBlocks x subsampling_factor more.
constexpr int64_t kProbeBlocks = 8, kCheckBlocks = 8;

Status Need(int pos, const std::string& what, const std::string& graph) {
  if (pos < 0) return Error(graph + ": graph has no " + what);
  return Status::Ok();
}

// The positions of each carried tensor's input and output in `session` (what: "state", "cache").
Status BindCarried(const runtime::Session& session, const std::vector<TensorSpec>& specs, const std::string& what,
                   const std::string& graph, std::vector<int>* ins, std::vector<int>* outs) {
  for (const auto& c : specs) {
    int i = IndexOf(session.input_names(), c.input), o = IndexOf(session.output_names(), c.output);
    ASRC_RETURN_IF_ERROR(Need(i, what + " input '" + c.input + "'", graph));
    ASRC_RETURN_IF_ERROR(Need(o, what + " output '" + c.output + "'", graph));
    ins->push_back(i);
    outs->push_back(o);
  }
  return Status::Ok();
}

}  // namespace

Result<BundleConfig> BundleConfig::FromModel(const ir::Model& model) {
  const nlohmann::json& j = model.config;
  if (!j.is_object() || j.empty() || !j.contains("model_type"))
    return Error("not a transducer bundle (no model.json with model_type; see docs/bundle.md)");
  BundleConfig c;
  ASRC_RETURN_IF_ERROR(Get(j, "model_type", "", &c.model_type, true));
  if (c.model_type != "cascaded_transducer" && c.model_type != "transducer")
    return Error("model.json: model_type: unsupported '" + c.model_type + "'");
  ASRC_ASSIGN_OR_RETURN(const nlohmann::json* fe, Obj(j, "frontend", ""));
  auto fo = FbankOptions::FromJson(*fe);
  if (!fo.ok()) return fo.status().With("model.json");
  c.frontend = fo.value();

  ASRC_ASSIGN_OR_RETURN(const nlohmann::json* dec, Obj(j, "decoding", ""));
  const std::string dp = "decoding.";
  ASRC_RETURN_IF_ERROR(Get(*dec, "blank_id", dp, &c.blank_id, false));
  ASRC_RETURN_IF_ERROR(Get(*dec, "vocab_size", dp, &c.vocab_size, true));
  ASRC_RETURN_IF_ERROR(Get(*dec, "decoder_type", dp, &c.decoder_type, true));
  ASRC_RETURN_IF_ERROR(Get(*dec, "context_size", dp, &c.context_size, false));
  ASRC_RETURN_IF_ERROR(Get(*dec, "subsampling_factor", dp, &c.subsampling_factor, false));
  if (c.decoder_type != "lstm" && c.decoder_type != "stateless")
    return Error("model.json: decoding.decoder_type: expected 'lstm' or 'stateless', got '" +
                 c.decoder_type + "'");
  if (c.vocab_size <= 0) return Error("model.json: decoding.vocab_size: must be positive");
  if (c.blank_id < 0 || c.blank_id >= c.vocab_size)
    return Error("model.json: decoding.blank_id: out of range");
  if (c.context_size < 1) return Error("model.json: decoding.context_size: must be >= 1");
  if (c.subsampling_factor < 1) return Error("model.json: decoding.subsampling_factor: must be >= 1");
  if (c.decoder_type == "lstm") {
    ASRC_ASSIGN_OR_RETURN(const nlohmann::json* st, Obj(*dec, "decoder_state", dp));
    ASRC_ASSIGN_OR_RETURN(c.decoder_state, ParseSpecs(*st, dp + "decoder_state"));
  }

  if (c.streaming()) {
    ASRC_ASSIGN_OR_RETURN(const nlohmann::json* s, Obj(j, "streaming", ""));
    const std::string sp = "streaming.";
    double pad = 0;
    ASRC_RETURN_IF_ERROR(Get(*s, "chunk_frames", sp, &c.chunk_frames, true));
    ASRC_RETURN_IF_ERROR(Get(*s, "right_context_frames", sp, &c.right_context_frames, false));
    ASRC_RETURN_IF_ERROR(Get(*s, "pad_value", sp, &pad, true));
    c.pad_value = static_cast<float>(pad);
    if (c.chunk_frames <= 0 || c.chunk_frames % c.subsampling_factor != 0)
      return Error("model.json: streaming.chunk_frames: must be a positive multiple of "
                   "decoding.subsampling_factor");
    if (c.right_context_frames < 0) return Error("model.json: streaming.right_context_frames: negative");
    ASRC_ASSIGN_OR_RETURN(const nlohmann::json* cache, Obj(*s, "cache", sp));
    ASRC_ASSIGN_OR_RETURN(c.cache, ParseSpecs(*cache, sp + "cache"));
  }

  // tokens.txt lines are "<symbol> <id>"; accept bare symbols too.
  for (size_t i = 0; i < model.tokens.size(); ++i) {
    std::string t = model.tokens[i];
    size_t sp = t.find_last_of(" \t");
    if (sp != std::string::npos && sp + 1 < t.size() &&
        t.find_first_not_of("0123456789", sp + 1) == std::string::npos)
      t = t.substr(0, sp);
    c.tokens.push_back(t);
  }
  if (static_cast<int>(c.tokens.size()) < c.vocab_size)
    return Error("tokens.txt: " + std::to_string(c.tokens.size()) + " tokens, vocab_size is " +
                 std::to_string(c.vocab_size));
  const char* roles_c[] = {"encoder_causal", "encoder_noncausal", "decoder", "joiner"};
  const char* roles_t[] = {"encoder", "decoder", "joiner"};
  if (c.streaming()) {
    for (const char* r : roles_c)
      if (!model.find(r)) return Error(std::string("bundle: missing graph '") + r + "'");
  } else {
    for (const char* r : roles_t)
      if (!model.find(r)) return Error(std::string("bundle: missing graph '") + r + "'");
  }
  return c;
}

// --- GraphScorer ---

Result<std::unique_ptr<GraphScorer>> GraphScorer::Create(const ir::Model& model,
                                                         const BundleConfig& config,
                                                         const runtime::SessionOptions& decoder,
                                                         const runtime::SessionOptions& joiner,
                                                         const std::string& decoder_role,
                                                         const std::string& joiner_role) {
  std::unique_ptr<GraphScorer> g(new GraphScorer());
  g->cfg_ = config;
  g->dec_role_ = decoder_role;
  g->join_role_ = joiner_role;
  ASRC_ASSIGN_OR_RETURN(g->decoder_, MakeSession(model, decoder_role, decoder));
  ASRC_ASSIGN_OR_RETURN(g->joiner_, MakeSession(model, joiner_role, joiner));
  const auto& din = g->decoder_->input_names();
  const auto& dout = g->decoder_->output_names();
  g->dec_y_ = IndexOf(din, "y");
  g->dec_out_ = IndexOf(dout, "decoder_out");
  ASRC_RETURN_IF_ERROR(Need(g->dec_y_, "input 'y'", decoder_role));
  ASRC_RETURN_IF_ERROR(Need(g->dec_out_, "output 'decoder_out'", decoder_role));
  if (config.decoder_type == "lstm")
    ASRC_RETURN_IF_ERROR(
        BindCarried(*g->decoder_, config.decoder_state, "state", decoder_role, &g->state_in_, &g->state_out_));
  if (din.size() != 1 + g->state_in_.size())
    return Error(decoder_role + ": expected inputs 'y' and the decoder_state inputs of model.json, graph has " +
                 std::to_string(din.size()) + " inputs");
  const auto& jin = g->joiner_->input_names();
  g->join_enc_ = IndexOf(jin, "encoder_out");
  g->join_dec_ = IndexOf(jin, "decoder_out");
  g->join_logit_ = IndexOf(g->joiner_->output_names(), "logit");
  if (g->join_logit_ < 0 && g->joiner_->output_names().size() == 1) g->join_logit_ = 0;
  ASRC_RETURN_IF_ERROR(Need(g->join_enc_, "input 'encoder_out'", joiner_role));
  ASRC_RETURN_IF_ERROR(Need(g->join_dec_, "input 'decoder_out'", joiner_role));
  ASRC_RETURN_IF_ERROR(Need(g->join_logit_, "output 'logit'", joiner_role));
  if (jin.size() != 2) return Error(joiner_role + ": expected inputs 'encoder_out' and 'decoder_out'");
  return g;
}

Result<std::shared_ptr<const DecoderOut>> GraphScorer::Decode(const std::vector<int>& ys,
                                                              const DecoderOut* parent) {
  const int ctx = context_size();
  std::vector<ir::Tensor> in(decoder_->input_names().size());
  ir::Tensor y(ir::DType::Int64, {1, ctx});
  for (int i = 0; i < ctx; ++i) {
    int k = static_cast<int>(ys.size()) - ctx + i;
    y.data<int64_t>()[i] = k >= 0 ? ys[k] : cfg_.blank_id;
  }
  in[dec_y_] = std::move(y);
  for (size_t s = 0; s < state_in_.size(); ++s) {
    if (parent && s < parent->state.size())
      in[state_in_[s]] = parent->state[s];
    else
      in[state_in_[s]] = ir::Tensor(cfg_.decoder_state[s].dtype, cfg_.decoder_state[s].shape);
  }
  std::vector<ir::Tensor> out;
  Status st = decoder_->Run(in, &out);
  if (!st.ok()) return st.With(dec_role_);
  auto d = std::make_shared<DecoderOut>();
  const ir::Tensor& o = out[dec_out_];
  if (o.dtype() != ir::DType::Float32) return Error(dec_role_ + ": decoder_out is not float32");
  // The joiner does not always pass a NaN on (Tanh(NaN) = -1 in its activation): check here.
  ASRC_RETURN_IF_ERROR(CheckFinite(o.data<float>(), o.numel(), dec_role_, "decoder_out"));
  d->out.assign(o.data<float>(), o.data<float>() + o.numel());
  for (int idx : state_out_) d->state.push_back(out[idx]);
  return std::shared_ptr<const DecoderOut>(std::move(d));
}

Status GraphScorer::Join(const float* enc, int64_t dim, const std::vector<const DecoderOut*>& dec,
                         std::vector<float>* logits) {
  const int64_t n = static_cast<int64_t>(dec.size());
  const int V = cfg_.vocab_size;
  logits->resize(static_cast<size_t>(n) * V);
  if (n == 0) return Status::Ok();
  const int64_t dd = static_cast<int64_t>(dec[0]->out.size());
  auto run = [&](int64_t first, int64_t count) -> Status {
    std::vector<ir::Tensor> in(2);
    ir::Tensor e(ir::DType::Float32, {count, dim}), d(ir::DType::Float32, {count, dd});
    for (int64_t i = 0; i < count; ++i) {
      std::memcpy(e.data<float>() + i * dim, enc, dim * sizeof(float));
      std::memcpy(d.data<float>() + i * dd, dec[first + i]->out.data(), dd * sizeof(float));
    }
    in[join_enc_] = std::move(e);
    in[join_dec_] = std::move(d);
    std::vector<ir::Tensor> out;
    ASRC_RETURN_IF_ERROR(joiner_->Run(in, &out).With(join_role_));
    const ir::Tensor& l = out[join_logit_];
    if (l.dtype() != ir::DType::Float32 || l.numel() != count * V)
      return Error(join_role_ + ": logit has shape " + ir::ShapeStr(l.shape()) + ", expected [" +
                   std::to_string(count) + "," + std::to_string(V) + "]");
    ASRC_RETURN_IF_ERROR(CheckFinite(l.data<float>(), l.numel(), join_role_, "logit"));
    std::memcpy(logits->data() + first * V, l.data<float>(), count * V * sizeof(float));
    return Status::Ok();
  };
  if (n > 1 && batch_join_ok_) {
    Status st = run(0, n);
    if (st.ok()) return st;
    batch_join_ok_ = false;  // a graph exported for N = 1: join one hypothesis at a time
  }
  for (int64_t i = 0; i < n; ++i) ASRC_RETURN_IF_ERROR(run(i, 1));
  return Status::Ok();
}

// --- StreamingEncoder ---

Result<std::unique_ptr<StreamingEncoder>> StreamingEncoder::Create(
    const ir::Model& model, const BundleConfig& config, const runtime::SessionOptions& options) {
  std::unique_ptr<StreamingEncoder> s(new StreamingEncoder());
  s->cfg_ = config;
  s->feat_dim_ = config.frontend.feature_dim();
  ASRC_ASSIGN_OR_RETURN(s->session_, MakeSession(model, "encoder_causal", options));
  const auto& in = s->session_->input_names();
  const auto& out = s->session_->output_names();
  s->x_pos_ = IndexOf(in, "x");
  s->out_pos_ = IndexOf(out, "encoder_out");
  ASRC_RETURN_IF_ERROR(Need(s->x_pos_, "input 'x'", "encoder_causal"));
  ASRC_RETURN_IF_ERROR(Need(s->out_pos_, "output 'encoder_out'", "encoder_causal"));
  ASRC_RETURN_IF_ERROR(
      BindCarried(*s->session_, config.cache, "cache", "encoder_causal", &s->cache_in_, &s->cache_out_));
  if (in.size() != 1 + s->cache_in_.size())
    return Error("encoder_causal: graph has " + std::to_string(in.size()) +
                 " inputs, model.json names 'x' and " + std::to_string(s->cache_in_.size()) +
                 " caches");
  s->Reset();
  return s;
}

void StreamingEncoder::Reset() {
  caches_.clear();
  for (const auto& c : cfg_.cache) caches_.emplace_back(c.dtype, c.shape);
  feats_.clear();
  feats_first_ = total_frames_ = chunks_run_ = emitted_ = 0;
}

Status StreamingEncoder::RunChunk(int64_t keep_frames, const ChunkFn& fn) {
  const int64_t win = cfg_.chunk_frames + cfg_.right_context_frames;
  const int64_t start = chunks_run_ * cfg_.chunk_frames;
  auto t0 = Clock::now();
  std::vector<ir::Tensor> in(session_->input_names().size());
  ir::Tensor x(ir::DType::Float32, {1, win, feat_dim_});
  float* xd = x.data<float>();
  for (int64_t r = 0; r < win; ++r) {
    int64_t f = start + r;
    if (f < total_frames_)
      std::memcpy(xd + r * feat_dim_, feats_.data() + (f - feats_first_) * feat_dim_, feat_dim_ * sizeof(float));
    else
      std::fill(xd + r * feat_dim_, xd + (r + 1) * feat_dim_, cfg_.pad_value);
  }
  in[x_pos_] = std::move(x);
  for (size_t c = 0; c < cache_in_.size(); ++c) in[cache_in_[c]] = caches_[c];
  std::vector<ir::Tensor> out;
  ASRC_RETURN_IF_ERROR(session_->Run(in, &out).With("encoder_causal (chunk " +
                                                    std::to_string(chunks_run_) + ")"));
  for (size_t c = 0; c < cache_out_.size(); ++c) caches_[c] = std::move(out[cache_out_[c]]);
  double ms = MsSince(t0);
  ++chunks_run_;
  // Frames before the next chunk's start are never read again.
  const int64_t drop = std::min(total_frames_, chunks_run_ * cfg_.chunk_frames) - feats_first_;
  if (drop > 0) {
    feats_.erase(feats_.begin(), feats_.begin() + drop * feat_dim_);
    feats_first_ += drop;
  }
  const ir::Tensor& e = out[out_pos_];
  if (e.dtype() != ir::DType::Float32 || e.rank() != 3 || e.dim(0) != 1)
    return Error("encoder_causal: encoder_out has shape " + ir::ShapeStr(e.shape()) +
                 ", expected [1, frames, D]");
  int64_t frames = std::min<int64_t>(e.dim(1), std::max<int64_t>(0, keep_frames));
  ASRC_RETURN_IF_ERROR(CheckFinite(e.data<float>(), frames * e.dim(2), "encoder_causal", "encoder_out"));
  emitted_ += frames;
  return fn(e.data<float>(), frames, e.dim(2), ms);
}

Status StreamingEncoder::AcceptFeatures(const float* feats, int64_t frames, const ChunkFn& fn) {
  feats_.insert(feats_.end(), feats, feats + frames * feat_dim_);
  total_frames_ += frames;
  const int64_t win = cfg_.chunk_frames + cfg_.right_context_frames;
  while ((chunks_run_ * cfg_.chunk_frames) + win <= total_frames_)
    ASRC_RETURN_IF_ERROR(RunChunk(cfg_.chunk_frames / cfg_.subsampling_factor, fn));
  return Status::Ok();
}

Status StreamingEncoder::Finish(const ChunkFn& fn) {
  const int64_t n = (total_frames_ + cfg_.chunk_frames - 1) / cfg_.chunk_frames;
  const int64_t t_out = (total_frames_ + cfg_.subsampling_factor - 1) / cfg_.subsampling_factor;
  while (chunks_run_ < n) ASRC_RETURN_IF_ERROR(RunChunk(t_out - emitted_, fn));
  return Status::Ok();
}

// --- Recognizer ---

runtime::SessionOptions RecognizerOptions::For(const std::string& role) const {
  auto it = sessions.find(role);
  runtime::SessionOptions o = it == sessions.end() ? runtime::SessionOptions{} : it->second;
  o.threads = std::max(1, threads);
  return o;
}

Recognizer::~Recognizer() = default;

Result<std::unique_ptr<Recognizer>> Recognizer::Create(const ir::Model& model,
                                                       const RecognizerOptions& options) {
  std::unique_ptr<Recognizer> r(new Recognizer());
  ASRC_ASSIGN_OR_RETURN(r->cfg_, BundleConfig::FromModel(model));
  r->opt_ = options;
  ASRC_ASSIGN_OR_RETURN(r->fbank_, Fbank::Create(r->cfg_.frontend));
  ASRC_ASSIGN_OR_RETURN(r->graph_scorer_, GraphScorer::Create(model, r->cfg_, options.For("decoder"),
                                                               options.For("joiner")));
  TransducerScorer* scorer = r->graph_scorer_.get();
  if (options.cache_decoder) {
    r->scorer_ = std::make_unique<CachingScorer>(scorer, r->cfg_.decoder_type == "stateless");
    scorer = r->scorer_.get();
  }
  r->search_stream_ = CreateSearch(scorer, options.search);
  if (model.find("decoder_lookahead") || model.find("joiner_lookahead")) {
    if (!model.find("decoder_lookahead") || !model.find("joiner_lookahead"))
      return Error("bundle: a two-decoder cascade needs both graphs 'decoder_lookahead' and 'joiner_lookahead'");
    ASRC_ASSIGN_OR_RETURN(r->graph_scorer_la_,
                          GraphScorer::Create(model, r->cfg_, options.For("decoder_lookahead"),
                                              options.For("joiner_lookahead"), "decoder_lookahead", "joiner_lookahead"));
    scorer = r->graph_scorer_la_.get();
    if (options.cache_decoder) {
      r->scorer_la_ = std::make_unique<CachingScorer>(scorer, r->cfg_.decoder_type == "stateless");
      scorer = r->scorer_la_.get();
    }
  }
  r->search_final_ = CreateSearch(scorer, options.search);
  if (r->cfg_.streaming()) {
    ASRC_ASSIGN_OR_RETURN(r->causal_,
                          StreamingEncoder::Create(model, r->cfg_, options.For("encoder_causal")));
    ASRC_ASSIGN_OR_RETURN(r->offline_, MakeSession(model, "encoder_noncausal",
                                                   options.For("encoder_noncausal")));
  } else {
    ASRC_ASSIGN_OR_RETURN(r->offline_, MakeSession(model, "encoder", options.For("encoder")));
  }
  const auto& in = r->offline_->input_names();
  const char* role = r->cfg_.streaming() ? "encoder_noncausal" : "encoder";
  ASRC_RETURN_IF_ERROR(Need(IndexOf(in, "x"), "input 'x'", role));
  ASRC_RETURN_IF_ERROR(Need(IndexOf(r->offline_->output_names(), "encoder_out"), "output 'encoder_out'", role));
  return r;
}

Result<std::vector<float>> Recognizer::RunOffline(const std::string& role, const float* x, int64_t frames,
                                                  int64_t dim, int64_t* out_frames, int64_t* out_dim) {
  const auto& names = offline_->input_names();
  std::vector<ir::Tensor> in(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "x") {
      ir::Tensor t(ir::DType::Float32, {1, frames, dim});
      std::memcpy(t.data<float>(), x, frames * dim * sizeof(float));
      in[i] = std::move(t);
    } else if (names[i] == "x_lens") {
      ir::Tensor t(ir::DType::Int64, {1});
      t.data<int64_t>()[0] = frames;
      in[i] = std::move(t);
    } else {
      return Error(role + ": unexpected input '" + names[i] + "' (expected 'x' and 'x_lens')");
    }
  }
  std::vector<ir::Tensor> out;
  ASRC_RETURN_IF_ERROR(offline_->Run(in, &out).With(role));
  const auto& on = offline_->output_names();
  const ir::Tensor& e = out[IndexOf(on, "encoder_out")];
  if (e.dtype() != ir::DType::Float32 || e.rank() != 3 || e.dim(0) != 1)
    return Error(role + ": encoder_out has shape " + ir::ShapeStr(e.shape()) + ", expected [1, T, D]");
  int64_t t = e.dim(1);
  int lens = IndexOf(on, "encoder_out_lens");
  if (lens >= 0 && out[lens].numel() >= 1) {
    const ir::Tensor& l = out[lens];
    int64_t v = l.dtype() == ir::DType::Int64 ? l.data<int64_t>()[0]
                : l.dtype() == ir::DType::Int32 ? l.data<int32_t>()[0] : t;
    t = std::min(t, std::max<int64_t>(0, v));
  }
  ASRC_RETURN_IF_ERROR(CheckFinite(e.data<float>(), t * e.dim(2), role, "encoder_out"));
  *out_frames = t;
  *out_dim = e.dim(2);
  return std::vector<float>(e.data<float>(), e.data<float>() + t * e.dim(2));
}

// The `transducer` encoder's output length for `length` input frames (-1 below kProbeBlocks x
// subsampling_factor): run on the first frames of `feats` (cycled when fewer; a length does not
// depend on the values) at base + r, r = (length - base) % factor, once per r, then one more output
// frame per `factor` frames. The first call checks that premise, which PlanFeatureSegments' frame
// mapping rests on, with a second run kCheckBlocks x factor frames longer.
Result<int64_t> Recognizer::OfflineOutputLength(const std::vector<float>& feats, int64_t frames, int64_t length) {
  const int64_t factor = cfg_.subsampling_factor, base = kProbeBlocks * factor, fd = cfg_.frontend.feature_dim();
  if (length < base || frames <= 0) return int64_t{-1};
  auto probe = [&](int64_t len) -> Result<int64_t> {
    if (auto it = offline_lengths_.find(len); it != offline_lengths_.end()) return it->second;
    std::vector<float> x(len * fd);
    for (int64_t i = 0; i < len; ++i)
      std::memcpy(x.data() + i * fd, feats.data() + (i % frames) * fd, fd * sizeof(float));
    int64_t t = 0, d = 0;
    ASRC_RETURN_IF_ERROR(RunOffline("encoder", x.data(), len, fd, &t, &d).status());
    offline_lengths_[len] = t;
    return t;
  };
  if (offline_lengths_.empty()) {
    ASRC_ASSIGN_OR_RETURN(const int64_t a, probe(base));
    ASRC_ASSIGN_OR_RETURN(const int64_t b, probe(base + kCheckBlocks * factor));
    if (a < 1 || b - a != kCheckBlocks) {
      offline_lengths_.clear();
      return Error("encoder: returned " + std::to_string(a) + " output frames for " + std::to_string(base) +
                   " feature frames and " + std::to_string(b) + " for " + std::to_string(base + kCheckBlocks * factor) +
                   ", not one more per model.json decoding.subsampling_factor (" + std::to_string(factor) +
                   ") feature frames, so its output frames cannot be mapped to look-ahead segments" + kEncodeWholeHint);
    }
  }
  const int64_t r = (length - base) % factor;
  ASRC_ASSIGN_OR_RETURN(const int64_t at, probe(base + r));
  return at + (length - base - r) / factor;
}

Status Recognizer::EncodeOffline(const std::vector<float>& feats, int64_t frames, const PieceFn& fn,
                                 int64_t* segments) {
  if (causal_) return Error("a cascaded bundle's look-ahead encoder reads the causal output (EncodeLookahead)");
  const int64_t fd = cfg_.frontend.feature_dim(), factor = cfg_.subsampling_factor;
  if (static_cast<int64_t>(feats.size()) != frames * fd)
    return Error("encoder: input has " + std::to_string(feats.size()) + " values, expected " +
                 std::to_string(frames) + " x " + std::to_string(fd));
  const int64_t segment = SecondsToEncoderFrames(cfg_, opt_.lookahead_segment_s);
  if (segments) *segments = 1;
  // Up to one segment (or too short to probe): the whole input, as the encoder returns it.
  if (segment <= 0 || (frames + factor - 1) / factor <= segment || frames < kProbeBlocks * factor) {
    int64_t t = 0, d = 0;
    ASRC_ASSIGN_OR_RETURN(auto enc, RunOffline("encoder", feats.data(), frames, fd, &t, &d));
    return fn(enc.data(), t, d);
  }
  ASRC_ASSIGN_OR_RETURN(const int64_t out_frames, OfflineOutputLength(feats, frames, frames));
  const int64_t lag = kProbeBlocks - offline_lengths_.at(kProbeBlocks * factor);
  const auto plan = PlanFeatureSegments(frames, out_frames, factor, segment,
                                        SecondsToEncoderFrames(cfg_, opt_.lookahead_context_s), lag);
  if (segments) *segments = static_cast<int64_t>(plan.size());
  for (const FeatureSegment& p : plan) {
    const int64_t w = p.window_end - p.window_begin;
    int64_t t = 0, d = 0;
    ASRC_ASSIGN_OR_RETURN(auto enc, RunOffline("encoder", feats.data() + p.window_begin * fd, w, fd, &t, &d));
    ASRC_ASSIGN_OR_RETURN(const int64_t expected, OfflineOutputLength(feats, frames, w));
    if ((expected >= 0 && t != expected) || p.keep_end - p.first_output > t)
      return Error("encoder: returned " + std::to_string(t) + " output frames for feature frames [" +
                   std::to_string(p.window_begin) + ", " + std::to_string(p.window_end) + "), expected " +
                   std::to_string(expected >= 0 ? expected : p.keep_end - p.first_output) +
                   " as probed on shorter input" + kEncodeWholeHint);
    ASRC_RETURN_IF_ERROR(fn(enc.data() + (p.keep_begin - p.first_output) * d, p.keep_end - p.keep_begin, d));
  }
  return Status::Ok();
}

}  // namespace asrc::asr

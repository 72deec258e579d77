#include "passes/share_decoder.h"

#include <cstring>
#include <limits>
#include <sstream>

namespace asrc::passes {

namespace {

const char* const kStreaming[2] = {"decoder", "joiner"};
const char* const kLookahead[2] = {"decoder_lookahead", "joiner_lookahead"};

// The element-wise mean of `b`'s weights and `a`'s, written into `a` (new tensors).
Status AverageInto(ir::Graph& a, const ir::Graph& b, const std::string& ra, const std::string& rb) {
  const std::string where = "share-decoder: graphs '" + ra + "' and '" + rb + "'";
  if (a.initializers.size() != b.initializers.size()) {
    return Error(where + " differ in structure (" + std::to_string(a.initializers.size()) + " vs " +
                 std::to_string(b.initializers.size()) + " initializers); they cannot be averaged");
  }
  for (size_t i = 0; i < a.initializers.size(); ++i) {
    ir::Value* va = a.initializers[i];
    const ir::Tensor& ta = *va->initializer;
    const ir::Tensor& tb = *b.initializers[i]->initializer;
    if (ta.dtype() != tb.dtype() || ta.shape() != tb.shape()) {
      return Error(where + ": initializer '" + va->name + "' " + ir::ShapeStr(ta.shape()) + " vs '" +
                   b.initializers[i]->name + "' " + ir::ShapeStr(tb.shape()) + "; they cannot be averaged");
    }
    if (ta.dtype() != ir::DType::Float32) {
      if (ta.nbytes() != tb.nbytes() || std::memcmp(ta.raw(), tb.raw(), ta.nbytes()) != 0) {
        return Error(where + ": non-float initializer '" + va->name + "' differs; it cannot be averaged");
      }
      continue;
    }
    ir::Tensor m(ir::DType::Float32, ta.shape());
    for (int64_t j = 0; j < ta.numel(); ++j) m.data<float>()[j] = 0.5f * (ta.data<float>()[j] + tb.data<float>()[j]);
    va->initializer = std::move(m);
  }
  return Status::Ok();
}

// `m` with one pair for both passes: "streaming", "lookahead" or "average".
Result<ir::Model> Shared(const ir::Model& m, const std::string& choose) {
  ir::Model out = m;
  if (choose == "average") {
    for (int i = 0; i < 2; ++i) {
      ASRC_RETURN_IF_ERROR(AverageInto(*out.graph(kStreaming[i]), *out.find(kLookahead[i])->graph, kStreaming[i],
                                       kLookahead[i]));
    }
  }
  const bool la = choose == "lookahead";
  std::vector<ir::GraphFile> graphs;
  for (ir::GraphFile& f : out.graphs) {
    bool drop = false;
    for (int i = 0; i < 2; ++i) {
      if (f.role == (la ? kStreaming[i] : kLookahead[i])) drop = true;
      if (la && f.role == kLookahead[i]) {
        f.role = kStreaming[i];
        f.file = std::string(kStreaming[i]) + ".onnx";
      }
    }
    if (!drop) graphs.push_back(std::move(f));
  }
  out.graphs = std::move(graphs);
  nlohmann::json& info = out.config["info"];
  if (info.is_object() && info.contains("params") && info["params"].is_object()) {
    nlohmann::json& p = info["params"];
    for (int i = 0; i < 2; ++i) {
      if (la && p.contains(kLookahead[i])) p[kStreaming[i]] = p[kLookahead[i]];
      p.erase(kLookahead[i]);
    }
    if (p.contains("total")) p["total"] = out.ParamsTotal();
  } else if (info.is_null()) {
    out.config.erase("info");
  }
  return out;
}

double SumWer(const std::map<std::string, double>& wer) {
  double s = 0;
  for (const auto& [mode, w] : wer) s += w;
  return s;
}

}  // namespace

std::vector<pass::OptionSpec> ShareDecoderPass::options() const {
  return {
      {"choose", "dev",
       "dev: keep whichever of streaming / lookahead / average scores the lowest dev WER (sum over the modes); "
       "streaming or lookahead: that pass's pair; average: the mean of the two pairs' weights",
       {"dev", "streaming", "lookahead", "average"}},
      {"dev_manifest", "", "dev: manifest to measure on (\"\" = the run's calibration manifest)", {}},
      {"dev_split", "dev", "dev: only lines whose \"split\" is this (\"\" = all)", {}},
      {"dev_limit", int64_t{20}, "dev: utterances per measurement", {}, 1, 100000},
  };
}

Result<bool> ShareDecoderPass::Run(ir::Model& model, pass::PassContext& ctx) {
  for (const char* const* pair : {kStreaming, kLookahead}) {
    for (int i = 0; i < 2; ++i) {
      if (!model.find(pair[i])) {
        return Error(std::string("share-decoder: the bundle has no graph '") + pair[i] +
                     "': it needs two decoder + joiner pairs (decoder, joiner, decoder_lookahead, "
                     "joiner_lookahead; docs/bundle.md), nothing to share");
      }
    }
  }
  std::string choose = ctx.GetString("choose");
  const int64_t before = model.ParamsTotal();
  if (choose == "dev") {
    if (!ctx.probe_wer) {
      return Error("share-decoder: choose 'dev' measures WER on a dev subset, which this run cannot "
                   "(use asrc compress, or choose streaming / lookahead / average)");
    }
    double best = std::numeric_limits<double>::infinity();
    std::string best_name;
    for (const char* c : {"streaming", "lookahead", "average"}) {
      Result<ir::Model> cand = Shared(model, c);
      if (!cand.ok()) {
        ctx.Note(std::string("dev: no ") + c + " candidate: " + cand.status().message());
        continue;
      }
      ASRC_ASSIGN_OR_RETURN(auto wer, ctx.probe_wer(cand.value(), ctx.GetString("dev_manifest"),
                                                    ctx.GetString("dev_split"),
                                                    static_cast<int>(ctx.GetInt("dev_limit"))));
      ctx.Bump("dev_probes");
      const double s = SumWer(wer);
      std::ostringstream note;
      note << "dev: " << c << " pair: WER sum " << s << " (" << ctx.GetInt("dev_limit") << " utterances of split '"
           << ctx.GetString("dev_split") << "')";
      ctx.Note(note.str());
      if (s < best) {
        best = s;
        best_name = c;
      }
    }
    choose = best_name;
  }
  ASRC_ASSIGN_OR_RETURN(ir::Model shared, Shared(model, choose));
  model = std::move(shared);
  ctx.Bump("params_removed", before - model.ParamsTotal());
  ctx.Note("kept the " + choose + (choose == "average" ? "d pair" : " pass's pair") +
           " as the one decoder + joiner of both passes");
  return true;
}

}  // namespace asrc::passes

#include "pass/eval_asr.h"

#include <algorithm>

#include "asr/eval.h"

namespace asrc::pass {

Evaluator MakeAsrEvaluator(const EvalConfig& config, bool progress) {
  return [config, progress](const ir::Model& model) -> Result<nlohmann::json> {
    asr::EvalOptions o;
    auto has = [&](const char* m) {
      return std::find(config.modes.begin(), config.modes.end(), m) != config.modes.end();
    };
    o.streaming = has("streaming");
    o.lookahead = has("lookahead");
    o.beam = config.beam;
    o.threads = config.threads;
    o.limit = config.limit;
    o.split = config.split;
    o.progress = progress;
    ASRC_ASSIGN_OR_RETURN(asr::EvalReport r, asr::Evaluate(model, config.manifest, o));
    nlohmann::json j = r.ToJson();
    // Per-utterance transcripts are dropped; their word error counts stay, in manifest order, for
    // the report's paired significance test (pass/significance.h).
    for (const auto* m : {&r.streaming, &r.lookahead}) {
      if (!*m) continue;
      nlohmann::json errs = nlohmann::json::array();
      for (const asr::UtteranceResult& u : (*m)->per_utterance)  // failed audio: null
        errs.push_back(u.failed ? nlohmann::json() : nlohmann::json{u.words.errors(), u.words.ref_len});
      j[(*m)->mode].erase("per_utterance");
      j[(*m)->mode]["utt_word_errors"] = std::move(errs);
    }
    j["threads"] = r.threads;
    return j;
  };
}

}  // namespace asrc::pass

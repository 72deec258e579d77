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
    for (const char* mode : {"streaming", "lookahead"}) {
      if (j.contains(mode) && j[mode].is_object()) j[mode].erase("per_utterance");
    }
    j["threads"] = r.threads;
    return j;
  };
}

}  // namespace asrc::pass

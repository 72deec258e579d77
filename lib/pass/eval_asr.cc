#include "pass/eval_asr.h"

#include <algorithm>

#include "asr/eval.h"
#include "pass/modes.h"

namespace asrc::pass {

namespace {

ModeEval Summarize(const asr::ModeReport& r, const Mode& mode) {
  ModeEval m;
  m.wer = r.wer;
  m.cer = r.cer;
  m.words = r.words;
  m.substitutions = r.substitutions;
  m.deletions = r.deletions;
  m.insertions = r.insertions;
  m.chars = r.chars;
  m.char_errors = r.char_errors;
  m.utterances = r.utterances;
  m.failed_utterances = r.failed_utterances;
  m.rtf = r.rtf;
  m.audio_seconds = r.audio_seconds;
  m.compute_seconds = r.compute_seconds;
  m.rtf_cpu = r.rtf_cpu;
  m.cpu_seconds = r.cpu_seconds;
  const std::vector<double>& latency = mode.per_chunk ? r.chunk_ms : r.final_ms;
  m.latency_ms_p50 = asr::Percentile(latency, 50);
  m.latency_ms_p90 = asr::Percentile(latency, 90);
  if (mode.per_chunk) m.chunks = static_cast<int64_t>(latency.size());
  m.latency_ms = latency;
  m.threads = r.threads;
  for (const asr::UtteranceResult& u : r.per_utterance) {
    if (u.failed) {
      m.utt_word_errors.emplace_back();
      m.utt_char_errors.emplace_back();
    } else {
      m.utt_word_errors.push_back(WordErrors{u.words.errors(), u.words.ref_len});
      m.utt_char_errors.push_back(WordErrors{u.chars.errors(), u.chars.ref_len});
    }
  }
  return m;
}

}  // namespace

Evaluator MakeAsrEvaluator(const EvalConfig& config, bool progress) {
  return [config, progress](const ir::Model& model) -> Result<EvalSummary> {
    auto wants = [&](const Mode& m) {
      return std::find(config.modes.begin(), config.modes.end(), m.name) != config.modes.end();
    };
    const Mode& streaming = AllModes()[0];
    const Mode& lookahead = AllModes()[1];
    asr::EvalOptions o;
    o.streaming = wants(streaming);
    o.lookahead = wants(lookahead);
    o.beam = config.beam;
    o.threads = config.threads;
    o.limit = config.limit;
    o.split = config.split;
    o.progress = progress;
    ASRC_ASSIGN_OR_RETURN(asr::EvalReport r, asr::Evaluate(model, config.manifest, o));
    EvalSummary s;
    if (r.streaming) s.modes[streaming.name] = Summarize(*r.streaming, streaming);
    if (r.lookahead) s.modes[lookahead.name] = Summarize(*r.lookahead, lookahead);
    s.threads = r.threads;
    return s;
  };
}

WerProbe MakeAsrWerProbe(const std::string& default_manifest, int threads) {
  return [default_manifest, threads](const ir::Model& model, const std::string& manifest, const std::string& split,
                                     int limit) -> Result<std::map<std::string, double>> {
    EvalConfig config;
    config.manifest = manifest.empty() ? default_manifest : manifest;
    config.split = split;
    config.limit = limit;
    config.threads = threads;
    config.modes = BundleModes(model);
    ASRC_ASSIGN_OR_RETURN(EvalSummary s, MakeAsrEvaluator(config)(model));
    std::map<std::string, double> wer;
    for (const auto& [mode, e] : s.modes) {
      if (e.utterances == 0) return Error("no utterances of split '" + split + "' in '" + config.manifest + "'");
      wer[mode] = e.wer;
    }
    return wer;
  };
}

}  // namespace asrc::pass

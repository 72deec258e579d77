// MakeAsrCalibrator: activation statistics from the lib/asr recognizer run on real audio, its
// sessions tapped (runtime::Session taps), rather than a second copy of the transducer driver.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "asr/eval.h"
#include "asr/stream.h"
#include "pass/calibration.h"
#include "pass/eval_asr.h"

namespace asrc::pass {

Calibrator MakeAsrCalibrator(const CalibrationSource& source, uint64_t seed) {
  return [source, seed](const ir::Model& model, const Taps& taps) -> Result<ModelStats> {
    auto cfg = asr::BundleConfig::FromModel(model);
    if (!cfg.ok()) return cfg.status().With("calibration");
    // Each graph's reservoir draws have their own seed.
    std::vector<std::pair<std::string, uint64_t>> roles;
    if (cfg->streaming())
      roles = {{"encoder_causal", seed}, {"encoder_noncausal", seed + 1}};
    else
      roles = {{"encoder", seed}};
    roles.push_back({"decoder", seed + 2});
    roles.push_back({"joiner", seed + 3});

    // The look-ahead pass (causal chunks, then the non-causal encoder) with greedy search, one
    // thread, every decoder evaluation run (no cache), so the decoder and joiner taps see each
    // label the search emits.
    asr::EvalOptions eo;
    eo.streaming = false;
    eo.lookahead = true;
    eo.beam = 0;
    eo.max_symbols_per_frame = 5;
    eo.threads = 1;
    eo.limit = source.limit;
    eo.split = source.split;
    eo.cache_decoder = false;
    std::map<std::string, std::unique_ptr<StatsCollector>> collectors;
    for (const auto& [role, role_seed] : roles) {
      auto it = taps.find(role);
      auto col = std::make_unique<StatsCollector>(
          it == taps.end() ? std::vector<std::string>{} : it->second, role_seed);
      eo.sessions[role] = col->Tap();
      collectors[role] = std::move(col);
    }
    auto report = asr::Evaluate(model, source.manifest, eo);
    if (!report.ok()) return report.status().With("calibration");
    const asr::ModeReport& m = *report->lookahead;
    if (m.utterances - m.failed_utterances <= 0)
      return Error("calibration: " + source.manifest + ": no readable utterance");
    ModelStats stats;
    for (const auto& [role, col] : collectors) stats[role] = col->stats();
    return stats;
  };
}

}  // namespace asrc::pass

// The evaluation instrument's backend: asr::Evaluate on a manifest, both modes, rows keyed as
// `asrc eval --json` (per-utterance lists dropped). Available when asrc_asr is built.
#pragma once

#include <string>

#include "pass/manager.h"
#include "pass/pipeline.h"

namespace asrc::pass {

// `config.manifest` must be set. `progress` shows asr's progress bar on a terminal.
Evaluator MakeAsrEvaluator(const EvalConfig& config, bool progress = false);

}  // namespace asrc::pass

namespace asrc::pass {

// Activation statistics from real audio: the first `source.limit` utterances of the manifest run
// through the whole transducer — features, the causal encoder chunk by chunk (docs/bundle.md),
// the non-causal encoder, and greedy decoding through decoder and joiner — with every graph's
// requested values tapped.
Calibrator MakeAsrCalibrator(const CalibrationSource& source, uint64_t seed);

}  // namespace asrc::pass

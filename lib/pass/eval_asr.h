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

// Activation statistics from real audio: the first `source.limit` utterances of the manifest
// (after the split filter) recognized by asr::Evaluate in look-ahead mode — features, the causal
// encoder chunk by chunk (docs/bundle.md), the non-causal encoder (or a `transducer` bundle's
// encoder), greedy search through decoder and joiner without the decoder cache — with every
// graph's requested values tapped (StatsCollector, calibration.h). Unreadable or too short audio
// is skipped; none readable is an error.
Calibrator MakeAsrCalibrator(const CalibrationSource& source, uint64_t seed);

}  // namespace asrc::pass

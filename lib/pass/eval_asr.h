// The evaluation instrument's backend: asr::Evaluate on a manifest in the configured modes,
// summarized per mode (transcripts dropped, per-utterance word errors kept for the significance
// test). Available when asrc_asr is built.
#pragma once

#include <string>

#include "pass/instruments.h"
#include "pass/pipeline.h"

namespace asrc::pass {

// `config.manifest` must be set and `config.modes` resolved (modes of the bundle). `progress`
// shows asr's progress bar on a terminal.
Evaluator MakeAsrEvaluator(const EvalConfig& config, bool progress = false);

// A WER probe (pass.h) over asr::Evaluate, greedy, both modes the model has; `default_manifest`
// stands in for a probe asked with manifest "".
WerProbe MakeAsrWerProbe(const std::string& default_manifest, int threads);

}  // namespace asrc::pass

namespace asrc::pass {

// Activation statistics from real audio: the first `source.limit` utterances of the manifest
// (after the split filter) recognized by asr::Evaluate in look-ahead mode — features, the causal
// encoder chunk by chunk (docs/bundle.md), the non-causal encoder (or a `transducer` bundle's
// encoder), greedy search through decoder and joiner without the decoder cache — with every
// graph's requested values tapped (StatsCollector, calibration.h). Unreadable audio is an error
// naming the file (as in `asrc eval`); too short audio is skipped; none usable is an error.
Calibrator MakeAsrCalibrator(const CalibrationSource& source, uint64_t seed);

}  // namespace asrc::pass

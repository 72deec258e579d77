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

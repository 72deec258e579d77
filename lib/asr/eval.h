// asr::Evaluate — the measuring instrument: transcribe a manifest in streaming and/or look-ahead
// mode with a bundle and score WER/CER and latency. Contract shared by `asrc eval` and the
// compress pipeline's instruments. JSON keys as `asrc eval --json` (see issue/README).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "ir/model.h"

namespace asrc::asr {

struct EvalOptions {
  bool streaming = true;
  bool lookahead = true;
  int beam = 0;                   // 0 or 1: greedy; >1: modified beam search with this beam
  int max_symbols_per_frame = 5;  // greedy
  int threads = 1;
  int limit = 0;                  // 0: all utterances
  std::string split;              // keep manifest lines whose "split" equals this ("" = all)
  int shard_index = 0, shard_count = 1;
  bool progress = false;          // progress bar with ETA on stderr (when a terminal)
};

struct UtteranceResult {
  std::string id, reference, hypothesis;
  bool failed = false;
  std::string error;  // why it failed (unreadable audio, ...)
};

struct ModeReport {
  double wer = 0, cer = 0;  // percent
  int64_t words = 0, substitutions = 0, deletions = 0, insertions = 0;
  int64_t chars = 0, char_errors = 0;
  int64_t utterances = 0, failed_utterances = 0;
  double audio_seconds = 0, compute_seconds = 0;
  double rtf = 0;
  std::vector<double> chunk_ms;  // streaming: per-chunk compute times (kept for merging)
  std::vector<double> final_ms;  // look-ahead: per-utterance finalization times
  std::vector<UtteranceResult> per_utterance;
  nlohmann::json ToJson() const;  // wer, cer, words, ..., chunk_ms_p50/p90 or final_ms_p50/p90
};

struct EvalReport {
  std::optional<ModeReport> streaming, lookahead;
  int threads = 1;
  nlohmann::json ToJson() const;  // {"streaming": {...}, "lookahead": {...}}
};

// Evaluates `model` (a loaded bundle) on a NeMo-style JSONL manifest.
Result<EvalReport> Evaluate(const ir::Model& model, const std::string& manifest_path,
                            const EvalOptions& options);

}  // namespace asrc::asr

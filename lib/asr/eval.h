// asr::Evaluate — the measuring instrument: transcribe a manifest in streaming and/or look-ahead
// mode with a bundle and score WER/CER and latency. Contract shared by `asrc eval` and the
// compress pipeline's instruments. JSON keys as `asrc eval --json` (see issue/README).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "asr/stream.h"
#include "asr/wer.h"
#include "core/status.h"
#include "ir/model.h"
#include "runtime/session.h"

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
  bool alignments = false;        // per-utterance word alignments in per_utterance
  // false: an utterance whose audio cannot be read (missing, empty, corrupt, a folder, a FIFO,
  // non-finite samples, too short) fails the evaluation, naming the files; true: it is counted in
  // failed_utterances and left out of the scores.
  bool skip_unreadable = false;
  // Look-ahead over long audio (asr/stream.h RecognizerOptions): segment length and context, s.
  double lookahead_segment_s = RecognizerOptions{}.lookahead_segment_s;
  double lookahead_context_s = RecognizerOptions{}.lookahead_context_s;
  NormalizeOptions normalize;     // text normalization for WER/CER (asr/wer.h)
  // Session options by graph role, e.g. taps and their observer (asr/stream.h
  // RecognizerOptions::sessions); and whether the decoder's outputs are cached.
  std::map<std::string, runtime::SessionOptions> sessions;
  bool cache_decoder = true;
};

// Scoring conventions: WER and CER are over the utterances whose audio could be read; with
// skip_unreadable a failed utterance (unreadable, empty or too short audio) is counted in
// failed_utterances, listed in per_utterance with its error, and left out of the error rates
// (without it, Evaluate fails). Over zero reference words WER and CER are undefined: NaN in the
// struct, null in JSON, and RequireScoredWords() is the error. `utterances` counts every
// utterance attempted, failed ones included. A model that fails to run on an utterance fails the
// whole evaluation (Evaluate returns the error). RTF = compute time (features, encoders, search;
// not file reading) / audio duration, over scored utterances.

struct UtteranceResult {
  int64_t index = -1;  // position in the (split-filtered, limited) manifest; orders merged shards
  std::string id, reference, hypothesis;
  std::string alignment;  // FormatAlignment() text, when EvalOptions::alignments
  ErrorCounts words;      // this utterance's word errors, as summed into its ModeReport
  ErrorCounts chars;      // and its character errors (CER)
  bool failed = false;
  std::string error;  // why it failed (unreadable audio, ...)
};

struct ModeReport {
  std::string mode;         // "streaming" | "lookahead"
  double wer = 0, cer = 0;  // percent
  int64_t words = 0, substitutions = 0, deletions = 0, insertions = 0;
  int64_t chars = 0, char_errors = 0;
  int64_t utterances = 0, failed_utterances = 0;
  double audio_seconds = 0, compute_seconds = 0;
  double rtf = 0;
  // Process CPU time of the same work, and cpu_seconds / audio_seconds: on a shared machine the
  // wall-clock RTF includes waiting for a core, this one does not.
  double cpu_seconds = 0, rtf_cpu = 0;
  std::vector<double> chunk_ms;  // streaming: per-chunk compute times (kept for merging)
  std::vector<double> final_ms;  // look-ahead: per-utterance finalization times
  std::vector<UtteranceResult> per_utterance;
  int threads = 1;
  nlohmann::json ToJson(bool partial = false) const;  // wer, cer, words, ..., chunk_ms_p50/p90 or final_ms_p50/p90
  // Recomputes wer, cer and rtf from the counts.
  void Finalize();
};

struct EvalReport {
  std::optional<ModeReport> streaming, lookahead;
  int threads = 1;
  // What was evaluated: "split", "mode", "beam", "max_symbols", "limit", "lowercase",
  // "strip_punctuation", "lookahead_segment_s", "lookahead_context_s" (set by Evaluate), and what
  // the caller adds (asrc eval: "model_hash", "manifest_hash"). Written into partial reports; MergeReports refuses shards that differ.
  nlohmann::json provenance = nlohmann::json::object();
  // Sharded runs: a partial report also carries the raw timings and utterance indices, so that
  // MergeReports() gives what an unsharded run gives.
  bool partial = false;
  int shard_index = 0, shard_count = 1;
  nlohmann::json ToJson() const;  // {"streaming": {...}, "lookahead": {...}} (+ "shard" if partial)
  static Result<EvalReport> FromJson(const nlohmann::json& j);  // reads a partial report
};

// Combines the partial reports of shards 0..N-1 (each exactly once) into one full report.
// Refuses shards with a different provenance or modes, an utterance index or id seen twice, and
// an utterance index that does not belong to its shard.
Result<EvalReport> MergeReports(const std::vector<EvalReport>& partials);

// An error when a mode of a full report scored zero reference words (its WER is undefined).
Status RequireScoredWords(const EvalReport& report);

// The summary table `asrc eval` prints.
std::string FormatSummary(const EvalReport& report);

// Linear-interpolated percentile (as numpy.percentile), p in [0, 100]; 0 for no values.
double Percentile(std::vector<double> values, double p);

struct ManifestEntry {
  int64_t index = 0;  // after the split filter
  std::string id, audio_path, text, split;
  double duration = 0;
};
// NeMo-style JSONL: audio_filepath (relative to the manifest's folder, or absolute), text;
// id defaults to audio_filepath and must be unique among the kept lines; lines whose split
// differs from `split` (when non-empty) are skipped; blank lines ignored. Errors name the file and line.
Result<std::vector<ManifestEntry>> ReadManifest(const std::string& path, const std::string& split);

// Evaluates `model` (a loaded bundle) on a NeMo-style JSONL manifest.
Result<EvalReport> Evaluate(const ir::Model& model, const std::string& manifest_path,
                            const EvalOptions& options);

}  // namespace asrc::asr

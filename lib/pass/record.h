// What a compress run records: one PassRecord for the input model and one per pass. Instruments
// fill it (size, evaluation, timing, gate, hash); significance.h adds the paired bootstrap;
// report.cc alone turns records into JSON, markdown and HTML.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace asrc::pass {

struct GraphSize {
  int64_t params = 0, bytes = 0, nodes = 0;  // bytes: ir::GraphBytes
};

struct SizeStats {
  int64_t params = 0, bytes = 0;            // the bundle: shared buffers once (ir::Model)
  std::map<std::string, GraphSize> graphs;  // by role
};

struct WordErrors {
  int64_t errors = 0, words = 0;  // against `words` reference words
};

// One mode's result on the eval set: asr::ModeReport without the transcripts.
struct ModeEval {
  double wer = 0, cer = 0;  // percent
  int64_t words = 0, substitutions = 0, deletions = 0, insertions = 0;
  int64_t chars = 0, char_errors = 0;
  int64_t utterances = 0, failed_utterances = 0;
  double rtf = 0, audio_seconds = 0, compute_seconds = 0;
  double rtf_cpu = 0, cpu_seconds = 0;
  double latency_ms_p50 = 0, latency_ms_p90 = 0;  // of the mode's latency (modes.h)
  std::optional<int64_t> chunks;                  // per-chunk modes: encoder chunks run
  // The latencies behind p50/p90 (per chunk or per utterance, in decoding order), while the
  // evaluation is in memory (not in report JSON): repeated evaluations keep each one's minimum.
  std::vector<double> latency_ms;
  int threads = 1;
  // Per utterance, in manifest order (nullopt: its audio failed): the paired significance test.
  std::vector<std::optional<WordErrors>> utt_word_errors;
  // The same for characters (CER's bootstrap); empty in evaluations stored before it existed.
  std::vector<std::optional<WordErrors>> utt_char_errors;

  // A gate metric by name ("wer" | "cer"); nullopt for other names.
  std::optional<double> Metric(const std::string& name) const {
    if (name == "wer") return wer;
    if (name == "cer") return cer;
    return std::nullopt;
  }
};

struct EvalSummary {
  std::map<std::string, ModeEval> modes;  // by mode name (modes.h)
  int threads = 1;
  int repeat = 1;        // evaluations made of this model; the fastest (by total RTF) is kept
  double seconds = 0;    // wall time of the evaluation; 0 when cached
  bool cached = false;   // an identical model (content hash) was evaluated before

  const ModeEval* mode(const std::string& name) const {
    auto it = modes.find(name);
    return it == modes.end() ? nullptr : &it->second;
  }
};

struct GateResult {
  bool passed = true;
  std::string reason;  // why it broke ("" when passed)
  std::string action;  // "none" when passed, else the gate's on_fail
};

// Paired bootstrap of a mode's WER change against the input model (significance.h).
struct Significance {
  double delta_wer = 0;  // percent points
  double ci_lo = 0, ci_hi = 0;
  double p_value = 1;
  int resamples = 0;
  int64_t utterances = 0;
  // The CER change, bootstrapped over the same resamples (when both have per-utterance
  // character errors).
  bool has_cer = false;
  double delta_cer = 0, cer_ci_lo = 0, cer_ci_hi = 0, cer_p_value = 1;
};

struct PassRecord {
  int index = 0;               // 0: the input model; i: pipeline step i (1-based)
  std::string pass = "input";  // CLI name of the pass
  nlohmann::json options;      // validated options, defaults filled in (steps only)
  std::string step;            // canonical text of the step (pipeline.h)
  bool changed = false;        // as the pass said (checked against the content hash)
  double wall_s = 0;           // the pass's wall time
  std::map<std::string, int64_t> counters;  // the pass's statistics (PassContext::Bump)
  std::vector<std::string> notes;           // the pass's remarks (PassContext::Note)
  std::optional<SizeStats> size;
  std::optional<EvalSummary> eval;
  std::optional<GateResult> gate;  // when a gate applied and the model was evaluated
  bool rolled_back = false;        // the gate restored the model from before the pass
  std::optional<uint64_t> hash;    // ir::ContentHash of the model the pass produced
  std::map<std::string, Significance> significance;  // by mode
  // Set by an instrument to end the run after this pass (a gate with on_fail = stop).
  std::string stop_reason;

  bool is_input() const { return index == 0; }
};

}  // namespace asrc::pass

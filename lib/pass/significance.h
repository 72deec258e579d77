// Is a pass's WER change real or noise? A paired bootstrap over utterances (Koehn 2004; Bisani &
// Ney 2004): both models were evaluated on the same utterances, so resample utterance indices with
// replacement and recompute WER(pass) - WER(input) on each resample.
//
// Input per mode: ModeEval::utt_word_errors, one (errors, reference words) pair per utterance in
// manifest order (nullopt for an utterance whose audio failed), kept by the evaluator.
// Output per mode: the WER change in percent points, its 95% CI, and a two-sided p-value:
// 2 * min(P(delta <= 0), P(delta >= 0)) over the resamples, capped at 1 (identical outputs give
// delta 0, CI [0, 0], p 1); the same for CER over the same resamples when both have
// ModeEval::utt_char_errors.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "pass/record.h"

namespace asrc::pass {

// nullopt when either lacks per-utterance errors or they cover different utterances.
std::optional<Significance> PairedBootstrap(const ModeEval& base, const ModeEval& other,
                                            int resamples = 2000, uint64_t seed = 1);

// {"delta_wer", "ci95": [lo, hi], "p_value", "resamples", "utterances", "cer": {"delta_cer",
// "ci95", "p_value"}} ("cer" when measured); the parse names the missing key.
nlohmann::json SignificanceJson(const Significance& s);
Result<Significance> ParseSignificance(const nlohmann::json& j);

// Fills significance[mode] (PairedBootstrap against records[0]) of every later record, for each
// mode both were evaluated in.
void AddSignificance(std::vector<PassRecord>& records, int resamples = 2000, uint64_t seed = 1);

}  // namespace asrc::pass

// Is a pass's WER change real or noise? A paired bootstrap over utterances (Koehn 2004; Bisani &
// Ney 2004): both models were evaluated on the same utterances, so resample utterance indices with
// replacement and recompute WER(pass) - WER(input) on each resample.
//
// Input per mode: "utt_word_errors", one [errors, reference_words] pair per utterance in manifest
// order (null for an utterance whose audio failed), written by the evaluation instrument.
// Output per mode: {"delta_wer": percent points, "ci95": [lo, hi], "p_value", "resamples",
// "utterances"}; p_value is two-sided: 2 * min(P(delta <= 0), P(delta >= 0)) over the resamples,
// capped at 1 (identical outputs give delta 0, ci95 [0, 0], p 1).
#pragma once

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

namespace asrc::pass {

// `base` and `other` are one mode's objects of two report rows. nullopt when either lacks
// utt_word_errors or they cover different utterances.
std::optional<nlohmann::json> PairedBootstrap(const nlohmann::json& base, const nlohmann::json& other,
                                              int resamples = 2000, uint64_t seed = 1);

// Adds row["significance"][mode] (PairedBootstrap against rows[0]) to every later row of a compress
// report, for "streaming" and "lookahead".
void AddSignificance(nlohmann::json& report, int resamples = 2000, uint64_t seed = 1);

}  // namespace asrc::pass

// Recognition modes: how a bundle turns audio into text, and the key of each mode's results in
// evaluations, gates and reports. A bundle's modes follow from its graph roles (docs/bundle.md):
//   streaming  — a causal encoder (role encoder_causal) runs chunk by chunk as audio arrives;
//   lookahead  — at the end of the audio an offline encoder runs over the whole utterance: the
//                non-causal encoder of a two-pass cascade (encoder_noncausal), or the one encoder
//                of a single-pass transducer (encoder).
// This file is the one place lib/pass spells the mode names (as asr::Evaluate's report keys).
#pragma once

#include <string>
#include <vector>

#include "ir/model.h"

namespace asrc::pass {

struct Mode {
  std::string name;           // result key: "streaming" | "lookahead"
  std::string abbrev;         // report column suffix: "str" | "la"
  std::string title;          // prose: "streaming" | "look-ahead"
  bool per_chunk = false;     // latency is per encoder chunk (and chunks are counted), else
                              // from the end of the audio to the final result
  std::string latency;        // latency metric stem: "chunk_ms" | "final_ms"
  std::string latency_label;  // report column / legend: "chunk" | "final"
  std::string latency_text;   // report prose: "streaming per-chunk compute" | ...
};

// Every mode asrc knows, in report order (streaming first, the final pass last).
const std::vector<Mode>& AllModes();
// nullptr when `name` is not a mode.
const Mode* FindMode(const std::string& name);
// "streaming, lookahead" (for error messages).
std::string ModeList(const std::vector<std::string>& names);
std::vector<std::string> AllModeNames();

// The modes `model` can be evaluated in, in AllModes() order: a cascade has both, a single-pass
// transducer has lookahead only, a lone graph (role "model") has none. The last is the final
// (most accurate) one: gates judge it unless told otherwise.
std::vector<std::string> BundleModes(const ir::Model& model);

}  // namespace asrc::pass

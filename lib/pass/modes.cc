#include "pass/modes.h"

namespace asrc::pass {

const std::vector<Mode>& AllModes() {
  static const std::vector<Mode> modes = {
      {"streaming", "str", "streaming", true, "chunk_ms", "chunk", "streaming per-chunk compute"},
      {"lookahead", "la", "look-ahead", false, "final_ms", "final", "look-ahead finalization"},
  };
  return modes;
}

const Mode* FindMode(const std::string& name) {
  for (const Mode& m : AllModes())
    if (m.name == name) return &m;
  return nullptr;
}

std::string ModeList(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::vector<std::string> AllModeNames() {
  std::vector<std::string> out;
  for (const Mode& m : AllModes()) out.push_back(m.name);
  return out;
}

std::vector<std::string> BundleModes(const ir::Model& model) {
  std::vector<std::string> out;  // AllModes()[0] streams, [1] is the offline (final) pass
  if (model.find("encoder_causal")) out.push_back(AllModes()[0].name);
  if (model.find("encoder_noncausal") || model.find("encoder")) out.push_back(AllModes()[1].name);
  return out;
}

}  // namespace asrc::pass

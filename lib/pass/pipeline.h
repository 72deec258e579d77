// Pipeline JSON: which passes run, with which options, how each is judged.
//
//   {
//     "name": "int8-dynamic",                       // optional, for the report title
//     "description": "...",                         // optional
//     "seed": 0,                                    // optional: the passes' RNG seed
//     "eval": {"manifest": "...", "split": "test", "limit": 40, "modes": ["streaming", "lookahead"],
//              "threads": 1, "beam": 0, "repeat": 1},  // optional; CLI flags override; modes
//                                                        default to the bundle's (modes.h)
//     "calibration": {"manifest": "...", "split": "", "limit": 8},   // optional
//     "gates": {"metric": "wer", "mode": "lookahead", "max_rel_increase_per_pass": 2.0,
//               "max_rel_increase_total": 5.0, "max_abs_increase_per_pass": 0.5,
//               "on_fail": "rollback" | "stop" | "report"},          // optional
//     "passes": [ "cleanup",
//                 {"pass": "quantize-int8", "options": {"mode": "dynamic"}, "gate": {...},
//                  "step": "int8"} ]
//   }
//
// "step" (optional) names the ablation step a pass belongs to (`asrc ablate`, ablation.h):
// adjacent passes with one step name are ablated together (a structural pass and the pass that
// repairs it); a pass without one is a step of its own. Compress ignores it.
//
// Relative limits are percent of the value before the pass (per pass) or of the input model
// (total). Every error names its JSON path ("$.passes[1].options.mode: ...").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "pass/pass.h"

namespace asrc::pass {

struct Gate {
  std::string metric = "wer";     // wer | cer
  std::string mode;               // a mode (modes.h); "": the bundle's final mode
  std::optional<double> max_rel_increase_per_pass;  // percent
  std::optional<double> max_rel_increase_total;     // percent, against the input model
  std::optional<double> max_abs_increase_per_pass;  // points
  std::string on_fail = "report"; // rollback | stop | report
  bool any() const {
    return max_rel_increase_per_pass || max_rel_increase_total || max_abs_increase_per_pass;
  }
};

struct PipelineStep {
  std::string pass;
  nlohmann::json options;  // validated, defaults filled in
  std::optional<Gate> gate;  // overrides the pipeline's gate for this step
  std::string step_name;     // the JSON's "step" ("" when absent): the ablation step (ablation.h)
};

struct EvalConfig {
  std::string manifest;  // "" = the CLI's / built-in default
  std::string split;
  int limit = 0;
  std::vector<std::string> modes;  // modes.h names; empty: every mode of the bundle
  int threads = 1;
  int beam = 0;
  // Evaluations per model; the report keeps the fastest (WER is deterministic, latency on a shared
  // machine is not).
  int repeat = 1;
};

struct Pipeline {
  std::string name, description;
  uint64_t seed = 0;
  EvalConfig eval;
  bool has_eval_manifest = false;
  CalibrationSource calibration;
  Gate gate;
  std::vector<PipelineStep> steps;

  // One line that re-creates the pipeline exactly: seed and every option, defaults included,
  // e.g. "seed=0;cleanup{dead_code=true,...},quantize-int8{mode=dynamic,...}".
  std::string Canonical() const;
};

// Parses and validates against the registry (unknown pass, unknown option, wrong type). Paths in
// the JSON are taken as written (relative to the working directory, like the CLI's).
Result<Pipeline> ParsePipeline(const nlohmann::json& j, const PassRegistry& registry);
Result<Pipeline> LoadPipelineFile(const std::string& path, const PassRegistry& registry);

// Canonical text of one step: "quantize-int8{mode=dynamic,...}" (+ its gate, if any).
std::string StepText(const PipelineStep& step);
// Canonical text of one option set: "{a=1,b=x,c=[p,q]}" (keys sorted).
std::string CanonicalOptions(const nlohmann::json& options);

}  // namespace asrc::pass

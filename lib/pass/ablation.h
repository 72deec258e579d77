// An ablation study of a pipeline (`asrc ablate`): which step bought what.
//
//   steps       adjacent passes with one "step" name in the pipeline JSON form one step (pipeline.h);
//               a pass without a name is a step of its own, named after its pass
//   configs     per mode (PlanAblation): the input model (always), cumulative (steps 1, 1-2, ...,
//               1-n), alone (each step on the input model), leave-one-out (all steps but one);
//               "all" = the three, a step set reached by two modes run once with both roles
//   prefixes    a config whose steps extend a finished config's (1-2-3 after 1-2) starts from that
//               config's model and runs the remaining passes only (SuffixPipeline): the same
//               passes with the same seeds on the same model, so the same result, minus the time
//   one config  a sub-pipeline run by Compress() (compress.h) into <out>/configs/<key>/, evaluated
//               at its end only (each pass when the pipeline has gates), its row written to
//               <out>/configs/<key>/result.json under a temporary name and renamed — a finished
//               config is one whose result.json exists and matches (resume after a kill)
//   evaluations shared by content hash in <out>/evals/<K>/ across configurations and processes
//               (K: a hash of the eval key, so a re-run on another eval set, split or limit never
//               reuses these numbers), and
//               made one at a time (a lock there): passes of parallel configurations overlap,
//               latency measurements do not
//   eval sets   the first is the configurations' own (Compress evaluates on it); each further set
//               (AddAblationEval) evaluates every finished config's model afterwards, cached by
//               content hash in <out>/evals-<name>/<K>/, and is kept in its result.json under "extra"
//   report      <out>/ablation.{json,md,html} (ablation_report.cc)
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "pass/compress.h"
#include "pass/pipeline.h"
#include "pass/record.h"

namespace asrc::pass {

struct AblationStep {
  std::string name;
  std::vector<size_t> passes;  // indices into Pipeline::steps, adjacent
};

// Errors name the JSON path: "$.passes[3].step: step 'prune' used twice (first at $.passes[0]);
// the passes of one step must be adjacent".
Result<std::vector<AblationStep>> GroupSteps(const Pipeline& pipeline);

struct AblationConfig {
  std::string key;                 // folder name: "input", "steps-1", "steps-1-3" (1-based)
  std::vector<size_t> steps;       // indices into the AblationStep list, in pipeline order
  std::vector<std::string> roles;  // "input", "cumulative 1-2", "alone: prune", "without: int8"
  Pipeline pipeline;               // the pipeline with only these steps' passes
};

// mode: cumulative | alone | leave-one-out | all. Leave-one-out needs two steps (an error
// naming the one step otherwise; "all" then leaves it out).
Result<std::vector<AblationConfig>> PlanAblation(const Pipeline& pipeline, const std::vector<AblationStep>& steps,
                                                 const std::string& mode);

// The configuration `configs[i]` can start from: among the others, the one with the most steps
// that are a proper, non-empty prefix of configs[i]'s; nullopt when there is none.
std::optional<size_t> PrefixConfig(const std::vector<AblationConfig>& configs, size_t i);

// The passes that turn `prefix`'s model into `config`'s: config's passes after prefix's, each
// with the seed it has in config's pipeline, and a distill without a "teacher" option taught by
// `input_model` (the study's input, which is the teacher when the whole pipeline runs at once).
Pipeline SuffixPipeline(const AblationConfig& config, const AblationConfig& prefix, const std::string& input_model);

// An evaluation set of the study: "cathy=/data/cathy/manifest.jsonl:test" on the command line.
struct AblationEvalSet {
  std::string name, manifest, split;  // split "": every line
};

// NAME=MANIFEST[:SPLIT] or MANIFEST (name ""); the split is the text after the last ':' when it
// has no '/'. Errors name the flag value.
Result<AblationEvalSet> ParseAblationEvalSet(const std::string& text);

// A configuration's evaluation on a further eval set, with the paired bootstrap against the
// input model's on the same set.
struct AblationExtraEval {
  nlohmann::json eval;  // its settings (AblationEvalKey with this set's manifest and split)
  std::optional<EvalSummary> measured;
  std::map<std::string, Significance> significance;  // by mode
};

// One configuration's measured result: its final model's record (size, evaluation, hash, paired
// bootstrap against the input model).
struct AblationRow {
  std::string key;
  std::vector<size_t> steps;
  std::vector<std::string> roles;
  std::string pipeline;  // canonical text of the sub-pipeline
  std::string model;     // the input model, absolute
  nlohmann::json eval;   // the evaluation settings (report.json's "eval"), null when not evaluated
  int64_t params = 0, bytes = 0;
  std::string hash;
  std::optional<EvalSummary> measured;
  std::map<std::string, Significance> significance;  // by mode, against the input model
  std::string from;          // the prefix configuration whose model it started from ("": the input)
  std::map<std::string, AblationExtraEval> extra;  // by eval set name: the further eval sets
  double wall_s = 0;         // the whole configuration (passes and evaluations)
  std::string stop_reason;   // a gate stopped its pipeline
};

nlohmann::json AblationRowJson(const AblationRow& row);
Result<AblationRow> ParseAblationRow(const nlohmann::json& j);

// Where a configuration starts when a prefix configuration has finished.
struct AblationStart {
  std::string key;     // the prefix configuration
  std::string model;   // its output model
  Pipeline pipeline;   // SuffixPipeline(config, prefix, input)
  EvalSummary input;   // the study input's evaluation: the significance is against it
};

// Runs one configuration (`request` holds the model, evaluation settings and the output folder
// of the whole study; its pipeline is replaced by the config's, or by start->pipeline on
// start->model) and writes <request.out>/configs/<key>/result.json atomically.
Result<AblationRow> RunAblationConfig(const CompressRequest& request, const AblationConfig& config,
                                      double stable_tolerance, const AblationStart* start = nullptr);

// The finished result of `config` under `out`, or nullopt when it is missing, unreadable or
// was made for another pipeline, model or evaluation setting (then it is run again).
std::optional<AblationRow> FinishedAblationConfig(const std::string& out, const AblationConfig& config,
                                                  const std::string& model, const nlohmann::json& eval);

// The evaluation settings a request resolves to, as written in each row (to match on resume).
nlohmann::json AblationEvalKey(const CompressRequest& request, const Pipeline& pipeline);

// Evaluates `row`'s model (<request.out>/configs/<key>/model or model.onnx) on `set` unless the
// row has that evaluation with these settings already, adds the paired bootstrap against
// `input` (the input model's row, evaluated on `set` before; nullptr for the input row itself)
// and rewrites the row's result.json. `request` is the study's (its eval overrides but the
// manifest and split apply).
Status AddAblationEval(const CompressRequest& request, const Pipeline& pipeline, const AblationEvalSet& set,
                       const AblationRow* input, AblationRow& row);

struct AblationReport {
  std::string name, pipeline, mode, model, created;
  std::vector<AblationStep> steps;
  std::vector<std::string> step_texts;  // canonical text of each step's passes
  nlohmann::json eval;
  std::vector<std::string> eval_sets;   // names: [0] the rows' own evaluation, then AblationRow::extra's
  bool show_wer = true;                 // false: an untrained model, size and latency only
  std::vector<std::string> modes;       // recognition modes evaluated (modes.h), in order
  std::vector<AblationRow> rows;        // rows[0]: the input model
  std::vector<std::string> unfinished;  // "key (role)" of configurations not finished (--report-only)
  int jobs = 1;
  double stable_tolerance = 0;
  int max_repeat = 1;
};

nlohmann::json AblationReportJson(const AblationReport& report);
std::string AblationMarkdown(const AblationReport& report);
std::string AblationHtml(const AblationReport& report);
// Writes ablation.json, ablation.md and ablation.html into `dir`.
Status WriteAblationReport(const std::string& dir, const AblationReport& report);

}  // namespace asrc::pass

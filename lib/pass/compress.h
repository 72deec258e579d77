// Compress(): a whole compress run as a library call — what `asrc compress` does behind its flags,
// and what other drivers (an ablation study) call with their own requests.
//
//   validate (pipeline given parsed; model, eval and calibration data exist; the output never
//   over the input) ─▶ load ─▶ resolve modes from the bundle ─▶ PassManager with the standard
//   instruments (instruments.h) ─▶ write the model (to a temporary name, renamed when complete)
//   ─▶ paired significance ─▶ report.{json,md,html}
//
// Nothing is written before every check passed and the model loaded.
#pragma once

#include <functional>
#include <string>

#include "core/status.h"
#include "pass/pass.h"
#include "pass/pipeline.h"
#include "pass/report.h"

namespace asrc::pass {

struct CompressRequest {
  Pipeline pipeline;                   // parsed and validated (LoadPipelineFile)
  const PassRegistry* registry = nullptr;  // the passes the pipeline names (required)
  std::string model;                   // bundle folder or .onnx; "": the demo teacher bundle
  std::string pipeline_file;           // where `pipeline` was read from ("": not a file); never written over
  std::string out;                     // output folder: model/ (or model.onnx) and report.*
  bool evaluate = true;                // false: sizes only (no WER, no latency)
  // Evaluation overrides; empty / negative / 0: the pipeline's value. The manifest falls back to
  // the committed default eval set.
  std::string eval_manifest, eval_split;
  int eval_limit = -1, eval_repeat = 0, threads = 0;
  // > 0: repeat each evaluation (up to the repeat count) until the latency is stable within this
  // fraction (EvalRepeat, instruments.h); 0: the fastest of exactly `repeat` runs.
  double eval_stable_tolerance = 0;
  // A folder of evaluations by content hash shared across runs ("": none); created if missing.
  std::string eval_cache;
  // Evaluate the input and the final model only (not each pass); refused when a gate needs the
  // evaluations in between.
  bool eval_final_only = false;
  std::string calibration;             // "": the pipeline's, else the eval manifest
  std::function<void(const std::string&)> log;  // progress lines; null: quiet
  bool progress_bar = false;           // asr's progress bar during evaluation (a terminal)
};

struct CompressResult {
  CompressReport report;  // also written to out/report.{json,md,html}
  std::string output_model;
};

// `eval` (a pipeline's) with the request's overrides and the default manifest filled in.
EvalConfig RequestEval(const CompressRequest& request, EvalConfig eval);

// Errors name what is wrong ("eval manifest 'x.jsonl' does not exist", "after pass prune: ...");
// a gate that stops the run is not an error (report.stopped).
Result<CompressResult> Compress(const CompressRequest& request);

// The bundle's modes applied to the pipeline: eval.modes defaults to every mode of the bundle and
// drops listed modes the bundle lacks (logged); a gate without a mode judges the final mode; a
// gate on a mode the bundle lacks is an error. `bundle` is BundleModes(model).
Status ResolveModes(Pipeline& pipeline, const std::vector<std::string>& bundle,
                    const std::function<void(const std::string&)>& log);

}  // namespace asrc::pass

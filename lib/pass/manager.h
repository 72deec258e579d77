// PassManager: runs a pipeline's passes in order and wraps every pass with instruments, which do
// all the measuring in one place (TVM's PassInstrument, LLVM's PassInstrumentation):
//
//   input model ─ measure ─▶ [before] pass [after: verify, size, eval, time] ─▶ gate ─▶ next pass
//
// Each measurement lands in a report row (JSON): the first row is the input model, then one per
// pass: {"pass", "changed", "params", "bytes", "graphs", "streaming", "lookahead", "wall_s",
// "eval_s", "counters", "notes", "gate", "hash"}. A pass that breaks a gate is reported and, as the
// gate says, rolled back (the model before the pass is restored; the run goes on) or stops the run
// (the model before the pass is restored and no further pass runs).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "ir/model.h"
#include "pass/pass.h"
#include "pass/pipeline.h"

namespace asrc::pass {

class Instrument {
 public:
  virtual ~Instrument() = default;
  virtual std::string name() const = 0;
  virtual void BeforePass(const std::string& pass, const ir::Model& model) {}
  // Measures `model` after `pass` ran (pass == "input" for the unmodified input model) and
  // writes into `row`. An error stops the run.
  virtual Status AfterPass(const std::string& pass, const ir::Model& model, bool changed,
                           nlohmann::json& row) {
    return Status::Ok();
  }
  virtual void AfterFailure(const std::string& pass, const Status& error) {}
};

// Verifies every graph after a pass that changed the model: "after pass <name>: graph '<role>': ...".
std::unique_ptr<Instrument> MakeVerifyInstrument();
// params and unique bytes per graph and in total.
std::unique_ptr<Instrument> MakeSizeInstrument();

// Returns {"streaming": {...}, "lookahead": {...}} keyed as `asrc eval --json` (without
// per-utterance lists). See eval_asr.h for the asr::Evaluate-backed one.
using Evaluator = std::function<Result<nlohmann::json>(const ir::Model&)>;
// Runs `evaluator` after each pass that changed the model; results are cached by model content
// hash, so an unchanged (or rolled-back-to) model is not evaluated twice. Adds "eval_s" (0 on a
// cache hit) and "eval_cached".
class EvalInstrument : public Instrument {
 public:
  // `repeat` > 1: evaluate that many times and keep the run with the lowest total RTF.
  explicit EvalInstrument(Evaluator evaluator, int repeat = 1)
      : evaluator_(std::move(evaluator)), repeat_(repeat) {}
  std::string name() const override { return "eval"; }
  Status AfterPass(const std::string& pass, const ir::Model& model, bool changed,
                   nlohmann::json& row) override;
  int evaluations() const { return evaluations_; }

 private:
  Evaluator evaluator_;
  int repeat_ = 1;
  std::map<uint64_t, nlohmann::json> cache_;
  int evaluations_ = 0;
};

struct RunResult {
  nlohmann::json rows = nlohmann::json::array();
  bool stopped = false;     // a gate with on_fail=stop fired
  std::string stop_reason;
};

class PassManager {
 public:
  PassManager(const PassRegistry& registry, Pipeline pipeline)
      : registry_(registry), pipeline_(std::move(pipeline)) {}
  void AddInstrument(std::unique_ptr<Instrument> instrument) {
    instruments_.push_back(std::move(instrument));
  }
  // Progress lines ("[2/3] quantize-int8: ...") go here; default: none.
  void SetLog(std::function<void(const std::string&)> log) { log_ = std::move(log); }
  // Calibration statistics source handed to passes (see calibration.h).
  void SetCalibrator(Calibrator c) { calibrator_ = std::move(c); }

  // Runs the pipeline on `model` in place. A pass error or an instrument error is returned as
  // "pass <name>: ..." / "after pass <name>: ...".
  Result<RunResult> Run(ir::Model& model);

 private:
  Status Measure(const std::string& pass, const ir::Model& model, bool changed,
                 nlohmann::json& row);
  const PassRegistry& registry_;
  Pipeline pipeline_;
  std::vector<std::unique_ptr<Instrument>> instruments_;
  std::function<void(const std::string&)> log_;
  Calibrator calibrator_;
};

// Reads "<mode>.<metric>" from a row; nullopt when that mode was not evaluated.
std::optional<double> RowMetric(const nlohmann::json& row, const std::string& mode,
                                const std::string& metric);

// Checks `after` against `before` (previous row) and `input` (first row). Returns "" when the gate
// holds, else the reason ("lookahead wer 5.10 -> 5.60 (+9.8% rel) exceeds +2% per pass").
std::string CheckGate(const Gate& gate, const nlohmann::json& input, const nlohmann::json& before,
                      const nlohmann::json& after);

}  // namespace asrc::pass

// PassManager: runs a pipeline's passes in order; instruments wrap every pass and do everything
// else — measuring, checking, gating, logging — in one place (LLVM's PassInstrumentation, TVM's
// PassInstrument):
//
//   input model ─ [after] ─▶ for each step: [should run?] [before] pass [after] ─▶ next step
//
// Instruments nest around the pass like layers, the first added outermost: Before callbacks run
// in the order instruments were added, After callbacks in the reverse order. So a timer added
// last times the pass alone, and a gate added before the evaluator judges what it measured.
// The input model gets the After callbacks only (record index 0, "input").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/model.h"
#include "pass/pass.h"
#include "pass/pipeline.h"
#include "pass/record.h"

namespace asrc::pass {

class Instrument {
 public:
  virtual ~Instrument() = default;
  virtual std::string name() const = 0;
  // False skips the step (no record; the run goes on). `record` names the step.
  virtual bool ShouldRun(const PassRecord& record, const ir::Model& model) { return true; }
  virtual Status Before(const PassRecord& record, const ir::Model& model) { return Status::Ok(); }
  // After a pass succeeded (and once for the input model): measure `model`, fill `record`. May
  // replace the model (a gate's rollback). An error ends the run: "after pass <name>: ...".
  virtual Status After(PassRecord& record, ir::Model& model) { return Status::Ok(); }
  virtual void AfterFailure(const PassRecord& record, const Status& error) {}
};

struct RunResult {
  std::vector<PassRecord> records;  // the input model, then each step that ran
  bool stopped = false;             // an instrument ended the run (PassRecord::stop_reason)
  std::string stop_reason;          // "pass <name>: <reason>"
};

class PassManager {
 public:
  PassManager(const PassRegistry& registry, Pipeline pipeline)
      : registry_(registry), pipeline_(std::move(pipeline)) {}
  void AddInstrument(std::unique_ptr<Instrument> instrument) {
    instruments_.push_back(std::move(instrument));
  }
  // Calibration statistics source handed to passes (see calibration.h).
  void SetCalibrator(Calibrator c) { calibrator_ = std::move(c); }
  // WER source handed to passes that measure (PassContext::probe_wer).
  void SetWerProbe(WerProbe p) { probe_wer_ = std::move(p); }

  // Where the model came from (a path), named in errors about the input model.
  void SetInputName(std::string name) { input_name_ = std::move(name); }

  // Runs the pipeline on `model` in place. A pass error or an instrument error is returned as
  // "pass <name>: ..." / "after pass <name>: ..." / "input model [<input name>]: ...".
  Result<RunResult> Run(ir::Model& model);

 private:
  bool ShouldRun(const PassRecord& record, const ir::Model& model);
  Status Before(const PassRecord& record, const ir::Model& model);
  Status After(PassRecord& record, ir::Model& model);
  const PassRegistry& registry_;
  Pipeline pipeline_;
  std::vector<std::unique_ptr<Instrument>> instruments_;
  Calibrator calibrator_;
  WerProbe probe_wer_;
  std::string input_name_;
};

}  // namespace asrc::pass

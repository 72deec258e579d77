#include "pass/manager.h"

namespace asrc::pass {

bool PassManager::ShouldRun(const PassRecord& record, const ir::Model& model) {
  for (auto& ins : instruments_)
    if (!ins->ShouldRun(record, model)) return false;
  return true;
}

Status PassManager::Before(const PassRecord& record, const ir::Model& model) {
  for (auto& ins : instruments_) ASRC_RETURN_IF_ERROR(ins->Before(record, model));
  return Status::Ok();
}

Status PassManager::After(PassRecord& record, ir::Model& model) {
  for (auto it = instruments_.rbegin(); it != instruments_.rend(); ++it) {
    Status st = (*it)->After(record, model);
    if (!st.ok()) return st.With(record.is_input() ? "input model" : "after pass " + record.pass);
  }
  return Status::Ok();
}

Result<RunResult> PassManager::Run(ir::Model& model) {
  RunResult result;
  const ir::Model teacher = model;  // what the passes compare against (PassContext::teacher)
  PassRecord input;
  ASRC_RETURN_IF_ERROR(After(input, model));
  result.records.push_back(std::move(input));
  for (size_t i = 0; i < pipeline_.steps.size(); ++i) {
    const PipelineStep& step = pipeline_.steps[i];
    PassRecord record;
    record.index = static_cast<int>(i + 1);
    record.pass = step.pass;
    record.options = step.options;
    record.step = StepText(step);
    if (!ShouldRun(record, model)) continue;
    std::unique_ptr<Pass> pass = registry_.Create(step.pass);
    if (!pass) return Error("unknown pass '" + step.pass + "'");
    PassContext ctx(step.options, pipeline_.seed + i);
    ctx.teacher = &teacher;
    ctx.calibrate = calibrator_;
    ctx.probe_wer = probe_wer_;
    ASRC_RETURN_IF_ERROR(Before(record, model).With("before pass " + step.pass));
    Result<bool> changed = pass->Run(model, ctx);
    if (!changed.ok()) {
      for (auto& ins : instruments_) ins->AfterFailure(record, changed.status());
      return changed.status().With("pass " + step.pass);
    }
    record.changed = changed.value();
    record.counters = ctx.counters();
    record.notes = ctx.notes();
    ASRC_RETURN_IF_ERROR(After(record, model));
    result.records.push_back(std::move(record));
    if (!result.records.back().stop_reason.empty()) {
      result.stopped = true;
      result.stop_reason = "pass " + step.pass + ": " + result.records.back().stop_reason;
      break;
    }
  }
  return result;
}

}  // namespace asrc::pass

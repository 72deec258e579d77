#include "pass/manager.h"

namespace asrc::pass {

namespace {

// A pass whose `graphs` option matches no graph of the model would run, change nothing and look
// fine in the report (a bundle pipeline's roles on a single-graph model): an error. A pattern
// that matches nothing while others match is noted in the report.
Status CheckGraphSelection(const PipelineStep& step, size_t index, const ir::Model& model,
                           PassContext& ctx) {
  const nlohmann::json& opts = step.options;
  if (!opts.is_object() || !opts.contains("graphs") || !opts["graphs"].is_array()) return Status::Ok();
  std::vector<std::string> roles;
  for (const auto& gf : model.graphs)
    if (gf.graph) roles.push_back(gf.role);
  std::string role_list, unmatched;
  for (const auto& r : roles) role_list += (role_list.empty() ? "" : ", ") + r;
  bool any = false;
  for (const auto& pattern : opts["graphs"]) {
    if (!pattern.is_string()) return Status::Ok();
    bool hit = false;
    for (const auto& r : roles) hit = hit || AnyGlobMatch({pattern.get<std::string>()}, r);
    any = any || hit;
    if (!hit) unmatched += (unmatched.empty() ? "" : ", ") + pattern.get<std::string>();
  }
  const std::string where = "$.passes[" + std::to_string(index) + "].options.graphs";
  if (!any)
    return Error(where + ": " + opts["graphs"].dump() + " matches no graph of this model (its graphs: " +
                 role_list + "); pass " + step.pass + " would change nothing");
  if (!unmatched.empty())
    ctx.Note("graphs " + unmatched + " (" + where + ") match no graph of this model (its graphs: " +
             role_list + ")");
  return Status::Ok();
}

}  // namespace

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
    if (!st.ok())
      return st.With(!record.is_input()       ? "after pass " + record.pass
                     : input_name_.empty() ? std::string("input model")
                                           : "input model " + input_name_);
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
    ASRC_RETURN_IF_ERROR(CheckGraphSelection(step, i, model, ctx));
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

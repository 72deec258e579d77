#include "pass/manager.h"

#include <chrono>
#include <cmath>
#include <sstream>

#include "pass/model_util.h"

namespace asrc::pass {

namespace {

using json = nlohmann::json;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class VerifyInstrument : public Instrument {
 public:
  std::string name() const override { return "verify"; }
  Status AfterPass(const std::string& pass, const ir::Model& model, bool changed,
                   json& row) override {
    if (!changed && pass != "input") return Status::Ok();
    for (const auto& gf : model.graphs) {
      if (!gf.graph) continue;
      Status st = gf.graph->verify();
      if (!st.ok()) return st.With("graph '" + gf.role + "'");
    }
    return Status::Ok();
  }
};

class SizeInstrument : public Instrument {
 public:
  std::string name() const override { return "size"; }
  Status AfterPass(const std::string& pass, const ir::Model& model, bool changed,
                   json& row) override {
    json s = SizeJson(model);
    row["params"] = s["params"];
    row["bytes"] = s["bytes"];
    row["graphs"] = s["graphs"];
    return Status::Ok();
  }
};

std::string Fmt(double v, int prec = 2) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(prec);
  os << v;
  return os.str();
}

}  // namespace

std::unique_ptr<Instrument> MakeVerifyInstrument() { return std::make_unique<VerifyInstrument>(); }
std::unique_ptr<Instrument> MakeSizeInstrument() { return std::make_unique<SizeInstrument>(); }

Status EvalInstrument::AfterPass(const std::string& pass, const ir::Model& model, bool changed,
                                 json& row) {
  uint64_t h = ModelHash(model);
  row["hash"] = HashHex(h);
  auto it = cache_.find(h);
  json result;
  if (it != cache_.end()) {
    result = it->second;
    row["eval_s"] = 0.0;
    row["eval_cached"] = true;
  } else {
    double t0 = Now();
    double best = INFINITY;
    for (int k = 0; k < std::max(1, repeat_); ++k) {
      ASRC_ASSIGN_OR_RETURN(json r, evaluator_(model));
      ++evaluations_;
      double rtf = 0;
      for (const char* mode : {"streaming", "lookahead"}) {
        auto v = RowMetric(r, mode, "rtf");
        if (v) rtf += *v;
      }
      if (rtf < best || k == 0) {
        best = rtf;
        result = r;
      }
    }
    if (repeat_ > 1) result["eval_repeat"] = repeat_;
    row["eval_s"] = Now() - t0;
    row["eval_cached"] = false;
    cache_[h] = result;
  }
  for (auto e = result.begin(); e != result.end(); ++e) row[e.key()] = e.value();
  return Status::Ok();
}

std::optional<double> RowMetric(const json& row, const std::string& mode,
                                const std::string& metric) {
  if (!row.contains(mode) || !row[mode].is_object() || !row[mode].contains(metric)) {
    return std::nullopt;
  }
  const json& v = row[mode][metric];
  if (!v.is_number()) return std::nullopt;
  return v.get<double>();
}

std::string CheckGate(const Gate& gate, const json& input, const json& before, const json& after) {
  if (!gate.any()) return "";
  auto a = RowMetric(after, gate.mode, gate.metric);
  auto b = RowMetric(before, gate.mode, gate.metric);
  auto in = RowMetric(input, gate.mode, gate.metric);
  const std::string what = gate.mode + " " + gate.metric;
  if (!after.contains("streaming") && !after.contains("lookahead")) return "";  // not evaluated
  if (!a || !b || !in) return what + " was not measured (is the mode in eval.modes?)";
  const double eps = 1e-9;
  if (gate.max_rel_increase_per_pass &&
      *a > *b * (1 + *gate.max_rel_increase_per_pass / 100.0) + eps) {
    double rel = *b > 0 ? (*a - *b) / *b * 100 : INFINITY;
    return what + " " + Fmt(*b) + " -> " + Fmt(*a) + " (+" + Fmt(rel, 1) + "% rel) exceeds +" +
           Fmt(*gate.max_rel_increase_per_pass, 1) + "% per pass";
  }
  if (gate.max_abs_increase_per_pass && *a > *b + *gate.max_abs_increase_per_pass + eps) {
    return what + " " + Fmt(*b) + " -> " + Fmt(*a) + " exceeds +" +
           Fmt(*gate.max_abs_increase_per_pass) + " points per pass";
  }
  if (gate.max_rel_increase_total &&
      *a > *in * (1 + *gate.max_rel_increase_total / 100.0) + eps) {
    double rel = *in > 0 ? (*a - *in) / *in * 100 : INFINITY;
    return what + " " + Fmt(*in) + " (input) -> " + Fmt(*a) + " (+" + Fmt(rel, 1) +
           "% rel) exceeds +" + Fmt(*gate.max_rel_increase_total, 1) + "% in total";
  }
  return "";
}

Status PassManager::Measure(const std::string& pass, const ir::Model& model, bool changed,
                            json& row) {
  for (auto& ins : instruments_) {
    Status st = ins->AfterPass(pass, model, changed, row);
    if (!st.ok()) {
      if (pass == "input") return st.With("input model");
      return st.With("after pass " + pass);
    }
  }
  return Status::Ok();
}

Result<RunResult> PassManager::Run(ir::Model& model) {
  RunResult result;
  const ir::Model teacher = CloneModel(model);
  json input_row = {{"pass", "input"}, {"changed", false}, {"wall_s", 0.0}};
  ASRC_RETURN_IF_ERROR(Measure("input", model, false, input_row));
  result.rows.push_back(input_row);
  size_t last_good = 0;  // the row describing the model as it stands
  if (log_) {
    log_("[0/" + std::to_string(pipeline_.steps.size()) + "] input: " +
         Fmt(input_row.value("bytes", 0) / 1e6) + " MB");
  }
  for (size_t i = 0; i < pipeline_.steps.size(); ++i) {
    const PipelineStep& step = pipeline_.steps[i];
    std::unique_ptr<Pass> pass = registry_.Create(step.pass);
    if (!pass) return Error("unknown pass '" + step.pass + "'");
    PassContext ctx(step.options, pipeline_.seed + i);
    ctx.teacher = &teacher;
    ctx.calibrate = calibrator_;
    const Gate& gate = step.gate ? *step.gate : pipeline_.gate;
    std::optional<ir::Model> backup;
    if (gate.any() && gate.on_fail != "report") backup = CloneModel(model);

    for (auto& ins : instruments_) ins->BeforePass(step.pass, model);
    double t0 = Now();
    Result<bool> changed = pass->Run(model, ctx);
    double wall = Now() - t0;
    if (!changed.ok()) {
      for (auto& ins : instruments_) ins->AfterFailure(step.pass, changed.status());
      return changed.status().With("pass " + step.pass);
    }
    json row = {{"pass", step.pass},
                {"options", step.options},
                {"step", StepText(step)},
                {"changed", changed.value()},
                {"wall_s", wall}};
    json counters = json::object();
    for (const auto& [k, v] : ctx.counters()) counters[k] = v;
    row["counters"] = counters;
    row["notes"] = ctx.notes();
    ASRC_RETURN_IF_ERROR(Measure(step.pass, model, changed.value(), row));

    std::string broken = CheckGate(gate, result.rows.front(), result.rows[last_good], row);
    const bool evaluated = row.contains("streaming") || row.contains("lookahead");
    if (gate.any() && evaluated) {
      row["gate"] = {{"passed", broken.empty()}, {"reason", broken},
                     {"action", broken.empty() ? "none" : gate.on_fail}};
    }
    std::string line = "[" + std::to_string(i + 1) + "/" + std::to_string(pipeline_.steps.size()) +
                       "] " + step.pass + ": " + Fmt(wall) + " s, " +
                       (changed.value() ? "changed" : "unchanged") + ", " +
                       Fmt(row.value("bytes", 0) / 1e6) + " MB";
    for (const char* mode : {"streaming", "lookahead"}) {
      auto w = RowMetric(row, mode, "wer");
      if (w) line += std::string(", ") + mode + " WER " + Fmt(*w);
    }
    if (!broken.empty()) line += "; gate broken: " + broken + " -> " + gate.on_fail;
    if (log_) log_(line);
    if (!broken.empty() && backup) {
      model = std::move(*backup);
      row["rolled_back"] = true;
    }
    result.rows.push_back(row);
    if (broken.empty() || !backup) last_good = result.rows.size() - 1;
    if (!broken.empty() && gate.on_fail == "stop") {
      result.stopped = true;
      result.stop_reason = "pass " + step.pass + ": " + broken;
      break;
    }
  }
  return result;
}

}  // namespace asrc::pass

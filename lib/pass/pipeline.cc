#include "pass/pipeline.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "pass/modes.h"

namespace asrc::pass {

namespace {

using json = nlohmann::json;

Status CheckKeys(const json& obj, const std::vector<std::string>& known, const std::string& path) {
  if (!obj.is_object()) return Error(path + ": expected an object");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
      std::string list;
      for (size_t i = 0; i < known.size(); ++i) list += (i ? ", " : "") + known[i];
      return Error(path + "." + it.key() + ": unknown key (known: " + list + ")");
    }
  }
  return Status::Ok();
}

Status GetString(const json& obj, const std::string& key, const std::string& path,
                 std::string* out) {
  if (!obj.contains(key)) return Status::Ok();
  if (!obj[key].is_string()) return Error(path + "." + key + ": expected a string");
  *out = obj[key].get<std::string>();
  return Status::Ok();
}

Status GetInt(const json& obj, const std::string& key, const std::string& path, int64_t lo,
              int64_t hi, int64_t* out) {
  if (!obj.contains(key)) return Status::Ok();
  const json& v = obj[key];
  if (!v.is_number_integer()) return Error(path + "." + key + ": expected an integer");
  int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) {
    return Error(path + "." + key + ": " + std::to_string(x) + " is out of range [" +
                 std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  *out = x;
  return Status::Ok();
}

Status GetNumber(const json& obj, const std::string& key, const std::string& path,
                 std::optional<double>* out) {
  if (!obj.contains(key)) return Status::Ok();
  const json& v = obj[key];
  if (!v.is_number()) return Error(path + "." + key + ": expected a number");
  if (v.get<double>() < 0) return Error(path + "." + key + ": must be >= 0");
  *out = v.get<double>();
  return Status::Ok();
}

Result<Gate> ParseGate(const json& j, const std::string& path, Gate base) {
  ASRC_RETURN_IF_ERROR(CheckKeys(j,
                                 {"metric", "mode", "max_rel_increase_per_pass",
                                  "max_rel_increase_total", "max_abs_increase_per_pass", "on_fail"},
                                 path));
  Gate g = base;
  ASRC_RETURN_IF_ERROR(GetString(j, "metric", path, &g.metric));
  if (g.metric != "wer" && g.metric != "cer") {
    return Error(path + ".metric: '" + g.metric + "' is not one of: wer, cer");
  }
  ASRC_RETURN_IF_ERROR(GetString(j, "mode", path, &g.mode));
  if (!g.mode.empty() && !FindMode(g.mode)) {
    return Error(path + ".mode: '" + g.mode + "' is not one of: " + ModeList(AllModeNames()));
  }
  ASRC_RETURN_IF_ERROR(GetNumber(j, "max_rel_increase_per_pass", path, &g.max_rel_increase_per_pass));
  ASRC_RETURN_IF_ERROR(GetNumber(j, "max_rel_increase_total", path, &g.max_rel_increase_total));
  ASRC_RETURN_IF_ERROR(GetNumber(j, "max_abs_increase_per_pass", path, &g.max_abs_increase_per_pass));
  ASRC_RETURN_IF_ERROR(GetString(j, "on_fail", path, &g.on_fail));
  if (g.on_fail != "rollback" && g.on_fail != "stop" && g.on_fail != "report") {
    return Error(path + ".on_fail: '" + g.on_fail + "' is not one of: rollback, stop, report");
  }
  return g;
}

std::string ValueText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + ValueText(v[i]);
    return s + "]";
  }
  if (v.is_number_float()) {
    std::ostringstream os;
    os.precision(9);
    os << v.get<double>();
    return os.str();
  }
  return v.dump();
}

std::string GateText(const Gate& g) {
  std::ostringstream os;
  os << "gate{" << g.metric << (g.mode.empty() ? "" : ".") << g.mode;
  if (g.max_rel_increase_per_pass) os << ",rel_per_pass=" << *g.max_rel_increase_per_pass;
  if (g.max_rel_increase_total) os << ",rel_total=" << *g.max_rel_increase_total;
  if (g.max_abs_increase_per_pass) os << ",abs_per_pass=" << *g.max_abs_increase_per_pass;
  os << ",on_fail=" << g.on_fail << "}";
  return os.str();
}

}  // namespace

std::string CanonicalOptions(const json& options) {
  std::string s = "{";
  bool first = true;
  for (auto it = options.begin(); it != options.end(); ++it) {  // nlohmann keeps keys sorted
    s += (first ? "" : ",") + it.key() + "=" + ValueText(it.value());
    first = false;
  }
  return s + "}";
}

std::string StepText(const PipelineStep& step) {
  std::string s = step.pass + CanonicalOptions(step.options);
  if (step.gate) s += GateText(*step.gate);
  return s;
}

std::string Pipeline::Canonical() const {
  std::string s = "seed=" + std::to_string(seed) + ";";
  if (gate.any()) s += GateText(gate) + ";";
  for (size_t i = 0; i < steps.size(); ++i) {
    s += (i ? "," : "") + StepText(steps[i]);
  }
  return s;
}

Result<Pipeline> ParsePipeline(const json& j, const PassRegistry& registry) {
  Pipeline p;
  ASRC_RETURN_IF_ERROR(CheckKeys(
      j, {"name", "description", "seed", "eval", "calibration", "gates", "passes"}, "$"));
  ASRC_RETURN_IF_ERROR(GetString(j, "name", "$", &p.name));
  ASRC_RETURN_IF_ERROR(GetString(j, "description", "$", &p.description));
  int64_t seed = 0;
  ASRC_RETURN_IF_ERROR(GetInt(j, "seed", "$", 0, INT64_MAX, &seed));
  p.seed = static_cast<uint64_t>(seed);

  if (j.contains("eval")) {
    const json& e = j["eval"];
    ASRC_RETURN_IF_ERROR(
        CheckKeys(e, {"manifest", "split", "limit", "modes", "threads", "beam", "repeat"}, "$.eval"));
    ASRC_RETURN_IF_ERROR(GetString(e, "manifest", "$.eval", &p.eval.manifest));
    p.has_eval_manifest = !p.eval.manifest.empty();
    ASRC_RETURN_IF_ERROR(GetString(e, "split", "$.eval", &p.eval.split));
    int64_t v = p.eval.limit;
    ASRC_RETURN_IF_ERROR(GetInt(e, "limit", "$.eval", 0, 1000000000, &v));
    p.eval.limit = static_cast<int>(v);
    v = p.eval.threads;
    ASRC_RETURN_IF_ERROR(GetInt(e, "threads", "$.eval", 1, 256, &v));
    p.eval.threads = static_cast<int>(v);
    v = p.eval.repeat;
    ASRC_RETURN_IF_ERROR(GetInt(e, "repeat", "$.eval", 1, 100, &v));
    p.eval.repeat = static_cast<int>(v);
    v = p.eval.beam;
    ASRC_RETURN_IF_ERROR(GetInt(e, "beam", "$.eval", 0, 64, &v));
    p.eval.beam = static_cast<int>(v);
    if (e.contains("modes")) {
      const json& m = e["modes"];
      if (!m.is_array() || m.empty()) return Error("$.eval.modes: expected a non-empty array");
      p.eval.modes.clear();
      for (size_t i = 0; i < m.size(); ++i) {
        std::string path = "$.eval.modes[" + std::to_string(i) + "]";
        if (!m[i].is_string()) return Error(path + ": expected a string");
        std::string mode = m[i].get<std::string>();
        if (!FindMode(mode)) {
          return Error(path + ": '" + mode + "' is not one of: " + ModeList(AllModeNames()));
        }
        p.eval.modes.push_back(mode);
      }
    }
  }
  if (j.contains("calibration")) {
    const json& c = j["calibration"];
    ASRC_RETURN_IF_ERROR(CheckKeys(c, {"manifest", "split", "limit"}, "$.calibration"));
    ASRC_RETURN_IF_ERROR(GetString(c, "manifest", "$.calibration", &p.calibration.manifest));
    ASRC_RETURN_IF_ERROR(GetString(c, "split", "$.calibration", &p.calibration.split));
    int64_t v = p.calibration.limit;
    ASRC_RETURN_IF_ERROR(GetInt(c, "limit", "$.calibration", 1, 100000, &v));
    p.calibration.limit = static_cast<int>(v);
  }
  if (j.contains("gates")) {
    ASRC_ASSIGN_OR_RETURN(p.gate, ParseGate(j["gates"], "$.gates", Gate{}));
  }

  if (!j.contains("passes")) return Error("$.passes: missing (a pipeline needs a list of passes)");
  const json& passes = j["passes"];
  if (!passes.is_array()) return Error("$.passes: expected an array");
  for (size_t i = 0; i < passes.size(); ++i) {
    const std::string path = "$.passes[" + std::to_string(i) + "]";
    const json& s = passes[i];
    PipelineStep step;
    json given = json::object();
    if (s.is_string()) {
      step.pass = s.get<std::string>();
    } else if (s.is_object()) {
      ASRC_RETURN_IF_ERROR(CheckKeys(s, {"pass", "options", "gate", "step"}, path));
      if (!s.contains("pass") || !s["pass"].is_string()) {
        return Error(path + ".pass: missing or not a string");
      }
      step.pass = s["pass"].get<std::string>();
      if (s.contains("options")) given = s["options"];
      ASRC_RETURN_IF_ERROR(GetString(s, "step", path, &step.step_name));
      if (s.contains("step") && step.step_name.empty()) return Error(path + ".step: empty step name");
      if (s.contains("gate")) {
        ASRC_ASSIGN_OR_RETURN(Gate g, ParseGate(s["gate"], path + ".gate", p.gate));
        step.gate = g;
      }
    } else {
      return Error(path + ": expected a pass name or an object {\"pass\": ..., \"options\": ...}");
    }
    auto pass = registry.Create(step.pass);
    if (!pass) {
      std::string list;
      for (const auto& n : registry.Names()) list += (list.empty() ? "" : ", ") + n;
      return Error(path + (s.is_object() ? ".pass" : "") + ": unknown pass '" + step.pass +
                   "' (known: " + list + ")");
    }
    ASRC_ASSIGN_OR_RETURN(step.options, ValidateOptions(pass->options(), given, path + ".options"));
    p.steps.push_back(std::move(step));
  }
  return p;
}

Result<Pipeline> LoadPipelineFile(const std::string& path, const PassRegistry& registry) {
  std::ifstream in(path);
  if (!in) return Error(path + ": cannot open pipeline file");
  json j;
  try {
    j = json::parse(in);
  } catch (const std::exception& e) {
    return Error(path + ": not valid JSON: " + e.what());
  }
  auto p = ParsePipeline(j, registry);
  if (!p.ok()) return p.status().With(path);
  return p;
}

}  // namespace asrc::pass

#include "pass/ablation.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/files.h"
#include "core/paths.h"
#include "ir/hash.h"
#include "onnx/onnx_io.h"
#include "pass/instruments.h"
#include "pass/modes.h"
#include "pass/report.h"
#include "pass/significance.h"
#ifdef ASRC_PASS_HAVE_ASR
#include "pass/eval_asr.h"
#endif

namespace asrc::pass {

namespace fs = std::filesystem;
using json = nlohmann::json;

Result<std::vector<AblationStep>> GroupSteps(const Pipeline& p) {
  std::vector<AblationStep> steps;
  std::map<std::string, size_t> first;  // step name -> index of its first pass
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const std::string path = "$.passes[" + std::to_string(i) + "]";
    const std::string& named = p.steps[i].step_name;
    if (!named.empty() && !steps.empty() && steps.back().name == named &&
        !p.steps[steps.back().passes.back()].step_name.empty()) {
      steps.back().passes.push_back(i);
      continue;
    }
    const std::string name = named.empty() ? p.steps[i].pass : named;
    auto it = first.find(name);
    if (it != first.end()) {
      const std::string where = "$.passes[" + std::to_string(it->second) + "]";
      if (named.empty())
        return Error(path + ": pass '" + name + "' is a step of its own and its name is taken (first at " + where +
                     "); give one of them a \"step\" name");
      return Error(path + ".step: step '" + name + "' used twice (first at " + where +
                   "); the passes of one step must be adjacent");
    }
    first[name] = i;
    steps.push_back({name, {i}});
  }
  return steps;
}

namespace {

std::string Join(const std::vector<size_t>& steps, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < steps.size(); ++i) s += (i ? sep : "") + std::to_string(steps[i] + 1);
  return s;
}

Pipeline SubPipeline(const Pipeline& p, const std::vector<AblationStep>& all, const std::vector<size_t>& chosen) {
  Pipeline sub = p;
  sub.steps.clear();
  for (size_t s : chosen)
    for (size_t pass : all[s].passes) sub.steps.push_back(p.steps[pass]);
  return sub;
}

}  // namespace

Result<std::vector<AblationConfig>> PlanAblation(const Pipeline& p, const std::vector<AblationStep>& steps,
                                                 const std::string& mode) {
  const bool all = mode == "all";
  if (!all && mode != "cumulative" && mode != "alone" && mode != "leave-one-out")
    return Error("--mode: '" + mode + "' is not one of: cumulative, alone, leave-one-out, all");
  if (steps.empty()) return Error("$.passes: the pipeline has no passes, so nothing to ablate");
  if (mode == "leave-one-out" && steps.size() < 2)
    return Error("--mode leave-one-out: the pipeline has one step ('" + steps[0].name +
                 "'), and leaving it out is the input model; name at least two steps");
  std::vector<AblationConfig> configs;
  auto add = [&](std::vector<size_t> chosen, const std::string& role) {
    for (AblationConfig& c : configs)
      if (c.steps == chosen) {
        c.roles.push_back(role);
        return;
      }
    AblationConfig c;
    c.key = chosen.empty() ? "input" : "steps-" + Join(chosen, "-");
    c.steps = chosen;
    c.roles = {role};
    c.pipeline = SubPipeline(p, steps, chosen);
    configs.push_back(std::move(c));
  };
  add({}, "input");
  const size_t n = steps.size();
  if (all || mode == "cumulative") {
    std::vector<size_t> prefix;
    for (size_t i = 0; i < n; ++i) {
      prefix.push_back(i);
      add(prefix, i + 1 == n ? "full pipeline" : i == 0 ? "cumulative 1" : "cumulative 1-" + std::to_string(i + 1));
    }
  }
  if (all || mode == "alone")
    for (size_t i = 0; i < n; ++i) add({i}, "alone: " + steps[i].name);
  if ((all || mode == "leave-one-out") && n >= 2)
    for (size_t i = 0; i < n; ++i) {
      std::vector<size_t> rest;
      for (size_t k = 0; k < n; ++k)
        if (k != i) rest.push_back(k);
      add(rest, "without: " + steps[i].name);
    }
  if (all || mode == "leave-one-out") add([&] {
      std::vector<size_t> full;
      for (size_t i = 0; i < n; ++i) full.push_back(i);
      return full;
    }(), "full pipeline");
  // The full pipeline is one config; drop a duplicate "full pipeline" role.
  for (AblationConfig& c : configs) {
    std::vector<std::string> roles;
    for (const std::string& r : c.roles)
      if (std::find(roles.begin(), roles.end(), r) == roles.end()) roles.push_back(r);
    c.roles = roles;
  }
  return configs;
}

std::optional<size_t> PrefixConfig(const std::vector<AblationConfig>& configs, size_t i) {
  std::optional<size_t> best;
  const std::vector<size_t>& want = configs[i].steps;
  for (size_t k = 0; k < configs.size(); ++k) {
    const std::vector<size_t>& s = configs[k].steps;
    if (k == i || s.empty() || s.size() >= want.size() || !std::equal(s.begin(), s.end(), want.begin())) continue;
    if (!best || s.size() > configs[*best].steps.size()) best = k;
  }
  return best;
}

Pipeline SuffixPipeline(const AblationConfig& config, const AblationConfig& prefix, const std::string& input_model) {
  Pipeline p = config.pipeline;
  const size_t done = prefix.pipeline.steps.size();
  p.steps.assign(config.pipeline.steps.begin() + static_cast<std::ptrdiff_t>(done), config.pipeline.steps.end());
  p.seed = config.pipeline.seed + done;  // PassManager seeds step i with seed + i
  for (PipelineStep& s : p.steps)
    if (s.pass == "distill" && s.options.value("teacher", std::string()).empty()) s.options["teacher"] = input_model;
  return p;
}

Result<AblationEvalSet> ParseAblationEvalSet(const std::string& text) {
  AblationEvalSet set;
  std::string rest = text;
  const size_t eq = text.find('=');
  if (eq != std::string::npos && text.find('/') > eq) {  // NAME= before any path separator
    set.name = text.substr(0, eq);
    rest = text.substr(eq + 1);
    if (set.name.empty() || set.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                                std::string::npos)
      return Error("--eval '" + text + "': the set name before '=' must be letters, digits, '_' or '-'");
  }
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
    set.split = rest.substr(colon + 1);
    rest.resize(colon);
    if (set.split.empty()) return Error("--eval '" + text + "': empty split after ':'");
  }
  if (rest.empty()) return Error("--eval '" + text + "': no manifest");
  set.manifest = rest;
  return set;
}

namespace {

json SignificanceMapJson(const std::map<std::string, Significance>& by_mode) {
  json j = json::object();
  for (const auto& [mode, s] : by_mode) j[mode] = SignificanceJson(s);
  return j;
}

Result<std::map<std::string, Significance>> ParseSignificanceMap(const json& j) {
  std::map<std::string, Significance> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    ASRC_ASSIGN_OR_RETURN(Significance s, ParseSignificance(it.value()));
    out[it.key()] = s;
  }
  return out;
}

}  // namespace

json AblationRowJson(const AblationRow& r) {
  json j = {{"key", r.key}, {"steps", r.steps}, {"roles", r.roles}, {"pipeline", r.pipeline}, {"model", r.model},
            {"eval", r.eval}, {"params", r.params}, {"bytes", r.bytes}, {"hash", r.hash}, {"wall_s", r.wall_s},
            {"stop_reason", r.stop_reason}};
  if (!r.from.empty()) j["from"] = r.from;
  if (r.measured) j["measured"] = EvalSummaryJson(*r.measured);
  if (!r.significance.empty()) j["significance"] = SignificanceMapJson(r.significance);
  for (const auto& [name, x] : r.extra) {
    json e = {{"eval", x.eval}, {"significance", SignificanceMapJson(x.significance)}};
    if (x.measured) e["measured"] = EvalSummaryJson(*x.measured);
    j["extra"][name] = std::move(e);
  }
  return j;
}

Result<AblationRow> ParseAblationRow(const json& j) {
  AblationRow r;
  try {
    r.key = j.at("key").get<std::string>();
    r.steps = j.at("steps").get<std::vector<size_t>>();
    r.roles = j.at("roles").get<std::vector<std::string>>();
    r.pipeline = j.at("pipeline").get<std::string>();
    r.model = j.at("model").get<std::string>();
    r.eval = j.at("eval");
    r.params = j.at("params").get<int64_t>();
    r.bytes = j.at("bytes").get<int64_t>();
    r.hash = j.at("hash").get<std::string>();
    r.wall_s = j.at("wall_s").get<double>();
    r.stop_reason = j.at("stop_reason").get<std::string>();
    r.from = j.value("from", std::string());
    if (j.contains("measured")) {
      ASRC_ASSIGN_OR_RETURN(EvalSummary e, ParseEvalSummary(j["measured"]));
      r.measured = std::move(e);
    }
    if (j.contains("significance")) {
      ASRC_ASSIGN_OR_RETURN(r.significance, ParseSignificanceMap(j["significance"]));
    }
    if (j.contains("extra"))
      for (auto it = j["extra"].begin(); it != j["extra"].end(); ++it) {
        AblationExtraEval& x = r.extra[it.key()];
        x.eval = it.value().at("eval");
        if (it.value().contains("measured")) {
          ASRC_ASSIGN_OR_RETURN(EvalSummary e, ParseEvalSummary(it.value()["measured"]));
          x.measured = std::move(e);
        }
        ASRC_ASSIGN_OR_RETURN(x.significance, ParseSignificanceMap(it.value().at("significance")));
      }
  } catch (const std::exception& e) {
    return Error(std::string("ablation result: ") + e.what());
  }
  return r;
}

namespace {

// <dir>/result.json, written under a temporary name and renamed: a reader sees all of it or none.
Status WriteRowFile(const fs::path& dir, const AblationRow& row) {
  return WriteFileAtomic((dir / "result.json").string(), AblationRowJson(row).dump(1) + "\n");
}

}  // namespace

json AblationEvalKey(const CompressRequest& r, const Pipeline& p) {
  if (!r.evaluate) return json();
  const EvalConfig e = RequestEval(r, p.eval);
  std::error_code ec;
  return {{"manifest", fs::weakly_canonical(fs::absolute(e.manifest), ec).string()},
          {"split", e.split}, {"limit", e.limit}, {"threads", e.threads}, {"beam", e.beam},
          {"repeat", e.repeat}, {"modes", e.modes}, {"stable_tolerance", r.eval_stable_tolerance}};
}

namespace {

// The folder of cached evaluations (one file per model hash) for one eval key: evaluations of
// another eval set, split, limit or option are never taken for this one's.
std::string EvalCacheFolder(const fs::path& base, const json& eval_key) {
  const std::string text = eval_key.dump();
  return (base / ir::HashHex(ir::HashBytes(text.data(), text.size()))).string();
}

}  // namespace

Result<AblationRow> RunAblationConfig(const CompressRequest& request, const AblationConfig& config,
                                      double stable_tolerance, const AblationStart* start) {
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path study = fs::absolute(request.out);
  CompressRequest r = request;
  r.pipeline = start ? start->pipeline : config.pipeline;
  if (start) r.model = start->model;
  r.out = (study / "configs" / config.key).string();
  r.eval_cache = EvalCacheFolder(study / "evals", AblationEvalKey(request, config.pipeline));
  r.eval_stable_tolerance = stable_tolerance;
  bool gated = config.pipeline.gate.any();
  for (const PipelineStep& s : config.pipeline.steps) gated = gated || (s.gate && s.gate->any());
  r.eval_final_only = !gated;
  ASRC_ASSIGN_OR_RETURN(CompressResult result, Compress(r));
  const PassRecord& last = result.report.records.back();
  AblationRow row;
  row.key = config.key;
  row.steps = config.steps;
  row.roles = config.roles;
  row.pipeline = config.pipeline.Canonical();
  std::error_code ec;
  const std::string input = request.model.empty() ? RepoPath("experiments/teacher/bundle") : request.model;
  row.model = fs::weakly_canonical(fs::absolute(input), ec).string();
  row.eval = AblationEvalKey(request, config.pipeline);
  if (last.size) row.params = last.size->params, row.bytes = last.size->bytes;
  if (last.hash) row.hash = ir::HashHex(*last.hash);
  row.measured = last.eval;
  row.significance = last.significance;
  if (start) {  // Compress compared against the prefix's model: compare against the input instead
    row.from = start->key;
    row.significance.clear();
    for (const auto& [mode, base] : start->input.modes) {
      const ModeEval* other = row.measured ? row.measured->mode(mode) : nullptr;
      if (!other) continue;
      if (auto s = PairedBootstrap(base, *other)) row.significance[mode] = *s;
    }
  }
  row.stop_reason = result.report.stop_reason;
  row.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASRC_RETURN_IF_ERROR(WriteRowFile(fs::path(r.out), row));
  return row;
}

Status AddAblationEval(const CompressRequest& request, const Pipeline& pipeline, const AblationEvalSet& set,
                       const AblationRow* input, AblationRow& row) {
  CompressRequest r = request;
  r.eval_manifest = set.manifest;
  r.eval_split = set.split;
  const json key = AblationEvalKey(r, pipeline);
  AblationExtraEval& x = row.extra[set.name];
  if (x.eval == key && x.measured) return Status::Ok();
#ifndef ASRC_PASS_HAVE_ASR
  (void)input;
  return Error("this build has no lib/asr (evaluation)");
#else
  const fs::path dir = fs::absolute(request.out) / "configs" / row.key;
  const fs::path file = fs::exists(dir / "model") ? dir / "model" : dir / "model.onnx";
  ASRC_ASSIGN_OR_RETURN(ir::Model model, onnx_io::LoadModel(file.string()));
  Pipeline p = pipeline;
  p.eval = RequestEval(r, p.eval);
  ASRC_RETURN_IF_ERROR(ResolveModes(p, BundleModes(model), nullptr));
  const std::string cache = EvalCacheFolder(fs::absolute(request.out) / ("evals-" + set.name), key);
  std::error_code ec;
  fs::create_directories(cache, ec);
  if (ec) return Error("cannot create '" + cache + "': " + ec.message());
  EvalInstrument eval(MakeAsrEvaluator(p.eval), EvalRepeat{p.eval.repeat, request.eval_stable_tolerance}, cache, -1);
  PassRecord record;
  ASRC_RETURN_IF_ERROR(eval.After(record, model).With("eval set " + set.name + ", configuration " + row.key));
  x = AblationExtraEval{key, record.eval, {}};
  const AblationExtraEval* base = nullptr;
  if (input) {
    auto it = input->extra.find(set.name);
    if (it != input->extra.end() && it->second.eval == key && it->second.measured) base = &it->second;
  }
  if (base && x.measured)
    for (const auto& [mode, m] : base->measured->modes) {
      const ModeEval* other = x.measured->mode(mode);
      if (!other) continue;
      if (auto s = PairedBootstrap(m, *other)) x.significance[mode] = *s;
    }
  return WriteRowFile(dir, row);
#endif
}

std::optional<AblationRow> FinishedAblationConfig(const std::string& out, const AblationConfig& config,
                                                  const std::string& model, const json& eval) {
  std::ifstream in(fs::path(out) / "configs" / config.key / "result.json");
  if (!in) return std::nullopt;
  json j;
  try {
    j = json::parse(in);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  auto row = ParseAblationRow(j);
  if (!row.ok() || row->pipeline != config.pipeline.Canonical() || row->model != model || row->eval != eval)
    return std::nullopt;
  row->roles = config.roles;  // this run's roles (another mode may have made the result)
  return row.value();
}

}  // namespace asrc::pass

#include "pass/compress.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <map>

#include "core/folders.h"
#include "core/interrupts.h"
#include "core/paths.h"
#include "onnx/onnx_io.h"
#include "pass/instruments.h"
#include "pass/manager.h"
#include "pass/modes.h"
#include "pass/significance.h"
#ifdef ASRC_PASS_HAVE_ASR
#include "pass/eval_asr.h"
#endif

namespace asrc::pass {

namespace fs = std::filesystem;

namespace {

// The request with every default filled in and every path checked.
struct Plan {
  Pipeline pipeline;  // eval and calibration with the request's overrides
  std::string model;
  fs::path out_dir, out_model;
  bool lone = false;  // a single .onnx file (written as out/model.onnx), not a bundle folder
};

bool Inside(const fs::path& a, const fs::path& b) {  // a == b or a inside b
  auto ai = a.begin();
  for (auto bi = b.begin(); bi != b.end(); ++bi, ++ai)
    if (ai == a.end() || *ai != *bi) return false;
  return true;
}

}  // namespace

EvalConfig RequestEval(const CompressRequest& r, EvalConfig eval) {
  if (!r.eval_manifest.empty()) eval.manifest = r.eval_manifest;
  if (eval.manifest.empty()) eval.manifest = RepoPath("experiments/data/default_eval/manifest.jsonl");
  if (!r.eval_split.empty()) eval.split = r.eval_split;
  if (r.eval_limit >= 0) eval.limit = r.eval_limit;
  if (r.threads > 0) eval.threads = r.threads;
  if (r.eval_repeat > 0) eval.repeat = r.eval_repeat;
  return eval;
}

namespace {

// The outputs (out/model[.onnx], out/report.{json,md,html}) replace none of the run's inputs —
// the model, the pipeline file, the eval and calibration manifests — and out/model replaces
// only a bundle folder (core/folders.h), never a folder with the user's files in it.
Status CheckOutputsOverInputs(const Plan& p, const std::string& pipeline_file) {
  std::error_code ec;
  std::vector<fs::path> outs = {p.out_model};
  for (const char* ext : {"json", "md", "html"}) outs.push_back(p.out_dir / (std::string("report.") + ext));
  for (const std::string& input : {p.model, pipeline_file, p.pipeline.eval.manifest,
                                   p.pipeline.calibration.manifest}) {
    if (input.empty()) continue;
    const fs::path i = fs::weakly_canonical(fs::absolute(input), ec);
    for (const fs::path& o : outs)
      if (Inside(i, fs::weakly_canonical(o, ec)))
        return Error("output '" + o.string() + "' would write over the input '" + input + "'; choose another --out");
  }
  if (!p.lone && fs::exists(p.out_model, ec) && !fs::is_directory(p.out_model, ec))
    return Error("output '" + p.out_model.string() + "' exists and is not a folder; refusing to replace it");
  return CheckReplaceableBundleFolder(p.out_model.string());
}

Result<Plan> MakePlan(const CompressRequest& r) {
  Plan p;
  p.pipeline = r.pipeline;
  p.model = r.model.empty() ? RepoPath("experiments/teacher/bundle") : r.model;
  if (!PathExists(p.model)) return Error("model '" + p.model + "' does not exist");
  if (fs::is_directory(p.model) && !PathExists(p.model + "/model.json"))
    return Error("model '" + p.model + "' is a folder without model.json");
  EvalConfig& eval = p.pipeline.eval;
  eval = RequestEval(r, eval);
  if (r.evaluate && !PathExists(eval.manifest))
    return Error("eval manifest '" + eval.manifest + "' does not exist");
  CalibrationSource& calibration = p.pipeline.calibration;
  if (!r.calibration.empty()) calibration.manifest = r.calibration;
  if (calibration.manifest.empty()) {
    calibration.manifest = eval.manifest;
    if (calibration.split.empty()) calibration.split = eval.split;
  }
  if (!PathExists(calibration.manifest))
    return Error("calibration manifest '" + calibration.manifest + "' does not exist");
#ifndef ASRC_PASS_HAVE_ASR
  if (r.evaluate) return Error("this build has no lib/asr (evaluation); measure sizes only");
#endif
  if (r.out.empty()) return Error("--out is empty: give the output folder");
  bool gated = p.pipeline.gate.any();
  for (const PipelineStep& s : p.pipeline.steps) gated = gated || (s.gate && s.gate->any());
  if (r.eval_final_only && gated)
    return Error("the pipeline has gates, which judge every pass: it cannot be evaluated at the end only");
  std::error_code ec;
  p.out_dir = fs::absolute(r.out);
  p.lone = !fs::is_directory(p.model);
  p.out_model = p.out_dir / (p.lone ? "model.onnx" : "model");
  const fs::path in = fs::weakly_canonical(fs::absolute(p.model), ec);
  const fs::path out = fs::weakly_canonical(p.out_model, ec);
  if (Inside(in, out) || Inside(out, in))
    return Error("output '" + r.out + "' would write over the input model '" + p.model + "'");
  ASRC_RETURN_IF_ERROR(CheckOutputsOverInputs(p, r.pipeline_file));
  return p;
}

constexpr const char* kPartialPrefix = ".model.partial.";

// Partial folders (or files) of compress runs whose process is gone: "<prefix><pid>[.onnx]", and
// the save's own temporaries of one, ".<prefix><pid>[.onnx].<tag>-<pid>" (onnx_io's TempSibling),
// which a process killed inside the save (SIGKILL) leaves.
void RemoveStalePartials(const fs::path& out_dir) {
  std::error_code ec;
  for (fs::directory_iterator it(out_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind(std::string(".") + kPartialPrefix, 0) == 0) name.erase(0, 1);
    if (name.rfind(kPartialPrefix, 0) != 0) continue;
    std::string pid = name.substr(std::string(kPartialPrefix).size());
    const size_t digits = pid.find_first_not_of("0123456789");
    if (digits != std::string::npos && pid[digits] == '.') pid.resize(digits);  // ".onnx", ".tmp-<pid>", ...
    if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t owner = static_cast<pid_t>(std::stol(pid));
    if (owner == getpid() || (::kill(owner, 0) != 0 && errno == ESRCH)) {
      std::error_code rm;
      fs::remove_all(it->path(), rm);
    }
  }
}

// Creates `dir` and any missing folder above it; the ones created, outermost first.
Result<std::vector<fs::path>> CreateFolders(const fs::path& dir) {
  std::vector<fs::path> created;
  std::error_code ec;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    created.insert(created.begin(), p);
    if (p == p.parent_path()) break;
  }
  fs::create_directories(dir, ec);
  if (ec) return Error("cannot create '" + dir.string() + "': " + ec.message());
  return created;
}

// Writes the model (to a partial name beside the target, renamed when complete) and the report.
// On an error or an interrupt, what this call wrote is removed again: the partial model, and the
// folders it created with everything in them; a folder that existed keeps what it had.
Status WriteOutputs(const ir::Model& model, const Plan& p, const CompressReport& rep) {
  HoldInterrupts hold;
  ASRC_ASSIGN_OR_RETURN(std::vector<fs::path> created, CreateFolders(p.out_dir));
  RemoveStalePartials(p.out_dir);
  std::error_code ec;
  const fs::path tmp =
      p.out_dir / (kPartialPrefix + std::to_string(getpid()) + (p.lone ? ".onnx" : ""));
  auto undo = [&](Status st) {
    std::error_code rm;
    fs::remove_all(tmp, rm);
    if (!created.empty()) fs::remove_all(created.front(), rm);
    return st;
  };
  Status st = onnx_io::SaveModel(model, tmp.string());
  if (!st.ok()) return undo(st);
  if (hold.caught()) return undo(Error("interrupted"));
  fs::remove_all(p.out_model, ec);
  fs::rename(tmp, p.out_model, ec);
  if (ec)
    return undo(Error("cannot rename '" + tmp.string() + "' to '" + p.out_model.string() + "': " + ec.message()));
  st = WriteReport(p.out_dir.string(), rep);
  if (!st.ok()) return undo(st);
  return Status::Ok();
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

}  // namespace

Status ResolveModes(Pipeline& p, const std::vector<std::string>& bundle,
                    const std::function<void(const std::string&)>& log) {
  auto has = [&](const std::string& m) { return std::find(bundle.begin(), bundle.end(), m) != bundle.end(); };
  std::vector<std::string> modes;
  for (const std::string& m : p.eval.modes.empty() ? bundle : p.eval.modes) {
    if (has(m)) modes.push_back(m);
    else if (log) log("compress: this model has no " + m + " mode; not evaluated in it");
  }
  p.eval.modes = modes;
  auto resolve = [&](Gate& g, const std::string& path) -> Status {
    if (!g.any() || bundle.empty()) return Status::Ok();
    if (g.mode.empty()) g.mode = bundle.back();
    if (!has(g.mode))
      return Error(path + ".mode: this model has no " + g.mode + " mode (its modes: " + ModeList(bundle) + ")");
    return Status::Ok();
  };
  ASRC_RETURN_IF_ERROR(resolve(p.gate, "$.gates"));
  for (size_t i = 0; i < p.steps.size(); ++i)
    if (p.steps[i].gate) ASRC_RETURN_IF_ERROR(resolve(*p.steps[i].gate, "$.passes[" + std::to_string(i) + "].gate"));
  return Status::Ok();
}

Result<CompressResult> Compress(const CompressRequest& r) {
  if (!r.registry) return Error("no pass registry given");
  ASRC_ASSIGN_OR_RETURN(Plan p, MakePlan(r));
  auto log = [&](const std::string& line) {
    if (r.log) r.log(line);
  };
  log("compress: loading " + p.model);
  ASRC_ASSIGN_OR_RETURN(ir::Model model, onnx_io::LoadModel(p.model));
  // Two roles naming one file load but cannot be saved: refuse now, naming the input, not the output.
  std::map<std::string, std::string> role_of;
  for (const auto& g : model.graphs)
    if (!g.file.empty() && !role_of.emplace(g.file, g.role).second)
      return Error("model '" + p.model + "': model.json: graphs '" + role_of[g.file] + "' and '" + g.role +
                   "' both name '" + g.file + "'");
  const std::vector<std::string> bundle_modes = BundleModes(model);
  ASRC_RETURN_IF_ERROR(ResolveModes(p.pipeline, bundle_modes, r.evaluate ? r.log : nullptr));
  const EvalConfig& eval = p.pipeline.eval;
  if (r.evaluate && eval.modes.empty())
    return Error("model '" + p.model + "' has no recognition mode to evaluate (a transducer bundle has an "
                 "encoder role, docs/bundle.md); measure sizes only");
  if (!r.eval_cache.empty()) {
    std::error_code ec;
    fs::create_directories(r.eval_cache, ec);
    if (ec) return Error("cannot create '" + r.eval_cache + "': " + ec.message());
  }

  PassManager manager(*r.registry, p.pipeline);
  manager.SetInputName(p.model);
  if (r.log) manager.AddInstrument(MakeLogInstrument(p.pipeline.steps.size(), r.log));
  manager.AddInstrument(MakeGateInstrument(p.pipeline));
#ifdef ASRC_PASS_HAVE_ASR
  if (r.evaluate) {
    const int only = r.eval_final_only ? static_cast<int>(p.pipeline.steps.size()) : -1;
    manager.AddInstrument(std::make_unique<EvalInstrument>(MakeAsrEvaluator(eval, r.progress_bar),
                                                           EvalRepeat{eval.repeat, r.eval_stable_tolerance},
                                                           r.eval_cache, only));
  }
  manager.SetCalibrator(MakeAsrCalibrator(p.pipeline.calibration, p.pipeline.seed));
  manager.SetWerProbe(MakeAsrWerProbe(p.pipeline.calibration.manifest, eval.threads));
#endif
  manager.AddInstrument(MakeSizeInstrument());
  manager.AddInstrument(MakeVerifyInstrument());
  manager.AddInstrument(MakeChangeCheckInstrument());
  manager.AddInstrument(MakeTimingInstrument());
  log("compress: pipeline " + p.pipeline.Canonical());
  ASRC_ASSIGN_OR_RETURN(RunResult run, manager.Run(model));

  CompressResult result;
  result.output_model = p.out_model.string();
  CompressReport& rep = result.report;
  rep.pipeline = p.pipeline.Canonical();
  rep.name = p.pipeline.name;
  rep.description = p.pipeline.description;
  rep.model = p.model;
  rep.output = result.output_model;
  if (r.evaluate) rep.eval = eval;
  rep.modes = r.evaluate ? eval.modes : bundle_modes;
  rep.records = std::move(run.records);
  AddSignificance(rep.records);  // paired bootstrap of each pass's WER change against the input
  rep.stopped = run.stopped;
  rep.stop_reason = run.stop_reason;
  rep.created = UtcNow();
  ASRC_RETURN_IF_ERROR(WriteOutputs(model, p, rep));
  log("compress: wrote " + result.output_model + " and " + (p.out_dir / "report.{json,md,html}").string());
  return result;
}

}  // namespace asrc::pass

// asrc compress --pipeline P.json [--model M] [--eval MANIFEST [--split NAME]] [--eval-limit N]
//               --out DIR
// Runs a pass pipeline on a bundle and measures every pass (size, WER/CER in both modes, latency):
// DIR/model/ (the compressed bundle; built in a temporary folder, renamed when complete, never
// over the input) and DIR/report.{json,md,html}. A bad pipeline, a missing model or missing eval
// data fail before any work is done.
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "onnx/onnx_io.h"
#include "pass/manager.h"
#include "pass/model_util.h"
#include "pass/pipeline.h"
#include "pass/report.h"
#include "pass/significance.h"
#include "passes/registry.h"
#include "repo_paths.h"
#ifdef ASRC_PASS_HAVE_ASR
#include "pass/eval_asr.h"
#endif

namespace asrc::app {

namespace fs = std::filesystem;

void AddCompressCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("compress", "Run a pass pipeline on a bundle and measure every pass");
  struct Opts {
    std::string pipeline, model, eval, split, out, calibration;
    int eval_limit = -1, threads = 0, eval_repeat = 0;
    bool no_eval = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--pipeline", o->pipeline, "Pipeline JSON (see `asrc passes`)")->required();
  sub->add_option("--model", o->model, "Input bundle or .onnx (default: experiments/teacher/bundle)");
  sub->add_option("--eval", o->eval,
                  "Eval manifest (default: the pipeline's eval.manifest, else "
                  "experiments/data/default_eval/manifest.jsonl)");
  sub->add_option("--split", o->split, "Keep only eval lines whose \"split\" is this");
  sub->add_option("--eval-limit", o->eval_limit, "Evaluate only the first N utterances (0: all)");
  sub->add_option("--eval-repeat", o->eval_repeat,
                  "Evaluate each model N times and report the fastest run (latency on a busy machine)");
  sub->add_option("--threads", o->threads, "Threads per graph run in evaluation");
  sub->add_option("--calibration", o->calibration,
                  "Calibration manifest (default: the pipeline's, else the eval manifest)");
  sub->add_option("--out", o->out, "Output folder: model/, report.json, report.md, report.html")->required();
  sub->add_flag("--no-eval", o->no_eval, "Measure sizes only (no WER, no latency)");
  sub->add_flag("--quiet", o->quiet, "No progress lines");
  set.add(sub, [o]() -> int {
    // --- validate everything before any work ---
    const auto& registry = passes::BuiltinPasses();
    auto pipeline = pass::LoadPipelineFile(o->pipeline, registry);
    if (!pipeline.ok()) return Fail("compress: " + pipeline.status().message());
    pass::Pipeline& p = pipeline.value();
    const std::string model_path = o->model.empty() ? RepoPath("experiments/teacher/bundle") : o->model;
    if (!PathExists(model_path)) return Fail("compress: model '" + model_path + "' does not exist");
    if (fs::is_directory(model_path) && !PathExists(model_path + "/model.json")) {
      return Fail("compress: model '" + model_path + "' is a folder without model.json");
    }
    pass::EvalConfig eval = p.eval;
    if (!o->eval.empty()) eval.manifest = o->eval;
    if (eval.manifest.empty()) eval.manifest = RepoPath("experiments/data/default_eval/manifest.jsonl");
    if (!o->split.empty()) eval.split = o->split;
    if (o->eval_limit >= 0) eval.limit = o->eval_limit;
    if (o->threads > 0) eval.threads = o->threads;
    if (o->eval_repeat > 0) eval.repeat = o->eval_repeat;
    const bool do_eval = !o->no_eval;
    if (do_eval && !PathExists(eval.manifest)) {
      return Fail("compress: eval manifest '" + eval.manifest + "' does not exist");
    }
    pass::CalibrationSource calib = p.calibration;
    if (!o->calibration.empty()) calib.manifest = o->calibration;
    if (calib.manifest.empty()) {
      calib.manifest = eval.manifest;
      if (calib.split.empty()) calib.split = eval.split;
    }
    if (!calib.manifest.empty() && !PathExists(calib.manifest)) {
      return Fail("compress: calibration manifest '" + calib.manifest + "' does not exist");
    }
#ifndef ASRC_PASS_HAVE_ASR
    if (do_eval) return Fail("compress: this build has no lib/asr (evaluation); use --no-eval");
#endif
    std::error_code ec;
    const fs::path out_dir = fs::absolute(o->out);
    // A bundle goes to DIR/model/, a lone .onnx to DIR/model.onnx.
    const bool lone = !fs::is_directory(model_path);
    const fs::path out_model = out_dir / (lone ? "model.onnx" : "model");
    const fs::path in_abs = fs::weakly_canonical(fs::absolute(model_path), ec);
    auto inside = [](const fs::path& a, const fs::path& b) {  // a == b or a inside b
      auto ai = a.begin();
      for (auto bi = b.begin(); bi != b.end(); ++bi, ++ai) {
        if (ai == a.end() || *ai != *bi) return false;
      }
      return true;
    };
    const fs::path out_canon = fs::weakly_canonical(out_model, ec);
    if (inside(in_abs, out_canon) || inside(out_canon, in_abs)) {
      return Fail("compress: --out '" + o->out + "' would write over the input model '" + model_path + "'");
    }
    fs::create_directories(out_dir, ec);
    if (ec) return Fail("compress: cannot create '" + out_dir.string() + "': " + ec.message());

    // --- work ---
    auto log = [o](const std::string& line) {
      if (!o->quiet) std::cerr << line << "\n";
    };
    log("compress: loading " + model_path);
    auto loaded = onnx_io::LoadModel(model_path);
    if (!loaded.ok()) return Fail("compress: " + loaded.status().message());
    ir::Model model = std::move(loaded.value());

    pass::PassManager manager(registry, p);
    manager.SetLog(log);
    manager.AddInstrument(pass::MakeVerifyInstrument());
    manager.AddInstrument(pass::MakeSizeInstrument());
#ifdef ASRC_PASS_HAVE_ASR
    if (do_eval) {
      manager.AddInstrument(std::make_unique<pass::EvalInstrument>(
          pass::MakeAsrEvaluator(eval, !o->quiet && isatty(2)), eval.repeat));
    }
    if (!calib.manifest.empty()) manager.SetCalibrator(pass::MakeAsrCalibrator(calib, p.seed));
#endif
    log("compress: pipeline " + p.Canonical());
    auto run = manager.Run(model);
    if (!run.ok()) return Fail("compress: " + run.status().message());

    const fs::path tmp = out_dir / (".model.partial." + std::to_string(getpid()) + (lone ? ".onnx" : ""));
    fs::remove_all(tmp, ec);
    Status st = onnx_io::SaveModel(model, tmp.string());
    if (!st.ok()) {
      fs::remove_all(tmp, ec);
      return Fail("compress: " + st.message());
    }
    fs::remove_all(out_model, ec);
    fs::rename(tmp, out_model, ec);
    if (ec) return Fail("compress: cannot rename '" + tmp.string() + "' to '" + out_model.string() + "': " + ec.message());

    nlohmann::json report;
    report["pipeline"] = p.Canonical();
    report["name"] = p.name;
    report["description"] = p.description;
    report["model"] = model_path;
    report["output"] = out_model.string();
    if (do_eval) {
      report["eval"] = {{"manifest", eval.manifest}, {"split", eval.split}, {"limit", eval.limit},
                        {"modes", eval.modes}, {"threads", eval.threads}, {"beam", eval.beam},
                        {"repeat", eval.repeat}};
    }
    report["rows"] = run.value().rows;
    pass::AddSignificance(report);  // paired bootstrap of each pass's WER change against the input
    report["stopped"] = run.value().stopped;
    report["stop_reason"] = run.value().stop_reason;
    std::time_t now = std::time(nullptr);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    report["created"] = buf;
    st = pass::WriteReport(out_dir.string(), report);
    if (!st.ok()) return Fail("compress: " + st.message());
    std::cout << pass::ReportMarkdown(report);
    log("compress: wrote " + out_model.string() + " and " + (out_dir / "report.{json,md,html}").string());
    return run.value().stopped ? 2 : 0;
  });
}

}  // namespace asrc::app

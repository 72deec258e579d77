// asrc compress --pipeline P.json [--model M] [--eval MANIFEST [--split NAME]] [--eval-limit N]
//               --out DIR
// Runs a pass pipeline on a bundle and measures every pass (size, WER/CER in each mode of the
// bundle, latency): DIR/model/ (the compressed bundle; never over the input) and
// DIR/report.{json,md,html}. Flags only: the run is pass::Compress (lib/pass/compress.h).
#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli_checks.h"
#include "commands.h"
#include "pass/compress.h"
#include "passes/registry.h"

namespace asrc::app {

void AddCompressCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("compress", "Run a pass pipeline on a bundle and measure every pass");
  struct Opts {
    std::string pipeline;
    pass::CompressRequest request;
    bool no_eval = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  pass::CompressRequest& r = o->request;
  sub->add_option("--pipeline", o->pipeline, "Pipeline JSON (see `asrc passes`)")->required();
  sub->add_option("--model", r.model, "Input bundle or .onnx (default: experiments/teacher/bundle)");
  sub->add_option("--eval", r.eval_manifest,
                  "Eval manifest (default: the pipeline's eval.manifest, else "
                  "experiments/data/default_eval/manifest.jsonl)");
  sub->add_option("--split", r.eval_split, "Keep only eval lines whose \"split\" is this");
  AddEvalRequestOptions(sub, &r);
  sub->add_option("--eval-repeat", r.eval_repeat,
                  "Evaluate each model N times and report the fastest run (latency on a busy machine)");
  sub->add_option("--out", r.out, "Output folder: model/, report.json, report.md, report.html")->required();
  sub->add_flag("--no-eval", o->no_eval, "Measure sizes only (no WER, no latency)");
  sub->add_flag("--quiet", o->quiet, "No progress lines");
  set.add(sub, [o, sub]() -> int {
    pass::CompressRequest& r = o->request;
    if (Status flags = CheckEvalRequestFlags("compress", sub, &r); !flags.ok()) return Fail(flags.message());
    if (sub->get_option("--eval-repeat")->count() > 0 && r.eval_repeat < 1)
      return Fail("compress: --eval-repeat " + std::to_string(r.eval_repeat) + ": expected >= 1");
    r.registry = &passes::BuiltinPasses();
    auto pipeline = pass::LoadPipelineFile(o->pipeline, *r.registry);
    if (!pipeline.ok()) return Fail("compress: " + pipeline.status().message());
    r.pipeline = std::move(pipeline.value());
    r.pipeline_file = o->pipeline;
    r.evaluate = !o->no_eval;
    if (!o->quiet) r.log = [](const std::string& line) { std::cerr << line << "\n"; };
    r.progress_bar = !o->quiet && isatty(2);
    auto result = pass::Compress(r);
    if (!result.ok()) return Fail("compress: " + result.status().message());
    std::cout << pass::ReportMarkdown(result->report);
    return result->report.stopped ? 2 : 0;
  });
}

}  // namespace asrc::app

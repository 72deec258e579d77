// asrc ablate --pipeline P.json [--model M] [--eval [NAME=]MANIFEST[:SPLIT] ...] [--split NAME]
//             [--mode MODE] [--jobs N] [--no-eval | --no-wer] --out DIR
// An ablation study of a pipeline's steps (lib/pass/ablation.h): every configuration the mode
// names is one pass::Compress run into DIR/configs/<key>/; DIR/ablation.{json,md,html} sum them up.
//
// Processes: the input model is evaluated here first (every configuration compares against it
// and reuses its evaluation from DIR/evals/); the other configurations run as child processes of
// this binary (`--worker KEY`), at most --jobs at a time, each logging to DIR/configs/KEY.log.
// A child dies with its parent (PR_SET_PDEATHSIG: SIGTERM, so that a model it was writing is
// removed, not left half-written), and a configuration counts as finished only
// once its result.json was renamed into place, so a killed study re-run with the same command
// runs the unfinished configurations only. A configuration whose steps extend a finished one's
// starts from that model (ablation.h); configurations that train (distill) are scheduled last.
// Further eval sets (--eval NAME=... after the first) are evaluated here, after the
// configurations, on every finished model; --report-only writes the report of what has finished.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "cli_checks.h"
#include "commands.h"
#include "core/paths.h"
#include "output_safety.h"
#include "pass/ablation.h"
#include "pass/modes.h"
#include "passes/registry.h"

namespace asrc::app {

namespace {

namespace fs = std::filesystem;

struct Opts {
  std::string pipeline, mode = "all", worker;
  pass::CompressRequest request;
  std::vector<std::string> evals;         // --eval values, as given
  std::vector<pass::AblationEvalSet> sets;  // parsed: [0] the configurations' own (request.eval_*)
  int jobs = 1, eval_repeat = 5;
  double stable = 0.05;
  bool no_eval = false, no_wer = false, quiet = false, report_only = false;
};

// --eval values into o.sets and the request's eval manifest and split (the first set's).
// A plain MANIFEST keeps --split; with several sets each needs a distinct NAME=.
Status ParseEvalSets(Opts& o) {
  pass::CompressRequest& r = o.request;
  for (const std::string& text : o.evals) {
    ASRC_ASSIGN_OR_RETURN(pass::AblationEvalSet set, pass::ParseAblationEvalSet(text));
    if (set.split.empty()) set.split = r.eval_split;
    if (o.evals.size() > 1 && set.name.empty())
      return Error("--eval '" + text + "': with several --eval sets, name each one (NAME=MANIFEST[:SPLIT])");
    for (const pass::AblationEvalSet& s : o.sets)
      if (s.name == set.name) return Error("--eval '" + text + "': eval set name '" + set.name + "' used twice");
    o.sets.push_back(set);
  }
  if (!o.sets.empty()) {
    r.eval_manifest = o.sets[0].manifest;
    r.eval_split = o.sets[0].split;
  }
  if (o.no_eval && o.sets.size() > 1) return Error("--no-eval: nothing is evaluated, so give at most one --eval");
  return Status::Ok();
}

// The name of the configurations' own eval set: its NAME=, else its manifest's folder.
std::string FirstSetName(const Opts& o, const nlohmann::json& eval_key) {
  if (!o.sets.empty() && !o.sets[0].name.empty()) return o.sets[0].name;
  if (eval_key.is_null()) return "eval";
  const std::string folder = fs::path(eval_key["manifest"].get<std::string>()).parent_path().filename().string();
  return folder.empty() ? "eval" : folder;
}

// Evaluates every row on the further eval sets (the input row first: the others compare with it).
Status AddEvalSets(const Opts& o, const pass::Pipeline& p, std::vector<pass::AblationRow>& rows) {
  for (size_t k = 1; k < o.sets.size(); ++k)
    for (size_t i = 0; i < rows.size(); ++i) {
      if (!o.quiet) std::cerr << "ablate: eval set " << o.sets[k].name << ": " << rows[i].key << "\n";
      ASRC_RETURN_IF_ERROR(pass::AddAblationEval(o.request, p, o.sets[k], i ? &rows[0] : nullptr, rows[i]));
    }
  return Status::Ok();
}

// The command line that runs one configuration in a child process.
std::vector<std::string> WorkerArgs(const Opts& o, const std::string& key) {
  const pass::CompressRequest& r = o.request;
  std::vector<std::string> a = {"asrc", "ablate", "--pipeline", o.pipeline, "--out", r.out, "--mode", o.mode,
                                "--worker", key, "--eval-repeat", std::to_string(o.eval_repeat),
                                "--stable", std::to_string(o.stable)};
  auto add = [&](const std::string& flag, const std::string& v) {
    if (!v.empty()) a.insert(a.end(), {flag, v});
  };
  add("--model", r.model);
  add("--eval", r.eval_manifest);  // the configurations' own set; the parent evaluates the others
  add("--split", r.eval_split);
  add("--calibration", r.calibration);
  if (r.eval_limit >= 0) add("--eval-limit", std::to_string(r.eval_limit));
  if (r.threads > 0) add("--threads", std::to_string(r.threads));
  if (o.no_eval) a.push_back("--no-eval");
  if (o.no_wer) a.push_back("--no-wer");
  return a;
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // The child: only async-signal-safe calls until exec.
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // not SIGKILL: compress then removes what it was writing
  if (getppid() != parent) _exit(127);
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  execv("/proc/self/exe", argv.data());
  _exit(127);
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

// --out must hold none of the study's inputs (the model, the pipeline, the eval and calibration
// manifests) and be none of them: the study writes ablation.*, configs/ and evals/ there.
Status CheckOutOverInputs(const Opts& o, const std::string& model) {
  std::vector<std::string> inputs = {model, o.pipeline, o.request.eval_manifest, o.request.calibration};
  for (const pass::AblationEvalSet& s : o.sets) inputs.push_back(s.manifest);
  return RefuseOverInputs(o.request.out, inputs, "--out");
}

// Every check that needs no work: flags, the pipeline and its steps, the plan, the paths.
Status Check(const Opts& o, const pass::Pipeline& p) {
  if (o.jobs < 1) return Error("--jobs " + std::to_string(o.jobs) + ": need at least 1 job");
  if (o.eval_repeat < 1) return Error("--eval-repeat must be >= 1");
  if (!(o.stable >= 0 && o.stable < 1)) return Error("--stable " + std::to_string(o.stable) + ": must be in [0, 1)");
  const pass::CompressRequest& r = o.request;
  if (r.threads < 0) return Error("--threads " + std::to_string(r.threads) + ": must be >= 1 (0: the pipeline's)");
  if (r.eval_limit < -1) return Error("--eval-limit " + std::to_string(r.eval_limit) + ": must be >= 0 (0: all)");
  const std::string model = r.model.empty() ? RepoPath("experiments/teacher/bundle") : r.model;
  if (!PathExists(model)) return Error("model '" + model + "' does not exist");
  ASRC_RETURN_IF_ERROR(CheckOutOverInputs(o, model));
  if (!o.no_eval) {
    const nlohmann::json key = pass::AblationEvalKey(r, p);
    const std::string manifest = key["manifest"].get<std::string>();
    if (!PathExists(manifest)) return Error("eval manifest '" + manifest + "' does not exist");
  }
  for (size_t k = 1; k < o.sets.size(); ++k)
    if (!PathExists(o.sets[k].manifest))
      return Error("--eval " + o.sets[k].name + ": eval manifest '" + o.sets[k].manifest + "' does not exist");
  if (o.no_eval && o.no_wer) return Error("--no-eval and --no-wer: give one (--no-wer still measures latency)");
  return Status::Ok();
}

// The key of the configuration `c` starts from (pass::PrefixConfig), "" when none.
std::string PrefixKey(const std::vector<pass::AblationConfig>& configs, const pass::AblationConfig& c) {
  for (size_t i = 0; i < configs.size(); ++i)
    if (configs[i].key == c.key) {
      auto p = pass::PrefixConfig(configs, i);
      return p ? configs[*p].key : "";
    }
  return "";
}

// Runs the configurations not finished yet, at most `jobs` at a time, each after the prefix
// configuration it starts from; the result of each is then on disk. Errors name the
// configurations that failed and their logs.
Status RunAll(const Opts& o, const std::vector<pass::AblationConfig>& configs,
              const std::vector<pass::AblationConfig>& todo, const fs::path& logs) {
  std::map<pid_t, const pass::AblationConfig*> running;
  std::set<std::string> unfinished;
  for (const pass::AblationConfig& c : todo) unfinished.insert(c.key);
  // Configurations that train (a distill pass: minutes to hours each) after the others, so a
  // study cut short has every cheap row; otherwise plan order.
  std::vector<const pass::AblationConfig*> queue;
  for (const pass::AblationConfig& c : todo) queue.push_back(&c);
  auto trains = [](const pass::AblationConfig* c) {
    return std::any_of(c->pipeline.steps.begin(), c->pipeline.steps.end(),
                       [](const pass::PipelineStep& s) { return s.pass == "distill"; });
  };
  std::stable_partition(queue.begin(), queue.end(), [&](const pass::AblationConfig* c) { return !trains(c); });
  std::string failed;
  size_t done = 0;
  while (!queue.empty() || !running.empty()) {
    while (static_cast<int>(running.size()) < o.jobs) {
      auto ready = std::find_if(queue.begin(), queue.end(), [&](const pass::AblationConfig* c) {
        return !unfinished.count(PrefixKey(configs, *c));
      });
      if (ready == queue.end()) break;
      const pass::AblationConfig& c = **ready;
      queue.erase(ready);
      const pid_t pid = Spawn(WorkerArgs(o, c.key), (logs / (c.key + ".log")).string());
      if (pid < 0) return Error("cannot start a process for configuration " + c.key);
      running[pid] = &c;
    }
    if (running.empty()) return Error("no configuration can start (a prefix cycle?)");  // a prefix has fewer steps
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) return Error("waiting for the configurations failed");
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const pass::AblationConfig& c = *it->second;
    running.erase(it);
    unfinished.erase(c.key);
    ++done;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) failed += (failed.empty() ? "" : ", ") + c.key + " (log: " + (logs / (c.key + ".log")).string() + ")";
    if (!o.quiet)
      std::cerr << "ablate: [" << done << "/" << todo.size() << "] " << c.key << " (" << c.roles[0] << ") "
                << (ok ? "done" : "FAILED") << "\n";
  }
  if (!failed.empty()) return Error("configurations failed: " + failed);
  return Status::Ok();
}

// Where configs[i] starts: its prefix configuration's model when that finished (un-stopped) and
// the input's evaluation is there to compare against; nullopt: from the input model.
std::optional<pass::AblationStart> StartFrom(const std::vector<pass::AblationConfig>& configs, size_t i,
                                             const std::string& out, const std::string& model,
                                             const nlohmann::json& eval_key, bool no_eval) {
  auto p = pass::PrefixConfig(configs, i);
  if (!p) return std::nullopt;
  auto prefix = pass::FinishedAblationConfig(out, configs[*p], model, eval_key);
  if (!prefix || !prefix->stop_reason.empty()) return std::nullopt;
  pass::AblationStart start;
  start.key = configs[*p].key;
  const fs::path dir = fs::path(out) / "configs" / start.key;
  start.model = (dir / (fs::is_directory(model) ? "model" : "model.onnx")).string();
  if (!PathExists(start.model)) return std::nullopt;
  if (!no_eval) {
    std::optional<pass::AblationRow> input;
    for (const pass::AblationConfig& c : configs)
      if (c.steps.empty()) input = pass::FinishedAblationConfig(out, c, model, eval_key);
    if (!input || !input->measured) return std::nullopt;
    start.input = *input->measured;
  }
  start.pipeline = pass::SuffixPipeline(configs[i], configs[*p], model);
  return start;
}

// The report of the finished configurations (all of them unless --report-only, which lists the
// rest as not finished), after the further eval sets; also printed as markdown.
Status WriteStudy(const Opts& o, const pass::Pipeline& pipeline, const std::vector<pass::AblationStep>& steps,
                  const std::vector<pass::AblationConfig>& configs, const std::string& model,
                  const nlohmann::json& eval_key) {
  const fs::path out = fs::absolute(o.request.out), logs = out / "configs";
  pass::AblationReport rep;
  rep.name = pipeline.name;
  rep.pipeline = pipeline.Canonical();
  rep.mode = o.mode;
  rep.model = model;
  rep.created = UtcNow();
  rep.steps = steps;
  for (const pass::AblationStep& s : steps) {
    std::string text;
    for (size_t i : s.passes) text += (text.empty() ? "" : ",") + pass::StepText(pipeline.steps[i]);
    rep.step_texts.push_back(text);
  }
  rep.eval = eval_key;
  rep.jobs = o.jobs;
  rep.stable_tolerance = o.stable;
  rep.max_repeat = o.eval_repeat;
  for (const pass::AblationConfig& c : configs) {
    auto row = pass::FinishedAblationConfig(out.string(), c, model, eval_key);
    if (row) rep.rows.push_back(std::move(*row));
    else if (!o.report_only) return Error("configuration " + c.key + " has no result in " + (logs / c.key).string());
    else if (c.steps.empty()) return Error("--report-only: the input model's evaluation has not finished yet");
    else rep.unfinished.push_back(c.key + " (" + c.roles[0] + ")");
  }
  ASRC_RETURN_IF_ERROR(AddEvalSets(o, pipeline, rep.rows));
  if (!o.no_eval) rep.eval_sets.push_back(FirstSetName(o, eval_key));
  for (size_t k = 1; k < o.sets.size(); ++k) rep.eval_sets.push_back(o.sets[k].name);
  rep.show_wer = !o.no_wer;
  for (const pass::Mode& m : pass::AllModes())  // the modes any row was evaluated in, in report order
    for (const pass::AblationRow& row : rep.rows)
      if (row.measured && row.measured->mode(m.name)) {
        rep.modes.push_back(m.name);
        break;
      }
  ASRC_RETURN_IF_ERROR(pass::WriteAblationReport(out.string(), rep));
  if (!o.quiet) std::cerr << "ablate: wrote " << (out / "ablation.{json,md,html}").string() << "\n";
  std::cout << pass::AblationMarkdown(rep);
  return Status::Ok();
}

int RunAblate(Opts& o) {
  pass::CompressRequest& r = o.request;
  if (Status st = ParseEvalSets(o); !st.ok()) return Fail("ablate: " + st.message());
  r.registry = &passes::BuiltinPasses();
  r.evaluate = !o.no_eval;
  r.eval_repeat = o.eval_repeat;
  r.eval_stable_tolerance = o.stable;
  auto pipeline = pass::LoadPipelineFile(o.pipeline, *r.registry);
  if (!pipeline.ok()) return Fail("ablate: " + pipeline.status().message());
  auto steps = pass::GroupSteps(*pipeline);
  if (!steps.ok()) return Fail("ablate: " + steps.status().With(o.pipeline).message());
  auto configs = pass::PlanAblation(*pipeline, *steps, o.mode);
  if (!configs.ok()) return Fail("ablate: " + configs.status().message());
  Status st = Check(o, *pipeline);
  if (!st.ok()) return Fail("ablate: " + st.message());
  if (!o.quiet) r.log = [](const std::string& line) { std::cerr << line << "\n"; };

  std::error_code ec;
  const fs::path out = fs::absolute(r.out), logs = out / "configs";
  const std::string model = fs::weakly_canonical(
      fs::absolute(r.model.empty() ? RepoPath("experiments/teacher/bundle") : r.model), ec).string();
  const nlohmann::json eval_key = pass::AblationEvalKey(r, *pipeline);
  if (!o.worker.empty()) {  // one configuration, in this process
    for (size_t i = 0; i < configs->size(); ++i) {
      const pass::AblationConfig& c = (*configs)[i];
      if (c.key != o.worker) continue;
      std::optional<pass::AblationStart> start = StartFrom(*configs, i, out.string(), model, eval_key, o.no_eval);
      if (start && !o.quiet) std::cerr << "ablate: " << c.key << " starts from " << start->key << "'s model\n";
      auto row = pass::RunAblationConfig(r, c, o.stable, start ? &*start : nullptr);
      return row.ok() ? 0 : Fail("ablate: configuration " + c.key + ": " + row.status().message());
    }
    return Fail("ablate: --worker " + o.worker + ": no such configuration in this plan");
  }

  if (o.report_only) {  // a study still running or cut short: what has finished
    st = WriteStudy(o, *pipeline, *steps, *configs, model, eval_key);
    return st.ok() ? 0 : Fail("ablate: " + st.message());
  }
  fs::create_directories(logs, ec);
  if (ec) return Fail("ablate: cannot create '" + logs.string() + "': " + ec.message());
  std::vector<pass::AblationConfig> todo;
  for (const pass::AblationConfig& c : *configs)
    if (!pass::FinishedAblationConfig(out.string(), c, model, eval_key)) todo.push_back(c);
  if (!o.quiet)
    std::cerr << "ablate: " << configs->size() << " configurations over " << steps->size() << " steps, "
              << configs->size() - todo.size() << " already finished, " << todo.size() << " to run\n";
  if (!todo.empty() && todo[0].key == "input") {  // first, alone: everything else reuses its evaluation
    auto row = pass::RunAblationConfig(r, todo[0], o.stable);
    if (!row.ok()) return Fail("ablate: the input model: " + row.status().message());
    todo.erase(todo.begin());
  }
  st = RunAll(o, *configs, todo, logs);
  if (!st.ok()) return Fail("ablate: " + st.message());

  st = WriteStudy(o, *pipeline, *steps, *configs, model, eval_key);
  if (!st.ok()) return Fail("ablate: " + st.message());
  return 0;
}

}  // namespace

void AddAblateCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("ablate", "Ablation study of a pipeline's steps: size, latency, WER per configuration");
  auto o = std::make_shared<Opts>();
  pass::CompressRequest& r = o->request;
  sub->add_option("--pipeline", o->pipeline, "Pipeline JSON; passes with one \"step\" name form one step")->required();
  sub->add_option("--model", r.model, "Input bundle or .onnx (default: experiments/teacher/bundle)");
  sub->add_option("--eval", o->evals,
                  "Eval set MANIFEST, or NAME=MANIFEST[:SPLIT], repeatable: the first is each configuration's own, "
                  "the others evaluate every finished model afterwards (default: the pipeline's, else the "
                  "default eval set)");
  sub->add_option("--split", r.eval_split, "Keep only eval lines whose \"split\" is this (sets without :SPLIT)");
  AddEvalRequestOptions(sub, &r);
  sub->add_option("--mode", o->mode, "cumulative | alone | leave-one-out | all (default)");
  sub->add_option("--jobs", o->jobs, "Configurations run in parallel processes (default 1)");
  sub->add_option("--eval-repeat", o->eval_repeat, "Evaluations per model at most, for stable latency (default 5)");
  sub->add_option("--stable", o->stable,
                  "Latency until stable: per chunk/utterance minima over the runs; stop once a run lowers their "
                  "p50+p90 by no more than this fraction (default 0.05; 0: the fastest of --eval-repeat runs)");
  sub->add_option("--out", r.out, "Output folder: ablation.{json,md,html}, configs/, evals/")->required();
  sub->add_flag("--no-eval", o->no_eval, "Measure sizes only (no WER, no latency)");
  sub->add_flag("--no-wer", o->no_wer,
                "Size and latency only: decode the eval set for latency, report no WER/CER (an untrained model)");
  sub->add_flag("--quiet", o->quiet, "No progress lines");
  sub->add_flag("--report-only", o->report_only,
                "Run nothing: write the report of the configurations finished so far (the rest listed as not finished)");
  sub->add_option("--worker", o->worker, "(internal) run one configuration")->group("");
  set.add(sub, [o, sub]() -> int {
    if (Status flags = CheckEvalRequestFlags("ablate", sub, &o->request); !flags.ok()) return Fail(flags.message());
    return RunAblate(*o);
  });
}

}  // namespace asrc::app

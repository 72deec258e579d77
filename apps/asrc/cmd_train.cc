// asrc train --model MODEL --data MANIFEST --out DIR --steps N [options]
// Trains a single-graph model that already computes its loss (a scalar graph output, the first
// one unless --loss names another), e.g. a transducer ending in ai.asrc RNNTLoss. The graph
// declares as inputs the data feeds of train/data.h it uses (features, feature_lengths, targets,
// target_lengths, decoder_input); batches come from the NeMo manifest through the front end of
// the model's model.json (a bundle folder) or the Kaldi fbank defaults, bucketed under
// --batch-frames, with SpecAugment unless --no-spec-augment. Trainables: the float32
// initializers of rank >= 1 matching --trainable (a regex; all of them by default).
// Writes DIR/checkpoint.ckpt (every --checkpoint-every steps and at the end; --resume continues
// from it), DIR/model.onnx (the graph with the trained weights, loss included) and
// DIR/train_log.jsonl (one line per step); an OUT with a checkpoint is refused without --resume.
// The warmup-cosine schedule reaches --min-lr at --steps (resuming with a larger --steps stretches
// the rest of it). Ctrl-C stops after the current step, saves the checkpoint and the model, exits 0.
// Distillation: --teacher T.onnx, a one-graph model run on each batch (on the feeds it declares);
// its first output is fed to the student graph as "teacher_logits" (e.g. the teacher input of an
// ai.asrc TransducerKLLoss in the student's graph).
// A transducer bundle folder (several graphs, model.json) trains as a whole through the distill
// pass (passes/distill.h, train/transducer.h): --loss rnnt | kd | rnnt+kd (default rnnt, or
// rnnt+kd with --teacher BUNDLE), --kd-form, --alpha, --dev-split (dev loss and greedy WER every
// --eval-every steps; --best-by wer|loss picks the best weights), --tempo (feature-domain tempo
// perturbation), SpecAugment unless --no-spec-augment; it writes DIR/checkpoint.ckpt (every
// --checkpoint-every steps, at the end, on Ctrl-C; --resume continues exactly), DIR/train_log.jsonl
// (one line per step with the batch's utterance ids, one per dev measurement), DIR/last (the
// weights of the last step) and DIR/best (those of the best dev score; = last without
// --dev-split) as bundles. A NaN loss stops with an error naming step and batch; the last
// checkpoint is kept.
// Data-parallel: `mpirun -np N asrc train ...` (train/mpi.h) trains on N shards of each batch
// with --batch-frames per rank and summed gradients; rank 0 logs and writes everything.
#include <atomic>
#include <chrono>
#include <pthread.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <regex>
#include <thread>

#include "cli_checks.h"
#include "commands.h"
#include "onnx/onnx_io.h"
#include "output_safety.h"
#include "passes/distill.h"
#include "runtime/session.h"
#include "train/data.h"
#include "train/mpi.h"
#include "train/trainer.h"

namespace asrc::app {

namespace {

struct TrainArgs {
  std::string model, data, split, out, loss, trainable = ".*", tokens, teacher;
  std::string dev_split, kd_form = "full", best_by = "wer", tempo;
  double alpha = 0.5, epochs = 0;
  int64_t eval_every = 0;
  int64_t steps = 0, batch_frames = 4000, checkpoint_every = 100, warmup = 0, limit = 0, log_every = 10;
  double lr = 1e-3, min_lr = 0, weight_decay = 0.01, clip = 5.0;
  std::string schedule = "warmup-cosine";
  uint64_t seed = 0;
  int threads = 1;
  bool resume = false, no_spec_augment = false;
  std::vector<std::string> given;  // the flags on the command line (CheckTrainArgs)
};

// Flags that only one kind of model uses: given for the other kind, they are refused, not ignored.
const std::vector<std::string> kOneGraphFlags = {"--trainable", "--tokens", "--min-lr", "--schedule", "--clip"};
const std::vector<std::string> kBundleFlags = {"--kd-form", "--alpha", "--dev-split", "--eval-every",
                                               "--best-by", "--tempo", "--epochs"};

// Everything about the flags and --out that needs no data: numbers in range, --out over no input
// and creatable (nothing is created yet).
Status CheckTrainArgs(const TrainArgs& a) {
  const double inf = std::numeric_limits<double>::infinity();
  ASRC_RETURN_IF_ERROR(CheckFlagRanges(
      "train", {{"--lr", a.lr, 0, inf},
                {"--min-lr", a.min_lr, 0, inf},
                {"--weight-decay", a.weight_decay, 0, inf},
                {"--clip", a.clip, 0, inf},
                {"--alpha", a.alpha, 0, 1},
                {"--epochs", a.epochs, 0, inf},
                {"--batch-frames", static_cast<double>(a.batch_frames), 1, inf},
                {"--checkpoint-every", static_cast<double>(a.checkpoint_every), 0, inf},
                {"--warmup", static_cast<double>(a.warmup), 0, inf},
                {"--limit", static_cast<double>(a.limit), 0, inf},
                {"--eval-every", static_cast<double>(a.eval_every), 0, inf}}));
  ASRC_RETURN_IF_ERROR(RefuseOverInputs(a.out, {a.model, a.data, a.teacher, a.tokens}, "--out"));
  return CheckCanCreateFolder(a.out, "--out");
}

// OUT/train_log.jsonl, opened (and OUT created) at its first line: a run that fails before its
// first step or dev measurement leaves nothing behind. --resume appends.
class TrainLog {
 public:
  TrainLog(std::string out, bool append) : out_(std::move(out)), append_(append) {}
  void Write(const nlohmann::json& j) {
    namespace fs = std::filesystem;
    if (!f_.is_open() && !failed_) {
      std::error_code ec;
      fs::create_directories(out_, ec);
      f_.open((fs::path(out_) / "train_log.jsonl").string(), append_ ? std::ios::app : std::ios::trunc);
      failed_ = !f_.is_open();
      if (failed_) std::cerr << "asrc: train: cannot write " << (fs::path(out_) / "train_log.jsonl").string() << "\n";
    }
    if (f_.is_open()) f_ << j.dump() << "\n" << std::flush;
  }

 private:
  std::string out_;
  bool append_;
  bool failed_ = false;
  std::ofstream f_;
};

std::atomic<bool> g_stop{false};

// Ctrl-C without a signal handler: SIGINT is blocked in this thread (and so in every thread it
// starts) and a watcher thread takes it with sigwait. A handler running on a compute thread's
// stack crashed about 1 run in 4 (heap corruption found inside dnnl_sgemm, likely JIT code that
// keeps data below the stack pointer, which a signal frame overwrites).
class SigintWatcher {
 public:
  SigintWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);  // what mpirun sends every rank on Ctrl-C
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    thread_ = std::thread([this] {
      for (int sig = 0; sigwait(&set_, &sig) == 0 && !done_;) g_stop = true;
    });
  }
  ~SigintWatcher() {
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGINT);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t set_, old_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

Result<std::vector<std::string>> ReadTokens(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Error(path + ": cannot open");
  std::vector<std::string> tokens;
  std::string sym;
  int64_t id = 0;
  for (int line = 1; f >> sym >> id; ++line) {
    if (id < 0 || id > 1000000) return Error(path + ":" + std::to_string(line) + ": bad id " + std::to_string(id));
    if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(static_cast<size_t>(id) + 1);
    tokens[static_cast<size_t>(id)] = sym;
  }
  if (tokens.empty()) return Error(path + ": no tokens");
  return tokens;
}

Result<train::Schedule> MakeSchedule(const TrainArgs& a) {
  if (a.schedule == "constant") return train::Schedule::Constant(a.lr);
  if (a.schedule == "warmup-cosine") return train::Schedule::WarmupCosine(a.lr, a.warmup, a.steps, a.min_lr);
  if (a.schedule == "noam") return train::Schedule::Noam(a.lr, 256, std::max<int64_t>(a.warmup, 1));
  return Error("--schedule '" + a.schedule + "': expected constant, warmup-cosine or noam");
}

// The bundle loop's options of the distill pass (train/bundle_loop.h) from the flags.
void AddBundleLoopOptions(const TrainArgs& a, nlohmann::json& given) {
  namespace fs = std::filesystem;
  given["best_by"] = a.best_by;
  given["tempo"] = a.tempo;
  given["spec_augment"] = !a.no_spec_augment;
  given["checkpoint"] = (fs::path(a.out) / "checkpoint.ckpt").string();
  given["checkpoint_every"] = a.checkpoint_every;
  given["resume"] = a.resume;
}

// OUT for a bundle run: a checkpoint there without --resume is refused (every rank checks, then
// waits for the others, before rank 0 writes anything; the log creates OUT at its first line).
Status PrepareBundleOut(const TrainArgs& a, train::Collective& world) {
  namespace fs = std::filesystem;
  const fs::path ckpt = fs::path(a.out) / "checkpoint.ckpt";
  if (!a.resume && fs::exists(ckpt))
    return Error(ckpt.string() + " exists: pass --resume to continue that run, or choose another --out");
  if (a.resume && !fs::exists(ckpt)) return Error("--resume: " + ckpt.string() + " does not exist");
  for (const char* dir : {"best", "last"}) {  // saved over at the end: only a bundle may be there
    const fs::path p = fs::path(a.out) / dir;
    std::error_code ec;
    if (fs::exists(p, ec) && !fs::is_directory(p, ec))
      return Error("--out: " + p.string() + " exists and is not a folder; refusing to replace it");
    ASRC_RETURN_IF_ERROR(CheckReplaceableBundleFolder(p.string()).With("--out"));
  }
  return world.Barrier().With("--out '" + a.out + "'");
}

// A whole transducer bundle, through the distill pass's training loop.
int RunTrainBundle(const TrainArgs& a, ir::Model model, train::Collective* world) {
  namespace fs = std::filesystem;
  ir::Model teacher;
  if (!a.teacher.empty()) {
    auto t = onnx_io::LoadModel(a.teacher);
    if (!t.ok()) return Fail("--teacher: " + t.status().message());
    teacher = std::move(*t);
  }
  std::string loss = a.loss.empty() ? (a.teacher.empty() ? "rnnt" : "rnnt+kd") : a.loss;
  nlohmann::json given = {{"loss", loss},        {"kd_form", a.kd_form},         {"alpha", a.alpha},
                          {"steps", a.steps},    {"epochs", a.epochs},           {"lr", a.lr},
                          {"warmup", a.warmup},  {"weight_decay", a.weight_decay}, {"batch_frames", a.batch_frames},
                          {"data", a.data},      {"split", a.split},             {"limit", a.limit},
                          {"dev_split", a.dev_split}, {"eval_every", a.eval_every}, {"seed", a.seed},
                          {"threads", a.threads}, {"log_every", a.log_every}};
  AddBundleLoopOptions(a, given);
  passes::DistillPass pass;
  pass.collective = world;
  auto opts = pass::ValidateOptions(pass.options(), given, "asrc train");
  if (!opts.ok()) return Fail(opts.status().message());
  pass::PassContext ctx(*opts, a.seed);
  ctx.teacher = a.teacher.empty() ? nullptr : &teacher;
  ir::Model last;
  pass.last = &last;
  pass.stop = &g_stop;
  TrainLog log(a.out, a.resume);
  if (Status st = PrepareBundleOut(a, *world); !st.ok()) return Fail(st.message());
  pass.on_log = [&log](const nlohmann::json& j) { log.Write(j); };
  auto r = pass.Run(model, ctx);
  if (!r.ok()) return Fail(r.status().message());
  if (world->Rank() > 0) return 0;  // rank 0 reports and writes
  for (const std::string& n : ctx.notes()) std::cerr << n << "\n";
  for (auto& [dir, m] : std::vector<std::pair<std::string, ir::Model*>>{{"best", &model}, {"last", &last}}) {
    const std::string path = (fs::path(a.out) / dir).string();
    Status sv = onnx_io::SaveModel(*m, path);
    if (!sv.ok()) return Fail(sv.message());
    std::cerr << "wrote " << path << "\n";
  }
  return 0;
}

// The float initializers of rank >= 1 whose names match --trainable.
Result<std::vector<std::string>> SelectTrainables(const ir::Graph& graph, const std::string& pattern) {
  std::regex re;
  try {
    re = std::regex(pattern);
  } catch (const std::regex_error& e) {
    return Error("--trainable '" + pattern + "': " + e.what());
  }
  std::vector<std::string> names;
  for (ir::Value* v : graph.initializers)
    if (v->initializer->dtype() == ir::DType::Float32 && v->initializer->rank() >= 1 && std::regex_match(v->name, re))
      names.push_back(v->name);
  return names;
}

// --teacher for one-graph training: the model and a session that runs it on each batch.
Status LoadOneGraphTeacher(const TrainArgs& a, ir::Model* model, std::unique_ptr<runtime::Session>* session) {
  auto tm = onnx_io::LoadModel(a.teacher);
  if (!tm.ok()) return tm.status();
  *model = std::move(*tm);
  if (model->graphs.size() != 1) return Error("--teacher '" + a.teacher + "': expected one graph");
  runtime::SessionOptions so;
  so.threads = a.threads;
  auto ts = runtime::Session::Create(*model->graphs[0].graph, model->graphs[0].opset(""), so);
  if (!ts.ok()) return Error("--teacher '" + a.teacher + "': " + ts.status().message());
  *session = std::move(*ts);
  return Status::Ok();
}

int RunTrain(const TrainArgs& a) {
  namespace fs = std::filesystem;
  // From the start, so a Ctrl-C while the data loads still ends in a checkpoint (after one step).
  SigintWatcher sigint;
  if (Status st = CheckTrainArgs(a); !st.ok()) return Fail(st.message());
  auto world_or = train::World();
  if (!world_or.ok()) return Fail(world_or.status().message());
  train::Collective* world = *world_or;
  const bool rank0 = world->Rank() == 0;
  auto model = onnx_io::LoadModel(a.model);
  if (!model.ok()) return Fail(model.status().message());
  const bool bundle = model->graphs.size() > 1 && model->config.contains("model_type");
  Status kind = bundle ? RefuseUnusedFlags("train", a.given, kOneGraphFlags, "applies to one-graph models only")
                       : RefuseUnusedFlags("train", a.given, kBundleFlags, "applies to transducer bundles only");
  if (!kind.ok()) return Fail(kind.message());
  if (bundle) return RunTrainBundle(a, std::move(*model), world);
  if (model->graphs.size() != 1)
    return Fail(a.model + ": holds " + std::to_string(model->graphs.size()) +
                " graphs but no model.json model_type; asrc train takes one graph that computes its loss, or a transducer bundle");
  ir::GraphFile& gf = model->graphs[0];
  ir::Graph& graph = *gf.graph;
  std::string loss = a.loss.empty() && !graph.outputs.empty() ? graph.outputs[0]->name : a.loss;
  std::vector<std::string> tokens = model->tokens;
  if (!a.tokens.empty()) {
    auto t = ReadTokens(a.tokens);
    if (!t.ok()) return Fail(t.status().message());
    tokens = *t;
  }
  if (tokens.empty()) return Fail(a.model + ": no tokens.txt in the model; give --tokens FILE");
  asr::FbankOptions fbank;
  if (model->config.contains("frontend")) {
    auto fb = asr::FbankOptions::FromJson(model->config["frontend"]);
    if (!fb.ok()) return Fail(a.model + ": model.json " + fb.status().message());
    fbank = *fb;
  }
  auto trainables = SelectTrainables(graph, a.trainable);
  if (!trainables.ok()) return Fail(trainables.status().message());
  auto sched = MakeSchedule(a);
  if (!sched.ok()) return Fail(sched.status().message());

  auto utts = train::LoadUtterances(a.data, a.split, fbank, tokens, a.limit);
  if (!utts.ok()) return Fail(utts.status().message());
  train::TrainerOptions opt;
  opt.opset = gf.opset("");
  opt.threads = a.threads;
  opt.adamw.weight_decay = a.weight_decay;
  opt.schedule = *sched;
  opt.clip_norm = a.clip;
  opt.seed = a.seed;
  opt.collective = world;
  auto trainer = train::Trainer::Create(graph, loss, *trainables, opt);
  if (!trainer.ok()) return Fail(a.model + ": " + trainer.status().message());
  const std::string ckpt = (fs::path(a.out) / "checkpoint.ckpt").string();
  if (!a.resume && fs::exists(ckpt))
    return Fail(ckpt + " exists: pass --resume to continue that run, or choose another --out");
  if (a.resume) {
    Status st = (*trainer)->LoadCheckpoint(ckpt);
    if (!st.ok()) return Fail("--resume: " + st.message());
    if (rank0) std::cerr << "resumed from " << ckpt << " at step " << (*trainer)->step() << "\n";
  }
  TrainLog log(a.out, a.resume);  // rank 0 logs and writes; the other ranks only train
  const auto start = std::chrono::steady_clock::now();
  const int64_t first = (*trainer)->step();
  train::LoopOptions loop;
  loop.steps = a.steps;
  loop.checkpoint = rank0 ? ckpt : "";
  loop.checkpoint_every = a.checkpoint_every;
  loop.stop = &g_stop;
  loop.on_step = [&](const train::StepStats& s) {
    if (!rank0) return;
    nlohmann::json j = {{"step", s.step}, {"loss", s.loss}, {"lr", s.lr}, {"grad_norm", s.grad_norm}};
    log.Write(j);
    if (s.step % a.log_every == 0 || s.step == a.steps) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      double per = secs / static_cast<double>(s.step - first);
      std::fprintf(stderr, "step %lld/%lld  loss %.4f  lr %.3g  |g| %.3g  %.2f s/step  ETA %.0f s\n",
                   static_cast<long long>(s.step), static_cast<long long>(a.steps), s.loss, s.lr, s.grad_norm, per,
                   per * static_cast<double>(a.steps - s.step));
    }
  };
  // --batch-frames is per rank: N ranks cut the batches of one process with N times the cap.
  train::BatchFn batches = train::EpochBatches(
      *utts, a.batch_frames * world->Size(), fbank.feature_dim(),
      a.no_spec_augment ? train::SpecAugmentOptions::None() : train::SpecAugmentOptions{}, a.seed);
  batches = train::ShardBatches(std::move(batches), *world, train::LossIsSum(graph, loss));
  ir::Model teacher_model;
  std::unique_ptr<runtime::Session> teacher;
  if (!a.teacher.empty()) {
    if (Status ts = LoadOneGraphTeacher(a, &teacher_model, &teacher); !ts.ok()) return Fail(ts.message());
    batches = train::WithTeacher(std::move(batches), *teacher);
  }
  Status st = (*trainer)->Train(batches, loop);
  if (!st.ok()) return Fail(st.message());
  st = train::CheckSameWeights(*world, (*trainer)->weights(), (*trainer)->step());
  if (!st.ok()) return Fail(st.message());
  if (!rank0) return 0;
  // The trained weights go back into a fresh copy of the model (the training graph was changed).
  auto out_model = onnx_io::LoadModel(a.model);
  if (!out_model.ok()) return Fail(out_model.status().message());
  Status cp = (*trainer)->CopyWeightsTo(*out_model->graphs[0].graph);
  if (!cp.ok()) return Fail(cp.message());
  out_model->is_bundle = false;
  const std::string out_path = (fs::path(a.out) / "model.onnx").string();
  onnx_io::SaveOptions so;
  so.check = false;  // ai.asrc loss ops have no ONNX schema
  Status sv = onnx_io::SaveModel(*out_model, out_path, so);
  if (!sv.ok()) return Fail(sv.message());
  std::cerr << (g_stop ? "interrupted" : "trained") << " at step " << (*trainer)->step() << "; wrote " << ckpt
            << " and " << out_path << "\n";
  return 0;
}

}  // namespace

void AddTrainCommand(CLI::App& root, CommandSet& set) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* sub = root.add_subcommand("train", "train a transducer bundle, or a single-graph model that computes its loss");
  sub->add_option("--model", args->model, "a .onnx file (or one-graph bundle folder) whose graph outputs the loss")
      ->required();
  sub->add_option("--data", args->data, "NeMo-style JSONL manifest")->required();
  sub->add_option("--split", args->split, "manifest split to train on (default: all lines)");
  sub->add_option("--out", args->out, "output folder: checkpoint.ckpt, model.onnx, train_log.jsonl")->required();
  sub->add_option("--steps", args->steps, "optimizer steps")->required()->check(CLI::Range(int64_t{1}, int64_t{1000000000}));
  sub->add_option("--loss", args->loss,
                  "one graph: the value holding the loss (default: the first graph output); a bundle: rnnt | kd | rnnt+kd");
  sub->add_option("--kd-form", args->kd_form, "bundle: full | collapsed KL");
  sub->add_option("--alpha", args->alpha, "bundle: KD weight in rnnt+kd");
  sub->add_option("--dev-split", args->dev_split, "bundle: split whose greedy WER (or loss, --best-by) picks the best weights");
  sub->add_option("--eval-every", args->eval_every, "bundle: steps between dev loss + WER (0: start and end)");
  sub->add_option("--best-by", args->best_by, "bundle: wer | loss, the dev score that picks DIR/best")
      ->check(CLI::IsMember({"wer", "loss"}));
  sub->add_option("--tempo", args->tempo, "bundle: tempo perturbation factors, e.g. 0.9,1.0,1.1 (default: off)");
  sub->add_option("--epochs", args->epochs, "bundle: passes over the data instead of --steps");
  sub->add_option("--trainable", args->trainable, "regex over initializer names to train (default .*)");
  sub->add_option("--tokens", args->tokens, "tokens.txt when the model has none");
  sub->add_option("--teacher", args->teacher,
                  "one-graph teacher whose first output feeds 'teacher_logits'; with a bundle: a teacher bundle");
  sub->add_option("--lr", args->lr, "peak learning rate (noam: the factor)");
  sub->add_option("--min-lr", args->min_lr, "warmup-cosine floor");
  sub->add_option("--warmup", args->warmup, "warmup steps");
  sub->add_option("--schedule", args->schedule, "constant | warmup-cosine | noam");
  sub->add_option("--weight-decay", args->weight_decay, "AdamW decoupled weight decay");
  sub->add_option("--clip", args->clip, "clip the global gradient norm (0: off)");
  sub->add_option("--batch-frames", args->batch_frames, "cap on padded frames per batch");
  sub->add_option("--checkpoint-every", args->checkpoint_every, "steps between checkpoints (0: only at the end)");
  sub->add_option("--limit", args->limit, "use at most this many utterances");
  sub->add_option("--seed", args->seed, "seed of batch order and SpecAugment");
  sub->add_option("--threads", args->threads, "intra-op threads")->check(CLI::Range(1, 64));
  sub->add_option("--log-every", args->log_every, "steps between progress lines")->check(CLI::Range(int64_t{1}, int64_t{1000000000}));
  sub->add_flag("--resume", args->resume, "continue from OUT/checkpoint.ckpt");
  sub->add_flag("--no-spec-augment", args->no_spec_augment, "no SpecAugment masks");
  set.add(sub, [args, sub] {
    for (const auto* list : {&kOneGraphFlags, &kBundleFlags})
      for (const std::string& f : *list)
        if (sub->count(f) > 0) args->given.push_back(f);
    return train::FinishWorld(RunTrain(*args));
  });
}

}  // namespace asrc::app

#include "passes/distill.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "asr/stream.h"
#include "onnx/onnx_io.h"
#include "train/bundle_loop.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/mpi.h"
#include "train/transducer.h"

namespace asrc::passes {
namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string Fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

Result<std::vector<train::Utterance>> Load(const std::string& manifest, const std::string& split,
                                           const asr::BundleConfig& cfg, int64_t limit) {
  auto u = train::LoadUtterances(manifest, split, cfg.frontend, cfg.tokens, limit);
  if (!u.ok()) return u.status().With("distill: data");
  if (u->empty()) return Error("distill: data: " + manifest + " has no utterance in split '" + split + "'");
  return u;
}

// The loop's options from the pass options (train/bundle_loop.h); `dev` must outlive them.
Result<train::BundleLoopOptions> LoopOptions(const pass::PassContext& ctx, const ir::Model& model,
                                             const std::vector<train::Utterance>& dev) {
  train::BundleLoopOptions lo;
  lo.seed = static_cast<uint64_t>(ctx.GetInt("seed"));
  if (ctx.GetBool("spec_augment")) lo.augment.spec = train::SpecAugmentOptions{};
  auto tempo = train::ParseTempo(ctx.GetString("tempo"));
  if (!tempo.ok()) return tempo.status().With("distill: option 'tempo'");
  lo.augment.tempo = *tempo;
  lo.checkpoint = ctx.GetString("checkpoint");
  lo.checkpoint_every = ctx.GetInt("checkpoint_every");
  lo.resume = ctx.GetBool("resume");
  if ((lo.resume || lo.checkpoint_every > 0) && lo.checkpoint.empty())
    return Error("distill: options 'resume' and 'checkpoint_every' need option 'checkpoint' (a file path)");
  if (!lo.checkpoint.empty() && !lo.resume)  // a resumed one is read first, and refused unless a checkpoint
    ASRC_RETURN_IF_ERROR(train::CheckCheckpointTarget(lo.checkpoint, {ctx.GetString("data"), ctx.GetString("teacher")})
                             .With("distill: option 'checkpoint'"));
  for (const auto& u : dev) lo.dev.push_back(&u);
  if (!dev.empty()) {
    lo.model = &model;
    lo.dev_manifest = ctx.GetString("data");
    lo.dev_split = ctx.GetString("dev_split");
    lo.dev_limit = ctx.GetInt("dev_limit");
  }
  lo.eval_every = ctx.GetInt("eval_every");
  lo.best_by = ctx.GetString("best_by");
  lo.threads = static_cast<int>(ctx.GetInt("threads"));
  lo.log_every = ctx.GetInt("log_every");
  return lo;
}

}  // namespace

std::vector<pass::OptionSpec> DistillPass::options() const {
  return {
      {"teacher", "", "teacher bundle folder; \"\" = the pipeline's input model", {}},
      {"loss", "rnnt+kd", "rnnt | kd | rnnt+kd (alpha * KD + (1 - alpha) * RNN-T)", {"rnnt", "kd", "rnnt+kd"}},
      {"kd_form", "full", "full KL over the vocabulary, or collapsed (label, blank, rest)", {"full", "collapsed"}},
      {"alpha", 0.5, "KD weight in rnnt+kd", {}, 0, 1},
      {"steps", int64_t{100}, "optimizer steps (used when epochs is 0)", {}, 1, 1e9},
      {"epochs", 0.0, "when > 0: train this many passes over the data instead of `steps`", {}, 0, 1e6},
      {"lr", 1e-4, "peak learning rate (AdamW; linear warmup, then cosine to lr/10)", {}, 0, 1},
      {"warmup", int64_t{10}, "warmup steps", {}, 0, 1e9},
      {"weight_decay", 0.0, "AdamW decoupled weight decay", {}, 0, 1},
      {"batch_frames", int64_t{3000}, "feature frames per batch (length buckets)", {}, 1, 1e9},
      {"data", "", "training manifest (NeMo JSONL); required", {}},
      {"split", "train", "manifest split to train on", {}},
      {"limit", int64_t{0}, "at most this many training utterances (0: all)", {}, 0, 1e9},
      {"dev_split", "", "split whose loss and greedy WER are measured; the best weights seen are kept", {}},
      {"dev_limit", int64_t{16}, "dev utterances (0: all)", {}, 0, 1e9},
      {"eval_every", int64_t{0}, "measure the dev loss and WER every this many steps (0: start and end only)", {}, 0, 1e9},
      {"best_by", "wer", "which dev score picks the best weights: wer (ties: loss) or loss", {"wer", "loss"}},
      {"spec_augment", false, "SpecAugment: 2 frequency masks of <= 15 bins, 2 time masks of <= 5% each", {}},
      {"tempo", "", "tempo perturbation factors drawn per utterance, e.g. \"0.9,1.0,1.1\" (\"\": off)", {}},
      {"checkpoint", "", "checkpoint file (weights, AdamW state, step, RNG, data position, best weights); \"\": none", {}},
      {"checkpoint_every", int64_t{0}, "also write the checkpoint every this many steps (0: at the end only)", {}, 0, 1e9},
      {"resume", false, "continue from `checkpoint`", {}},
      {"seed", int64_t{1}, "batch shuffling seed", {}, 0, 1e18},
      {"threads", int64_t{1}, "threads per training session", {}, 1, 256},
      {"freeze", "feat_mean|feat_istd", "regex over initializer names kept fixed", {}},
      {"label_pad", int64_t{16}, "labels padded to a multiple of this (fewer composed graphs to plan)", {}, 1, 1024},
      {"chunk_pad", int64_t{4}, "causal chunks padded to a multiple of this (fewer graphs, more compute)", {}, 1, 1024},
      {"log_every", int64_t{10}, "print the loss every this many steps to stderr (0: never)", {}, 0, 1e9},
  };
}

Result<bool> DistillPass::Run(ir::Model& model, pass::PassContext& ctx) {
  // Everything that can be wrong with the input is checked before the first step.
  ir::Model loaded;
  const ir::Model* teacher = ctx.teacher;
  const std::string teacher_path = ctx.GetString("teacher");
  if (!teacher_path.empty()) {
    auto t = onnx_io::LoadModel(teacher_path);
    if (!t.ok()) return t.status().With("distill: teacher '" + teacher_path + "'");
    loaded = std::move(t).value();
    teacher = &loaded;
  }
  ASRC_ASSIGN_OR_RETURN(train::TransducerLoss loss, train::TransducerLoss::Parse(ctx.GetString("loss"),
                                                                                 ctx.GetString("kd_form"),
                                                                                 ctx.GetFloat("alpha")));
  if (loss.kd && !teacher)
    return Error("distill: loss '" + ctx.GetString("loss") + "' needs a teacher (option 'teacher', or run in a pipeline)");
  const std::string data = ctx.GetString("data");
  if (data.empty()) return Error("distill: option 'data' is required (a NeMo manifest with a training split)");
  train::TransducerTrainOptions opt;
  opt.loss = loss;
  opt.freeze = ctx.GetString("freeze");
  opt.threads = static_cast<int>(ctx.GetInt("threads"));
  opt.label_pad = ctx.GetInt("label_pad");
  opt.chunk_pad = ctx.GetInt("chunk_pad");
  opt.adamw.weight_decay = ctx.GetFloat("weight_decay");
  opt.collective = collective;
  auto made = train::TransducerTrainer::Create(model, loss.kd ? teacher : nullptr, opt);
  if (!made.ok()) return made.status().With("distill");
  std::unique_ptr<train::TransducerTrainer> trainer = std::move(made).value();
  const asr::BundleConfig& cfg = trainer->config();
  ASRC_ASSIGN_OR_RETURN(auto utts, Load(data, ctx.GetString("split"), cfg, ctx.GetInt("limit")));
  std::vector<train::Utterance> dev;
  const std::string dev_split = ctx.GetString("dev_split");
  if (!dev_split.empty()) {
    ASRC_ASSIGN_OR_RETURN(dev, Load(data, dev_split, cfg, ctx.GetInt("dev_limit")));
  }

  std::mt19937_64 shuffle(static_cast<uint64_t>(ctx.GetInt("seed")));
  // batch_frames is per data-parallel rank: N ranks share the batches of N times the cap.
  const int64_t max_frames = ctx.GetInt("batch_frames") * (collective ? collective->Size() : 1);
  const double epochs = ctx.GetFloat("epochs");
  const int64_t steps = epochs > 0 ? std::max<int64_t>(1, std::llround(epochs * train::MakeBuckets(utts, max_frames, shuffle).size()))
                                   : ctx.GetInt("steps");
  const int64_t warmup = std::min(ctx.GetInt("warmup"), steps - 1);
  const double lr = ctx.GetFloat("lr");
  // Reconfigure the schedule now that the step count is known.
  opt.schedule = train::Schedule::WarmupCosine(lr, warmup, steps, lr / 10);
  made = train::TransducerTrainer::Create(model, loss.kd ? teacher : nullptr, opt);
  if (!made.ok()) return made.status().With("distill");
  trainer = std::move(made).value();

  ASRC_ASSIGN_OR_RETURN(train::BundleLoopOptions lo, LoopOptions(ctx, model, dev));
  lo.steps = steps;
  lo.max_frames = max_frames;
  lo.collective = collective;
  lo.stop = stop;
  lo.on_log = on_log;
  auto t0 = std::chrono::steady_clock::now();
  auto run = train::RunBundleLoop(*trainer, utts, lo);
  if (!run.ok()) return Error("distill: " + run.status().message() + " (the model is left as it was)");
  const train::BundleLoopResult& r = *run;
  if (last) {
    *last = model;
    ASRC_RETURN_IF_ERROR(trainer->CopyWeightsTo(*last).With("distill"));
  }
  if (r.best_index >= 0 && !r.best.empty()) trainer->weights() = r.best;
  ctx.Bump("steps", r.last_step - r.first_step + 1);
  ctx.Bump("utterances", r.utterances);
  ctx.Bump("tokens", r.tokens);
  ctx.Bump("trainable_tensors", static_cast<int64_t>(trainer->trainable_names().size()));
  if (r.last_step < r.first_step)  // resumed at or past `steps`: the checkpoint's weights, no step taken
    ctx.Note("distill: no step taken: the checkpoint is at step " + std::to_string(r.last_step) + " and steps is " +
             std::to_string(steps) + " (give more steps to train on)");
  else
    ctx.Note("distill: steps " + std::to_string(r.first_step) + "-" + std::to_string(r.last_step) + " of " +
             std::to_string(steps) + (r.interrupted ? " (interrupted)" : "") + " in " + Fmt(Seconds(t0)) +
             " s; train loss/token " + Fmt(r.first_loss) + " (step 1) -> " + Fmt(r.recent_loss) + " (last " +
             std::to_string(r.recent_steps) + " steps); " + std::to_string(trainer->plans_built()) +
             " composed graphs planned in " + Fmt(trainer->plan_seconds()) + " s, run " + Fmt(trainer->run_seconds()) + " s");
  if (r.best_index >= 0) {
    const train::DevScore &first = r.dev.front(), &best = r.dev[r.best_index];
    auto score = [](const train::DevScore& d) {
      return "loss/token " + Fmt(d.loss) + (d.wer >= 0 ? ", WER " + Fmt(d.wer) + "%" : "");
    };
    ctx.Note("distill: dev " + score(first) + " (step " + std::to_string(first.step) + ") -> best " + score(best) +
             " (step " + std::to_string(best.step) + ", by " + ctx.GetString("best_by") + ")" +
             (r.best_index == 0 && first.step == 0 ? " (no improvement: weights unchanged)" : ""));
    if (r.best_index == 0 && first.step == 0) return false;  // training never beat the start
  }
  ASRC_RETURN_IF_ERROR(trainer->CopyWeightsTo(model).With("distill"));
  return true;
}

}  // namespace asrc::passes

#include "passes/distill.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "asr/stream.h"
#include "onnx/onnx_io.h"
#include "train/data.h"
#include "train/mpi.h"
#include "train/transducer.h"

namespace asrc::passes {
namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<const train::Utterance*> Pointers(const std::vector<train::Utterance>& utts,
                                              const std::vector<size_t>& which) {
  std::vector<const train::Utterance*> p;
  for (size_t i : which) p.push_back(&utts[i]);
  return p;
}

std::string BatchId(int64_t epoch, size_t index, const std::vector<const train::Utterance*>& b) {
  std::string id = "epoch " + std::to_string(epoch) + " #" + std::to_string(index) + ": " + b[0]->id;
  if (b.size() > 1) id += " +" + std::to_string(b.size() - 1);
  return id;
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
      {"dev_split", "", "split whose loss is measured; the best weights seen are kept", {}},
      {"dev_limit", int64_t{16}, "dev utterances (0: all)", {}, 0, 1e9},
      {"eval_every", int64_t{0}, "measure the dev loss every this many steps (0: start and end only)", {}, 0, 1e9},
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
  const bool rank0 = !collective || collective->Rank() == 0;
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
  auto buckets = train::MakeBuckets(utts, max_frames, shuffle);
  const double epochs = ctx.GetFloat("epochs");
  const int64_t steps = epochs > 0 ? std::max<int64_t>(1, std::llround(epochs * buckets.size())) : ctx.GetInt("steps");
  const int64_t warmup = std::min(ctx.GetInt("warmup"), steps - 1);
  const double lr = ctx.GetFloat("lr");
  // Reconfigure the schedule now that the step count is known.
  opt.schedule = train::Schedule::WarmupCosine(lr, warmup, steps, lr / 10);
  made = train::TransducerTrainer::Create(model, loss.kd ? teacher : nullptr, opt);
  if (!made.ok()) return made.status().With("distill");
  trainer = std::move(made).value();

  std::vector<const train::Utterance*> dev_ptrs;
  for (const auto& u : dev) dev_ptrs.push_back(&u);
  double best_dev = 0, first_dev = 0;
  std::vector<ir::Tensor> best;
  auto measure_dev = [&](int64_t step) -> Status {
    if (dev_ptrs.empty()) return Status::Ok();
    auto l = trainer->Loss(dev_ptrs);
    if (!l.ok()) return l.status().With("distill: dev loss");
    if (rank0) std::fprintf(stderr, "distill: step %lld dev loss/token %.4f\n", static_cast<long long>(step), *l);
    if (step == 0) first_dev = *l;
    if (step == 0 || *l < best_dev) {
      best_dev = *l;
      best.clear();
      if (step > 0)
        for (const ir::Tensor& w : trainer->weights()) best.push_back(w.Clone());
    }
    return Status::Ok();
  };
  ASRC_RETURN_IF_ERROR(measure_dev(0));

  auto t0 = std::chrono::steady_clock::now();
  const int64_t log_every = ctx.GetInt("log_every"), eval_every = ctx.GetInt("eval_every");
  double first_loss = 0, recent = 0;
  int64_t recent_n = 0, tokens = 0, seen = 0;
  for (int64_t s = 1; s <= steps; ++s) {
    const size_t i = static_cast<size_t>((s - 1) % buckets.size());
    const int64_t epoch = (s - 1) / static_cast<int64_t>(buckets.size());
    if (i == 0 && s > 1) buckets = train::MakeBuckets(utts, max_frames, shuffle);
    auto batch = Pointers(utts, buckets[i]);
    auto st = trainer->Step(batch, BatchId(epoch, i, batch));
    if (!st.ok()) return Error("distill: " + st.status().message() + " (the model is left as it was)");
    if (s == 1) first_loss = st->loss;
    recent += st->loss;
    ++recent_n;
    seen += static_cast<int64_t>(batch.size());
    for (const auto* u : batch) tokens += static_cast<int64_t>(u->labels.size());
    if (log_every > 0 && (s % log_every == 0 || s == steps)) {
      const double el = Seconds(t0);
      if (rank0)
        std::fprintf(stderr, "distill: step %lld/%lld loss/token %.4f lr %.2e grad %.2f  %.2f steps/s  eta %.0f s\n",
                   static_cast<long long>(s), static_cast<long long>(steps), recent / recent_n, st->lr,
                   st->grad_norm, s / el, (steps - s) * el / s);
      if (s < steps) recent = 0, recent_n = 0;
    }
    if (eval_every > 0 && s % eval_every == 0 && s < steps) ASRC_RETURN_IF_ERROR(measure_dev(s));
  }
  ASRC_RETURN_IF_ERROR(measure_dev(steps));
  if (last) {
    *last = model;
    ASRC_RETURN_IF_ERROR(trainer->CopyWeightsTo(*last).With("distill"));
  }
  if (!best.empty()) trainer->weights() = std::move(best);
  ctx.Bump("steps", steps);
  ctx.Bump("utterances", seen);
  ctx.Bump("tokens", tokens);
  ctx.Bump("trainable_tensors", static_cast<int64_t>(trainer->trainable_names().size()));
  ctx.Note("distill: " + std::to_string(steps) + " steps in " + Fmt(Seconds(t0)) + " s; train loss/token " +
           Fmt(first_loss) + " (step 1) -> " + Fmt(recent / std::max<int64_t>(1, recent_n)) + " (last " +
           std::to_string(recent_n) + " steps); " + std::to_string(trainer->plans_built()) +
           " composed graphs planned in " + Fmt(trainer->plan_seconds()) + " s, run " + Fmt(trainer->run_seconds()) + " s");
  if (!dev_ptrs.empty())
    ctx.Note("distill: dev loss/token " + Fmt(first_dev) + " -> best " + Fmt(best_dev) +
             (best.empty() && best_dev == first_dev ? " (no improvement: weights unchanged)" : ""));
  if (!dev_ptrs.empty() && best_dev == first_dev) return false;  // training never beat the start
  ASRC_RETURN_IF_ERROR(trainer->CopyWeightsTo(model).With("distill"));
  return true;
}

}  // namespace asrc::passes

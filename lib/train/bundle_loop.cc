// RunBundleLoop (train/bundle_loop.h).
#include "train/bundle_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "asr/eval.h"
#include "train/mpi.h"

namespace asrc::train {

Result<std::vector<double>> ParseTempo(const std::string& text) {
  std::vector<double> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    char* end = nullptr;
    const double f = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(f >= 0.5 && f <= 2.0))
      return Error("tempo factors '" + text + "': '" + item + "' is not a number in [0.5, 2]");
    out.push_back(f);
  }
  return out;
}

namespace {

// The frames of `frames` resampled by tempo factor f.
int64_t TempoFrames(int64_t frames, double f) {
  return f != 1.0 && frames > 1 ? std::max<int64_t>(1, std::llround(static_cast<double>(frames) / f)) : frames;
}

}  // namespace

AugmentDraw DrawAugment(const Utterance& u, int64_t feature_dim, const AugmentOptions& a, std::mt19937_64& rng) {
  AugmentDraw d;
  if (!a.tempo.empty()) d.tempo = a.tempo[rng() % a.tempo.size()];
  d.masks = DrawSpecAugment(TempoFrames(u.frames, d.tempo), feature_dim, a.spec, rng);
  return d;
}

Utterance ApplyAugment(const Utterance& u, int64_t feature_dim, const AugmentDraw& d) {
  Utterance out = u;
  const double f = d.tempo;
  if (f != 1.0 && u.frames > 1) {
    out.frames = TempoFrames(u.frames, f);
    // Output frame i samples the input at time i * f, linearly between its two neighbours.
    out.features.assign(static_cast<size_t>(out.frames * feature_dim), 0.f);
    for (int64_t i = 0; i < out.frames; ++i) {
      const double x = std::min(static_cast<double>(i) * f, static_cast<double>(u.frames - 1));
      const int64_t i0 = static_cast<int64_t>(x), i1 = std::min(i0 + 1, u.frames - 1);
      const float w = static_cast<float>(x - static_cast<double>(i0));
      const float* p0 = u.features.data() + i0 * feature_dim;
      const float* p1 = u.features.data() + i1 * feature_dim;
      float* q = out.features.data() + i * feature_dim;
      for (int64_t k = 0; k < feature_dim; ++k) q[k] = (1 - w) * p0[k] + w * p1[k];
    }
  }
  ApplySpecAugment(out.features.data(), out.frames, feature_dim, d.masks);
  return out;
}

Utterance AugmentUtterance(const Utterance& u, int64_t feature_dim, const AugmentOptions& a, std::mt19937_64& rng) {
  return ApplyAugment(u, feature_dim, DrawAugment(u, feature_dim, a, rng));
}

namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string BatchId(int64_t epoch, int64_t index, const std::vector<const Utterance*>& b) {
  std::string id = "epoch " + std::to_string(epoch) + " #" + std::to_string(index) + ": ";
  for (size_t k = 0; k < b.size(); ++k) id += (k ? "," : "") + b[k]->id;
  return id;
}

// One vector per trainable (trainable_names() order) from one per parameter: a tied weight is its
// parameter's tensor.
std::vector<ir::Tensor> Expand(const TransducerTrainer& t, const std::vector<ir::Tensor>& params) {
  std::vector<ir::Tensor> full(t.trainable_names().size());
  std::vector<size_t> index(full.size());
  for (size_t k = 0, j = 0; k < full.size(); ++k)
    if (t.tied_to(k) == k) index[k] = j++;
  for (size_t k = 0; k < full.size(); ++k) full[k] = params[index[t.tied_to(k)]];
  return full;
}

std::vector<ir::Tensor> Parameters(const TransducerTrainer& t, const std::vector<ir::Tensor>& full) {
  std::vector<ir::Tensor> p;
  for (size_t k = 0; k < full.size(); ++k)
    if (t.tied_to(k) == k) p.push_back(full[k]);
  return p;
}

bool Better(const DevScore& a, const DevScore& b, const std::string& by) {
  if (by == "wer" && a.wer >= 0 && b.wer >= 0 && a.wer != b.wer) return a.wer < b.wer;
  return a.loss < b.loss;
}

bool Lead(const BundleLoopOptions& o) { return !o.collective || o.collective->Rank() == 0; }

// The greedy dev WER (look-ahead mode) of the current weights; -1: the dev set has no words.
Result<double> MeasureWer(TransducerTrainer& t, const BundleLoopOptions& o) {
  ir::Model m = *o.model;
  ASRC_RETURN_IF_ERROR(t.CopyWeightsTo(m));
  asr::EvalOptions e;
  e.streaming = false;  // look-ahead mode: the final transcripts (of a cascaded model too)
  e.lookahead = true;
  e.split = o.dev_split;
  e.limit = static_cast<int>(o.dev_limit);
  e.threads = o.threads;
  auto r = asr::Evaluate(m, o.dev_manifest, e);
  if (!r.ok()) return r.status().With("dev WER");
  return r->lookahead && r->lookahead->words > 0 ? r->lookahead->wer : -1.0;
}

// The greedy dev WER of the current weights (-1: no words), measured on rank 0 only and sent to
// the other ranks (a sum where they add 0), so that every rank picks the same best weights; a
// failure on rank 0 is an error on every rank.
Result<double> DevWer(TransducerTrainer& t, const BundleLoopOptions& o) {
  if (!o.collective || o.collective->Size() == 1) return MeasureWer(t, o);
  Result<double> wer = 0.0;  // what ranks > 0 add
  if (Lead(o)) wer = MeasureWer(t, o);
  double v[2] = {wer.ok() ? *wer : 0.0, wer.ok() ? 0.0 : 1.0};  // {WER, rank 0 failed}
  ASRC_RETURN_IF_ERROR(o.collective->AllReduceSum(v, 2).With("dev WER: sending rank 0's result"));
  if (!wer.ok()) return wer.status();
  if (v[1] > 0) return Error("dev WER: failed on rank 0");
  return v[0];
}

Result<DevScore> MeasureDev(TransducerTrainer& t, const BundleLoopOptions& o) {
  DevScore d;
  d.step = t.step();
  if (!o.dev.empty()) {  // sharded and summed over the ranks by the trainer: the same everywhere
    auto l = t.Loss(o.dev);
    if (!l.ok()) return l.status().With("dev loss");
    d.loss = *l;
  }
  if (o.model && !o.dev_manifest.empty()) {
    ASRC_ASSIGN_OR_RETURN(d.wer, DevWer(t, o));
  }
  return d;
}

struct LoopState {
  TransducerTrainer& t;
  const std::vector<Utterance>& utts;
  const BundleLoopOptions& o;
  std::mt19937_64 rng;
  int64_t n = 0;  // batches per epoch
  BundleLoopResult r;

  nlohmann::json DevJson() const {
    nlohmann::json a = nlohmann::json::array();
    for (const DevScore& d : r.dev) a.push_back({{"step", d.step}, {"loss", d.loss}, {"wer", d.wer}});
    return a;
  }

  Status Save() const {
    if (o.checkpoint.empty() || !Lead(o)) return Status::Ok();  // rank 0 writes for all ranks
    std::ostringstream rs;
    rs << rng;
    const int64_t s = t.step();
    nlohmann::json h = {{"seed", o.seed},   {"rng", rs.str()},      {"batches_per_epoch", n},
                        {"epoch", s / n},   {"batch_index", s % n}, {"first_loss", r.first_loss},
                        {"dev", DevJson()}, {"best_index", r.best_index}, {"best_by", o.best_by}};
    std::vector<CheckpointEntry> best;
    const auto names = t.parameter_names();
    const auto params = Parameters(t, r.best);
    for (size_t k = 0; k < params.size(); ++k) best.push_back({names[k], "best", params[k]});
    return t.SaveCheckpoint(o.checkpoint, h, std::move(best));
  }

  // The loop's part of the checkpoint header (its position, RNG, dev scores); a field of the
  // wrong type or out of range is an error naming the file, never a crash.
  Status ReadHeader(const std::string& path, const nlohmann::json& h) {
    try {
      if (h.value("batches_per_epoch", int64_t{-1}) != n || h.value("seed", uint64_t{0}) != o.seed)
        return Error("checkpoint '" + path + "': written for " + h.value("batches_per_epoch", nlohmann::json()).dump() +
                     " batches per epoch and seed " + h.value("seed", nlohmann::json()).dump() + "; this run has " +
                     std::to_string(n) + " and seed " + std::to_string(o.seed) + " (different data or options)");
      std::istringstream rs(h.value("rng", ""));
      if (!(rs >> rng)) return Error("checkpoint '" + path + "': the RNG state does not parse");
      r.first_loss = h.value("first_loss", 0.0);
      r.best_index = h.value("best_index", int64_t{-1});
      for (const auto& d : h.value("dev", nlohmann::json::array()))
        r.dev.push_back({d.value("step", int64_t{0}), d.value("loss", 0.0), d.value("wer", -1.0)});
    } catch (const nlohmann::json::exception& e) {
      return Error("checkpoint '" + path + "': bad header: " + e.what());
    }
    if (r.best_index < -1 || r.best_index >= static_cast<int64_t>(r.dev.size()))
      return Error("checkpoint '" + path + "': best_index " + std::to_string(r.best_index) + " is not one of its " +
                   std::to_string(r.dev.size()) + " dev scores");
    return Status::Ok();
  }

  Status Resume() {
    const std::string& path = o.checkpoint;
    ASRC_RETURN_IF_ERROR(t.Prepare(utts[0]));
    ASRC_ASSIGN_OR_RETURN(CheckpointFile f, t.LoadCheckpoint(path));
    ASRC_RETURN_IF_ERROR(ReadHeader(path, f.header));
    std::vector<ir::Shape> shapes;
    for (const ir::Tensor& p : t.parameters()) shapes.push_back(p.shape());
    std::vector<ir::Tensor> best;
    ASRC_RETURN_IF_ERROR(TakeGroup(path, f, "best", t.parameter_names(), shapes, false, &best));
    if (!best.empty()) r.best = Expand(t, best);
    return Status::Ok();
  }

  // The progress line of step s (rank 0 only), `el` seconds after the loop started.
  void Progress(int64_t s, double lr, double grad_norm, double el) const {
    const double done = static_cast<double>(s - r.first_step + 1);
    std::fprintf(stderr, "train: step %lld/%lld loss/token %.4f lr %.2e grad %.2f  %.2f steps/s  eta %.0f s",
                 static_cast<long long>(s), static_cast<long long>(o.steps), r.recent_loss, lr, grad_norm, done / el,
                 static_cast<double>(o.steps - s) * el / done);
    if (r.best_index >= 0 && r.dev[r.best_index].wer >= 0)
      std::fprintf(stderr, "  best dev WER %.2f%% (step %lld)", r.dev[r.best_index].wer,
                   static_cast<long long>(r.dev[r.best_index].step));
    std::fprintf(stderr, "\n");
  }

  Status Dev() {
    if (o.dev.empty() && (o.dev_manifest.empty() || !o.model)) return Status::Ok();
    if (!r.dev.empty() && r.dev.back().step == t.step()) return Status::Ok();
    ASRC_ASSIGN_OR_RETURN(DevScore d, MeasureDev(t, o));
    r.dev.push_back(d);
    if (r.best_index < 0 || Better(d, r.dev[r.best_index], o.best_by)) {
      r.best_index = static_cast<int64_t>(r.dev.size()) - 1;
      r.best.clear();  // empty: the start's weights
      std::vector<ir::Tensor> p;
      if (d.step > 0)
        for (const ir::Tensor& w : t.parameters()) p.push_back(w.Clone());
      if (!p.empty()) r.best = Expand(t, p);  // a tied weight stays one tensor
    }
    if (!Lead(o)) return Status::Ok();
    std::fprintf(stderr, "train: step %lld dev loss/token %.4f", static_cast<long long>(d.step), d.loss);
    if (d.wer >= 0) std::fprintf(stderr, " WER %.2f%%", d.wer);
    std::fprintf(stderr, "%s\n", r.best_index + 1 == static_cast<int64_t>(r.dev.size()) ? " (best)" : "");
    if (o.on_log) o.on_log({{"step", d.step}, {"dev_loss", d.loss}, {"dev_wer", d.wer}});
    return Status::Ok();
  }
};

// Which rows of a global batch of `rows` this rank trains on (ShardRows; all without `c`).
std::vector<bool> MyRows(size_t rows, const Collective* c) {
  std::vector<bool> mine(rows, c == nullptr);
  if (c)
    for (size_t r : ShardRows(rows, c->Rank(), c->Size())) mine[r] = true;
  return mine;
}

std::string Kept(const std::string& path, int64_t step) {
  if (path.empty() || !std::ifstream(path)) return "; no checkpoint was written";
  return "; the last checkpoint '" + path + "' (step " + std::to_string(step) + ") is kept";
}

}  // namespace

Result<BundleLoopResult> RunBundleLoop(TransducerTrainer& t, const std::vector<Utterance>& utts,
                                       const BundleLoopOptions& o) {
  if (utts.empty()) return Error("train: no training utterances");
  if (o.best_by != "wer" && o.best_by != "loss") return Error("train: best_by '" + o.best_by + "': expected wer or loss");
  if ((o.resume || o.checkpoint_every > 0) && o.checkpoint.empty())
    return Error("train: resume and checkpoint_every need a checkpoint path");
  LoopState L{t, utts, o, std::mt19937_64(o.seed), 0, {}};
  auto buckets_of = [&](int64_t epoch) {
    std::mt19937_64 s(o.seed + static_cast<uint64_t>(epoch));
    return MakeBuckets(utts, o.max_frames, s);
  };
  int64_t epoch = 0;
  auto buckets = buckets_of(0);
  L.n = static_cast<int64_t>(buckets.size());
  if (o.resume) ASRC_RETURN_IF_ERROR(L.Resume().With("--resume"));
  // Every rank has read rank 0's checkpoint before rank 0 may write the next one.
  if (o.collective && o.resume) ASRC_RETURN_IF_ERROR(o.collective->Barrier().With("--resume"));
  ASRC_RETURN_IF_ERROR(L.Dev());
  BundleLoopResult& r = L.r;
  r.first_step = t.step() + 1;
  int64_t saved = o.resume ? t.step() : -1;  // the step of the checkpoint on disk
  const int64_t feature_dim = t.config().frontend.feature_dim();
  const auto t0 = std::chrono::steady_clock::now();
  double window = 0;
  for (int64_t s = t.step() + 1; s <= o.steps; ++s) {
    const int64_t e = (s - 1) / L.n, i = (s - 1) % L.n;
    if (e != epoch) buckets = buckets_of(epoch = e);
    std::vector<const Utterance*> batch;
    std::vector<Utterance> augmented;
    augmented.reserve(buckets[i].size());
    const std::vector<bool> mine = MyRows(buckets[i].size(), o.collective);
    for (size_t row = 0; row < buckets[i].size(); ++row) {
      const Utterance& u = utts[buckets[i][row]];
      if (!o.augment.enabled()) {
        batch.push_back(&u);
        continue;
      }
      // Every rank draws for every row (the RNG stays the same on all); another rank's row
      // stays as it is: this rank's trainer reads only its labels (the batch's token count).
      const AugmentDraw d = DrawAugment(u, feature_dim, o.augment, L.rng);
      if (mine[row]) augmented.push_back(ApplyAugment(u, feature_dim, d));
      batch.push_back(mine[row] ? &augmented.back() : &u);
    }
    const std::string id = BatchId(e, i, batch);
    auto st = t.Step(batch, id);
    if (!st.ok()) return Error(st.status().message() + Kept(o.checkpoint, saved));
    if (s == r.first_step && !o.resume) r.first_loss = st->loss;
    window += st->loss;
    ++r.recent_steps;
    r.utterances += static_cast<int64_t>(batch.size());
    for (const Utterance* u : batch) r.tokens += static_cast<int64_t>(u->labels.size());
    if (o.on_log && Lead(o)) {
      nlohmann::json ids = nlohmann::json::array();
      for (const Utterance* u : batch) ids.push_back(u->id);
      o.on_log({{"step", s}, {"loss", st->loss}, {"lr", st->lr}, {"grad_norm", st->grad_norm}, {"utts", ids}});
    }
    r.recent_loss = window / static_cast<double>(r.recent_steps);
    if (o.log_every > 0 && (s % o.log_every == 0 || s == o.steps)) {
      if (Lead(o)) L.Progress(s, st->lr, st->grad_norm, Seconds(t0));
      if (s < o.steps) window = 0, r.recent_steps = 0;
    }
    if ((o.eval_every > 0 && s % o.eval_every == 0) || s == o.steps) ASRC_RETURN_IF_ERROR(L.Dev());
    r.last_step = s;
    if (AnyRank(o.collective, o.stop && o.stop->load())) {  // all ranks stop after the same step
      r.interrupted = true;
      break;
    }
    if (o.checkpoint_every > 0 && s % o.checkpoint_every == 0 && s < o.steps) {
      ASRC_RETURN_IF_ERROR(L.Save());
      saved = s;
    }
  }
  r.last_step = t.step();
  ASRC_RETURN_IF_ERROR(L.Save());
  if (o.collective) {
    ASRC_RETURN_IF_ERROR(CheckSameWeights(*o.collective, t.weights(), t.step()));
    ASRC_RETURN_IF_ERROR(CheckSameWeights(*o.collective, r.best, t.step()).With("the best weights"));
  }
  return std::move(L.r);
}

}  // namespace asrc::train

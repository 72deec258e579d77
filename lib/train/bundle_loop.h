// The training loop for whole transducer bundles (TransducerTrainer): data order, augmentation,
// checkpoints and resume, dev evaluation with best-weight selection, NaN stops, Ctrl-C.
// Used by the distill pass (and so `asrc train --model BUNDLE`).
//
// Data order: step s (1-based) takes batch (s-1) mod n of epoch (s-1) / n, where the n length
// buckets of an epoch are MakeBuckets' shuffle with an RNG seeded by seed + epoch. It depends on
// the step only, so a resumed run continues at the same position.
// Augmentation (off by default): per utterance of a batch, in this order, drawn from the loop's
// RNG (std::mt19937_64 seeded by `seed`, saved in every checkpoint):
//   tempo: the feature frames are resampled in time by a factor drawn uniformly from `tempo`
//     (e.g. 0.9,1.0,1.1: factor 1.1 = 10% faster = frames / 1.1), linear interpolation between
//     neighbouring frames. This is tempo perturbation in the feature domain (durations change,
//     the spectrum does not), not Kaldi's speed perturbation, which resamples the audio and also
//     shifts the pitch;
//   SpecAugment (Park et al. 2019): frequency and time masks (train/data.h SpecAugment).
// Checkpoint (train/checkpoint.h; every checkpoint_every steps, at the end, and when `stop`
// turns true): the parameters, AdamW's state and step, the RNG, the data position (epoch,
// batch), the dev scores so far and the best weights. resume: continues from it; at one thread
// the losses and weights are then bit-identical to an uninterrupted run's.
// Dev: every eval_every steps (and at step 0 and the end) the dev loss per token (dev_utts) and,
// with a dev manifest, the greedy WER through asr::Evaluate (the recognizer `asrc eval` runs;
// look-ahead mode, i.e. the final transcripts) of the current weights. The best weights are
// chosen by best_by: "wer" (ties: the lower dev loss) or "loss".
// A non-finite loss or gradient stops the loop with an error naming the step, the batch's
// utterance ids and the last checkpoint kept; weights are not updated.
// Data-parallel (collective with N > 1 ranks, train/mpi.h): every rank runs this loop over the
// same data with the same options, so it forms the same global batches (max_frames is the
// global cap: N times the per-rank one) and draws the same augmentation for the whole batch
// (DrawAugment), applying it to its own shard only (ShardRows); the trainer keeps its
// shard of each batch and sums gradients and losses, so all ranks see the same losses, dev loss
// and NaN stops. Rank 0 alone measures the dev WER (sent to the others), prints progress,
// calls on_log and writes the checkpoint; --resume reads it on every rank. `stop` on any rank
// stops all of them after the same step (AnyRank). At the end the ranks' weights (and best
// weights) are compared (CheckSameWeights).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "ir/model.h"
#include "train/data.h"
#include "train/transducer.h"

namespace asrc::train {

class Collective;

struct AugmentOptions {
  SpecAugmentOptions spec = SpecAugmentOptions::None();
  std::vector<double> tempo;  // factors drawn uniformly per utterance; empty: none
  bool enabled() const { return !tempo.empty() || spec.freq_masks > 0 || spec.time_masks > 0; }
};

// Parses "0.9,1.0,1.1" (each factor in [0.5, 2]); "" = none.
Result<std::vector<double>> ParseTempo(const std::string& text);

// A copy of `u` with tempo perturbation and SpecAugment (as above) applied; feature_dim is the
// width of a frame. = ApplyAugment(u, feature_dim, DrawAugment(u, feature_dim, a, rng)).
Utterance AugmentUtterance(const Utterance& u, int64_t feature_dim, const AugmentOptions& a, std::mt19937_64& rng);

// The random part of AugmentUtterance alone: the tempo factor and the masks, drawn from `rng`
// exactly as AugmentUtterance draws them (cheap: no features are touched). A data-parallel rank
// draws for every utterance of the global batch, so that the RNG stays the same on all ranks,
// and applies the draws to its own shard only.
struct AugmentDraw {
  double tempo = 1.0;
  SpecAugmentMasks masks;
};
AugmentDraw DrawAugment(const Utterance& u, int64_t feature_dim, const AugmentOptions& a, std::mt19937_64& rng);
Utterance ApplyAugment(const Utterance& u, int64_t feature_dim, const AugmentDraw& d);

struct DevScore {
  int64_t step = 0;
  double loss = 0;  // per token
  double wer = -1;  // percent; -1: not measured (no dev manifest)
};

struct BundleLoopOptions {
  int64_t steps = 0;         // train until this step
  int64_t max_frames = 3000;  // batch bucket cap
  uint64_t seed = 1;
  AugmentOptions augment;
  std::string checkpoint;        // file; "" = none
  int64_t checkpoint_every = 0;  // > 0: also every this many steps
  bool resume = false;           // load `checkpoint` first
  const std::atomic<bool>* stop = nullptr;
  // Dev set: utterances for the loss; for the WER the bundle (`model`, whose graphs receive the
  // current weights) and the manifest split (the same utterances: dev_limit first lines).
  std::vector<const Utterance*> dev;
  const ir::Model* model = nullptr;
  std::string dev_manifest, dev_split;
  int64_t dev_limit = 0;
  int64_t eval_every = 0;  // 0: at the start and the end only
  std::string best_by = "wer";
  int threads = 1;
  Collective* collective = nullptr;  // data-parallel ranks (see above); nullptr: one process
  int64_t log_every = 10;  // progress line on stderr (0: never)
  // Called (on rank 0 only) after every step with {"step","loss","lr","grad_norm","utts":[ids]} and after every
  // dev measurement with {"step","dev_loss","dev_wer"}.
  std::function<void(const nlohmann::json&)> on_log;
};

struct BundleLoopResult {
  int64_t first_step = 1;  // the first step this call took (> 1 after a resume)
  int64_t last_step = 0;   // the step reached (< steps when stopped)
  bool interrupted = false;
  double first_loss = 0, recent_loss = 0;  // train loss per token of first_step, mean of the last log window
  int64_t recent_steps = 0, utterances = 0, tokens = 0;
  std::vector<DevScore> dev;          // every measurement, in order (from the checkpoint on resume)
  int64_t best_index = -1;            // into dev; -1 without a dev set
  std::vector<ir::Tensor> best;       // parameters (parameter_names() order) of dev[best_index]; empty: the start's
};

// Runs the loop above on `trainer` over `utts` (both must outlive the call).
Result<BundleLoopResult> RunBundleLoop(TransducerTrainer& trainer, const std::vector<Utterance>& utts,
                                       const BundleLoopOptions& options);

}  // namespace asrc::train

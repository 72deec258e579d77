// distill: trains the (compressed) student bundle against a teacher bundle, in C++, on the IR
// (train/transducer.h): one composed graph per utterance shape built from the student's own
// inference graphs, so it follows any structural pass (pruned widths, a stateless tied decoder
// with its context_size, fewer causal layers and their cache shapes: all read from model.json).
//
// Loss per token: rnnt (RNN-T on the streaming and the look-ahead lattice, summed as the recipe
// does), kd (KL(teacher || student) on every lattice node: `kd_form` full, or collapsed to
// label/blank/rest as Panchapagesan et al. 2021), or rnnt+kd = alpha * KD + (1 - alpha) * RNNT.
// Teacher: the pipeline's input model (before the first pass) unless `teacher` names a bundle.
// Data: `data` (a NeMo manifest; required: the eval set is not training data), split `split`;
// batches are length buckets of at most `batch_frames` feature frames, shuffled per epoch
// (seeded by `seed`). AdamW with linear warmup and cosine decay, gradients clipped at 5.
// With `dev_split`: the dev loss and greedy WER (asr::Evaluate, look-ahead mode) at the start, every
// `eval_every` steps and at the end are noted, and the best of those weights kept (`best_by` wer or
// loss). Augmentation (off by default): `spec_augment` (time and frequency masks), `tempo` (feature-
// domain tempo perturbation factors, e.g. "0.9,1.0,1.1"), seeded by `seed`. `checkpoint`: a file
// written every `checkpoint_every` steps, at the end and on `stop`, atomically; `resume` continues
// from it exactly (train/bundle_loop.h has the loop's contract).
//
// Errors before any training: a teacher whose vocabulary differs from the student's, a manifest
// line whose audio is missing or unreadable (named), no utterance in the split. During training:
// a NaN loss names the step and the batch (its utterance ids), keeps the last checkpoint, and the
// model is left as it was.
// Counters: steps, utterances (seen), tokens (seen); notes: the losses.
#pragma once

#include <atomic>
#include <functional>

#include <nlohmann/json.hpp>

#include "pass/pass.h"

namespace asrc::train {
class Collective;
}

namespace asrc::passes {

class DistillPass : public pass::Pass {
 public:
  std::string name() const override { return "distill"; }
  std::string description() const override {
    return "train the student bundle against a teacher (RNN-T and/or transducer KD loss) on a manifest";
  }
  std::vector<pass::OptionSpec> options() const override;
  Result<bool> Run(ir::Model& model, pass::PassContext& ctx) override;

  // When set (asrc train), Run also writes there a copy of the model with the weights of the
  // last step, whichever weights it keeps in `model` (the best dev loss's).
  ir::Model* last = nullptr;
  // When set (asrc train under mpirun): data-parallel ranks (train/mpi.h); each runs its shard
  // of every batch and of the dev set, and only rank 0 prints progress.
  train::Collective* collective = nullptr;
  // When set (asrc train's Ctrl-C): turning true stops training after the current step; the
  // checkpoint is saved and Run finishes with the weights reached (and the best so far).
  const std::atomic<bool>* stop = nullptr;
  // When set: one JSON object per step and per dev measurement (train/bundle_loop.h on_log).
  std::function<void(const nlohmann::json&)> on_log;
};

}  // namespace asrc::passes

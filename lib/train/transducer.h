// Training a whole transducer bundle (docs/bundle.md): one training graph per utterance shape,
// composed from the bundle's own inference graphs, so that training sees exactly what inference
// runs.
//
// ComposeTransducer builds, for one utterance (batch 1; the teacher's causal chunk graph is
// exported for N = 1), from everything model.json says (no model-specific constants):
//   cascaded_transducer:
//     encoder_causal unrolled over `chunks` copies; copy k reads window k of the input `chunks`
//       [C, 1, chunk_frames + right_context_frames, F] (the windows asr::StreamingEncoder feeds:
//       frames k*chunk_frames.., pad_value past the end), its caches chained from copy k-1
//       (zeros for copy 0, as StreamingEncoder::Reset); each copy keeps its first
//       chunk_frames / subsampling_factor output frames, the concatenation is cut to
//       `encoder_lengths` frames (ceil(T / subsampling_factor), as StreamingEncoder::Finish);
//     encoder_noncausal on that causal output (x_lens = encoder_lengths): the look-ahead pass;
//   transducer: encoder on `features` [1, T, F] (x_lens = feature_lengths); its
//     encoder_out_lens (or T) are the lattice lengths.
//   decoder: lstm — unrolled over the U+1 steps of `decoder_input` [1, U+1] (blank, labels),
//     states chained from zeros (model.json decoding.decoder_state); stateless — one call on
//     `decoder_context` [U+1, context_size] (row u: the context_size labels before position u,
//     blank-padded, as GraphScorer::Decode builds them).
//   joiner on every (t, u) pair (Expand + Flatten to rows), reshaped to logits [1, T, U+1, V]:
//     outputs "logits_causal" (cascaded only) and "logits_lookahead".
//   With a loss: per lattice, RNNTLoss and/or TransducerKLLoss / TransducerCollapsedKLLoss
//     against the inputs "teacher_logits_causal" / "teacher_logits_lookahead"; the lattices are
//     summed (the recipe, experiments/teacher/train.py, sums the streaming and look-ahead RNN-T
//     losses) as alpha * KD + (1 - alpha) * RNNT (rnnt: alpha = 0; kd: alpha = 1), each in
//     reduction "sum", times the scalar input "loss_scale" (1 / tokens of the batch): output
//     "loss".
// Batches (shape.batch = B > 1, cascaded transducers): B utterances run as one graph, padded to
//   the batch's chunks and labels: "chunks" [C, B, win, F], the causal chunk graph with its
//   Reshape shapes' exported batch 1 made 0 (copy the input's), caches and decoder states B long
//   on axis 1 (model.json's shapes are for N = 1, axis 1 the batch axis; the frame offset is
//   shared: the batch's chunks run in lockstep), the causal output cut to the input
//   "encoder_frames" [1] (the longest of encoder_lengths [B]) and the non-causal encoder given
//   the per-utterance lengths; the decoder steps on "decoder_input" [B, U+1]; the joiner
//   factored (train/joiner_rows.h) and its logits [B, T, U+1, V]; the losses mask each
//   utterance's lattice by its lengths. A state without a batch axis, or a joiner that does not
//   factor, is an error (the trainer then runs batch 1).
// Weights: each float initializer of graph ROLE appears once as "ROLE/<name>", shared by every
// unrolled copy; other values are named "ROLE.<copy>/<name>".
//
// TransducerTrainer keeps one composed training graph + session per shape (chunks, padded
// labels) in a small LRU cache, one set of weights and one AdamW over all of them; a step sums
// the gradients of the batch's utterances (the loss is per token of the batch).
// Tied weights: initializers that share one ir::Buffer in the student bundle (tar-decoder's
// tied embedding = the joiner's output weight) are one parameter: their gradients are summed,
// one AdamW state updates them, and CopyWeightsTo writes one tensor into every graph that held
// the buffer, so the bundle still stores and counts it once.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "asr/stream.h"
#include "core/status.h"
#include "ir/graph.h"
#include "ir/model.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace asrc::runtime {
class Session;
}

namespace asrc::train {

struct TransducerLoss {
  bool rnnt = true, kd = false;
  bool collapsed = false;  // kd form: collapsed three-class KL instead of the full KL
  double alpha = 0.5;      // KD weight when both are on
  // Parses "rnnt" | "kd" | "rnnt+kd" and "full" | "collapsed".
  static Result<TransducerLoss> Parse(const std::string& loss, const std::string& kd_form, double alpha);
};

struct ComposeShape {
  int64_t chunks = 0;  // cascaded: causal chunk copies
  int64_t labels = 0;  // U (padded); the decoder runs U+1 steps
  int64_t batch = 1;   // utterances per run (cascaded transducers; see "Batches" above)
};

// The composed graph (see above) of `model` for one shape; `loss` null: logits only.
Result<std::unique_ptr<ir::Graph>> ComposeTransducer(const ir::Model& model, const asr::BundleConfig& cfg,
                                                     const ComposeShape& shape, const TransducerLoss* loss);

// The shape of an utterance: its chunk count rounded up to a multiple of chunk_pad (the extra
// chunks see only padding and their frames are cut off, so the logits do not change), its labels
// rounded up to a multiple of label_pad. Fewer distinct shapes = fewer graphs to plan.
ComposeShape ShapeOf(const asr::BundleConfig& cfg, const Utterance& u, int64_t label_pad, int64_t chunk_pad = 1);
// The shape of a batch: the largest chunks and labels of its utterances, batch = their count.
ComposeShape ShapeOf(const asr::BundleConfig& cfg, const std::vector<const Utterance*>& utts, int64_t label_pad,
                     int64_t chunk_pad);
// The inputs of the composed graph for one utterance (all but teacher logits and weights).
std::vector<std::pair<std::string, ir::Tensor>> TransducerFeeds(const asr::BundleConfig& cfg,
                                                                const Utterance& u,
                                                                const ComposeShape& shape,
                                                                float loss_scale);
// The same for a batch (shape.batch == utts.size()); each utterance padded to the shape.
std::vector<std::pair<std::string, ir::Tensor>> TransducerFeeds(const asr::BundleConfig& cfg,
                                                                const std::vector<const Utterance*>& utts,
                                                                const ComposeShape& shape, float loss_scale);

struct TransducerTrainOptions {
  TransducerLoss loss;
  std::string freeze = "feat_mean|feat_istd";  // regex over initializer names kept fixed
  int threads = 1;
  AdamWOptions adamw;
  Schedule schedule;
  double clip_norm = 5;
  int64_t label_pad = 8;  // labels padded to a multiple of this (fewer distinct graphs)
  int64_t chunk_pad = 1;  // causal chunks padded to a multiple of this (ditto; costs compute)
  size_t max_plans = 4;   // composed graphs kept planned at once
  // Data-parallel ranks (train/mpi.h): Step and Loss run this rank's share of the batch's
  // utterances (ShardRows) and sum loss and gradients over the ranks. Null: one process.
  Collective* collective = nullptr;
  // Utterances per composed run: a step sorts its batch by shape and runs groups of up to this
  // many as one graph (see "Batches"); 1 runs them one at a time. Bundles that cannot batch
  // (not cascaded, a joiner that does not factor) run one at a time.
  int64_t max_batch = 8;
};

struct UttLoss {
  double loss = 0;  // summed over the batch, before loss_scale
  int64_t tokens = 0;
};

class TransducerTrainer {
 public:
  // `student` is copied (the trainer's weights start from it). `teacher` (KD losses) must have
  // the same vocabulary; it is copied too. Errors: not a bundle, vocabularies differ.
  static Result<std::unique_ptr<TransducerTrainer>> Create(const ir::Model& student, const ir::Model* teacher,
                                                           const TransducerTrainOptions& options);
  ~TransducerTrainer();

  // One optimizer step on the summed gradients of `utts` (loss per token). `id` names the batch in
  // errors: "train: step S (batch ID): loss is nan; weights not updated".
  Result<StepStats> Step(const std::vector<const Utterance*>& utts, const std::string& id);
  // Loss per token of `utts` with the current weights (no update).
  Result<double> Loss(const std::vector<const Utterance*>& utts);
  // Loss (element 0) and the gradients (trainable_names() order) of one utterance, loss_scale 1.
  Result<std::vector<ir::Tensor>> Gradients(const Utterance& u);
  // The same summed over `utts`, run in the groups a step runs (max_batch per graph).
  Result<std::vector<ir::Tensor>> Gradients(const std::vector<const Utterance*>& utts);
  // The composed logits of one utterance with the current weights: {causal, lookahead} or
  // {lookahead} for a transducer; each [1, T, U+1, V] (U = the padded labels).
  Result<std::vector<ir::Tensor>> Logits(const Utterance& u);

  const std::vector<std::string>& trainable_names() const { return names_; }
  // Index (into trainable_names()) of the parameter that trainable k is tied to; k itself when
  // it is not tied to an earlier one.
  size_t tied_to(size_t k) const { return tie_.at(k); }
  std::vector<ir::Tensor>& weights() { return weights_; }
  int64_t step() const { return adam_.steps(); }
  const asr::BundleConfig& config() const { return cfg_; }
  // Cost accounting: composed graphs planned (student and teacher) and the seconds spent
  // composing/planning them vs running them.
  int64_t plans_built() const { return plans_built_; }
  double plan_seconds() const { return plan_s_; }
  double run_seconds() const { return run_s_; }
  // Writes the trained weights into the bundle's graphs (same roles and initializer names).
  Status CopyWeightsTo(ir::Model& model) const;

  // (transducer_checkpoint.cc) Plans the composed graph of `u`'s shape, which fixes
  // trainable_names() and weights() (Step does it on its first utterance); LoadCheckpoint needs it.
  Status Prepare(const Utterance& u);
  // The parameters (a tied one once, under its first name), in trainable_names() order.
  std::vector<std::string> parameter_names() const;
  std::vector<ir::Tensor> parameters() const;
  // Checkpoint (train/checkpoint.h): the parameters, AdamW's moments and step, plus the caller's
  // header fields and entries (a training loop's RNG, data position, best weights).
  Status SaveCheckpoint(const std::string& path, nlohmann::json header, std::vector<CheckpointEntry> more) const;
  // Restores what SaveCheckpoint wrote (after Prepare) and returns the file for the caller's
  // fields; a name or shape that differs from this trainer's is an error, and changes nothing.
  Result<CheckpointFile> LoadCheckpoint(const std::string& path);

 private:
  struct Plan;
  TransducerTrainer() = default;
  Result<Plan*> PlanFor(const ComposeShape& shape);
  Result<Plan*> TeacherPlanFor(const ComposeShape& shape);
  // Runs the training graph on one group of utterances (one shape); outputs [loss, logits...,
  // grads...].
  Result<std::vector<ir::Tensor>> RunGroup(const std::vector<const Utterance*>& utts, float loss_scale);
  // The step's groups: utterances sorted by shape, up to max_batch per group.
  std::vector<std::vector<const Utterance*>> Groups(const std::vector<const Utterance*>& utts) const;

  TransducerTrainOptions opt_;
  ir::Model student_, teacher_;
  bool has_teacher_ = false;
  bool batchable_ = false;  // the student (and teacher) compose for batches (see "Batches")
  asr::BundleConfig cfg_, teacher_cfg_;
  std::list<std::unique_ptr<Plan>> plans_, teacher_plans_;  // most recently used first
  std::vector<std::string> names_;
  std::vector<ir::Tensor> weights_;
  std::vector<size_t> tie_;  // see tied_to()
  AdamW adam_;
  int64_t plans_built_ = 0;
  double plan_s_ = 0, run_s_ = 0;
};

// Initializer names "ROLE/<name>" -> (role, name); false when the name has no role prefix.
bool SplitWeightName(const std::string& full, std::string* role, std::string* name);

}  // namespace asrc::train

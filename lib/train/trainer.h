// train::Trainer — the training loop on an ir::Graph that already computes its loss.
//
// Create() builds the gradient once (grad::BuildGradient with trainables_as_inputs, so the
// trainables become graph inputs and one runtime::Session plan serves every step) and plans the
// session. Each Step(batch): run forward + backward, stop on a non-finite loss or gradient norm
// (weights untouched), clip by global norm, AdamW at the schedule's learning rate.
//
// Determinism: at threads = 1 every step is the same sequence of float operations, and the only
// randomness is the trainer's RNG (std::mt19937_64 seeded from TrainerOptions::seed) that the
// batch function draws from (shuffling, SpecAugment, ...). A checkpoint holds the RNG state, so
// K steps + save + resume + K steps give bit-identical weights to 2K uninterrupted steps.
// (The runtime's training-mode Dropout keeps its own per-session mask counter, which a resume
// does not restore: a graph with Dropout resumes statistically, not bit for bit.)
//
// Checkpoint file: train/checkpoint.h (atomic: "<path>.tmp" renamed over <path>). Its header
// holds "step", "seed", "rng" (the std::mt19937_64 state as its operator<< writes it),
// "last_loss" and "schedule" (Schedule::ToString()); its tensors the weights ("weight") and
// AdamW's moments ("exp_avg", "exp_avg_sq").
// Loading checks the trainable names and shapes against this trainer's and names any mismatch.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "ir/tensor.h"
#include "train/optimizer.h"

namespace asrc::runtime {
class Session;
}

namespace asrc::train {

// A loss or gradient norm for a message: "nan", "inf" or "-inf" when not finite (std::to_string
// writes a NaN's sign bit as "-nan", which depends on how the NaN arose).
std::string LossText(double v);

class Collective;

struct TrainerOptions {
  int64_t opset = 17;  // the default-domain opset the graph runs under
  int threads = 1;
  AdamWOptions adamw;
  Schedule schedule;
  double clip_norm = 0;  // > 0: clip the global gradient norm to this; otherwise no clipping
  uint64_t seed = 0;     // seeds the RNG handed to the batch function
  // Data-parallel ranks (train/mpi.h): each step's gradients and loss are summed over them
  // (weighted by Batch::share) before clipping and AdamW. Null: this process alone.
  Collective* collective = nullptr;
};

// One batch: the graph's data inputs by name (every graph input that is not a trainable must be
// there; feeds the graph does not declare are ignored, so one batch source serves graphs that use
// a subset of train/data.h's feeds), and an id for messages ("batch 7: utts a, b").
struct Batch {
  std::vector<std::pair<std::string, ir::Tensor>> feeds;
  std::string id;
  // Data-parallel shard (train/mpi.h ShardBatch): this rank's weight in the sum over ranks; a
  // shard without feeds (share 0) adds zero gradients.
  double share = 1;
};

struct StepStats {
  int64_t step = 0;      // the optimizer step just taken (1-based)
  double loss = 0;       // the loss before the update
  double grad_norm = 0;  // the global gradient norm before clipping
  double lr = 0;
};

// Makes the batch for optimizer step `step` (1-based); any randomness comes from `rng`.
using BatchFn = std::function<Result<Batch>(int64_t step, std::mt19937_64& rng)>;

struct LoopOptions {
  int64_t steps = 0;                // train until this step (a resumed trainer continues to it)
  std::string checkpoint;           // path of the checkpoint file; empty: none written
  int64_t checkpoint_every = 0;     // > 0: also save after every this many steps
  std::function<void(const StepStats&)> on_step;  // progress callback, optional
  // Checked after every step: when it turns true (e.g. from a SIGINT handler), Train saves the
  // checkpoint and returns Ok early (step() tells how far it got).
  const std::atomic<bool>* stop = nullptr;
};

// Distillation feeds: wraps `batches` so that each batch also carries the teacher's first output
// as the feed `as_input` (e.g. "teacher_logits" for a TransducerKLLoss input). The teacher runs
// on the batch feeds it declares as inputs (by name); one it needs but the batch lacks is an
// error naming it. The session must outlive the returned function.
BatchFn WithTeacher(BatchFn batches, runtime::Session& teacher, const std::string& as_input = "teacher_logits");

class Trainer {
 public:
  // `graph` computes the scalar `loss`; `trainables` name float32 initializers of it. The graph
  // is changed (backward nodes appended, outputs set to the loss and the gradients, trainables
  // turned into inputs) and must outlive the trainer. Errors: those of BuildGradient (an op
  // without a gradient rule names the node) and of Session::Create, a non-float32 trainable.
  static Result<std::unique_ptr<Trainer>> Create(ir::Graph& graph, const std::string& loss,
                                                 const std::vector<std::string>& trainables,
                                                 const TrainerOptions& options = {});
  ~Trainer();

  // One optimizer step. Errors leave weights and optimizer state unchanged: a missing feed,
  // a kernel error, "train: step S (batch ID): loss is nan" (or the gradient norm is inf/nan).
  Result<StepStats> Step(const Batch& batch);
  // The loss on a batch with the current weights, without updating anything.
  Result<double> Loss(const Batch& batch);
  // The loss (element 0, a scalar) and the unclipped gradients in trainable_names() order, with
  // the current weights; nothing is updated.
  Result<std::vector<ir::Tensor>> Gradients(const Batch& batch);

  // Steps until options.steps, saving every checkpoint_every steps and at the end. On a failing
  // step it returns the error (with the last checkpoint written, if any) and writes nothing more.
  Status Train(const BatchFn& batches, const LoopOptions& options);

  Status SaveCheckpoint(const std::string& path) const;
  Status LoadCheckpoint(const std::string& path);

  int64_t step() const { return adam_.steps(); }
  const std::vector<std::string>& trainable_names() const { return names_; }
  const std::vector<ir::Tensor>& weights() const { return weights_; }
  std::mt19937_64& rng() { return rng_; }
  // Sets the initializer of each trainable (by name) in another graph, e.g. the inference graph
  // the model was built from; error names a trainable it lacks or whose shape differs.
  Status CopyWeightsTo(ir::Graph& graph) const;

 private:
  Trainer() = default;
  Result<std::vector<ir::Tensor>> Run(const Batch& batch);

  TrainerOptions opt_;
  std::unique_ptr<runtime::Session> session_;
  std::vector<std::string> names_;
  std::vector<ir::Tensor> weights_;
  std::vector<int> weight_slot_;  // session input position of each trainable
  AdamW adam_;
  std::mt19937_64 rng_;
  double last_loss_ = 0;
};

}  // namespace asrc::train

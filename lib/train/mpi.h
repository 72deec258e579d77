// Data-parallel training over processes: `mpirun -np N asrc train ...` (OpenMPI).
//
// Every rank loads the same data, forms the same global batches from the same seed (and draws
// the same augmentation for the whole batch, applying it to its shard only), and keeps only its
// shard of each batch: rows r with r % N == rank. After the backward pass the ranks sum their gradients (and losses) with one
// MPI_Allreduce, so clipping and AdamW see the gradient of the whole batch and every rank keeps
// identical weights (asrc train compares them at the end: CheckSameWeights); rank 0 alone logs
// and writes checkpoints and models. A failing rank ends the job (FinishWorld: MPI_Abort) rather
// than leave the others waiting in a collective.
//
// The loss normalisation decides how shards combine (Batch::share, set by ShardBatch):
//   - a single-graph loss reduced as a mean over the batch rows (the loss kernels' "mean"):
//     each rank weighs its gradient by rows_r / rows; the sum is the whole batch's mean;
//   - reduction "sum": the plain sum;
//   - the transducer trainer scales every utterance by 1 / tokens of the whole batch itself,
//     so its shards just sum.
// The batch cap (--batch-frames) is per rank: the global batches are bucketed under N times it,
// so N ranks with cap F form the same batches as one process with cap N * F.
//
// Collective hides MPI: without MPI at build time (no ASRC_HAVE_MPI, set by CMake when
// find_package(MPI) succeeds), or when the process was not started by mpirun, World() is one
// process (rank 0 of 1) and every collective is the identity. Only lib/train/mpi.cc sees mpi.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "ir/tensor.h"
#include "train/trainer.h"

namespace asrc::train {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int Rank() const = 0;
  virtual int Size() const = 0;
  // In-place sum over all ranks; every rank gets the same result.
  virtual Status AllReduceSum(float* data, size_t n) = 0;
  virtual Status AllReduceSum(double* data, size_t n) = 0;
  virtual Status Barrier() = 0;
  // Ends every rank's process with `code` (MPI_Abort): a rank that fails alone would otherwise
  // leave the others waiting in a collective forever.
  virtual void Abort(int code) = 0;
};

// The process group this process belongs to, set up on first use: MPI_COMM_WORLD when built
// with MPI and started by mpirun (MPI_Init_thread, funneled: only the calling thread talks to
// MPI); otherwise a single process. Error: started by mpirun with N > 1 processes but built
// without MPI (each would train alone and they would overwrite each other's output).
Result<Collective*> World();
// Ends MPI cleanly (MPI_Finalize) when exit_code is 0, else aborts every rank; returns
// exit_code. Without MPI: returns exit_code. Call once, at the end of the command.
int FinishWorld(int exit_code);
// Whether this binary was built with MPI.
bool BuiltWithMpi();

// The rows of a batch of `rows` that rank `rank` of `size` trains on: rank, rank + size, ...
std::vector<size_t> ShardRows(size_t rows, int rank, int size);

// How a single graph's loss combines over shards: true when the loss value is the output of a
// node with reduction "sum" (a sum over rows); false (a mean over rows) otherwise.
bool LossIsSum(const ir::Graph& graph, const std::string& loss);

// This rank's part of a global batch: the rows ShardRows() names of every feed whose first
// dimension is the batch size (taken from "feature_lengths", else the first feed), other feeds
// as they are; the padding stays the global batch's. Batch::share is the weight of this shard's
// loss and gradient in the sum over ranks (rows_r / rows for a mean loss, 1 for a sum). A rank
// with no rows gets a batch without feeds and share 0 (Trainer::Step then adds zero gradients).
Result<Batch> ShardBatch(const Batch& batch, const Collective& c, bool loss_is_sum);

// `batches` with every batch cut to this rank's shard (ShardBatch); put it before WithTeacher so
// that the teacher runs on the shard only.
BatchFn ShardBatches(BatchFn batches, const Collective& c, bool loss_is_sum);

// Sums `loss` and the gradients over the ranks after scaling each by `share` (this rank's weight
// from ShardBatch; 1 for shards that are already normalised by the whole batch). One Allreduce
// for the gradients (packed), one for the loss. A no-op on one process with share 1.
Status AllReduceGradients(Collective& c, double share, double* loss, std::vector<ir::Tensor*> grads);

// True on every rank when `flag` is true on any rank (e.g. a Ctrl-C seen by one of them).
bool AnyRank(Collective* c, bool flag);

// Checks that every rank holds bit-identical weights (a hash of their bytes, compared with
// Allreduce min/max); error names the step. Costs one pass over the weights and one Allreduce.
Status CheckSameWeights(Collective& c, const std::vector<ir::Tensor>& weights, int64_t step);

}  // namespace asrc::train

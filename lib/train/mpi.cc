#include "train/mpi.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>


#ifdef ASRC_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: the C++ bindings need libmpi_cxx
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace asrc::train {

namespace {

class SingleProcess : public Collective {
 public:
  int Rank() const override { return 0; }
  int Size() const override { return 1; }
  Status AllReduceSum(float*, size_t) override { return Status::Ok(); }
  Status AllReduceSum(double*, size_t) override { return Status::Ok(); }
  Status Barrier() override { return Status::Ok(); }
  void Abort(int code) override { std::exit(code); }
};

// The number of processes mpirun (OpenMPI, or a PMI launcher) says this job has; 0 when the
// process was not started by one.
int LauncherSize() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* v = std::getenv(var)) return std::atoi(v);
  return 0;
}

#ifdef ASRC_HAVE_MPI
std::string MpiError(const char* what, int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return std::string("mpi: ") + what + ": " + std::string(text, static_cast<size_t>(len));
}

class MpiWorld : public Collective {
 public:
  int Rank() const override { return rank_; }
  int Size() const override { return size_; }
  Status AllReduceSum(float* data, size_t n) override { return Reduce(data, n, MPI_FLOAT); }
  Status AllReduceSum(double* data, size_t n) override { return Reduce(data, n, MPI_DOUBLE); }
  Status Barrier() override {
    const int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? Status::Ok() : Error(MpiError("Barrier", rc));
  }
  void Abort(int code) override { MPI_Abort(MPI_COMM_WORLD, code); }

  static Result<std::unique_ptr<MpiWorld>> Init() {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      return Error("mpi: MPI_Init_thread failed");
    // Errors come back as codes (and become a Status) instead of aborting inside MPI.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    auto w = std::unique_ptr<MpiWorld>(new MpiWorld());
    MPI_Comm_rank(MPI_COMM_WORLD, &w->rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &w->size_);
    return w;
  }

 private:
  MpiWorld() = default;
  Status Reduce(void* data, size_t n, MPI_Datatype type) {
    // MPI counts are int: large buffers go in pieces.
    const size_t step = size_t{1} << 30, width = type == MPI_FLOAT ? sizeof(float) : sizeof(double);
    for (size_t at = 0; at < n; at += step) {
      const int count = static_cast<int>(std::min(step, n - at));
      void* p = static_cast<char*>(data) + at * width;
      const int rc = MPI_Allreduce(MPI_IN_PLACE, p, count, type, MPI_SUM, MPI_COMM_WORLD);
      if (rc != MPI_SUCCESS) return Error(MpiError("Allreduce", rc));
    }
    return Status::Ok();
  }
  int rank_ = 0, size_ = 1;
};
#endif

std::unique_ptr<Collective>& WorldSlot() {
  static std::unique_ptr<Collective> world;
  return world;
}

}  // namespace

bool BuiltWithMpi() {
#ifdef ASRC_HAVE_MPI
  return true;
#else
  return false;
#endif
}

Result<Collective*> World() {
  std::unique_ptr<Collective>& world = WorldSlot();
  if (world) return world.get();
  const int launched = LauncherSize();
#ifdef ASRC_HAVE_MPI
  if (launched > 0) {
    ASRC_ASSIGN_OR_RETURN(auto w, MpiWorld::Init());
    world = std::move(w);
    return world.get();
  }
#else
  if (launched > 1)
    return Error("started by mpirun with " + std::to_string(launched) +
                 " processes, but this asrc was built without MPI (install libopenmpi-dev and rebuild); "
                 "each process would train alone");
#endif
  world = std::make_unique<SingleProcess>();
  return world.get();
}

int FinishWorld(int exit_code) {
#ifdef ASRC_HAVE_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) {
    if (exit_code != 0) MPI_Abort(MPI_COMM_WORLD, exit_code);
    MPI_Finalize();
  }
#endif
  return exit_code;
}

std::vector<size_t> ShardRows(size_t rows, int rank, int size) {
  std::vector<size_t> out;
  for (size_t r = static_cast<size_t>(rank); r < rows; r += static_cast<size_t>(size)) out.push_back(r);
  return out;
}

bool LossIsSum(const ir::Graph& graph, const std::string& loss) {
  const ir::Value* v = graph.FindValue(loss);
  return v && v->producer && v->producer->attr_string("reduction", "mean") == "sum";
}

Result<Batch> ShardBatch(const Batch& batch, const Collective& c, bool loss_is_sum) {
  if (c.Size() == 1) return batch;
  if (batch.feeds.empty()) return Error("batch " + batch.id + ": no feeds to shard");
  const ir::Tensor* lengths = &batch.feeds[0].second;
  for (const auto& [name, t] : batch.feeds)
    if (name == "feature_lengths") lengths = &t;
  if (lengths->rank() < 1) return Error("batch " + batch.id + ": no batch dimension to shard");
  const int64_t rows = lengths->dim(0);
  const std::vector<size_t> mine = ShardRows(static_cast<size_t>(rows), c.Rank(), c.Size());
  Batch out;
  out.id = batch.id;
  if (mine.empty()) {
    out.share = 0;
    return out;
  }
  out.share = loss_is_sum ? 1.0 : static_cast<double>(mine.size()) / static_cast<double>(rows);
  for (const auto& [name, t] : batch.feeds) {
    if (t.rank() < 1 || t.dim(0) != rows) {
      out.feeds.emplace_back(name, t);
      continue;
    }
    ir::Shape shape = t.shape();
    shape[0] = static_cast<int64_t>(mine.size());
    ir::Tensor part(t.dtype(), shape);
    const size_t row_bytes = t.nbytes() / static_cast<size_t>(rows);
    for (size_t k = 0; k < mine.size(); ++k)
      std::memcpy(part.raw() + k * row_bytes, t.raw() + mine[k] * row_bytes, row_bytes);
    out.feeds.emplace_back(name, std::move(part));
  }
  return out;
}

BatchFn ShardBatches(BatchFn batches, const Collective& c, bool loss_is_sum) {
  if (c.Size() == 1) return batches;
  return [batches = std::move(batches), &c, loss_is_sum](int64_t step, std::mt19937_64& rng) -> Result<Batch> {
    ASRC_ASSIGN_OR_RETURN(Batch b, batches(step, rng));
    return ShardBatch(b, c, loss_is_sum);
  };
}

Status AllReduceGradients(Collective& c, double share, double* loss, std::vector<ir::Tensor*> grads) {
  if (c.Size() == 1 && share == 1) return Status::Ok();
  size_t n = 0;
  for (const ir::Tensor* g : grads) n += static_cast<size_t>(g->numel());
  std::vector<float> packed(n);
  size_t at = 0;
  const float s = static_cast<float>(share);
  for (const ir::Tensor* g : grads) {
    const float* d = g->data<float>();
    for (int64_t i = 0; i < g->numel(); ++i) packed[at++] = s * d[i];
  }
  if (n > 0) ASRC_RETURN_IF_ERROR(c.AllReduceSum(packed.data(), n).With("train: summing gradients over ranks"));
  at = 0;
  for (ir::Tensor* g : grads) {
    std::memcpy(g->raw(), packed.data() + at, g->nbytes());
    at += static_cast<size_t>(g->numel());
  }
  double l = *loss * share;
  ASRC_RETURN_IF_ERROR(c.AllReduceSum(&l, 1).With("train: summing the loss over ranks"));
  *loss = l;
  return Status::Ok();
}

bool AnyRank(Collective* c, bool flag) {
  if (!c || c->Size() == 1) return flag;
  double v = flag ? 1 : 0;
  // A failing collective cannot be agreed on; stopping is the safe answer.
  if (!c->AllReduceSum(&v, 1).ok()) return true;
  return v > 0;
}

Status CheckSameWeights(Collective& c, const std::vector<ir::Tensor>& weights, int64_t step) {
  if (c.Size() == 1) return Status::Ok();
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the weights' bytes
  for (const ir::Tensor& w : weights)
    for (size_t i = 0; i < w.nbytes(); ++i) h = (h ^ w.raw()[i]) * 1099511628211ull;
  // Each rank's 48-bit hash (exact in a double) in its own slot; the sum gathers them all.
  std::vector<double> all(static_cast<size_t>(c.Size()), 0.0);
  all[static_cast<size_t>(c.Rank())] = static_cast<double>(h >> 16);
  ASRC_RETURN_IF_ERROR(c.AllReduceSum(all.data(), all.size()).With("train: comparing weights over ranks"));
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      return Error("train: after step " + std::to_string(step) + " rank " + std::to_string(r) +
                   " holds other weights than rank 0 (data-parallel ranks diverged)");
  return Status::Ok();
}

}  // namespace asrc::train

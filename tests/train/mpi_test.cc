// Data-parallel training (train/mpi.h) without mpirun: the sharding helpers, and N ranks played
// by N threads (an in-process Collective that sums in rank order) each training its shard of the
// tiny transducer's batches, against one trainer on the whole batches: the same weights after K
// steps within float tolerance, for a mean and a sum loss, with uneven and empty shards.
// tests/cli/train_mpi_test.cc runs the same comparison through mpirun and the asrc binary.
#include <doctest/doctest.h>

#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "tiny_transducer.h"
#include "train/mpi.h"

using namespace asrc;
using namespace asrc::testing;

namespace {

// N ranks as N threads of one process: AllReduceSum waits for every rank, then each rank sums
// all contributions in rank order (the same result everywhere).
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : slots_(static_cast<size_t>(size)) {}
  int size() const { return static_cast<int>(slots_.size()); }
  void Wait() {
    std::unique_lock<std::mutex> lock(m_);
    const int64_t gen = generation_;
    if (++arrived_ == size()) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
  }
  template <class T>
  void Sum(int rank, T* data, size_t n) {
    slots_[static_cast<size_t>(rank)].assign(data, data + n);
    Wait();
    for (size_t i = 0; i < n; ++i) {
      double s = 0;
      for (const auto& slot : slots_) s += slot[i];
      data[i] = static_cast<T>(s);
    }
    Wait();  // nobody overwrites a slot before every rank has read it
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  int64_t generation_ = 0;
  std::vector<std::vector<double>> slots_;
};

class ThreadRank : public train::Collective {
 public:
  ThreadRank(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int Rank() const override { return rank_; }
  int Size() const override { return g_.size(); }
  Status AllReduceSum(float* data, size_t n) override {
    g_.Sum(rank_, data, n);
    return Status::Ok();
  }
  Status AllReduceSum(double* data, size_t n) override {
    g_.Sum(rank_, data, n);
    return Status::Ok();
  }
  Status Barrier() override {
    g_.Wait();
    return Status::Ok();
  }
  void Abort(int) override { FAIL("abort"); }

 private:
  ThreadGroup& g_;
  int rank_;
};

struct Rank {
  ir::Graph graph{"tiny"};
  std::unique_ptr<train::Trainer> trainer;
};

std::unique_ptr<Rank> MakeRank(const TinyDims& d, const std::string& reduction, train::Collective* c) {
  auto r = std::make_unique<Rank>();
  BuildTiny(r->graph, TinyWeights(d, 1), TinyLoss::kRnnt);
  r->graph.FindValue("loss")->producer->set_attr_string("reduction", reduction);
  train::TrainerOptions opt;
  opt.schedule = train::Schedule::Constant(0.02);
  opt.clip_norm = 1.0;  // clipping sees the whole batch's gradient norm
  opt.collective = c;
  auto t = train::Trainer::Create(r->graph, "loss", TinyTrainables(), opt);
  REQUIRE_MESSAGE(t.ok(), t.status().message());
  r->trainer = std::move(*t);
  return r;
}

// Runs fn(rank) on `size` threads and waits for them.
void OnThreads(int size, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) threads.emplace_back(fn, r);
  for (std::thread& t : threads) t.join();
}

}  // namespace

TEST_CASE("ShardRows and ShardBatch: rank r takes rows r, r + N, ...; shares weigh a mean loss") {
  CHECK(train::ShardRows(5, 0, 2) == std::vector<size_t>{0, 2, 4});
  CHECK(train::ShardRows(5, 1, 2) == std::vector<size_t>{1, 3});
  CHECK(train::ShardRows(1, 1, 2).empty());
  const TinyDims d;
  const TinyData data = MakeTinyData(d, 5, 3);
  train::Batch b = TinyBatch(data);
  b.feeds.emplace_back("scalar", ir::Tensor::FromVector<float>(ir::DType::Float32, {}, {2.f}));
  ThreadGroup g(2);
  ThreadRank r1(g, 1);
  auto s = train::ShardBatch(b, r1, false);
  REQUIRE(s.ok());
  CHECK(s->share == doctest::Approx(2.0 / 5));
  CHECK(s->feeds.size() == b.feeds.size());
  for (size_t k = 0; k < b.feeds.size(); ++k) {
    const ir::Tensor& full = b.feeds[k].second;
    const ir::Tensor& part = s->feeds[k].second;
    CAPTURE(b.feeds[k].first);
    if (full.rank() == 0) {
      CHECK(part.numel() == 1);
      continue;
    }
    REQUIRE(part.dim(0) == 2);
    const size_t row = full.nbytes() / 5;
    CHECK(std::memcmp(part.raw(), full.raw() + 1 * row, row) == 0);  // rows 1 and 3
    CHECK(std::memcmp(part.raw() + row, full.raw() + 3 * row, row) == 0);
  }
  CHECK(train::ShardBatch(b, r1, true)->share == 1.0);
  ThreadGroup g6(6);
  ThreadRank r5(g6, 5);
  auto empty = train::ShardBatch(b, r5, false);
  REQUIRE(empty.ok());
  CHECK(empty->feeds.empty());
  CHECK(empty->share == 0.0);
}

TEST_CASE("LossIsSum reads the loss node's reduction; World() outside mpirun is one process") {
  ir::Graph g("tiny");
  BuildTiny(g, TinyWeights(TinyDims{}, 1), TinyLoss::kRnnt);
  CHECK_FALSE(train::LossIsSum(g, "loss"));
  g.FindValue("loss")->producer->set_attr_string("reduction", "sum");
  CHECK(train::LossIsSum(g, "loss"));
  CHECK_FALSE(train::LossIsSum(g, "no_such_value"));
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) return;  // this test binary itself under mpirun
  auto w = train::World();
  REQUIRE(w.ok());
  CHECK((*w)->Size() == 1);
  CHECK((*w)->Rank() == 0);
  float x[2] = {1.f, 2.f};
  ir::Tensor grad = ir::Tensor::FromVector<float>(ir::DType::Float32, {2}, {1.f, 2.f});
  double loss = 3;
  REQUIRE(train::AllReduceGradients(**w, 0.5, &loss, {&grad}).ok());  // one process: scaled only
  CHECK(loss == 1.5);
  CHECK(grad.data<float>()[1] == 1.f);
  REQUIRE((*w)->AllReduceSum(x, 2).ok());
  CHECK(x[1] == 2.f);
}

TEST_CASE("N ranks in threads, each on its shard, train as one trainer on the whole batch") {
  const TinyDims d;
  const int steps = 4;
  std::vector<TinyData> batches;
  for (int k = 0; k < steps; ++k) batches.push_back(MakeTinyData(d, 5, 10 + static_cast<uint64_t>(k)));
  for (const std::string reduction : {"mean", "sum"}) {
    auto one = MakeRank(d, reduction, nullptr);
    std::vector<double> losses;
    for (const TinyData& b : batches) {
      auto s = one->trainer->Step(TinyBatch(b));
      REQUIRE_MESSAGE(s.ok(), s.status().message());
      losses.push_back(s->loss);
    }
    for (int size : {2, 3, 6}) {  // 6 ranks on 5 rows: rank 5's shards are empty
      CAPTURE(reduction);
      CAPTURE(size);
      ThreadGroup group(size);
      std::vector<std::unique_ptr<ThreadRank>> ranks;
      std::vector<std::unique_ptr<Rank>> trainers;
      for (int r = 0; r < size; ++r) {
        ranks.push_back(std::make_unique<ThreadRank>(group, r));
        trainers.push_back(MakeRank(d, reduction, ranks.back().get()));
      }
      std::vector<std::vector<double>> rank_losses(static_cast<size_t>(size));
      std::vector<std::string> errors(static_cast<size_t>(size));
      OnThreads(size, [&](int r) {
          const bool sum = train::LossIsSum(trainers[r]->graph, "loss");
          for (const TinyData& b : batches) {
            auto shard = train::ShardBatch(TinyBatch(b), *ranks[r], sum);
            auto s = shard.ok() ? trainers[r]->trainer->Step(*shard) : Result<train::StepStats>(shard.status());
            if (!s.ok()) {
              errors[r] = s.status().message();
              return;  // (the others would wait forever: REQUIREd empty below, before they could)
            }
            rank_losses[r].push_back(s->loss);
          }
          errors[r] = train::CheckSameWeights(*ranks[r], trainers[r]->trainer->weights(), steps).message();
        });
      for (const std::string& e : errors) REQUIRE_MESSAGE(e.empty(), e);
      double diff = 0;
      for (int r = 0; r < size; ++r) {
        for (size_t k = 0; k < losses.size(); ++k)
          CHECK(rank_losses[r][k] == doctest::Approx(losses[k]).epsilon(1e-5));
        const auto& w1 = one->trainer->weights();
        const auto& wr = trainers[r]->trainer->weights();
        for (size_t k = 0; k < w1.size(); ++k)
          for (int64_t i = 0; i < w1[k].numel(); ++i)
            diff = std::max(diff, static_cast<double>(std::fabs(w1[k].data<float>()[i] - wr[k].data<float>()[i])));
      }
      MESSAGE(reduction << " loss, " << size << " ranks: max |w - w_one| " << diff);
      CHECK(diff < 1e-5);
      // A rank whose weights differ is found (on every rank).
      ir::Tensor changed = trainers[size - 1]->trainer->weights()[0];  // shares the trainer's buffer
      changed.data<float>()[0] += 1e-3f;
      OnThreads(size, [&](int r) {
        errors[r] = train::CheckSameWeights(*ranks[r], trainers[r]->trainer->weights(), steps).message();
      });
      for (const std::string& e : errors)
        CHECK(e.find("rank " + std::to_string(size - 1) + " holds other weights") != std::string::npos);
    }
  }
}

// A small fixed thread pool for intra-op parallelism. ParallelFor splits [0, n) into chunks that
// the caller and the workers take from a shared counter; it blocks until all are done.
// One ParallelFor at a time (sessions are single-threaded callers); nested calls run inline.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace asrc::runtime {

class ThreadPool {
 public:
  // `threads` counts the caller: threads == 1 starts no worker.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint ranges covering [0, n); ranges have at least `grain`
  // elements (except the last). Runs inline when n <= grain or there are no workers.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void WorkerLoop();
  void Drain(const std::function<void(int64_t, int64_t)>* fn, int64_t n, int64_t chunk);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 1;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_{0};
  std::atomic<bool> busy_{false};
};

// ParallelFor on a possibly-null pool (null: inline).
void ParallelFor(ThreadPool* pool, int64_t n, int64_t grain,
                 const std::function<void(int64_t, int64_t)>& fn);

}  // namespace asrc::runtime

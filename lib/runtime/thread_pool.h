// Intra-op parallelism on one process-wide set of worker threads.
//
// RunParts(parts, fn) calls fn(0..parts-1), each exactly once, and returns when all are done.
// Parts are claimed, not assigned: the calling thread runs parts until none is left unclaimed,
// so a worker that is slow to wake or descheduled costs no wait (which thread runs which part
// varies from call to call). The workers (created on first need, never joined) and the caller spin up to 50 us
// before sleeping on a condition variable: parallel work comes every few tens of microseconds,
// and a futex wake-up on a VM costs about as much as the work it hands over. There is one set for the
// whole process (GEMM splits, convolutions and the kernels' ParallelFor all use it), so two pools
// never spin against each other on a small machine. A call made from inside a part, or while
// another thread's call runs, takes its turn: nested calls run their parts inline.
//
// ThreadPool is a session's handle on it: a thread count and ParallelFor over index ranges.
#pragma once

#include <cstdint>
#include <functional>

namespace asrc::runtime {

void RunParts(int parts, const std::function<void(int)>& fn);

class ThreadPool {
 public:
  // `threads` counts the caller: threads == 1 runs everything inline.
  explicit ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {}
  int threads() const { return threads_; }

  // Calls fn(begin, end) on disjoint ranges covering [0, n); ranges have at least `grain`
  // elements (except the last). Runs inline when n <= grain or threads() == 1.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) const;

 private:
  int threads_;
};

// ParallelFor on a possibly-null pool (null: inline).
void ParallelFor(const ThreadPool* pool, int64_t n, int64_t grain,
                 const std::function<void(int64_t, int64_t)>& fn);

}  // namespace asrc::runtime

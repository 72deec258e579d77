#include "runtime/thread_pool.h"

#include <algorithm>

namespace asrc::runtime {

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Drain(const std::function<void(int64_t, int64_t)>* fn, int64_t n,
                       int64_t chunk) {
  for (;;) {
    int64_t begin = next_.fetch_add(chunk);
    if (begin >= n) break;
    (*fn)(begin, std::min(n, begin + chunk));
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t)>* fn;
    int64_t n, chunk;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      fn = fn_;
      n = n_;
      chunk = chunk_;
      if (!fn) continue;  // woke after that job finished
      active_.fetch_add(1);
    }
    Drain(fn, n, chunk);
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_.fetch_sub(1);
    }
    done_cv_.notify_all();
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  bool expected = false;
  // Inline when too small, single-threaded, or nested inside another ParallelFor.
  if (workers_.empty() || n <= grain || !busy_.compare_exchange_strong(expected, true)) {
    fn(0, n);
    return;
  }
  int64_t parts = std::min<int64_t>(threads(), (n + grain - 1) / grain);
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    chunk_ = std::max<int64_t>(grain, (n + parts - 1) / parts);
    next_.store(0);
    ++generation_;
  }
  cv_.notify_all();
  Drain(&fn, n_, chunk_);
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Workers that have not woken yet see an exhausted counter and finish at once; wait for all
    // that joined this generation.
    done_cv_.wait(lock, [&] { return active_.load() == 0; });
    fn_ = nullptr;
  }
  busy_.store(false);
}

void ParallelFor(ThreadPool* pool, int64_t n, int64_t grain,
                 const std::function<void(int64_t, int64_t)>& fn) {
  if (pool) pool->ParallelFor(n, grain, fn);
  else if (n > 0) fn(0, n);
}

}  // namespace asrc::runtime

#include "runtime/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace asrc::runtime {
namespace {

class Workers {
 public:
  static Workers& Get() {
    static Workers* w = new Workers();  // leaked on purpose: detached workers, no join at exit
    return *w;
  }

  void Run(int parts, const std::function<void(int)>& fn) {
    // Inline when there is nothing to split, inside a part, or while another caller holds the
    // workers (a second session on another thread): correct, only not parallel.
    if (parts <= 1 || in_part_ || !call_mu_.try_lock()) {
      for (int p = 0; p < parts; ++p) fn(p);
      return;
    }
    std::lock_guard<std::mutex> call_lock(call_mu_, std::adopt_lock);
    EnsureWorkers(parts - 1);
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      parts_ = parts;
      pending_.store(parts - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    in_part_ = true;
    fn(0);
    in_part_ = false;
    SpinUntil([&] { return pending_.load(std::memory_order_acquire) == 0; });
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    job_ = nullptr;
  }

 private:
  static void Pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }
  // Polls `done` for up to 50 us; true when it became true. The budget is time, checked every
  // 64 polls: a pause costs from a few to over 100 cycles depending on the CPU (20,000 of them,
  // meant as 50 us, took 500 us on this AVX-512 EPYC).
  template <class Done>
  static bool SpinUntil(Done done) {
    constexpr auto budget = std::chrono::microseconds(50);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 1;; ++i) {
      if (done()) return true;
      Pause();
      if (i % 64 == 0 && std::chrono::steady_clock::now() - start > budget) return done();
    }
  }
  void EnsureWorkers(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      int index = static_cast<int>(workers_.size()) + 1;
      workers_.emplace_back([this, index] { Loop(index); });
      workers_.back().detach();
    }
  }
  void Loop(int index) {
    in_part_ = true;  // anything a worker's part calls runs inline
    uint64_t seen = 0;
    for (;;) {
      SpinUntil([&] { return generation_.load(std::memory_order_acquire) != seen; });
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
        seen = generation_.load(std::memory_order_relaxed);
        if (index >= parts_) continue;
        job = job_;
      }
      (*job)(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(mu_);
        done_cv_.notify_one();
      }
    }
  }

  static thread_local bool in_part_;
  std::mutex call_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  int parts_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
};

thread_local bool Workers::in_part_ = false;

}  // namespace

void RunParts(int parts, const std::function<void(int)>& fn) { Workers::Get().Run(parts, fn); }

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) const {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t parts = std::min<int64_t>(threads_, (n + grain - 1) / grain);
  if (parts <= 1) {
    fn(0, n);
    return;
  }
  RunParts(static_cast<int>(parts), [&](int p) {
    int64_t b = n * p / parts, e = n * (p + 1) / parts;
    if (e > b) fn(b, e);
  });
}

void ParallelFor(const ThreadPool* pool, int64_t n, int64_t grain,
                 const std::function<void(int64_t, int64_t)>& fn) {
  if (pool) pool->ParallelFor(n, grain, fn);
  else if (n > 0) fn(0, n);
}

}  // namespace asrc::runtime

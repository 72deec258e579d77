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
    uint64_t gen;
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      parts_ = parts;
      done_.store(0, std::memory_order_relaxed);
      gen = generation_.load(std::memory_order_relaxed) + 1;
      claim_.store(Tag(gen), std::memory_order_release);
      generation_.store(gen, std::memory_order_release);
    }
    cv_.notify_all();
    // The caller takes parts too, as many as no worker has claimed yet: a worker still waking
    // up (a futex wake-up on a loaded VM can take longer than the whole job) or descheduled
    // then costs nothing instead of a wait for it.
    in_part_ = true;
    const int mine = RunClaimed(gen, parts, fn);
    in_part_ = false;
    if (done_.fetch_add(mine, std::memory_order_acq_rel) + mine != parts) {
      SpinUntil([&] { return done_.load(std::memory_order_acquire) == parts; });
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == parts; });
    }
    std::lock_guard<std::mutex> lk(mu_);
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
      int parts;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
        seen = generation_.load(std::memory_order_relaxed);
        if (index >= parts_ || !job_) continue;
        job = job_;
        parts = parts_;
      }
      const int n = RunClaimed(seen, parts, *job);
      if (n > 0 && done_.fetch_add(n, std::memory_order_acq_rel) + n == parts) {
        std::lock_guard<std::mutex> lk(mu_);
        done_cv_.notify_one();
      }
    }
  }

  // The claim word: the call's generation (low 32 bits) above the next unclaimed part, so a
  // worker that wakes after its call ended can never claim a part of the next one.
  static uint64_t Tag(uint64_t gen) { return (gen & 0xffffffffu) << 32; }
  // Claims and runs parts of call `gen` until none is left; returns how many it ran. A claim
  // only succeeds while the part is unclaimed, so its call is still waiting for it and `fn` is
  // alive.
  int RunClaimed(uint64_t gen, int parts, const std::function<void(int)>& fn) {
    int ran = 0;
    uint64_t v = claim_.load(std::memory_order_acquire);
    for (;;) {
      if ((v & ~0xffffffffull) != Tag(gen) || static_cast<int>(v & 0xffffffffu) >= parts) return ran;
      if (!claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      fn(static_cast<int>(v & 0xffffffffu));
      ++ran;
      v = claim_.load(std::memory_order_acquire);
    }
  }

  static thread_local bool in_part_;
  std::mutex call_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  int parts_ = 0;
  std::atomic<int> done_{0};          // parts of the current call finished
  std::atomic<uint64_t> claim_{0};    // Tag(generation) | next part to claim
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

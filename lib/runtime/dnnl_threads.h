// oneDNN is built on OpenMP. Every thread that plans or runs oneDNN work (a dnnl_sgemm, a
// convolution primitive, which sizes its work split at planning) uses one OpenMP thread: we
// split the work over our own workers (runtime/thread_pool.h), and a second OpenMP thread would
// spin-wait against them on a small machine. Included only where the build has oneDNN.
#pragma once

extern "C" void omp_set_num_threads(int);

namespace asrc::runtime {

// Sets the calling thread's OpenMP thread count to 1, once per thread.
inline void OneOmpThread() {
  static thread_local bool once = [] {
    omp_set_num_threads(1);
    return true;
  }();
  (void)once;
}

}  // namespace asrc::runtime

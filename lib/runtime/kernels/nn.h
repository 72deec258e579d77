// Internal pieces of the dense kernels, exposed for tests (reference vs fast path).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "ir/tensor.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {

// Conv geometry from attributes and shapes (spatial rank >= 1).
struct ConvGeometry {
  // attributes
  std::string auto_pad = "NOTSET";
  int64_t group = 1;
  std::vector<int64_t> strides, dilations, pads, kernel_shape;
  // resolved
  int64_t N = 0, C = 0, M = 0;
  std::vector<int64_t> in, k, out, stride, dil, pb, pe;
  Status Resolve(const ir::Shape& x, const ir::Shape& w);
};

// A convolution's attributes, named with `prefix` (ConvPair's second convolution has
// "second_"), and whether its activation (FusedConv's attribute) is ReLU.
Status ConvAttributes(const ir::Node& node, const std::string& prefix, ConvGeometry* g, bool* relu);

// Calls tap(y_index, x_index, w_index) for every product x * w the convolution sums into an
// output element (flat NC... indices; padding taps skipped). The taps of one output come
// consecutively, over input channels then kernel positions in row-major order.
template <class F>
void ForEachConvTap(const ConvGeometry& g, F&& tap) {
  const int sr = static_cast<int>(g.in.size());
  const int64_t cg = g.C / g.group, mg = g.M / g.group;
  int64_t on = 1, kn = 1, in_n = 1;
  for (int d = 0; d < sr; ++d) { on *= g.out[d]; kn *= g.k[d]; in_n *= g.in[d]; }
  std::vector<int64_t> oc(sr), kc(sr);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t m = 0; m < g.M; ++m) {
      const int64_t grp = m / mg;
      for (int64_t o = 0; o < on; ++o) {
        int64_t rem = o;
        for (int d = sr - 1; d >= 0; --d) { oc[d] = rem % g.out[d]; rem /= g.out[d]; }
        const int64_t yi = (n * g.M + m) * on + o;
        for (int64_t c = 0; c < cg; ++c)
          for (int64_t kk = 0; kk < kn; ++kk) {
            int64_t r2 = kk, off = 0;
            bool inside = true;
            for (int d = sr - 1; d >= 0; --d) { kc[d] = r2 % g.k[d]; r2 /= g.k[d]; }
            for (int d = 0; d < sr && inside; ++d) {
              int64_t p = oc[d] * g.stride[d] + kc[d] * g.dil[d] - g.pb[d];
              inside = p >= 0 && p < g.in[d];
              off = off * g.in[d] + p;
            }
            if (inside) tap(yi, (n * g.C + grp * cg + c) * in_n + off, (m * cg + c) * kn + kk);
          }
      }
    }
}

// Plain direct convolution (any spatial rank); the reference the fast paths are tested against.
void ConvReference(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y);

// Sgemm with alpha 1 and `threads` (the GEMM splits large products itself; `pool` is unused).
void ParallelSgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads,
                   ThreadPool* pool);

}  // namespace asrc::runtime

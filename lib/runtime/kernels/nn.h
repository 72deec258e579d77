// Internal pieces of the dense kernels, exposed for tests (reference vs fast path).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "ir/tensor.h"
#include "runtime/kernel.h"
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

// A convolution's attributes (auto_pad, group, strides, dilations, pads, kernel_shape), named
// with `prefix`, and whether its activation attribute (FusedConv's) is ReLU.
Status ConvAttributes(const ir::Node& node, const std::string& prefix, ConvGeometry* g, bool* relu);

// Plain direct convolution (any spatial rank); the reference the fast paths are tested against.
void ConvReference(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y);

// Sgemm with alpha 1 and `threads` (the GEMM splits large products itself; `pool` is unused).
void ParallelSgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads,
                   ThreadPool* pool);

// BatchNormalization with training_mode=1 (kernels/norm.cc).
Result<std::unique_ptr<Kernel>> MakeBatchNormTraining(const KernelInit& init);

}  // namespace asrc::runtime

// The optimizer side of training: AdamW, clipping by global norm, learning-rate schedules.
// All of it works on float32 ir::Tensor weights updated in place (a weight shared by several
// initializers is one buffer: pass it once, with its summed gradient) and float32 gradients of
// the same shapes. Nothing here is random, and every element is computed by the same sequence of
// float operations whatever the thread count, so a run is reproducible bit for bit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/tensor.h"

namespace asrc::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // decoupled: param *= 1 - lr * weight_decay before the Adam step
};

// AdamW (Loshchilov & Hutter 2019) computed as torch.optim.AdamW does (torch 1.13, amsgrad off):
// per step t (from 1), for every element:
//   param *= 1 - lr * wd;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
//   param -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
// The first Step fixes the parameter list (count and shapes); later steps must pass the same.
class AdamW {
 public:
  explicit AdamW(AdamWOptions options = {}) : opt_(options) {}

  // One update of params[i] from grads[i] at learning rate `lr`. Errors (no change made): count
  // or shape mismatch, a non-float32 tensor, two parameters on one buffer.
  Status Step(const std::vector<ir::Tensor*>& params, const std::vector<const ir::Tensor*>& grads, double lr);

  const AdamWOptions& options() const { return opt_; }
  // State for checkpoints: the steps taken and the two moments per parameter (empty before the
  // first step). Restoring = assigning them back, same shapes.
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  std::vector<ir::Tensor>& exp_avg() { return m_; }
  std::vector<ir::Tensor>& exp_avg_sq() { return v_; }
  const std::vector<ir::Tensor>& exp_avg() const { return m_; }
  const std::vector<ir::Tensor>& exp_avg_sq() const { return v_; }

 private:
  AdamWOptions opt_;
  int64_t steps_ = 0;
  std::vector<ir::Tensor> m_, v_;
};

// The joint L2 norm of the gradients (summed in double, tensor by tensor, element by element),
// gradients untouched; inf or NaN is returned as is. Error: a missing or non-float32 gradient.
Result<double> GradNorm(const std::vector<const ir::Tensor*>& grads);

// Scales the gradients in place so that their joint L2 norm is at most max_norm, as
// torch.nn.utils.clip_grad_norm_ does: coefficient min(1, max_norm / (norm + 1e-6)). Returns
// the norm before clipping, as GradNorm computes it (inf or NaN is returned as is, gradients
// untouched, for the caller to stop on).
Result<double> ClipGradNorm(const std::vector<ir::Tensor*>& grads, double max_norm);

// Learning rate as a function of the optimizer step s = 1, 2, ... (the step about to be taken).
struct Schedule {
  enum class Kind { kConstant, kWarmupCosine, kNoam };
  Kind kind = Kind::kConstant;
  double lr = 1e-3;           // constant: lr; warmup-cosine: the peak; noam: the factor
  int64_t warmup = 0;         // steps of linear warmup (warmup-cosine) / Noam's warmup
  int64_t total = 0;          // warmup-cosine: the step at which the cosine reaches min_lr
  double min_lr = 0;          // warmup-cosine: the floor, held after `total`
  int64_t d_model = 256;      // noam

  // constant: lr.
  // warmup-cosine: lr * s / warmup for s <= warmup; then
  //   min_lr + (lr - min_lr) (1 + cos(pi * min(1, (s - warmup) / (total - warmup)))) / 2.
  // noam (Vaswani et al. 2017): lr * d_model^-0.5 * min(s^-0.5, s * warmup^-1.5).
  double At(int64_t step) const;

  static Schedule Constant(double lr);
  static Schedule WarmupCosine(double peak, int64_t warmup, int64_t total, double min_lr = 0);
  static Schedule Noam(double factor, int64_t d_model, int64_t warmup);
  // One line for reports: "warmup-cosine(lr=0.001,warmup=500,total=10000,min_lr=0)".
  std::string ToString() const;
};

}  // namespace asrc::train

#include "train/optimizer.h"

#include <cmath>
#include <set>
#include <sstream>

namespace asrc::train {

namespace {

Status CheckFloat(const ir::Tensor* t, const char* what, size_t i) {
  if (!t || !t->defined()) return Error(std::string(what) + " " + std::to_string(i) + " is missing");
  if (t->dtype() != ir::DType::Float32)
    return Error(std::string(what) + " " + std::to_string(i) + " is " + ir::DTypeName(t->dtype()) +
                 ", not float32");
  return Status::Ok();
}

}  // namespace

Status AdamW::Step(const std::vector<ir::Tensor*>& params, const std::vector<const ir::Tensor*>& grads,
                   double lr) {
  if (params.size() != grads.size())
    return Error("AdamW: " + std::to_string(params.size()) + " parameters but " + std::to_string(grads.size()) +
                 " gradients");
  if (!m_.empty() && m_.size() != params.size())
    return Error("AdamW: " + std::to_string(params.size()) + " parameters, but the optimizer state holds " +
                 std::to_string(m_.size()));
  std::set<const uint8_t*> seen;
  for (size_t i = 0; i < params.size(); ++i) {
    ASRC_RETURN_IF_ERROR(CheckFloat(params[i], "AdamW: parameter", i));
    ASRC_RETURN_IF_ERROR(CheckFloat(grads[i], "AdamW: gradient", i));
    const ir::Shape& s = params[i]->shape();
    if (grads[i]->shape() != s || (!m_.empty() && (m_[i].shape() != s || v_[i].shape() != s)))
      return Error("AdamW: parameter " + std::to_string(i) + " " + ir::ShapeStr(s) + " does not match its " +
                   (grads[i]->shape() != s ? "gradient " + ir::ShapeStr(grads[i]->shape())
                                           : "optimizer state " + ir::ShapeStr(m_[i].shape())));
    if (params[i]->numel() > 0 && !seen.insert(params[i]->raw()).second)
      return Error("AdamW: parameter " + std::to_string(i) +
                   " shares its buffer with an earlier one (pass a shared weight once, with its summed gradient)");
  }
  if (m_.empty())
    for (auto* p : params) {
      m_.emplace_back(ir::DType::Float32, p->shape());  // zero-filled
      v_.emplace_back(ir::DType::Float32, p->shape());
    }
  ++steps_;
  // Scalars as torch forms them (in double, applied as float32); the order of operations per
  // element is torch's too, so both round alike.
  const double t = static_cast<double>(steps_);
  const float decay = static_cast<float>(1.0 - lr * opt_.weight_decay);
  const float b1 = static_cast<float>(opt_.beta1), b2 = static_cast<float>(opt_.beta2);
  const float one_b1 = static_cast<float>(1.0 - opt_.beta1), one_b2 = static_cast<float>(1.0 - opt_.beta2);
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(opt_.beta1, t)));
  const float bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(opt_.beta2, t)));
  const float eps = static_cast<float>(opt_.eps);
  for (size_t i = 0; i < params.size(); ++i) {
    float* p = params[i]->data<float>();
    const float* g = grads[i]->data<float>();
    float* m = m_[i].data<float>();
    float* v = v_[i].data<float>();
    for (int64_t k = 0, n = params[i]->numel(); k < n; ++k) {
      p[k] *= decay;
      m[k] = m[k] * b1 + g[k] * one_b1;
      v[k] = v[k] * b2 + g[k] * g[k] * one_b2;
      const float denom = std::sqrt(v[k]) / bc2_sqrt + eps;
      p[k] += -step_size * (m[k] / denom);
    }
  }
  return Status::Ok();
}

namespace {

Result<double> Norm(const std::vector<const ir::Tensor*>& grads, const char* what) {
  double sq = 0;
  for (size_t i = 0; i < grads.size(); ++i) {
    ASRC_RETURN_IF_ERROR(CheckFloat(grads[i], what, i));
    const float* g = grads[i]->data<float>();
    for (int64_t k = 0, n = grads[i]->numel(); k < n; ++k) sq += static_cast<double>(g[k]) * g[k];
  }
  return std::sqrt(sq);
}

}  // namespace

Result<double> GradNorm(const std::vector<const ir::Tensor*>& grads) { return Norm(grads, "GradNorm: gradient"); }

Result<double> ClipGradNorm(const std::vector<ir::Tensor*>& grads, double max_norm) {
  if (!(max_norm > 0)) return Error("ClipGradNorm: max_norm must be positive, got " + std::to_string(max_norm));
  ASRC_ASSIGN_OR_RETURN(const double norm,
                        Norm(std::vector<const ir::Tensor*>(grads.begin(), grads.end()), "ClipGradNorm: gradient"));
  if (!std::isfinite(norm)) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    const float c = static_cast<float>(coef);
    for (auto* t : grads) {
      float* g = t->data<float>();
      for (int64_t k = 0, n = t->numel(); k < n; ++k) g[k] *= c;
    }
  }
  return norm;
}

double Schedule::At(int64_t step) const {
  const double s = static_cast<double>(std::max<int64_t>(step, 1));
  switch (kind) {
    case Kind::kConstant:
      return lr;
    case Kind::kWarmupCosine: {
      if (step <= warmup) return lr * s / static_cast<double>(warmup);
      const double span = static_cast<double>(std::max<int64_t>(total - warmup, 1));
      const double progress = std::min(1.0, (s - static_cast<double>(warmup)) / span);
      return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
    }
    case Kind::kNoam: {
      const double w = static_cast<double>(std::max<int64_t>(warmup, 1));
      return lr / std::sqrt(static_cast<double>(d_model)) * std::min(1.0 / std::sqrt(s), s * std::pow(w, -1.5));
    }
  }
  return lr;
}

Schedule Schedule::Constant(double lr) {
  Schedule s;
  s.lr = lr;
  return s;
}

Schedule Schedule::WarmupCosine(double peak, int64_t warmup, int64_t total, double min_lr) {
  Schedule s;
  s.kind = Kind::kWarmupCosine;
  s.lr = peak;
  s.warmup = warmup;
  s.total = total;
  s.min_lr = min_lr;
  return s;
}

Schedule Schedule::Noam(double factor, int64_t d_model, int64_t warmup) {
  Schedule s;
  s.kind = Kind::kNoam;
  s.lr = factor;
  s.d_model = d_model;
  s.warmup = warmup;
  return s;
}

std::string Schedule::ToString() const {
  std::ostringstream o;
  switch (kind) {
    case Kind::kConstant: o << "constant(lr=" << lr << ")"; break;
    case Kind::kWarmupCosine:
      o << "warmup-cosine(lr=" << lr << ",warmup=" << warmup << ",total=" << total << ",min_lr=" << min_lr << ")";
      break;
    case Kind::kNoam: o << "noam(factor=" << lr << ",d_model=" << d_model << ",warmup=" << warmup << ")"; break;
  }
  return o.str();
}

}  // namespace asrc::train

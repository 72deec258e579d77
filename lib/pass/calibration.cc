#include "pass/calibration.h"

#include <algorithm>
#include <cmath>
#include <memory>

namespace asrc::pass {

float ActivationStats::Quantile(double q) const {
  if (q <= 0) return min;
  if (q >= 1) return max;
  if (sample.empty()) return 0;
  std::vector<float> s = sample;
  size_t k = static_cast<size_t>(q * (s.size() - 1) + 0.5);
  std::nth_element(s.begin(), s.begin() + k, s.end());
  return s[k];
}

std::vector<float> ActivationStats::ChannelRms() const {
  std::vector<float> out;
  if (rows == 0) return out;
  for (double v : sum_sq) out.push_back(static_cast<float>(std::sqrt(v / rows)));
  return out;
}

StatsCollector::StatsCollector(const std::vector<std::string>& taps, uint64_t seed,
                               size_t reservoir)
    : rng_(seed), reservoir_(reservoir) {
  for (const auto& name : taps)
    if (index_.emplace(name, taps_.size()).second) taps_.push_back(name);
  pending_.resize(taps_.size());
  shown_.assign(taps_.size(), false);
}

runtime::SessionOptions StatsCollector::Tap(runtime::SessionOptions base) {
  base.taps = taps_;
  base.observer = [this](const std::string& name, const ir::Tensor& value) {
    Observe(name, value);
  };
  return base;
}

void StatsCollector::Observe(const std::string& name, const ir::Tensor& value) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  const size_t i = it->second;
  pending_[i] = value;  // shares the buffer: the session does not recycle it while held here
  if (!shown_[i]) {
    shown_[i] = true;
    ++shown_count_;
  }
  if (shown_count_ < taps_.size()) return;
  Add(pending_);
  for (auto& t : pending_) t = ir::Tensor();
  shown_.assign(taps_.size(), false);
  shown_count_ = 0;
}

void StatsCollector::Add(const std::vector<ir::Tensor>& values) {
  for (size_t i = 0; i < taps_.size() && i < values.size(); ++i) Accumulate(taps_[i], values[i]);
}

void StatsCollector::Accumulate(const std::string& name, const ir::Tensor& t) {
  if (!t.defined() || t.dtype() != ir::DType::Float32) return;
  ActivationStats& s = stats_[name];
  const float* p = t.data<float>();
  int64_t n = t.numel();
  int64_t ch = t.rank() > 0 ? t.dim(-1) : 1;
  if (ch <= 0) return;
  if (s.count == 0 && n > 0) s.min = s.max = p[0];
  if (s.sum_sq.empty()) s.sum_sq.assign(ch, 0.0);
  if (static_cast<int64_t>(s.sum_sq.size()) != ch) return;  // shape changed: keep first
  for (int64_t k = 0; k < n; ++k) {
    float x = p[k];
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
    s.sum_sq[k % ch] += static_cast<double>(x) * x;
    // Reservoir sampling (Vitter's algorithm R), seeded.
    int64_t seen = s.count + k;
    if (s.sample.size() < reservoir_) {
      s.sample.push_back(x);
    } else {
      uint64_t j = rng_() % static_cast<uint64_t>(seen + 1);
      if (j < reservoir_) s.sample[j] = x;
    }
  }
  s.count += n;
  s.rows += n / ch;
}

Calibrator RandomInputCalibrator(int runs, uint64_t seed, int64_t dynamic_dim) {
  return [=](const ir::Model& model, const Taps& taps) -> Result<ModelStats> {
    ModelStats out;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.f, 1.f);
    for (const auto& gf : model.graphs) {
      auto it = taps.find(gf.role);
      if (it == taps.end() || !gf.graph) continue;
      StatsCollector col(it->second, seed);
      ASRC_ASSIGN_OR_RETURN(auto session,
                            runtime::Session::Create(*gf.graph, gf.opset(""), col.Tap()));
      for (int r = 0; r < runs; ++r) {
        std::vector<ir::Tensor> ins, outs;
        for (const auto& name : session->input_names()) {
          const ir::Value* v = gf.graph->FindValue(name);
          ir::Shape shape;
          for (const auto& d : v->type.dims) shape.push_back(d.known() ? d.value : dynamic_dim);
          ir::DType dt = v->type.has_type ? v->type.dtype : ir::DType::Float32;
          ir::Tensor t(dt, shape);
          if (dt == ir::DType::Float32) {
            for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = normal(rng);
          }
          ins.push_back(std::move(t));
        }
        ASRC_RETURN_IF_ERROR(session->Run(ins, &outs));
      }
      out[gf.role] = col.stats();
    }
    return out;
  };
}

}  // namespace asrc::pass

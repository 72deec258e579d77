#include "pass/calibration.h"

#include <algorithm>
#include <cmath>


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

Result<std::unique_ptr<StatsCollector>> StatsCollector::Create(const ir::Graph& graph,
                                                                int64_t opset,
                                                                const std::vector<std::string>& taps,
                                                                uint64_t seed, size_t reservoir) {
  auto c = std::unique_ptr<StatsCollector>(new StatsCollector());
  c->graph_ = graph.clone();
  c->rng_.seed(seed);
  c->reservoir_ = reservoir;
  for (const ir::Value* v : c->graph_->outputs) c->output_names_.push_back(v->name);
  for (const auto& name : taps) {
    ir::Value* v = c->graph_->find_value(name);
    if (!v) return Error("calibration: graph '" + graph.name + "' has no value '" + name + "'");
    if (std::find(c->tap_names_.begin(), c->tap_names_.end(), name) != c->tap_names_.end()) continue;
    c->graph_->outputs.push_back(v);
    c->tap_names_.push_back(name);
  }
  ASRC_ASSIGN_OR_RETURN(c->session_, runtime::Session::Create(*c->graph_, opset));
  return c;
}

Result<std::vector<ir::Tensor>> StatsCollector::Run(const std::vector<ir::Tensor>& inputs) {
  std::vector<ir::Tensor> outs;
  ASRC_RETURN_IF_ERROR(session_->Run(inputs, &outs));
  size_t n_own = output_names_.size();
  for (size_t i = 0; i < tap_names_.size(); ++i) {
    const ir::Tensor& t = outs[n_own + i];
    if (t.dtype() != ir::DType::Float32) continue;
    ActivationStats& s = stats_[tap_names_[i]];
    const float* p = t.data<float>();
    int64_t n = t.numel();
    int64_t ch = t.rank() > 0 ? t.dim(-1) : 1;
    if (ch <= 0) continue;
    if (s.count == 0 && n > 0) s.min = s.max = p[0];
    if (s.sum_sq.empty()) s.sum_sq.assign(ch, 0.0);
    if (static_cast<int64_t>(s.sum_sq.size()) != ch) continue;  // shape changed: keep first
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
  outs.resize(n_own);
  return outs;
}

Calibrator RandomInputCalibrator(int runs, uint64_t seed, int64_t dynamic_dim) {
  return [=](const ir::Model& model, const Taps& taps) -> Result<ModelStats> {
    ModelStats out;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.f, 1.f);
    for (const auto& gf : model.graphs) {
      auto it = taps.find(gf.role);
      if (it == taps.end() || !gf.graph) continue;
      ASRC_ASSIGN_OR_RETURN(auto col,
                            StatsCollector::Create(*gf.graph, gf.opset(""), it->second, seed));
      for (int r = 0; r < runs; ++r) {
        std::vector<ir::Tensor> ins;
        for (const auto& name : col->input_names()) {
          const ir::Value* v = gf.graph->find_value(name);
          ir::Shape shape;
          for (const auto& d : v->type.dims) shape.push_back(d.known() ? d.value : dynamic_dim);
          ir::DType dt = v->type.has_type ? v->type.dtype : ir::DType::Float32;
          ir::Tensor t(dt, shape);
          if (dt == ir::DType::Float32) {
            for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = normal(rng);
          }
          ins.push_back(std::move(t));
        }
        ASRC_RETURN_IF_ERROR(col->Run(ins).status());
      }
      out[gf.role] = col->stats();
    }
    return out;
  };
}

}  // namespace asrc::pass

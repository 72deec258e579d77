// Activation statistics for calibration (static int8 ranges, data-aware low-rank).
//
// A StatsCollector runs a copy of a graph whose chosen intermediate values ("taps") are added as
// extra graph outputs, and accumulates per tap: min/max, a seeded reservoir sample (for
// percentiles) and the mean square per channel of the last axis. Where the graph inputs come from
// is the driver's business: calibration_asr.cc feeds a bundle real audio through the whole
// transducer (features -> causal chunks -> non-causal -> greedy decoding); tests feed seeded
// random inputs.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/model.h"
#include "runtime/session.h"

namespace asrc::pass {

struct ActivationStats {
  float min = 0, max = 0;
  int64_t count = 0;                 // elements seen
  std::vector<float> sample;         // reservoir sample of the elements
  std::vector<double> sum_sq;        // per channel of the last axis
  int64_t rows = 0;                  // rows (elements / channels) seen
  // Value at quantile q in [0, 1] of the sample (q = 0 / 1 give min / max exactly).
  float Quantile(double q) const;
  // sqrt(mean square) per channel; empty when never seen.
  std::vector<float> ChannelRms() const;
};

using StatsMap = std::map<std::string, ActivationStats>;           // tap value name -> stats
using ModelStats = std::map<std::string, StatsMap>;                // graph role -> taps
using Taps = std::map<std::string, std::vector<std::string>>;      // graph role -> value names

class StatsCollector {
 public:
  static Result<std::unique_ptr<StatsCollector>> Create(const ir::Graph& graph, int64_t opset,
                                                        const std::vector<std::string>& taps,
                                                        uint64_t seed = 0,
                                                        size_t reservoir = 100000);
  // Inputs in the session's input order (see input_names()); returns the graph's own outputs.
  Result<std::vector<ir::Tensor>> Run(const std::vector<ir::Tensor>& inputs);
  const std::vector<std::string>& input_names() const { return session_->input_names(); }
  const std::vector<std::string>& output_names() const { return output_names_; }
  const StatsMap& stats() const { return stats_; }

 private:
  std::unique_ptr<ir::Graph> graph_;  // tapped copy
  std::unique_ptr<runtime::Session> session_;
  std::vector<std::string> output_names_, tap_names_;
  StatsMap stats_;
  std::mt19937_64 rng_;
  size_t reservoir_ = 0;
};

// Calibrates a model: returns stats for `taps`. Installed into PassContext::calibrate.
using Calibrator = std::function<Result<ModelStats>(const ir::Model& model, const Taps& taps)>;

// Feeds every graph of `model` seeded standard-normal float inputs (int64 inputs: zeros; dynamic
// dims: 1, or `dynamic_dim`). For single graphs in tests; not for real calibration.
Calibrator RandomInputCalibrator(int runs, uint64_t seed, int64_t dynamic_dim = 4);

}  // namespace asrc::pass

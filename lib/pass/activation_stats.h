// Activation statistics as passes see them (static int8 ranges, data-aware low-rank and
// pruning), and the Calibrator that produces them — without the runtime: how statistics are
// collected (a session's taps) is calibration.h's business.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/model.h"

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

// Calibrates a model: returns stats for `taps`. Installed into PassContext::calibrate.
using Calibrator = std::function<Result<ModelStats>(const ir::Model& model, const Taps& taps)>;

}  // namespace asrc::pass

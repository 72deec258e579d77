// Collecting activation statistics (activation_stats.h) through runtime::Session taps.
//
// A StatsCollector accumulates, per tapped value of one graph: min/max, a seeded reservoir sample
// (for percentiles) and the mean square per channel of the last axis. Tap() gives the session
// options that show it the values; whoever runs the sessions decides the inputs:
// MakeAsrCalibrator (eval_asr.h) runs the lib/asr recognizer on real audio, RandomInputCalibrator
// feeds seeded random inputs to single graphs in tests.
#pragma once

#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/tensor.h"
#include "pass/activation_stats.h"
#include "runtime/session.h"

namespace asrc::pass {

class StatsCollector {
 public:
  // `taps`: value names of one graph (repeats count once); `seed` seeds the reservoir draws.
  explicit StatsCollector(const std::vector<std::string>& taps, uint64_t seed = 0,
                          size_t reservoir = 100000);
  StatsCollector(const StatsCollector&) = delete;
  StatsCollector& operator=(const StatsCollector&) = delete;

  // `base` with this collector's taps and an observer that feeds it. The collector must outlive
  // the sessions made with them. The values of one Run are added together once the run has
  // shown all of them, in tap order (Add), so the reservoir draws do not depend on the order in
  // which the session computes them.
  runtime::SessionOptions Tap(runtime::SessionOptions base = {});
  // Adds one run's values, `values[i]` of taps()[i]. Non-float32 values are not counted.
  void Add(const std::vector<ir::Tensor>& values);

  const std::vector<std::string>& taps() const { return taps_; }
  const StatsMap& stats() const { return stats_; }

 private:
  void Observe(const std::string& name, const ir::Tensor& value);
  void Accumulate(const std::string& name, const ir::Tensor& t);

  std::vector<std::string> taps_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<ir::Tensor> pending_;  // the current run's values shown so far, by tap index
  std::vector<bool> shown_;
  size_t shown_count_ = 0;
  StatsMap stats_;
  std::mt19937_64 rng_;
  size_t reservoir_ = 0;
};

// Feeds every graph of `model` seeded standard-normal float inputs (int64 inputs: zeros; dynamic
// dims: 1, or `dynamic_dim`). For single graphs in tests; not for real calibration.
Calibrator RandomInputCalibrator(int runs, uint64_t seed, int64_t dynamic_dim = 4);

}  // namespace asrc::pass

// Passes and the pass context.
//
// A pass is policy: it rewrites an ir::Model and says honestly whether anything changed. It never
// measures WER or size itself — it bumps named counters, and the PassManager's instruments measure
// (XLA's HloPassInterface, MLIR's pass statistics). Options are declared with defaults and
// descriptions; a pipeline that names an option the pass does not declare is an error.
//
// Contract for pass authors:
//   - Never write into an existing tensor's buffer: buffers are shared with the teacher snapshot,
//     with rolled-back copies and across graphs of a bundle. Make a new Tensor instead.
//   - Keep graph input/output names: they are the bundle's interface (docs/bundle.md).
//   - Return an error Status naming the graph and node for input the pass cannot handle, or skip
//     the node and bump a "skipped_*" counter when skipping is the documented behaviour.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "ir/model.h"
#include "pass/activation_stats.h"

namespace asrc::pass {

// One declared option. `default_value` fixes the type: bool, integer, number, string, or array of
// strings. `choices` (strings only) and [min, max] (numbers only) restrict the values.
struct OptionSpec {
  std::string name;
  nlohmann::json default_value;
  std::string description;
  std::vector<std::string> choices;
  double min = -1e300, max = 1e300;
};

// Checks `given` (an object) against `specs`: unknown keys, wrong types, values out of range or not
// among the choices are errors naming `path` ("$.passes[1].options.mode: ..."). Returns the options
// with every default filled in.
Result<nlohmann::json> ValidateOptions(const std::vector<OptionSpec>& specs,
                                       const nlohmann::json& given, const std::string& path);

// Where the calibration activations come from (quantize-int8 static, low-rank data_aware).
struct CalibrationSource {
  std::string manifest;  // NeMo JSONL; "" when none was given
  std::string split;
  int limit = 8;         // utterances
};

// Word error rates (percent, by mode name: "streaming", "lookahead") of a model on the first
// `limit` utterances of `manifest` ("" = the run's calibration manifest) whose "split" is `split`.
// For passes whose policy is a measurement (drop-layers by importance); asrc compress provides it.
using WerProbe = std::function<Result<std::map<std::string, double>>(
    const ir::Model& model, const std::string& manifest, const std::string& split, int limit)>;

class PassContext {
 public:
  PassContext(nlohmann::json options, uint64_t seed) : options_(std::move(options)), rng_(seed) {}

  const nlohmann::json& options() const { return options_; }
  bool GetBool(const std::string& name) const { return options_.at(name).get<bool>(); }
  int64_t GetInt(const std::string& name) const { return options_.at(name).get<int64_t>(); }
  double GetFloat(const std::string& name) const { return options_.at(name).get<double>(); }
  std::string GetString(const std::string& name) const {
    return options_.at(name).get<std::string>();
  }
  std::vector<std::string> GetStrings(const std::string& name) const {
    return options_.at(name).get<std::vector<std::string>>();
  }

  // Named statistics, reported per pass ("matmuls_quantized": 96).
  void Bump(const std::string& counter, int64_t n = 1) { counters_[counter] += n; }
  const std::map<std::string, int64_t>& counters() const { return counters_; }
  // Free-form remarks for the report ("unstructured sparsity is not stored sparse: ...").
  void Note(const std::string& text) { notes_.push_back(text); }
  const std::vector<std::string>& notes() const { return notes_; }

  std::mt19937_64& rng() { return rng_; }

  // The model as it was before the first pass (never modified). May be null in unit tests.
  const ir::Model* teacher = nullptr;
  // Activation statistics on calibration data (quantize-int8 static, low-rank data_aware); empty
  // when the run has no calibration data (such passes then fail, naming the option).
  Calibrator calibrate;
  // Empty when the run cannot measure WER (unit tests; such passes then fail, naming the option).
  WerProbe probe_wer;

 private:
  nlohmann::json options_;
  std::map<std::string, int64_t> counters_;
  std::vector<std::string> notes_;
  std::mt19937_64 rng_;
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;  // kebab-case CLI name
  virtual std::string description() const = 0;
  virtual std::vector<OptionSpec> options() const = 0;
  // Rewrites `model`; returns whether anything changed.
  virtual Result<bool> Run(ir::Model& model, PassContext& ctx) = 0;
};

// Name -> factory. The list of built-in passes is explicit (passes/registry.cc).
class PassRegistry {
 public:
  using Factory = std::function<std::unique_ptr<Pass>()>;
  void Register(const std::string& name, Factory factory);
  std::unique_ptr<Pass> Create(const std::string& name) const;  // nullptr when unknown
  bool Has(const std::string& name) const { return table_.count(name) > 0; }
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, Factory> table_;
};

// Glob match with '*' and '?' (graph roles, node names, op types).
bool GlobMatch(const std::string& pattern, const std::string& text);
bool AnyGlobMatch(const std::vector<std::string>& patterns, const std::string& text);

}  // namespace asrc::pass

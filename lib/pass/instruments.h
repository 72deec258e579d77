// The standard instruments (manager.h): each does one job around every pass.
//
//   log     progress lines "[2/3] quantize-int8: 1.20 s, changed, 5.10 MB, lookahead WER 30.1"
//   gate    judges the pass by the pipeline's gate; on a broken gate rolls the model back to a
//           copy taken before the pass (on_fail = rollback) or ends the run (stop)
//   eval    WER/CER and latency per mode (an Evaluator), cached by content hash
//   size    params and unique weight bytes, per graph and in total
//   verify  checks every graph after a pass that changed the model
//   change  content hash before and after: a pass that said "unchanged" but changed the model
//           is an error naming it (XLA's pass pipeline checks the same)
//   timing  the pass's wall time
//
// Compress() adds them in this order (outermost first), so timing wraps the pass alone and the
// gate sees the evaluation.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "pass/manager.h"

namespace asrc::pass {

std::unique_ptr<Instrument> MakeLogInstrument(size_t steps, std::function<void(const std::string&)> log);
std::unique_ptr<Instrument> MakeGateInstrument(const Pipeline& pipeline);
std::unique_ptr<Instrument> MakeSizeInstrument();
std::unique_ptr<Instrument> MakeVerifyInstrument();
std::unique_ptr<Instrument> MakeChangeCheckInstrument();
std::unique_ptr<Instrument> MakeTimingInstrument();

// Evaluates a model in its modes (see eval_asr.h for the asr::Evaluate-backed one).
using Evaluator = std::function<Result<EvalSummary>(const ir::Model&)>;

// Runs `evaluator` on the input model and after each pass; results are cached by content hash,
// so an unchanged (or rolled-back-to) model is not evaluated twice.
struct EvalRepeat {
  // Evaluations per model, at most; the fastest run is kept (WER is deterministic, latency on a
  // shared machine is not).
  int repeat = 1;
  // 0: exactly `repeat` runs, the fastest by total RTF kept. > 0: latency until stable — each
  // latency (chunk or utterance) is its minimum over the runs so far (what the code costs without
  // the machine's other load), p50/p90 are taken of those minima, and repeating stops once a run
  // lowers the latency score (the sum over modes of p50 + p90) by no more than this fraction.
  double stable_tolerance = 0;
};

class EvalInstrument : public Instrument {
 public:
  explicit EvalInstrument(Evaluator evaluator, int repeat = 1)
      : evaluator_(std::move(evaluator)), repeat_{repeat, 0} {}
  EvalInstrument(Evaluator evaluator, EvalRepeat repeat, std::string cache_dir, int only_index)
      : evaluator_(std::move(evaluator)), repeat_(repeat), cache_dir_(std::move(cache_dir)),
        only_index_(only_index) {}
  std::string name() const override { return "eval"; }
  Status After(PassRecord& record, ir::Model& model) override;
  int evaluations() const { return evaluations_; }

 private:
  Result<EvalSummary> Measure(const ir::Model& model);
  Evaluator evaluator_;
  EvalRepeat repeat_;
  // "": the in-memory cache only; else also <cache_dir>/<hash>.json, shared by runs and processes
  // (written to a temporary name and renamed, so a reader never sees half a file). Processes
  // sharing the folder evaluate one at a time (a lock file), so that parallel configurations do
  // not load each other's latency measurements; their passes still run in parallel.
  std::string cache_dir_;
  int only_index_ = -1;  // >= 0: evaluate the input model and the record of this index only
  std::map<uint64_t, EvalSummary> cache_;
  int evaluations_ = 0;
};

// Checks `after` against `before` (the model the pass started from) and `input` (the first
// model). "" when the gate holds or `after` was not evaluated, else the reason ("lookahead wer
// 5.10 -> 5.60 (+9.8% rel) exceeds +2.0% per pass"). A gate without a mode judges the final
// mode (the last of AllModes() that `after` has).
std::string CheckGate(const Gate& gate, const EvalSummary* input, const EvalSummary* before,
                      const EvalSummary* after);

}  // namespace asrc::pass

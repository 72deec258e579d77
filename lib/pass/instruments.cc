#include "pass/instruments.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/files.h"
#include "pass/modes.h"
#include "pass/report.h"

namespace asrc::pass {

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Fmt(double v, int prec = 2) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(prec);
  os << v;
  return os.str();
}

class LogInstrument : public Instrument {
 public:
  LogInstrument(size_t steps, std::function<void(const std::string&)> log)
      : steps_(std::to_string(steps)), log_(std::move(log)) {}
  std::string name() const override { return "log"; }
  Status After(PassRecord& r, ir::Model&) override {
    const std::string mb = Fmt((r.size ? r.size->bytes : 0) / 1e6) + " MB";
    std::string line = "[" + std::to_string(r.index) + "/" + steps_ + "] " + r.pass + ": ";
    if (r.is_input()) {
      log_(line + mb);
      return Status::Ok();
    }
    line += Fmt(r.wall_s) + " s, " + (r.changed ? "changed" : "unchanged") + ", " + mb;
    for (const Mode& m : AllModes()) {
      const ModeEval* e = r.eval ? r.eval->mode(m.name) : nullptr;
      if (e) line += ", " + m.name + " WER " + Fmt(e->wer);
    }
    if (r.gate && !r.gate->passed) line += "; gate broken: " + r.gate->reason + " -> " + r.gate->action;
    log_(line);
    return Status::Ok();
  }

 private:
  std::string steps_;
  std::function<void(const std::string&)> log_;
};

class GateInstrument : public Instrument {
 public:
  explicit GateInstrument(const Pipeline& p) {
    for (const PipelineStep& s : p.steps) gates_.push_back(s.gate ? *s.gate : p.gate);
  }
  std::string name() const override { return "gate"; }
  Status Before(const PassRecord& r, const ir::Model& model) override {
    backup_.reset();
    const Gate& gate = gates_.at(r.index - 1);
    if (gate.any() && gate.on_fail != "report") backup_ = model;  // the rollback point
    return Status::Ok();
  }
  Status After(PassRecord& r, ir::Model& model) override {
    if (r.is_input()) {
      input_ = last_good_ = r.eval;
      return Status::Ok();
    }
    const Gate& gate = gates_.at(r.index - 1);
    const EvalSummary* after = r.eval ? &*r.eval : nullptr;
    std::string broken = CheckGate(gate, input_ ? &*input_ : nullptr,
                                   last_good_ ? &*last_good_ : nullptr, after);
    if (gate.any() && after && !after->modes.empty())
      r.gate = GateResult{broken.empty(), broken, broken.empty() ? "none" : gate.on_fail};
    if (!broken.empty() && backup_) {
      model = std::move(*backup_);
      r.rolled_back = true;
    }
    if (broken.empty() || !backup_) last_good_ = r.eval;  // else the model is as it was before
    if (!broken.empty() && gate.on_fail == "stop") r.stop_reason = broken;
    backup_.reset();
    return Status::Ok();
  }

 private:
  std::vector<Gate> gates_;  // per step
  std::optional<ir::Model> backup_;
  std::optional<EvalSummary> input_, last_good_;
};

class SizeInstrument : public Instrument {
 public:
  std::string name() const override { return "size"; }
  Status After(PassRecord& r, ir::Model& model) override {
    SizeStats s;
    s.params = model.ParamsTotal();
    s.bytes = model.BytesUnique();
    for (const auto& gf : model.graphs) {
      if (!gf.graph) continue;
      s.graphs[gf.role] = {gf.graph->NumParams(), ir::GraphBytes(*gf.graph),
                           static_cast<int64_t>(gf.graph->num_nodes())};
    }
    r.size = std::move(s);
    return Status::Ok();
  }
};

class VerifyInstrument : public Instrument {
 public:
  std::string name() const override { return "verify"; }
  Status After(PassRecord& r, ir::Model& model) override {
    if (!r.changed && !r.is_input()) return Status::Ok();
    for (const auto& gf : model.graphs) {
      if (!gf.graph) continue;
      Status st = gf.graph->Verify();
      if (!st.ok()) return st.With("graph '" + gf.role + "'");
    }
    return Status::Ok();
  }
};

class ChangeCheckInstrument : public Instrument {
 public:
  std::string name() const override { return "change-check"; }
  Status Before(const PassRecord&, const ir::Model& model) override {
    before_ = ir::ContentHash(model);
    return Status::Ok();
  }
  Status After(PassRecord& r, ir::Model& model) override {
    r.hash = ir::ContentHash(model);
    if (!r.is_input() && !r.changed && *r.hash != before_)
      return Error("the pass reported no change but changed the model (content hash " +
                   ir::HashHex(before_) + " -> " + ir::HashHex(*r.hash) + ")");
    return Status::Ok();
  }

 private:
  uint64_t before_ = 0;
};

class TimingInstrument : public Instrument {
 public:
  std::string name() const override { return "timing"; }
  Status Before(const PassRecord&, const ir::Model&) override {
    start_ = Now();
    return Status::Ok();
  }
  Status After(PassRecord& r, ir::Model&) override {
    if (!r.is_input()) r.wall_s = Now() - start_;
    return Status::Ok();
  }

 private:
  double start_ = 0;
};

// The last of AllModes() that `e` has: the final pass.
const ModeEval* FinalMode(const EvalSummary& e, std::string* name) {
  const ModeEval* out = nullptr;
  for (const Mode& m : AllModes()) {
    if (const ModeEval* x = e.mode(m.name)) {
      out = x;
      *name = m.name;
    }
  }
  return out;
}

}  // namespace

std::unique_ptr<Instrument> MakeLogInstrument(size_t steps, std::function<void(const std::string&)> log) {
  return std::make_unique<LogInstrument>(steps, std::move(log));
}
std::unique_ptr<Instrument> MakeGateInstrument(const Pipeline& pipeline) {
  return std::make_unique<GateInstrument>(pipeline);
}
std::unique_ptr<Instrument> MakeSizeInstrument() { return std::make_unique<SizeInstrument>(); }
std::unique_ptr<Instrument> MakeVerifyInstrument() { return std::make_unique<VerifyInstrument>(); }
std::unique_ptr<Instrument> MakeChangeCheckInstrument() { return std::make_unique<ChangeCheckInstrument>(); }
std::unique_ptr<Instrument> MakeTimingInstrument() { return std::make_unique<TimingInstrument>(); }

namespace {

double Percentile(std::vector<double> v, double p) {  // as asr::Percentile: linear interpolation
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * (v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] * (1 - (pos - lo)) + v[hi] * (pos - lo);
}

// Folds a repeated evaluation into `into`: each latency (chunk or utterance) its minimum over the
// runs, p50/p90 recomputed from those, RTFs the lowest. Returns the latency score after: the sum
// over modes of p50 + p90.
double FoldMinimum(EvalSummary& into, const EvalSummary& again) {
  double score = 0;
  for (auto& [name, m] : into.modes) {
    const ModeEval* o = again.mode(name);
    if (o && o->latency_ms.size() == m.latency_ms.size()) {
      for (size_t i = 0; i < m.latency_ms.size(); ++i) m.latency_ms[i] = std::min(m.latency_ms[i], o->latency_ms[i]);
      m.latency_ms_p50 = Percentile(m.latency_ms, 50);
      m.latency_ms_p90 = Percentile(m.latency_ms, 90);
      m.rtf = std::min(m.rtf, o->rtf);
      m.rtf_cpu = std::min(m.rtf_cpu, o->rtf_cpu);
    }
    score += m.latency_ms_p50 + m.latency_ms_p90;
  }
  return score;
}

}  // namespace

Result<EvalSummary> EvalInstrument::Measure(const ir::Model& model) {
  const double t0 = Now();
  const int runs = std::max(1, repeat_.repeat);
  const bool stable = repeat_.stable_tolerance > 0;
  double best = INFINITY, last = INFINITY;
  EvalSummary result;
  int made = 0;
  for (int k = 0; k < runs; ++k) {
    ASRC_ASSIGN_OR_RETURN(EvalSummary e, evaluator_(model));
    ++evaluations_;
    ++made;
    if (stable) {  // latency until stable: the element-wise minimum stops moving
      const double score = k == 0 ? FoldMinimum(e, e) : FoldMinimum(result, e);
      if (k == 0) result = std::move(e);
      const bool settled = k > 0 && last - score <= repeat_.stable_tolerance * score;
      last = score;
      if (settled) break;
      continue;
    }
    double rtf = 0;
    for (const auto& [mode, m] : e.modes) rtf += m.rtf;
    if (rtf < best || k == 0) {  // the fastest run by total RTF
      best = rtf;
      result = std::move(e);
    }
  }
  result.repeat = made;
  result.seconds = Now() - t0;
  result.cached = false;
  return result;
}

namespace {

// An evaluation from the cache folder; nullopt when it has none for this file.
Result<std::optional<EvalSummary>> LoadCached(const std::string& file) {
  std::ifstream in(file);
  if (!in) return std::optional<EvalSummary>();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return Error(file + ": not valid JSON (delete it to re-evaluate): " + e.what());
  }
  auto e = ParseEvalSummary(j);
  if (!e.ok()) return e.status().With(file);
  return std::optional<EvalSummary>(std::move(e.value()));
}

Status StoreCached(const std::string& file, const EvalSummary& e) {
  return WriteFileAtomic(file, EvalSummaryJson(e).dump() + "\n");
}

// Holds an exclusive lock on <dir>/.measure.lock: processes sharing a cache folder measure one
// at a time, so one's latency is not another's load (released when it goes out of scope).
struct MeasureLock {
  int fd = -1;
  explicit MeasureLock(const std::string& dir) {
    if (dir.empty()) return;
    fd = open((dir + "/.measure.lock").c_str(), O_RDWR | O_CREAT, 0644);
    if (fd >= 0) flock(fd, LOCK_EX);
  }
  ~MeasureLock() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

Status EvalInstrument::After(PassRecord& r, ir::Model& model) {
  if (only_index_ >= 0 && !r.is_input() && r.index != only_index_) return Status::Ok();
  if (!r.hash) r.hash = ir::ContentHash(model);
  const std::string file = cache_dir_.empty() ? "" : cache_dir_ + "/" + ir::HashHex(*r.hash) + ".json";
  auto use = [&](const EvalSummary& e) {
    r.eval = e;
    r.eval->seconds = 0;
    r.eval->cached = true;
    return Status::Ok();
  };
  auto it = cache_.find(*r.hash);
  if (it != cache_.end()) return use(it->second);
  MeasureLock lock(cache_dir_);
  if (!file.empty()) {  // looked up under the lock: another process may just have measured it
    ASRC_ASSIGN_OR_RETURN(std::optional<EvalSummary> cached, LoadCached(file));
    if (cached) return use(cache_.emplace(*r.hash, *cached).first->second);
  }
  ASRC_ASSIGN_OR_RETURN(EvalSummary result, Measure(model));
  cache_[*r.hash] = result;
  if (!file.empty()) ASRC_RETURN_IF_ERROR(StoreCached(file, result));
  r.eval = std::move(result);
  return Status::Ok();
}

std::string CheckGate(const Gate& gate, const EvalSummary* input, const EvalSummary* before,
                      const EvalSummary* after) {
  if (!gate.any() || !after || after->modes.empty()) return "";  // not evaluated
  std::string mode = gate.mode;
  if (mode.empty()) FinalMode(*after, &mode);
  auto metric = [&](const EvalSummary* e) -> std::optional<double> {
    const ModeEval* m = e ? e->mode(mode) : nullptr;
    return m ? m->Metric(gate.metric) : std::nullopt;
  };
  auto a = metric(after), b = metric(before), in = metric(input);
  const std::string what = mode + " " + gate.metric;
  if (!a || !b || !in) return what + " was not measured (is the mode in eval.modes?)";
  const double eps = 1e-9;
  if (gate.max_rel_increase_per_pass &&
      *a > *b * (1 + *gate.max_rel_increase_per_pass / 100.0) + eps) {
    double rel = *b > 0 ? (*a - *b) / *b * 100 : INFINITY;
    return what + " " + Fmt(*b) + " -> " + Fmt(*a) + " (+" + Fmt(rel, 1) + "% rel) exceeds +" +
           Fmt(*gate.max_rel_increase_per_pass, 1) + "% per pass";
  }
  if (gate.max_abs_increase_per_pass && *a > *b + *gate.max_abs_increase_per_pass + eps) {
    return what + " " + Fmt(*b) + " -> " + Fmt(*a) + " exceeds +" +
           Fmt(*gate.max_abs_increase_per_pass) + " points per pass";
  }
  if (gate.max_rel_increase_total &&
      *a > *in * (1 + *gate.max_rel_increase_total / 100.0) + eps) {
    double rel = *in > 0 ? (*a - *in) / *in * 100 : INFINITY;
    return what + " " + Fmt(*in) + " (input) -> " + Fmt(*a) + " (+" + Fmt(rel, 1) +
           "% rel) exceeds +" + Fmt(*gate.max_rel_increase_total, 1) + "% in total";
  }
  return "";
}

}  // namespace asrc::pass

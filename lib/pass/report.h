// The compress report: report.json (the data), report.md (one table row per pass) and a
// self-contained report.html (inline SVG plots: size vs WER per pass, latency per pass; no script,
// no network). This file is the only place PassRecords become JSON.
//
// report.json: {"pipeline": <canonical text>, "name", "description", "model", "output",
//               "eval": {...}, "rows": [input row, one row per pass], "stopped", "stop_reason",
//               "created"}
// Each row: {"pass", "changed", "wall_s", "params", "bytes", "graphs", "hash", <mode>: {...},
// "threads", "eval_s", "eval_cached", ...; pass rows also "options", "step", "counters", "notes",
// "gate", "significance"}, with each mode's object keyed as `asrc eval --json` (per-utterance
// transcripts replaced by "utt_word_errors" and "utt_char_errors": [errors, reference length]
// per utterance, null where its audio failed).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "pass/pipeline.h"
#include "pass/record.h"

namespace asrc::pass {

struct CompressReport {
  std::string pipeline;  // canonical text (Pipeline::Canonical)
  std::string name, description;
  std::string model, output;
  std::optional<EvalConfig> eval;    // when the run evaluated (modes resolved against the bundle)
  std::vector<std::string> modes;    // the table's modes: those evaluated, else the bundle's
  std::vector<PassRecord> records;   // the input model, then one per pass
  bool stopped = false;
  std::string stop_reason;
  std::string created;  // UTC, ISO 8601
};

// One report row (above); the ablation report's rows reuse it.
nlohmann::json PassRecordJson(const PassRecord& record);
// An evaluation as the row keys above (modes, "threads", "eval_s", "eval_cached", "eval_repeat"),
// and back: the cross-run evaluation cache (EvalInstrument) stores it.
nlohmann::json EvalSummaryJson(const EvalSummary& eval);
Result<EvalSummary> ParseEvalSummary(const nlohmann::json& j);

nlohmann::json ReportJson(const CompressReport& report);
std::string ReportMarkdown(const CompressReport& report);
std::string ReportHtml(const CompressReport& report);
// Writes report.json, report.md and report.html into `dir` (which must exist).
Status WriteReport(const std::string& dir, const CompressReport& report);

}  // namespace asrc::pass

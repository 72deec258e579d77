// The compress report: report.json (the data), report.md (one table row per pass) and a
// self-contained report.html (inline SVG plots: size vs WER per pass, latency per pass; no script,
// no network).
//
// report.json: {"pipeline": <canonical text>, "name", "model", "output", "eval": {...},
//               "rows": [input row, one row per pass], "stopped", "stop_reason"}
// Each row: {"pass", "params", "bytes", "graphs", "streaming", "lookahead", "wall_s", ...}
// with "streaming"/"lookahead" keyed as `asrc eval --json`.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace asrc::pass {

std::string ReportMarkdown(const nlohmann::json& report);
std::string ReportHtml(const nlohmann::json& report);
// Writes report.json, report.md and report.html into `dir` (which must exist).
Status WriteReport(const std::string& dir, const nlohmann::json& report);

}  // namespace asrc::pass

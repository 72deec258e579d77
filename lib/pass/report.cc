#include "pass/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/files.h"
#include "ir/model.h"
#include "pass/modes.h"
#include "pass/plot.h"
#include "pass/significance.h"

namespace asrc::pass {

namespace {

using json = nlohmann::json;

// --- JSON ------------------------------------------------------------------------------------

// A ModeEval's numbers by their JSON key: written by ModeJson, read back by ParseEvalSummary.
const std::pair<const char*, double ModeEval::*> kModeRates[] = {
    {"wer", &ModeEval::wer},
    {"cer", &ModeEval::cer},
    {"rtf", &ModeEval::rtf},
    {"audio_seconds", &ModeEval::audio_seconds},
    {"compute_seconds", &ModeEval::compute_seconds},
    {"rtf_cpu", &ModeEval::rtf_cpu},
    {"cpu_seconds", &ModeEval::cpu_seconds}};
const std::pair<const char*, int64_t ModeEval::*> kModeCounts[] = {
    {"words", &ModeEval::words},
    {"substitutions", &ModeEval::substitutions},
    {"deletions", &ModeEval::deletions},
    {"insertions", &ModeEval::insertions},
    {"chars", &ModeEval::chars},
    {"char_errors", &ModeEval::char_errors},
    {"utterances", &ModeEval::utterances},
    {"failed_utterances", &ModeEval::failed_utterances}};

json ModeJson(const ModeEval& m, const Mode& mode) {
  json j;
  for (auto [key, field] : kModeRates) j[key] = m.*field;
  for (auto [key, field] : kModeCounts) j[key] = m.*field;
  j[mode.latency + "_p50"] = m.latency_ms_p50;
  j[mode.latency + "_p90"] = m.latency_ms_p90;
  if (m.chunks) j["chunks"] = *m.chunks;
  j["threads"] = m.threads;
  auto errors = [](const std::vector<std::optional<WordErrors>>& per_utt) {
    json errs = json::array();
    for (const auto& u : per_utt) errs.push_back(u ? json{u->errors, u->words} : json());
    return errs;
  };
  j["utt_word_errors"] = errors(m.utt_word_errors);
  if (!m.utt_char_errors.empty()) j["utt_char_errors"] = errors(m.utt_char_errors);
  return j;
}

void AddEvalJson(const EvalSummary& e, json& row) {
  for (const auto& [name, m] : e.modes) {
    const Mode* mode = FindMode(name);
    if (mode) row[name] = ModeJson(m, *mode);
  }
  row["threads"] = e.threads;
  if (e.repeat > 1) row["eval_repeat"] = e.repeat;
  row["eval_s"] = e.seconds;
  row["eval_cached"] = e.cached;
}

}  // namespace

json EvalSummaryJson(const EvalSummary& e) {
  json j = json::object();
  AddEvalJson(e, j);
  j["eval_repeat"] = e.repeat;
  return j;
}

Result<EvalSummary> ParseEvalSummary(const json& j) {
  auto num = [&](const json& o, const std::string& key, double* out) -> Status {
    if (!o.contains(key) || !o[key].is_number()) return Error("evaluation JSON: '" + key + "' missing or not a number");
    *out = o[key].get<double>();
    return Status::Ok();
  };
  auto count = [&](const json& o, const std::string& key, int64_t* out) -> Status {
    double v = 0;
    ASRC_RETURN_IF_ERROR(num(o, key, &v));
    *out = static_cast<int64_t>(v);
    return Status::Ok();
  };
  if (!j.is_object()) return Error("evaluation JSON: not an object");
  EvalSummary e;
  for (const Mode& mode : AllModes()) {
    if (!j.contains(mode.name)) continue;
    const json& o = j[mode.name];
    ModeEval m;
    for (auto [key, field] : kModeRates) ASRC_RETURN_IF_ERROR(num(o, key, &(m.*field)));
    for (auto [key, field] : kModeCounts) ASRC_RETURN_IF_ERROR(count(o, key, &(m.*field)));
    ASRC_RETURN_IF_ERROR(num(o, mode.latency + "_p50", &m.latency_ms_p50));
    ASRC_RETURN_IF_ERROR(num(o, mode.latency + "_p90", &m.latency_ms_p90));
    if (o.contains("chunks")) m.chunks = o["chunks"].get<int64_t>();
    m.threads = o.value("threads", 1);
    if (!o.contains("utt_word_errors") || !o["utt_word_errors"].is_array())
      return Error("evaluation JSON: " + mode.name + ".utt_word_errors missing");
    auto parse = [](const json& list, std::vector<std::optional<WordErrors>>& out) {
      for (const json& u : list) {
        if (u.is_array() && u.size() == 2 && u[0].is_number() && u[1].is_number())
          out.push_back(WordErrors{u[0].get<int64_t>(), u[1].get<int64_t>()});
        else out.emplace_back();
      }
    };
    parse(o["utt_word_errors"], m.utt_word_errors);
    if (o.contains("utt_char_errors") && o["utt_char_errors"].is_array()) parse(o["utt_char_errors"], m.utt_char_errors);
    e.modes[mode.name] = std::move(m);
  }
  e.threads = j.value("threads", 1);
  e.repeat = j.value("eval_repeat", 1);
  e.seconds = j.value("eval_s", 0.0);
  e.cached = j.value("eval_cached", false);
  return e;
}

json PassRecordJson(const PassRecord& r) {
  json row = {{"pass", r.pass}, {"changed", r.changed}, {"wall_s", r.wall_s}};
  if (!r.is_input()) {
    row["options"] = r.options;
    row["step"] = r.step;
    row["counters"] = r.counters;
    row["notes"] = r.notes;
  }
  if (r.size) {
    row["params"] = r.size->params;
    row["bytes"] = r.size->bytes;
    json graphs = json::object();
    for (const auto& [role, g] : r.size->graphs)
      graphs[role] = {{"params", g.params}, {"bytes", g.bytes}, {"nodes", g.nodes}};
    row["graphs"] = std::move(graphs);
  }
  if (r.hash) row["hash"] = ir::HashHex(*r.hash);
  if (r.eval) AddEvalJson(*r.eval, row);
  if (r.gate) row["gate"] = {{"passed", r.gate->passed}, {"reason", r.gate->reason}, {"action", r.gate->action}};
  if (r.rolled_back) row["rolled_back"] = true;
  for (const auto& [mode, s] : r.significance) row["significance"][mode] = SignificanceJson(s);
  return row;
}

namespace {

json EvalJson(const EvalConfig& e) {
  return {{"manifest", e.manifest}, {"split", e.split}, {"limit", e.limit}, {"modes", e.modes},
          {"threads", e.threads},   {"beam", e.beam},   {"repeat", e.repeat}};
}

// --- the table -------------------------------------------------------------------------------

std::string Fmt(double v, int prec = 2) { return Fixed(v, prec); }

const ModeEval* Eval(const PassRecord& r, const Mode& mode) {
  return r.eval ? r.eval->mode(mode.name) : nullptr;
}

// A mode's field of a record, "-" when that mode was not evaluated.
std::string Metric(const PassRecord& r, const Mode& mode, double ModeEval::*field, int prec = 2) {
  const ModeEval* m = Eval(r, mode);
  return m ? Fmt(m->*field, prec) : "-";
}

std::string Delta(const ModeEval* now, const ModeEval* base) {
  if (!now || !base) return "-";
  double d = now->wer - base->wer;
  std::string s = (d >= 0 ? "+" : "") + Fmt(d);
  if (base->wer > 0) s += " (" + std::string(d >= 0 ? "+" : "") + Fmt(d / base->wer * 100, 1) + "%)";
  return s;
}

// "[lo, hi] p=..." from the record's significance for `mode`, "-" without it.
std::string SignificanceText(const PassRecord& r, const Mode& mode) {
  auto it = r.significance.find(mode.name);
  if (it == r.significance.end()) return "-";
  const Significance& s = it->second;
  return "[" + Fmt(s.ci_lo) + ", " + Fmt(s.ci_hi) + "] p=" + Fmt(s.p_value, 3);
}

std::string GateText(const PassRecord& r) {
  if (!r.gate) return "";
  if (r.gate->passed) return "ok";
  return "BROKEN (" + r.gate->action + "): " + r.gate->reason;
}

std::vector<const Mode*> Modes(const CompressReport& report) {
  std::vector<const Mode*> out;
  for (const Mode& m : AllModes())
    if (std::find(report.modes.begin(), report.modes.end(), m.name) != report.modes.end())
      out.push_back(&m);
  return out;
}

// Per mode: WER, RTF, CPU RTF, latency; for the final mode also the WER change, its CI and CER.
std::vector<std::string> Header(const std::vector<const Mode*>& modes) {
  std::vector<std::string> h = {"#", "pass", "params", "MB", "size vs input"};
  for (const Mode* m : modes) h.push_back("WER " + m->abbrev);
  if (!modes.empty()) {
    const std::string& f = modes.back()->abbrev;
    h.insert(h.end(), {"dWER " + f + " vs input", "dWER " + f + " 95% CI, p", "CER " + f});
  }
  for (const Mode* m : modes) h.push_back("RTF " + m->abbrev);
  for (const Mode* m : modes) h.push_back("CPU RTF " + m->abbrev);
  for (const Mode* m : modes) h.push_back(m->latency_label + " p50/p90 ms");
  h.insert(h.end(), {"pass s", "gate"});
  return h;
}

std::string SizeVsInput(size_t i, double bytes, double in_bytes) {
  if (i == 0 || std::fabs(in_bytes / bytes - 1) < 0.005) return "1.00x";
  return bytes < in_bytes ? Fmt(in_bytes / bytes) + "x smaller" : Fmt(bytes / in_bytes) + "x larger";
}

std::vector<std::vector<std::string>> Rows(const CompressReport& report) {
  std::vector<std::vector<std::string>> out;
  const auto& records = report.records;
  if (records.empty()) return out;
  const auto modes = Modes(report);
  const PassRecord& in = records[0];
  auto bytes_of = [](const PassRecord& r) { return r.size ? static_cast<double>(r.size->bytes) : NAN; };
  for (size_t i = 0; i < records.size(); ++i) {
    const PassRecord& r = records[i];
    std::string name = r.pass;
    if (r.rolled_back) name += " (rolled back)";
    if (i > 0 && !r.changed) name += " (no change)";
    std::vector<std::string> c = {std::to_string(i), name, r.size ? std::to_string(r.size->params) : "-",
                                  Fmt(bytes_of(r) / 1e6), SizeVsInput(i, bytes_of(r), bytes_of(in))};
    for (const Mode* m : modes) c.push_back(Metric(r, *m, &ModeEval::wer));
    if (!modes.empty()) {
      const Mode& f = *modes.back();
      c.push_back(i == 0 ? "" : Delta(Eval(r, f), Eval(in, f)));
      c.push_back(i == 0 ? "" : SignificanceText(r, f));
      c.push_back(Metric(r, f, &ModeEval::cer));
    }
    for (const Mode* m : modes) c.push_back(Metric(r, *m, &ModeEval::rtf, 4));
    for (const Mode* m : modes) c.push_back(Metric(r, *m, &ModeEval::rtf_cpu, 4));
    for (const Mode* m : modes)
      c.push_back(Metric(r, *m, &ModeEval::latency_ms_p50) + " / " + Metric(r, *m, &ModeEval::latency_ms_p90));
    c.push_back(Fmt(r.wall_s));
    c.push_back(GateText(r));
    out.push_back(std::move(c));
  }
  return out;
}

// The paragraph under the title that explains the columns.
std::string Legend(const std::vector<const Mode*>& modes) {
  std::string s = "Sizes are unique weight bytes (shared buffers once).";
  if (modes.empty()) return s;
  std::string names, latencies;
  for (const Mode* m : modes) {
    names += (names.empty() ? "" : ", ") + m->abbrev + " = " + m->title;
    latencies += (latencies.empty() ? "" : ", ") + m->latency_label + " = " + m->latency_text;
  }
  const Mode& f = *modes.back();
  return s + " WER/CER in percent; " + names +
         "; RTF = wall-clock compute / audio, CPU RTF = process CPU time / audio (steadier on a "
         "shared machine); " + latencies + ". dWER " + f.abbrev +
         " 95% CI, p: paired bootstrap over utterances (2000 resamples) of the " + f.title +
         " WER change against the input; a CI that excludes 0 (small p) is a change beyond "
         "utterance sampling noise.";
}

}  // namespace

json ReportJson(const CompressReport& report) {
  json j;
  j["pipeline"] = report.pipeline;
  j["name"] = report.name;
  j["description"] = report.description;
  j["model"] = report.model;
  j["output"] = report.output;
  if (report.eval) j["eval"] = EvalJson(*report.eval);
  j["rows"] = json::array();
  for (const PassRecord& r : report.records) j["rows"].push_back(PassRecordJson(r));
  j["stopped"] = report.stopped;
  j["stop_reason"] = report.stop_reason;
  j["created"] = report.created;
  return j;
}

std::string ReportMarkdown(const CompressReport& report) {
  std::ostringstream o;
  o << "# asrc compress report";
  if (!report.name.empty()) o << ": " << report.name;
  o << "\n\n";
  o << "- pipeline: `" << report.pipeline << "`\n";
  o << "- model: `" << report.model << "` -> `" << report.output << "`\n";
  if (report.eval) o << "- eval: `" << EvalJson(*report.eval).dump() << "`\n";
  if (report.stopped) o << "- **stopped**: " << report.stop_reason << "\n";
  const auto modes = Modes(report);
  o << "\n" << Legend(modes) << "\n\n";
  auto header = Header(modes);
  o << MarkdownTable(header, Rows(report));
  bool any_note = false;
  for (size_t i = 1; i < report.records.size(); ++i) {
    const PassRecord& r = report.records[i];
    if (r.counters.empty() && r.notes.empty()) continue;
    if (!any_note) o << "\n## Pass details\n\n";
    any_note = true;
    o << "- **" << i << ". " << r.pass << "** `" << r.step << "`";
    if (!r.counters.empty()) o << " counters: `" << json(r.counters).dump() << "`";
    o << "\n";
    for (const auto& n : r.notes) o << "  - " << n << "\n";
  }
  return o.str();
}

std::string ReportHtml(const CompressReport& report) {
  // Colors by mode, in AllModes() order: WER / p50 and p90.
  const std::vector<std::pair<std::string, std::string>> palette = {{"#1f77b4", "#aec7e8"},
                                                                    {"#d62728", "#ff9896"}};
  const auto modes = Modes(report);
  std::vector<PlotSeries> wer, latency;
  for (const Mode* m : modes) {
    const auto& c = palette[(m - AllModes().data()) % palette.size()];
    wer.push_back({m->title + " WER", c.first, {}, {}, {}, {}, true, false});
    latency.push_back({m->latency_label + " p50 ms", c.first, {}, {}, {}, {}, false, false});
    latency.push_back({m->latency_label + " p90 ms", c.second, {}, {}, {}, {}, false, false});
  }
  std::vector<std::string> labels;
  for (size_t i = 0; i < report.records.size(); ++i) {
    const PassRecord& r = report.records[i];
    labels.push_back(std::to_string(i) + " " + r.pass);
    const double mb = r.size ? r.size->bytes / 1e6 : NAN;
    for (size_t k = 0; k < modes.size(); ++k) {
      const ModeEval* e = Eval(r, *modes[k]);
      wer[k].x.push_back(mb);
      wer[k].y.push_back(e ? e->wer : NAN);
      wer[k].labels.push_back(std::to_string(i));
      wer[k].tips.push_back(labels.back() + ": " + Fmt(mb) + " MB, WER " + (e ? Fmt(e->wer) : "-"));
      latency[2 * k].y.push_back(e ? e->latency_ms_p50 : NAN);
      latency[2 * k + 1].y.push_back(e ? e->latency_ms_p90 : NAN);
    }
  }
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>asrc compress report</title>\n"
       "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
       "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
       "td:nth-child(2),th:nth-child(2){text-align:left}code{background:#f4f4f4;word-break:break-all}"
       "</style></head><body>\n";
  o << "<h1>asrc compress report " << HtmlEscape(report.name) << "</h1>\n";
  o << "<p>pipeline: <code>" << HtmlEscape(report.pipeline) << "</code></p>\n";
  o << "<p>model: <code>" << HtmlEscape(report.model) << "</code> &rarr; <code>" << HtmlEscape(report.output)
    << "</code></p>\n";
  if (report.eval) o << "<p>eval: <code>" << HtmlEscape(EvalJson(*report.eval).dump()) << "</code></p>\n";
  if (report.stopped) o << "<p><b>stopped</b>: " << HtmlEscape(report.stop_reason) << "</p>\n";
  o << HtmlTable(Header(modes), Rows(report)) << "<div>\n";
  o << ScatterSvg("Size vs WER per pass (labels: row #)", "unique weight MB", "WER %", wer);
  o << BarsSvg("Latency per pass", "ms", labels, latency);
  o << "</div>\n<h2>Pass details</h2>\n<ul>\n";
  for (size_t i = 1; i < report.records.size(); ++i) {
    const PassRecord& r = report.records[i];
    o << "<li><b>" << i << ". " << HtmlEscape(r.pass) << "</b> <code>" << HtmlEscape(r.step) << "</code>";
    o << " counters: <code>" << HtmlEscape(json(r.counters).dump()) << "</code>";
    for (const auto& n : r.notes) o << "<br>" << HtmlEscape(n);
    o << "</li>\n";
  }
  o << "</ul>\n</body></html>\n";
  return o.str();
}

Status WriteReport(const std::string& dir, const CompressReport& report) {
  auto write = [&](const std::string& name, const std::string& text) {
    return WriteFileAtomic(dir + "/" + name, text);
  };
  ASRC_RETURN_IF_ERROR(write("report.json", ReportJson(report).dump(2) + "\n"));
  ASRC_RETURN_IF_ERROR(write("report.md", ReportMarkdown(report)));
  ASRC_RETURN_IF_ERROR(write("report.html", ReportHtml(report)));
  return Status::Ok();
}

}  // namespace asrc::pass

#include "pass/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "ir/model.h"
#include "pass/modes.h"

namespace asrc::pass {

namespace {

using json = nlohmann::json;

// --- JSON ------------------------------------------------------------------------------------

json ModeJson(const ModeEval& m, const Mode& mode) {
  json j;
  j["wer"] = m.wer;
  j["cer"] = m.cer;
  j["words"] = m.words;
  j["substitutions"] = m.substitutions;
  j["deletions"] = m.deletions;
  j["insertions"] = m.insertions;
  j["chars"] = m.chars;
  j["char_errors"] = m.char_errors;
  j["utterances"] = m.utterances;
  j["failed_utterances"] = m.failed_utterances;
  j["rtf"] = m.rtf;
  j["audio_seconds"] = m.audio_seconds;
  j["compute_seconds"] = m.compute_seconds;
  j["rtf_cpu"] = m.rtf_cpu;
  j["cpu_seconds"] = m.cpu_seconds;
  j[mode.latency + "_p50"] = m.latency_ms_p50;
  j[mode.latency + "_p90"] = m.latency_ms_p90;
  if (m.chunks) j["chunks"] = *m.chunks;
  j["threads"] = m.threads;
  json errs = json::array();
  for (const auto& u : m.utt_word_errors) errs.push_back(u ? json{u->errors, u->words} : json());
  j["utt_word_errors"] = std::move(errs);
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

json RecordJson(const PassRecord& r) {
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
  if (r.hash) row["hash"] = ir::hash_hex(*r.hash);
  if (r.eval) AddEvalJson(*r.eval, row);
  if (r.gate) row["gate"] = {{"passed", r.gate->passed}, {"reason", r.gate->reason}, {"action", r.gate->action}};
  if (r.rolled_back) row["rolled_back"] = true;
  for (const auto& [mode, s] : r.significance) {
    row["significance"][mode] = {{"delta_wer", s.delta_wer},
                                 {"ci95", {s.ci_lo, s.ci_hi}},
                                 {"p_value", s.p_value},
                                 {"resamples", s.resamples},
                                 {"utterances", s.utterances}};
  }
  return row;
}

json EvalJson(const EvalConfig& e) {
  return {{"manifest", e.manifest}, {"split", e.split}, {"limit", e.limit}, {"modes", e.modes},
          {"threads", e.threads},   {"beam", e.beam},   {"repeat", e.repeat}};
}

// --- the table -------------------------------------------------------------------------------

std::string Fmt(double v, int prec = 2) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(prec);
  os << v;
  return os.str();
}

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

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
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

// --- SVG plots -----------------------------------------------------------------------------

struct Series {
  std::string name, color;
  std::vector<double> x, y;
};

std::string NiceAxis(double lo, double hi, double* out_lo, double* out_hi) {
  if (!(hi > lo)) {
    hi = lo + 1;
  }
  double pad = (hi - lo) * 0.08;
  *out_lo = lo - pad;
  *out_hi = hi + pad;
  return "";
}

const int kW = 640, kH = 360, kL = 60, kR = 20, kT = 30, kB = 50;

// The pieces both charts draw: the svg element with its title, the "(no measurements)" body,
// the plot frame, a y tick with its grid line, the y axis label and one legend entry.
void SvgHead(std::ostringstream& o, const std::string& title) {
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<text x=\"" << kW / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">"
    << Escape(title) << "</text>\n";
}

std::string SvgEmpty(std::ostringstream& o) {
  o << "<text x=\"" << kW / 2 << "\" y=\"" << kH / 2
    << "\" text-anchor=\"middle\">(no measurements)</text></svg>\n";
  return o.str();
}

void SvgFrame(std::ostringstream& o) {
  o << "<rect x=\"" << kL << "\" y=\"" << kT << "\" width=\"" << kW - kL - kR << "\" height=\""
    << kH - kT - kB << "\" fill=\"none\" stroke=\"#888\"/>\n";
}

void SvgGridLine(std::ostringstream& o, double yv, double y) {
  o << "<text x=\"" << kL - 5 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << Fmt(yv)
    << "</text>\n";
  o << "<line x1=\"" << kL << "\" x2=\"" << kW - kR << "\" y1=\"" << y << "\" y2=\"" << y
    << "\" stroke=\"#eee\"/>\n";
}

void SvgYLabel(std::ostringstream& o, const std::string& ylabel) {
  o << "<text transform=\"translate(14," << kH / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << Escape(ylabel) << "</text>\n";
}

void SvgLegendEntry(std::ostringstream& o, const Series& s, int* legend_y) {
  o << "<rect x=\"" << kW - kR - 130 << "\" y=\"" << *legend_y - 9 << "\" width=\"10\" height=\"10\" fill=\""
    << s.color << "\"/><text x=\"" << kW - kR - 115 << "\" y=\"" << *legend_y << "\">"
    << Escape(s.name) << "</text>\n";
  *legend_y += 16;
}

std::string ScatterSvg(const std::string& title, const std::string& xlabel,
                       const std::string& ylabel, const std::vector<Series>& series,
                       const std::vector<std::string>& labels) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& s : series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xlo = std::min(xlo, s.x[i]); xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, s.y[i]); yhi = std::max(yhi, s.y[i]);
    }
  }
  std::ostringstream o;
  SvgHead(o, title);
  if (!std::isfinite(xlo)) {
    return SvgEmpty(o);
  }
  NiceAxis(xlo, xhi, &xlo, &xhi);
  NiceAxis(ylo, yhi, &ylo, &yhi);
  auto X = [&](double x) { return kL + (x - xlo) / (xhi - xlo) * (kW - kL - kR); };
  auto Y = [&](double y) { return kH - kB - (y - ylo) / (yhi - ylo) * (kH - kT - kB); };
  SvgFrame(o);
  for (int k = 0; k <= 4; ++k) {
    double xv = xlo + (xhi - xlo) * k / 4, yv = ylo + (yhi - ylo) * k / 4;
    o << "<text x=\"" << X(xv) << "\" y=\"" << kH - kB + 15 << "\" text-anchor=\"middle\">"
      << Fmt(xv) << "</text>\n";
    SvgGridLine(o, yv, Y(yv));
  }
  o << "<text x=\"" << kW / 2 << "\" y=\"" << kH - 12 << "\" text-anchor=\"middle\">"
    << Escape(xlabel) << "</text>\n";
  SvgYLabel(o, ylabel);
  int legend_y = kT + 14;
  for (const auto& s : series) {
    std::string pts;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      pts += Fmt(X(s.x[i]), 1) + "," + Fmt(Y(s.y[i]), 1) + " ";
    }
    o << "<polyline points=\"" << pts << "\" fill=\"none\" stroke=\"" << s.color
      << "\" stroke-dasharray=\"4 3\"/>\n";
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      o << "<circle cx=\"" << Fmt(X(s.x[i]), 1) << "\" cy=\"" << Fmt(Y(s.y[i]), 1)
        << "\" r=\"4\" fill=\"" << s.color << "\"><title>" << Escape(labels[i]) << ": "
        << Fmt(s.x[i]) << " MB, " << Fmt(s.y[i]) << "</title></circle>\n";
      o << "<text x=\"" << Fmt(X(s.x[i]) + 6, 1) << "\" y=\"" << Fmt(Y(s.y[i]) - 6, 1)
        << "\" fill=\"" << s.color << "\">" << i << "</text>\n";
    }
    SvgLegendEntry(o, s, &legend_y);
  }
  o << "</svg>\n";
  return o.str();
}

std::string BarsSvg(const std::string& title, const std::string& ylabel,
                    const std::vector<std::string>& groups, const std::vector<Series>& series) {
  double yhi = 0;
  for (const auto& s : series) {
    for (double v : s.y) {
      if (std::isfinite(v)) yhi = std::max(yhi, v);
    }
  }
  std::ostringstream o;
  SvgHead(o, title);
  if (yhi <= 0 || groups.empty()) {
    return SvgEmpty(o);
  }
  yhi *= 1.1;
  auto Y = [&](double y) { return kH - kB - y / yhi * (kH - kT - kB); };
  double gw = static_cast<double>(kW - kL - kR) / groups.size();
  double bw = gw * 0.8 / std::max<size_t>(1, series.size());
  SvgFrame(o);
  for (int k = 0; k <= 4; ++k) {
    double yv = yhi * k / 4;
    SvgGridLine(o, yv, Y(yv));
  }
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    double gx = kL + gi * gw + gw * 0.1;
    for (size_t si = 0; si < series.size(); ++si) {
      double v = gi < series[si].y.size() ? series[si].y[gi] : NAN;
      if (!std::isfinite(v)) continue;
      o << "<rect x=\"" << Fmt(gx + si * bw, 1) << "\" y=\"" << Fmt(Y(v), 1) << "\" width=\""
        << Fmt(bw * 0.95, 1) << "\" height=\"" << Fmt(Y(0) - Y(v), 1) << "\" fill=\""
        << series[si].color << "\"><title>" << Escape(groups[gi]) << " " << Escape(series[si].name)
        << ": " << Fmt(v) << "</title></rect>\n";
    }
    o << "<text x=\"" << Fmt(kL + gi * gw + gw / 2, 1) << "\" y=\"" << kH - kB + 15
      << "\" text-anchor=\"middle\">" << Escape(groups[gi]) << "</text>\n";
  }
  SvgYLabel(o, ylabel);
  int legend_y = kT + 14;
  for (const auto& s : series) {
    SvgLegendEntry(o, s, &legend_y);
  }
  o << "</svg>\n";
  return o.str();
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
  for (const PassRecord& r : report.records) j["rows"].push_back(RecordJson(r));
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
  o << "|";
  for (const auto& h : header) o << " " << h << " |";
  o << "\n|";
  for (size_t i = 0; i < header.size(); ++i) o << "---|";
  o << "\n";
  for (const auto& r : Rows(report)) {
    o << "|";
    for (const auto& c : r) o << " " << c << " |";
    o << "\n";
  }
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
  std::vector<Series> wer, latency;
  for (const Mode* m : modes) {
    const auto& c = palette[(m - AllModes().data()) % palette.size()];
    wer.push_back({m->title + " WER", c.first, {}, {}});
    latency.push_back({m->latency_label + " p50 ms", c.first, {}, {}});
    latency.push_back({m->latency_label + " p90 ms", c.second, {}, {}});
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
  o << "<h1>asrc compress report " << Escape(report.name) << "</h1>\n";
  o << "<p>pipeline: <code>" << Escape(report.pipeline) << "</code></p>\n";
  o << "<p>model: <code>" << Escape(report.model) << "</code> &rarr; <code>" << Escape(report.output)
    << "</code></p>\n";
  if (report.eval) o << "<p>eval: <code>" << Escape(EvalJson(*report.eval).dump()) << "</code></p>\n";
  if (report.stopped) o << "<p><b>stopped</b>: " << Escape(report.stop_reason) << "</p>\n";
  o << "<table><tr>";
  for (const auto& h : Header(modes)) o << "<th>" << Escape(h) << "</th>";
  o << "</tr>\n";
  for (const auto& r : Rows(report)) {
    o << "<tr>";
    for (const auto& c : r) o << "<td>" << Escape(c) << "</td>";
    o << "</tr>\n";
  }
  o << "</table>\n<div>\n";
  o << ScatterSvg("Size vs WER per pass (labels: row #)", "unique weight MB", "WER %", wer, labels);
  o << BarsSvg("Latency per pass", "ms", labels, latency);
  o << "</div>\n<h2>Pass details</h2>\n<ul>\n";
  for (size_t i = 1; i < report.records.size(); ++i) {
    const PassRecord& r = report.records[i];
    o << "<li><b>" << i << ". " << Escape(r.pass) << "</b> <code>" << Escape(r.step) << "</code>";
    o << " counters: <code>" << Escape(json(r.counters).dump()) << "</code>";
    for (const auto& n : r.notes) o << "<br>" << Escape(n);
    o << "</li>\n";
  }
  o << "</ul>\n</body></html>\n";
  return o.str();
}

Status WriteReport(const std::string& dir, const CompressReport& report) {
  auto write = [&](const std::string& name, const std::string& text) -> Status {
    std::string path = dir + "/" + name;
    std::ofstream out(path);
    if (!out) return Error(path + ": cannot write");
    out << text;
    if (!out) return Error(path + ": write failed");
    return Status::Ok();
  };
  ASRC_RETURN_IF_ERROR(write("report.json", ReportJson(report).dump(2) + "\n"));
  ASRC_RETURN_IF_ERROR(write("report.md", ReportMarkdown(report)));
  ASRC_RETURN_IF_ERROR(write("report.html", ReportHtml(report)));
  return Status::Ok();
}

}  // namespace asrc::pass

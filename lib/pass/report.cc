#include "pass/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "pass/manager.h"

namespace asrc::pass {

namespace {

using json = nlohmann::json;

std::string Fmt(double v, int prec = 2) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(prec);
  os << v;
  return os.str();
}

std::string Metric(const json& row, const char* mode, const char* key, int prec = 2) {
  auto v = RowMetric(row, mode, key);
  return v ? Fmt(*v, prec) : "-";
}

double Num(const json& row, const char* key) {
  if (!row.contains(key) || !row[key].is_number()) return NAN;
  return row[key].get<double>();
}

std::string Delta(std::optional<double> now, std::optional<double> base) {
  if (!now || !base) return "-";
  double d = *now - *base;
  std::string s = (d >= 0 ? "+" : "") + Fmt(d);
  if (*base > 0) s += " (" + std::string(d >= 0 ? "+" : "") + Fmt(d / *base * 100, 1) + "%)";
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

// "[lo, hi] p=..." from row["significance"][mode] (pass/significance.h), "-" without it.
std::string SignificanceText(const json& row, const char* mode) {
  if (!row.contains("significance") || !row["significance"].contains(mode)) return "-";
  const json& s = row["significance"][mode];
  std::string text = "[" + Fmt(s["ci95"][0].get<double>()) + ", " + Fmt(s["ci95"][1].get<double>()) +
                     "] p=" + Fmt(s["p_value"].get<double>(), 3);
  return text;
}

std::string GateText(const json& row) {
  if (!row.contains("gate")) return "";
  const json& g = row["gate"];
  if (g.value("passed", true)) return "ok";
  return "BROKEN (" + g.value("action", std::string()) + "): " + g.value("reason", std::string());
}

struct TableRow {
  std::vector<std::string> cells;
};

std::vector<std::string> Header() {
  return {"#", "pass", "params", "MB", "size vs input", "WER str", "WER la", "dWER la vs input",
          "dWER la 95% CI, p", "CER la", "RTF str", "RTF la", "CPU RTF str", "CPU RTF la", "chunk p50/p90 ms",
          "final p50/p90 ms", "pass s", "gate"};
}

std::vector<TableRow> Rows(const json& report) {
  std::vector<TableRow> out;
  const json& rows = report["rows"];
  if (rows.empty()) return out;
  const json& in = rows[0];
  double in_bytes = Num(in, "bytes");
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& r = rows[i];
    TableRow t;
    std::string name = r.value("pass", std::string("?"));
    if (r.value("rolled_back", false)) name += " (rolled back)";
    if (i > 0 && !r.value("changed", true)) name += " (no change)";
    double bytes = Num(r, "bytes");
    t.cells = {std::to_string(i),
               name,
               r.contains("params") ? std::to_string(r["params"].get<int64_t>()) : "-",
               Fmt(bytes / 1e6),
               i == 0 || std::fabs(in_bytes / bytes - 1) < 0.005
                   ? "1.00x"
                   : (bytes < in_bytes ? Fmt(in_bytes / bytes) + "x smaller"
                                       : Fmt(bytes / in_bytes) + "x larger"),
               Metric(r, "streaming", "wer"),
               Metric(r, "lookahead", "wer"),
               i == 0 ? "" : Delta(RowMetric(r, "lookahead", "wer"), RowMetric(in, "lookahead", "wer")),
               i == 0 ? "" : SignificanceText(r, "lookahead"),
               Metric(r, "lookahead", "cer"),
               Metric(r, "streaming", "rtf", 4),
               Metric(r, "lookahead", "rtf", 4),
               Metric(r, "streaming", "rtf_cpu", 4),
               Metric(r, "lookahead", "rtf_cpu", 4),
               Metric(r, "streaming", "chunk_ms_p50") + " / " + Metric(r, "streaming", "chunk_ms_p90"),
               Metric(r, "lookahead", "final_ms_p50") + " / " + Metric(r, "lookahead", "final_ms_p90"),
               Fmt(Num(r, "wall_s")),
               GateText(r)};
    out.push_back(t);
  }
  return out;
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
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<text x=\"" << kW / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">"
    << Escape(title) << "</text>\n";
  if (!std::isfinite(xlo)) {
    o << "<text x=\"" << kW / 2 << "\" y=\"" << kH / 2
      << "\" text-anchor=\"middle\">(no measurements)</text></svg>\n";
    return o.str();
  }
  NiceAxis(xlo, xhi, &xlo, &xhi);
  NiceAxis(ylo, yhi, &ylo, &yhi);
  auto X = [&](double x) { return kL + (x - xlo) / (xhi - xlo) * (kW - kL - kR); };
  auto Y = [&](double y) { return kH - kB - (y - ylo) / (yhi - ylo) * (kH - kT - kB); };
  o << "<rect x=\"" << kL << "\" y=\"" << kT << "\" width=\"" << kW - kL - kR << "\" height=\""
    << kH - kT - kB << "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    double xv = xlo + (xhi - xlo) * k / 4, yv = ylo + (yhi - ylo) * k / 4;
    o << "<text x=\"" << X(xv) << "\" y=\"" << kH - kB + 15 << "\" text-anchor=\"middle\">"
      << Fmt(xv) << "</text>\n";
    o << "<text x=\"" << kL - 5 << "\" y=\"" << Y(yv) + 4 << "\" text-anchor=\"end\">" << Fmt(yv)
      << "</text>\n";
    o << "<line x1=\"" << kL << "\" x2=\"" << kW - kR << "\" y1=\"" << Y(yv) << "\" y2=\"" << Y(yv)
      << "\" stroke=\"#eee\"/>\n";
  }
  o << "<text x=\"" << kW / 2 << "\" y=\"" << kH - 12 << "\" text-anchor=\"middle\">"
    << Escape(xlabel) << "</text>\n";
  o << "<text transform=\"translate(14," << kH / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << Escape(ylabel) << "</text>\n";
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
    o << "<rect x=\"" << kW - kR - 130 << "\" y=\"" << legend_y - 9 << "\" width=\"10\" height=\"10\" fill=\""
      << s.color << "\"/><text x=\"" << kW - kR - 115 << "\" y=\"" << legend_y << "\">"
      << Escape(s.name) << "</text>\n";
    legend_y += 16;
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
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<text x=\"" << kW / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">"
    << Escape(title) << "</text>\n";
  if (yhi <= 0 || groups.empty()) {
    o << "<text x=\"" << kW / 2 << "\" y=\"" << kH / 2
      << "\" text-anchor=\"middle\">(no measurements)</text></svg>\n";
    return o.str();
  }
  yhi *= 1.1;
  auto Y = [&](double y) { return kH - kB - y / yhi * (kH - kT - kB); };
  double gw = static_cast<double>(kW - kL - kR) / groups.size();
  double bw = gw * 0.8 / std::max<size_t>(1, series.size());
  o << "<rect x=\"" << kL << "\" y=\"" << kT << "\" width=\"" << kW - kL - kR << "\" height=\""
    << kH - kT - kB << "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    double yv = yhi * k / 4;
    o << "<text x=\"" << kL - 5 << "\" y=\"" << Y(yv) + 4 << "\" text-anchor=\"end\">" << Fmt(yv)
      << "</text>\n";
    o << "<line x1=\"" << kL << "\" x2=\"" << kW - kR << "\" y1=\"" << Y(yv) << "\" y2=\"" << Y(yv)
      << "\" stroke=\"#eee\"/>\n";
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
  o << "<text transform=\"translate(14," << kH / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << Escape(ylabel) << "</text>\n";
  int legend_y = kT + 14;
  for (const auto& s : series) {
    o << "<rect x=\"" << kW - kR - 130 << "\" y=\"" << legend_y - 9 << "\" width=\"10\" height=\"10\" fill=\""
      << s.color << "\"/><text x=\"" << kW - kR - 115 << "\" y=\"" << legend_y << "\">"
      << Escape(s.name) << "</text>\n";
    legend_y += 16;
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace

std::string ReportMarkdown(const json& report) {
  std::ostringstream o;
  o << "# asrc compress report";
  if (report.contains("name") && !report["name"].get<std::string>().empty()) {
    o << ": " << report["name"].get<std::string>();
  }
  o << "\n\n";
  o << "- pipeline: `" << report.value("pipeline", std::string()) << "`\n";
  o << "- model: `" << report.value("model", std::string()) << "` -> `"
    << report.value("output", std::string()) << "`\n";
  if (report.contains("eval")) o << "- eval: `" << report["eval"].dump() << "`\n";
  if (report.value("stopped", false)) {
    o << "- **stopped**: " << report.value("stop_reason", std::string()) << "\n";
  }
  o << "\nSizes are unique weight bytes (shared buffers once). WER/CER in percent; str = streaming, "
       "la = look-ahead; RTF = wall-clock compute / audio, CPU RTF = process CPU time / audio (steadier "
       "on a shared machine); chunk = streaming per-chunk compute, final = look-ahead finalization. "
       "dWER la 95% CI, p: paired bootstrap over utterances (2000 resamples) of the look-ahead WER "
       "change against the input; a CI that excludes 0 (small p) is a change beyond utterance "
       "sampling noise.\n\n";
  auto header = Header();
  o << "|";
  for (const auto& h : header) o << " " << h << " |";
  o << "\n|";
  for (size_t i = 0; i < header.size(); ++i) o << "---|";
  o << "\n";
  for (const auto& r : Rows(report)) {
    o << "|";
    for (const auto& c : r.cells) o << " " << c << " |";
    o << "\n";
  }
  const json& rows = report["rows"];
  bool any_note = false;
  for (size_t i = 1; i < rows.size(); ++i) {
    const json& r = rows[i];
    if ((!r.contains("counters") || r["counters"].empty()) &&
        (!r.contains("notes") || r["notes"].empty())) continue;
    if (!any_note) o << "\n## Pass details\n\n";
    any_note = true;
    o << "- **" << i << ". " << r.value("pass", std::string()) << "** `"
      << r.value("step", std::string()) << "`";
    if (r.contains("counters") && !r["counters"].empty()) o << " counters: `" << r["counters"].dump() << "`";
    o << "\n";
    if (r.contains("notes")) {
      for (const auto& n : r["notes"]) o << "  - " << n.get<std::string>() << "\n";
    }
  }
  return o.str();
}

std::string ReportHtml(const json& report) {
  const json& rows = report["rows"];
  std::vector<std::string> labels;
  Series str{"streaming WER", "#1f77b4", {}, {}}, la{"look-ahead WER", "#d62728", {}, {}};
  Series c50{"chunk p50 ms", "#1f77b4", {}, {}}, c90{"chunk p90 ms", "#aec7e8", {}, {}};
  Series f50{"final p50 ms", "#d62728", {}, {}}, f90{"final p90 ms", "#ff9896", {}, {}};
  std::vector<std::string> groups;
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& r = rows[i];
    labels.push_back(std::to_string(i) + " " + r.value("pass", std::string()));
    groups.push_back(std::to_string(i) + " " + r.value("pass", std::string()));
    double mb = Num(r, "bytes") / 1e6;
    auto get = [&](const char* mode, const char* k) {
      auto v = RowMetric(r, mode, k);
      return v ? *v : NAN;
    };
    str.x.push_back(mb); str.y.push_back(get("streaming", "wer"));
    la.x.push_back(mb); la.y.push_back(get("lookahead", "wer"));
    c50.y.push_back(get("streaming", "chunk_ms_p50")); c90.y.push_back(get("streaming", "chunk_ms_p90"));
    f50.y.push_back(get("lookahead", "final_ms_p50")); f90.y.push_back(get("lookahead", "final_ms_p90"));
  }
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>asrc compress report</title>\n"
       "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
       "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
       "td:nth-child(2),th:nth-child(2){text-align:left}code{background:#f4f4f4;word-break:break-all}"
       "</style></head><body>\n";
  o << "<h1>asrc compress report " << Escape(report.value("name", std::string())) << "</h1>\n";
  o << "<p>pipeline: <code>" << Escape(report.value("pipeline", std::string())) << "</code></p>\n";
  o << "<p>model: <code>" << Escape(report.value("model", std::string())) << "</code> &rarr; <code>"
    << Escape(report.value("output", std::string())) << "</code></p>\n";
  if (report.contains("eval")) o << "<p>eval: <code>" << Escape(report["eval"].dump()) << "</code></p>\n";
  if (report.value("stopped", false)) {
    o << "<p><b>stopped</b>: " << Escape(report.value("stop_reason", std::string())) << "</p>\n";
  }
  o << "<table><tr>";
  for (const auto& h : Header()) o << "<th>" << Escape(h) << "</th>";
  o << "</tr>\n";
  for (const auto& r : Rows(report)) {
    o << "<tr>";
    for (const auto& c : r.cells) o << "<td>" << Escape(c) << "</td>";
    o << "</tr>\n";
  }
  o << "</table>\n<div>\n";
  o << ScatterSvg("Size vs WER per pass (labels: row #)", "unique weight MB", "WER %", {str, la},
                  labels);
  o << BarsSvg("Latency per pass", "ms", groups, {c50, c90, f50, f90});
  o << "</div>\n<h2>Pass details</h2>\n<ul>\n";
  for (size_t i = 1; i < rows.size(); ++i) {
    const json& r = rows[i];
    o << "<li><b>" << i << ". " << Escape(r.value("pass", std::string())) << "</b> <code>"
      << Escape(r.value("step", std::string())) << "</code>";
    if (r.contains("counters")) o << " counters: <code>" << Escape(r["counters"].dump()) << "</code>";
    if (r.contains("notes")) {
      for (const auto& n : r["notes"]) o << "<br>" << Escape(n.get<std::string>());
    }
    o << "</li>\n";
  }
  o << "</ul>\n</body></html>\n";
  return o.str();
}

Status WriteReport(const std::string& dir, const json& report) {
  auto write = [&](const std::string& name, const std::string& text) -> Status {
    std::string path = dir + "/" + name;
    std::ofstream out(path);
    if (!out) return Error(path + ": cannot write");
    out << text;
    if (!out) return Error(path + ": write failed");
    return Status::Ok();
  };
  ASRC_RETURN_IF_ERROR(write("report.json", report.dump(2) + "\n"));
  ASRC_RETURN_IF_ERROR(write("report.md", ReportMarkdown(report)));
  ASRC_RETURN_IF_ERROR(write("report.html", ReportHtml(report)));
  return Status::Ok();
}

}  // namespace asrc::pass

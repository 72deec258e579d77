// ablation.{json,md,html}: one row per configuration, plots of WER against size (Pareto front)
// and latency, and per-step bars of what each step bought.
#include <algorithm>
#include <cmath>
#include <functional>
#include <fstream>
#include <sstream>

#include "pass/ablation.h"
#include "pass/modes.h"
#include "pass/plot.h"
#include "pass/report.h"

namespace asrc::pass {

namespace {

using json = nlohmann::json;

std::string Fmt(double v, int prec = 2) { return Fixed(v, prec); }

std::vector<const Mode*> Modes(const AblationReport& r) {
  std::vector<const Mode*> out;
  for (const Mode& m : AllModes())
    if (std::find(r.modes.begin(), r.modes.end(), m.name) != r.modes.end()) out.push_back(&m);
  return out;
}

const ModeEval* Eval(const AblationRow& r, const Mode& m) { return r.measured ? r.measured->mode(m.name) : nullptr; }

std::string StepNames(const AblationReport& rep, const AblationRow& row) {
  if (row.steps.empty()) return "(none)";
  std::string s;
  for (size_t i : row.steps) s += (s.empty() ? "" : " + ") + rep.steps[i].name;
  return s;
}

std::string Roles(const AblationRow& row) {
  std::string s;
  for (const auto& r : row.roles) s += (s.empty() ? "" : "; ") + r;
  return s;
}

std::vector<std::string> Header(const std::vector<const Mode*>& modes) {
  std::vector<std::string> h = {"#", "configuration", "steps", "params", "MB", "size vs input"};
  for (const Mode* m : modes)
    h.insert(h.end(), {"WER " + m->abbrev, "CER " + m->abbrev, "dWER " + m->abbrev + " [95% CI] p"});
  for (const Mode* m : modes) h.push_back("CPU RTF " + m->abbrev);
  for (const Mode* m : modes) h.push_back(m->latency_label + " p50/p90 ms");
  h.insert(h.end(), {"eval runs", "config s"});
  return h;
}

std::vector<std::vector<std::string>> Rows(const AblationReport& rep) {
  std::vector<std::vector<std::string>> out;
  const auto modes = Modes(rep);
  const double in_bytes = rep.rows.empty() ? NAN : static_cast<double>(rep.rows[0].bytes);
  for (size_t i = 0; i < rep.rows.size(); ++i) {
    const AblationRow& r = rep.rows[i];
    const double ratio = in_bytes / static_cast<double>(r.bytes);
    std::vector<std::string> c = {std::to_string(i), Roles(r) + (r.stop_reason.empty() ? "" : " (stopped)"),
                                  StepNames(rep, r), std::to_string(r.params), Fmt(r.bytes / 1e6),
                                  std::fabs(ratio - 1) < 0.005 ? "1.00x" : Fmt(ratio) + "x smaller"};
    if (ratio < 0.995) c.back() = Fmt(1 / ratio) + "x larger";
    for (const Mode* m : modes) {
      const ModeEval* e = Eval(r, *m);
      c.push_back(e ? Fmt(e->wer) : "-");
      c.push_back(e ? Fmt(e->cer) : "-");
      auto s = r.significance.find(m->name);
      c.push_back(s == r.significance.end() ? (i == 0 ? "" : "-")
                                            : (s->second.delta_wer >= 0 ? "+" : "") + Fmt(s->second.delta_wer) + " [" +
                                                  Fmt(s->second.ci_lo) + ", " + Fmt(s->second.ci_hi) +
                                                  "] p=" + Fmt(s->second.p_value, 3));
    }
    for (const Mode* m : modes) c.push_back(Eval(r, *m) ? Fmt(Eval(r, *m)->rtf_cpu, 4) : "-");
    for (const Mode* m : modes) {
      const ModeEval* e = Eval(r, *m);
      c.push_back(e ? Fmt(e->latency_ms_p50) + " / " + Fmt(e->latency_ms_p90) : "-");
    }
    c.push_back(r.measured ? std::to_string(r.measured->repeat) : "-");
    c.push_back(Fmt(r.wall_s, 1));
    out.push_back(std::move(c));
  }
  return out;
}

std::string LatencyMethod(const AblationReport& rep) {
  if (rep.stable_tolerance > 0)
    return "Latency: each model is decoded up to " + std::to_string(rep.max_repeat) +
           " times (column 'eval runs'); every chunk's and every utterance's latency is its minimum over "
           "the runs so far, p50/p90 are of those minima, and repeating stops once a run lowers p50 + p90 "
           "(summed over modes) by no more than " + Fmt(rep.stable_tolerance * 100, 0) +
           "%. CPU RTF is the lowest run's. Models with equal content hashes share one evaluation, and "
           "evaluations run one at a time even with --jobs > 1 (only the passes of configurations run in "
           "parallel): no two measurements share the machine, though a pass of another configuration may.";
  return "Latency: the fastest of " + std::to_string(rep.max_repeat) + " evaluation(s) by total RTF.";
}

std::string Legend(const AblationReport& rep) {
  std::string s = "Sizes are unique weight bytes (shared buffers once). WER/CER in percent. dWER: paired bootstrap "
                  "over utterances (2000 resamples) of the WER change against the input model, with its 95% CI "
                  "and two-sided p; a CI that excludes 0 is a change beyond utterance sampling noise. CPU RTF = "
                  "process CPU time / audio. ";
  for (const Mode* m : Modes(rep)) s += m->abbrev + " = " + m->title + " (" + m->latency_label + " = " + m->latency_text + "); ";
  return s + LatencyMethod(rep);
}

// The row whose step set is `steps`, or nullptr.
const AblationRow* Find(const AblationReport& rep, const std::vector<size_t>& steps) {
  for (const AblationRow& r : rep.rows)
    if (r.steps == steps) return &r;
  return nullptr;
}

// Per step: what it changes (`metric` of a row) alone, on top of the steps before it
// (cumulative), and on top of all other steps (full minus leave-one-out); NaN where not run.
std::vector<PlotSeries> StepEffects(const AblationReport& rep, const std::function<double(const AblationRow&)>& metric) {
  std::vector<PlotSeries> s = {{"alone vs input", "#1f77b4", {}, {}, {}, {}, false, false},
                               {"cumulative: added to the steps before", "#ff7f0e", {}, {}, {}, {}, false, false},
                               {"full minus leave-one-out", "#2ca02c", {}, {}, {}, {}, false, false}};
  const size_t n = rep.steps.size();
  std::vector<size_t> all;
  for (size_t i = 0; i < n; ++i) all.push_back(i);
  auto diff = [&](const std::vector<size_t>& a, const std::vector<size_t>& b) {
    const AblationRow *ra = Find(rep, a), *rb = Find(rep, b);
    return ra && rb ? metric(*ra) - metric(*rb) : NAN;
  };
  for (size_t i = 0; i < n; ++i) {
    std::vector<size_t> before(all.begin(), all.begin() + i), upto(all.begin(), all.begin() + i + 1), rest;
    for (size_t k : all)
      if (k != i) rest.push_back(k);
    s[0].y.push_back(diff({i}, {}));
    s[1].y.push_back(diff(upto, before));
    s[2].y.push_back(n >= 2 ? diff(all, rest) : NAN);
  }
  return s;
}

}  // namespace

json AblationReportJson(const AblationReport& rep) {
  json j = {{"name", rep.name}, {"pipeline", rep.pipeline}, {"mode", rep.mode}, {"model", rep.model},
            {"created", rep.created}, {"eval", rep.eval}, {"modes", rep.modes}, {"jobs", rep.jobs},
            {"latency_method", LatencyMethod(rep)}};
  j["steps"] = json::array();
  for (size_t i = 0; i < rep.steps.size(); ++i)
    j["steps"].push_back({{"name", rep.steps[i].name}, {"passes", rep.steps[i].passes}, {"text", rep.step_texts[i]}});
  j["rows"] = json::array();
  for (const AblationRow& r : rep.rows) j["rows"].push_back(AblationRowJson(r));
  return j;
}

std::string AblationMarkdown(const AblationReport& rep) {
  std::ostringstream o;
  o << "# asrc ablation" << (rep.name.empty() ? "" : ": " + rep.name) << "\n\n";
  o << "- pipeline: `" << rep.pipeline << "`\n- model: `" << rep.model << "`\n- mode: " << rep.mode << "\n";
  if (!rep.eval.is_null()) o << "- eval: `" << rep.eval.dump() << "`\n";
  o << "- steps:\n";
  for (size_t i = 0; i < rep.steps.size(); ++i) o << "  " << i + 1 << ". **" << rep.steps[i].name << "** `" << rep.step_texts[i] << "`\n";
  o << "\n" << Legend(rep) << "\n\n";
  const auto header = Header(Modes(rep));
  o << MarkdownTable(header, Rows(rep));
  return o.str();
}

std::string AblationHtml(const AblationReport& rep) {
  const std::vector<std::string> colors = {"#1f77b4", "#d62728"};
  const auto modes = Modes(rep);
  std::vector<PlotSeries> size, latency;
  for (size_t k = 0; k < modes.size(); ++k) {
    const Mode& m = *modes[k];
    const std::string& c = colors[(&m - AllModes().data()) % colors.size()];
    size.push_back({m.title + " WER", c, {}, {}, {}, {}, false, true});
    latency.push_back({m.title + " WER vs " + m.latency_label + " p50", c, {}, {}, {}, {}, false, true});
    for (size_t i = 0; i < rep.rows.size(); ++i) {
      const AblationRow& r = rep.rows[i];
      const ModeEval* e = Eval(r, m);
      const std::string id = std::to_string(i);
      size[k].x.push_back(r.bytes / 1e6);
      size[k].y.push_back(e ? e->wer : NAN);
      size[k].labels.push_back(id);
      size[k].tips.push_back(id + " " + Roles(r) + ": " + Fmt(r.bytes / 1e6) + " MB, WER " + (e ? Fmt(e->wer) : "-"));
      latency[k].x.push_back(e ? e->latency_ms_p50 : NAN);
      latency[k].y.push_back(e ? e->wer : NAN);
      latency[k].labels.push_back(id);
      latency[k].tips.push_back(id + " " + Roles(r) + ": " + (e ? Fmt(e->latency_ms_p50) + " ms, WER " + Fmt(e->wer) : "-"));
    }
  }
  std::vector<std::string> groups;
  for (size_t i = 0; i < rep.steps.size(); ++i) groups.push_back(std::to_string(i + 1) + " " + rep.steps[i].name);
  const Mode* final_mode = modes.empty() ? nullptr : modes.back();
  auto wer = [&](const AblationRow& r) {
    const ModeEval* e = final_mode ? Eval(r, *final_mode) : nullptr;
    return e ? e->wer : NAN;
  };
  auto mb = [](const AblationRow& r) { return r.bytes / 1e6; };

  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>asrc ablation</title>\n"
       "<style>body{font-family:sans-serif;margin:2em;max-width:1600px}table{border-collapse:collapse;"
       "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
       "td:nth-child(2),th:nth-child(2),td:nth-child(3),th:nth-child(3){text-align:left}"
       "code{background:#f4f4f4;word-break:break-all}svg{margin:6px}</style></head><body>\n";
  o << "<h1>asrc ablation " << HtmlEscape(rep.name) << "</h1>\n";
  o << "<p>pipeline: <code>" << HtmlEscape(rep.pipeline) << "</code><br>model: <code>" << HtmlEscape(rep.model)
    << "</code> &middot; mode: " << HtmlEscape(rep.mode) << "</p>\n";
  if (!rep.eval.is_null()) o << "<p>eval: <code>" << HtmlEscape(rep.eval.dump()) << "</code></p>\n";
  o << "<ol>\n";
  for (size_t i = 0; i < rep.steps.size(); ++i)
    o << "<li><b>" << HtmlEscape(rep.steps[i].name) << "</b> <code>" << HtmlEscape(rep.step_texts[i]) << "</code></li>\n";
  o << "</ol>\n<p>" << HtmlEscape(Legend(rep)) << "</p>\n" << HtmlTable(Header(modes), Rows(rep)) << "<div>\n";
  o << ScatterSvg("WER vs size (labels: row #)", "unique weight MB", "WER %", size);
  o << ScatterSvg("WER vs latency (labels: row #)", "p50 latency ms (per chunk / finalization)", "WER %", latency);
  const std::string fm = final_mode ? final_mode->title : "";
  o << BarsSvg("Per step: " + fm + " WER change", "WER change, points", groups, StepEffects(rep, wer));
  o << BarsSvg("Per step: size change", "MB change", groups, StepEffects(rep, mb));
  o << "</div>\n</body></html>\n";
  return o.str();
}

Status WriteAblationReport(const std::string& dir, const AblationReport& rep) {
  auto write = [&](const std::string& name, const std::string& text) -> Status {
    const std::string path = dir + "/" + name, tmp = path + ".partial";
    {
      std::ofstream out(tmp);
      out << text;
      if (!out) return Error(tmp + ": cannot write");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) return Error("cannot rename '" + tmp + "' to '" + path + "'");
    return Status::Ok();
  };
  ASRC_RETURN_IF_ERROR(write("ablation.json", AblationReportJson(rep).dump(2) + "\n"));
  ASRC_RETURN_IF_ERROR(write("ablation.md", AblationMarkdown(rep)));
  ASRC_RETURN_IF_ERROR(write("ablation.html", AblationHtml(rep)));
  return Status::Ok();
}

}  // namespace asrc::pass

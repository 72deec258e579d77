// ablation.{json,md,html}: one row per configuration, plots of WER against size (Pareto front)
// and latency, and per-step bars of what each step bought.
#include <algorithm>
#include <cmath>
#include <functional>
#include <fstream>
#include <sstream>

#include "core/files.h"
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

// Row r's evaluation on eval set k of the report (0: its own) and its significance there.
const EvalSummary* SetEval(const AblationReport& rep, const AblationRow& r, size_t k) {
  if (k == 0) return r.measured ? &*r.measured : nullptr;
  auto it = r.extra.find(rep.eval_sets[k]);
  return it != r.extra.end() && it->second.measured ? &*it->second.measured : nullptr;
}

const Significance* SetSignificance(const AblationReport& rep, const AblationRow& r, size_t k, const Mode& m) {
  const std::map<std::string, Significance>* by_mode = &r.significance;
  if (k > 0) {
    auto it = r.extra.find(rep.eval_sets[k]);
    if (it == r.extra.end()) return nullptr;
    by_mode = &it->second.significance;
  }
  auto s = by_mode->find(m.name);
  return s == by_mode->end() ? nullptr : &s->second;
}

std::string SizeText(const AblationReport& rep, const AblationRow& r) {
  const double ratio = (rep.rows.empty() ? NAN : static_cast<double>(rep.rows[0].bytes)) / static_cast<double>(r.bytes);
  if (std::fabs(ratio - 1) < 0.005) return "1.00x";
  return ratio < 1 ? Fmt(1 / ratio) + "x larger" : Fmt(ratio) + "x smaller";
}

std::string Configuration(const AblationRow& r) { return Roles(r) + (r.stop_reason.empty() ? "" : " (stopped)"); }

// Size, speed and latency: one row per configuration (the latency of its own eval set).
std::vector<std::string> SizeHeader(const std::vector<const Mode*>& modes) {
  std::vector<std::string> h = {"#", "configuration", "steps", "params", "MB", "size vs input"};
  for (const Mode* m : modes) h.push_back("CPU RTF " + m->abbrev);
  for (const Mode* m : modes) h.push_back(m->latency_label + " p50/p90 ms");
  h.insert(h.end(), {"eval runs", "config s"});
  return h;
}

std::vector<std::vector<std::string>> SizeRows(const AblationReport& rep) {
  std::vector<std::vector<std::string>> out;
  const auto modes = Modes(rep);
  for (size_t i = 0; i < rep.rows.size(); ++i) {
    const AblationRow& r = rep.rows[i];
    std::vector<std::string> c = {std::to_string(i), Configuration(r), StepNames(rep, r), std::to_string(r.params),
                                  Fmt(r.bytes / 1e6), SizeText(rep, r)};
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

// Accuracy on eval set k: WER and CER per mode, each change with its CI and p.
std::vector<std::string> AccuracyHeader(const std::vector<const Mode*>& modes) {
  std::vector<std::string> h = {"#", "configuration"};
  for (const Mode* m : modes)
    h.insert(h.end(), {"WER " + m->abbrev, "dWER " + m->abbrev + " [95% CI] p", "CER " + m->abbrev,
                       "dCER " + m->abbrev + " [95% CI] p"});
  return h;
}

std::string ChangeText(double delta, double lo, double hi, double p) {
  return (delta >= 0 ? "+" : "") + Fmt(delta) + " [" + Fmt(lo) + ", " + Fmt(hi) + "] " + (p < 0.001 ? "p<0.001" : "p=" + Fmt(p, 3));
}

std::vector<std::vector<std::string>> AccuracyRows(const AblationReport& rep, size_t k) {
  std::vector<std::vector<std::string>> out;
  for (size_t i = 0; i < rep.rows.size(); ++i) {
    const AblationRow& r = rep.rows[i];
    const EvalSummary* e = SetEval(rep, r, k);
    std::vector<std::string> c = {std::to_string(i), Configuration(r)};
    for (const Mode* m : Modes(rep)) {
      const ModeEval* me = e ? e->mode(m->name) : nullptr;
      const Significance* s = SetSignificance(rep, r, k, *m);
      const std::string none = i == 0 ? "" : "-";
      c.push_back(me ? Fmt(me->wer) : "-");
      c.push_back(s ? ChangeText(s->delta_wer, s->ci_lo, s->ci_hi, s->p_value) : none);
      c.push_back(me ? Fmt(me->cer) : "-");
      c.push_back(s && s->has_cer ? ChangeText(s->delta_cer, s->cer_ci_lo, s->cer_ci_hi, s->cer_p_value) : none);
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string Unfinished(const AblationReport& rep) {
  std::string s;
  for (const std::string& u : rep.unfinished) s += (s.empty() ? "" : ", ") + u;
  return s;
}

// "cathy (manifest ..., split test, first 100)" for eval set k.
std::string SetTitle(const AblationReport& rep, size_t k) {
  const json& key = k == 0 ? rep.eval : rep.rows.empty() || !rep.rows[0].extra.count(rep.eval_sets[k])
                                            ? json()
                                            : rep.rows[0].extra.at(rep.eval_sets[k]).eval;
  std::string t = rep.eval_sets[k];
  if (!key.is_object()) return t;
  t += " (" + key.value("manifest", std::string());
  if (!key.value("split", std::string()).empty()) t += ", split " + key["split"].get<std::string>();
  if (key.value("limit", 0) > 0) t += ", first " + std::to_string(key["limit"].get<int>());
  return t + ")";
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
  std::string s = "Sizes are unique weight bytes (shared buffers once). ";
  if (rep.show_wer)
    s += "WER/CER in percent. dWER, dCER: paired bootstrap over utterances (2000 resamples, the same for both) of "
         "the WER and CER change against the input model on the same eval set, with its 95% CI and two-sided p; a "
         "CI that excludes 0 is a change beyond utterance sampling noise. ";
  else
    s += "No WER/CER (--no-wer: an untrained model); the eval set is decoded for latency only. ";
  s += "CPU RTF = process CPU time / audio. Latency and CPU RTF are of the first eval set. ";
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
  j["eval_sets"] = rep.eval_sets;
  j["unfinished"] = rep.unfinished;
  j["show_wer"] = rep.show_wer;
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
  o << "\n" << Legend(rep) << "\n";
  if (!rep.unfinished.empty()) o << "\n**Not finished yet** (no row): " << Unfinished(rep) << "\n";
  o << "\n## Size and latency\n\n";
  o << MarkdownTable(SizeHeader(Modes(rep)), SizeRows(rep));
  if (rep.show_wer)
    for (size_t k = 0; k < rep.eval_sets.size(); ++k)
      o << "\n## Accuracy: " << SetTitle(rep, k) << "\n\n" << MarkdownTable(AccuracyHeader(Modes(rep)), AccuracyRows(rep, k));
  return o.str();
}

namespace {

// One point per row: x and y of its measurement (NaN where it has none), labelled by row number.
PlotSeries RowSeries(const AblationReport& rep, const std::string& name, const std::string& color,
                     const std::function<double(const AblationRow&)>& x, const std::function<double(const AblationRow&)>& y,
                     const std::string& x_unit, const std::string& y_name) {
  PlotSeries s{name, color, {}, {}, {}, {}, false, true};
  for (size_t i = 0; i < rep.rows.size(); ++i) {
    const AblationRow& r = rep.rows[i];
    const std::string id = std::to_string(i);
    s.x.push_back(x(r));
    s.y.push_back(y(r));
    s.labels.push_back(id);
    s.tips.push_back(id + " " + Roles(r) + ": " + (std::isnan(s.x.back()) ? "-" : Fmt(s.x.back())) + " " + x_unit +
                     ", " + y_name + " " + (std::isnan(s.y.back()) ? "-" : Fmt(s.y.back())));
  }
  return s;
}

// The plots: WER (each eval set and mode) against size and latency, per-step bars; without WER,
// latency against size and per-step bars of size and latency.
std::string Plots(const AblationReport& rep) {
  const std::vector<std::string> colors = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"};
  const auto modes = Modes(rep);
  const Mode* final_mode = modes.empty() ? nullptr : modes.back();
  auto latency = [](const Mode& m) { return [&m](const AblationRow& r) { return Eval(r, m) ? Eval(r, m)->latency_ms_p50 : NAN; }; };
  auto mb = [](const AblationRow& r) { return r.bytes / 1e6; };
  std::vector<std::string> groups;
  for (size_t i = 0; i < rep.steps.size(); ++i) groups.push_back(std::to_string(i + 1) + " " + rep.steps[i].name);
  std::ostringstream o;
  if (!rep.show_wer) {
    std::vector<PlotSeries> lat;
    for (size_t k = 0; k < modes.size(); ++k)
      lat.push_back(RowSeries(rep, modes[k]->title + " " + modes[k]->latency_label + " p50", colors[k % colors.size()],
                              mb, latency(*modes[k]), "MB", "ms"));
    o << ScatterSvg("Latency vs size (labels: row #)", "unique weight MB", "p50 latency ms", lat);
    o << BarsSvg("Per step: size change", "MB change", groups, StepEffects(rep, mb));
    if (final_mode)
      o << BarsSvg("Per step: " + final_mode->title + " " + final_mode->latency_label + " p50 change", "ms change",
                   groups, StepEffects(rep, latency(*final_mode)));
    return o.str();
  }
  std::vector<PlotSeries> size, lat;
  size_t color = 0;
  for (size_t k = 0; k < rep.eval_sets.size(); ++k)
    for (const Mode* m : modes) {
      auto wer = [&rep, k, m](const AblationRow& r) {
        const EvalSummary* e = SetEval(rep, r, k);
        const ModeEval* me = e ? e->mode(m->name) : nullptr;
        return me ? me->wer : NAN;
      };
      const std::string name = (rep.eval_sets.size() > 1 ? rep.eval_sets[k] + " " : "") + m->title + " WER";
      const std::string& c = colors[color++ % colors.size()];
      size.push_back(RowSeries(rep, name, c, mb, wer, "MB", "WER"));
      lat.push_back(RowSeries(rep, name + " vs " + m->latency_label + " p50", c, latency(*m), wer, "ms", "WER"));
    }
  o << ScatterSvg("WER vs size (labels: row #)", "unique weight MB", "WER %", size);
  o << ScatterSvg("WER vs latency (labels: row #)", "p50 latency ms (per chunk / finalization)", "WER %", lat);
  auto wer = [&](const AblationRow& r) {
    const ModeEval* e = final_mode ? Eval(r, *final_mode) : nullptr;
    return e ? e->wer : NAN;
  };
  const std::string fm = final_mode ? final_mode->title : "";
  const std::string first = rep.eval_sets.empty() ? "" : " (" + rep.eval_sets[0] + ")";
  o << BarsSvg("Per step: " + fm + " WER change" + first, "WER change, points", groups, StepEffects(rep, wer));
  o << BarsSvg("Per step: size change", "MB change", groups, StepEffects(rep, mb));
  return o.str();
}

}  // namespace

std::string AblationHtml(const AblationReport& rep) {
  const auto modes = Modes(rep);
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
  o << "</ol>\n<p>" << HtmlEscape(Legend(rep)) << "</p>\n";
  if (!rep.unfinished.empty()) o << "<p><b>Not finished yet</b> (no row): " << HtmlEscape(Unfinished(rep)) << "</p>\n";
  o << "<h2>Size and latency</h2>\n"
    << HtmlTable(SizeHeader(modes), SizeRows(rep));
  if (rep.show_wer)
    for (size_t k = 0; k < rep.eval_sets.size(); ++k)
      o << "<h2>Accuracy: " << HtmlEscape(SetTitle(rep, k)) << "</h2>\n"
        << HtmlTable(AccuracyHeader(modes), AccuracyRows(rep, k));
  o << "<div>\n" << Plots(rep) << "</div>\n</body></html>\n";
  return o.str();
}

Status WriteAblationReport(const std::string& dir, const AblationReport& rep) {
  auto write = [&](const std::string& name, const std::string& text) {
    return WriteFileAtomic(dir + "/" + name, text);
  };
  ASRC_RETURN_IF_ERROR(write("ablation.json", AblationReportJson(rep).dump(2) + "\n"));
  ASRC_RETURN_IF_ERROR(write("ablation.md", AblationMarkdown(rep)));
  ASRC_RETURN_IF_ERROR(write("ablation.html", AblationHtml(rep)));
  return Status::Ok();
}

}  // namespace asrc::pass

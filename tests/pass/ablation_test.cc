// Ablation planning (steps from the pipeline JSON, configurations per mode) and the shared plot
// code (round ticks, Pareto front, labels and legend clear of each other). The `asrc ablate` run
// itself, with kill and resume: tests/cli/ablate_test.sh.
#include <array>
#include <cmath>
#include <regex>
#include <set>

#include "doctest/doctest.h"
#include "pass/ablation.h"
#include "pass/instruments.h"
#include "pass/plot.h"
#include "pass/report.h"
#include "passes/registry.h"

using namespace asrc;
using nlohmann::json;

namespace {

pass::Pipeline Parse(const std::string& text) {
  auto p = pass::ParsePipeline(json::parse(text), passes::BuiltinPasses());
  REQUIRE_MESSAGE(p.ok(), p.status().message());
  return p.value();
}

std::vector<pass::AblationStep> Steps(const pass::Pipeline& p) {
  auto s = pass::GroupSteps(p);
  REQUIRE_MESSAGE(s.ok(), s.status().message());
  return s.value();
}

std::string StepError(const std::string& text) {
  auto s = pass::GroupSteps(Parse(text));
  REQUIRE_FALSE(s.ok());
  return s.status().message();
}

const char* kThree = R"({"passes": [{"pass": "cleanup", "step": "prune"},
    {"pass": "prune", "step": "prune", "options": {"method": "structured"}},
    {"pass": "low-rank", "step": "lowrank"}, "quantize-int8"]})";

}  // namespace

TEST_CASE("ablation steps: adjacent passes with one step name form a step, a pass without one is its own") {
  const auto steps = Steps(Parse(kThree));
  REQUIRE(steps.size() == 3);
  CHECK(steps[0].name == "prune");
  CHECK(steps[0].passes == std::vector<size_t>{0, 1});
  CHECK(steps[1].name == "lowrank");
  CHECK(steps[2].name == "quantize-int8");  // named after its pass
  CHECK(steps[2].passes == std::vector<size_t>{3});
  // A pipeline without step names (every existing one) still loads: one step per pass.
  CHECK(Steps(Parse(R"({"passes": ["cleanup", "quantize-int8"]})")).size() == 2);
}

TEST_CASE("ablation steps: a step name used twice, or a clash with an unnamed pass, is an error naming the JSON path") {
  CHECK(StepError(R"({"passes": [{"pass": "cleanup", "step": "a"}, {"pass": "prune", "step": "b"},
                     {"pass": "quantize-int8", "step": "a"}]})") ==
        "$.passes[2].step: step 'a' used twice (first at $.passes[0]); the passes of one step must be adjacent");
  CHECK(StepError(R"({"passes": ["cleanup", "prune", "cleanup"]})").find("$.passes[2]: pass 'cleanup'") == 0);
  auto bad = pass::ParsePipeline(json::parse(R"({"passes": [{"pass": "cleanup", "step": ""}]})"), passes::BuiltinPasses());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "$.passes[0].step: empty step name");
  bad = pass::ParsePipeline(json::parse(R"({"passes": [{"pass": "cleanup", "step": 3}]})"), passes::BuiltinPasses());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "$.passes[0].step: expected a string");
}

TEST_CASE("ablation plan: configurations per mode, shared step sets run once with every role") {
  const pass::Pipeline p = Parse(kThree);
  const auto steps = Steps(p);
  auto keys = [&](const std::string& mode) {
    auto c = pass::PlanAblation(p, steps, mode);
    REQUIRE_MESSAGE(c.ok(), c.status().message());
    std::vector<std::string> k;
    for (const auto& x : *c) k.push_back(x.key);
    return k;
  };
  CHECK(keys("cumulative") == std::vector<std::string>{"input", "steps-1", "steps-1-2", "steps-1-2-3"});
  CHECK(keys("alone") == std::vector<std::string>{"input", "steps-1", "steps-2", "steps-3"});
  CHECK(keys("leave-one-out") == std::vector<std::string>{"input", "steps-2-3", "steps-1-3", "steps-1-2", "steps-1-2-3"});
  auto all = pass::PlanAblation(p, steps, "all");
  REQUIRE(all.ok());
  REQUIRE(all->size() == 8);  // input, 1, 1-2, 1-2-3, 2, 3, 2-3, 1-3
  const pass::AblationConfig& c12 = (*all)[2];
  CHECK(c12.key == "steps-1-2");
  CHECK(c12.roles == std::vector<std::string>{"cumulative 1-2", "without: quantize-int8"});
  CHECK(c12.pipeline.steps.size() == 3);  // cleanup, prune, low-rank
  CHECK(c12.pipeline.steps[2].pass == "low-rank");
  CHECK((*all)[3].roles == std::vector<std::string>{"full pipeline"});
  CHECK((*all)[0].pipeline.steps.empty());

  auto bad = pass::PlanAblation(p, steps, "some");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("--mode: 'some' is not one of") == 0);
  const pass::Pipeline one = Parse(R"({"passes": [{"pass": "cleanup", "step": "a"}, {"pass": "prune", "step": "a"}]})");
  bad = pass::PlanAblation(one, Steps(one), "leave-one-out");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("--mode leave-one-out: the pipeline has one step ('a')") == 0);
  auto all_one = pass::PlanAblation(one, Steps(one), "all");
  REQUIRE(all_one.ok());
  CHECK(all_one->size() == 2);  // input and the one step
}

TEST_CASE("ablation prefixes: a configuration starts from the finished one whose steps begin its own") {
  const pass::Pipeline p = Parse(R"({"seed": 5, "passes": [{"pass": "cleanup", "step": "prune"},
      {"pass": "prune", "step": "prune", "options": {"method": "structured"}},
      {"pass": "low-rank", "step": "lowrank"}, {"pass": "distill", "step": "kd"}]})");
  auto all = pass::PlanAblation(p, Steps(p), "all");
  REQUIRE(all.ok());
  auto key = [&](const std::string& k) {
    for (size_t i = 0; i < all->size(); ++i)
      if ((*all)[i].key == k) return i;
    FAIL("no configuration " << k);
    return size_t(0);
  };
  auto prefix = [&](const std::string& k) {
    auto p = pass::PrefixConfig(*all, key(k));
    return p ? (*all)[*p].key : std::string("-");
  };
  CHECK(prefix("steps-1-2-3") == "steps-1-2");  // the longest prefix, not steps-1
  CHECK(prefix("steps-1-2") == "steps-1");
  CHECK(prefix("steps-1-3") == "steps-1");
  CHECK(prefix("steps-2-3") == "steps-2");
  CHECK(prefix("steps-1") == "-");  // the input (no steps) is not a prefix to start from
  CHECK(prefix("input") == "-");
  CHECK(prefix("steps-3") == "-");

  const pass::AblationConfig& full = (*all)[key("steps-1-2-3")];
  const pass::Pipeline rest = pass::SuffixPipeline(full, (*all)[key("steps-1")], "/models/teacher");
  REQUIRE(rest.steps.size() == 2);  // low-rank and distill, after cleanup and prune
  CHECK(rest.steps[0].pass == "low-rank");
  CHECK(rest.seed == 5 + 2);  // step i of the suffix is step i + 2 of the whole: the same seeds
  CHECK(rest.steps[1].options["teacher"] == "/models/teacher");  // taught by the study's input, not the prefix
  CHECK(full.pipeline.steps[3].options["teacher"] == "");          // the config itself unchanged
}

TEST_CASE("ablation eval sets: NAME=MANIFEST[:SPLIT] or a plain manifest; errors name the value") {
  auto set = [](const std::string& text) {
    auto s = pass::ParseAblationEvalSet(text);
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    return s.value();
  };
  auto a = set("cathy=/data/cathy/manifest.jsonl:test");
  CHECK(a.name == "cathy");
  CHECK(a.manifest == "/data/cathy/manifest.jsonl");
  CHECK(a.split == "test");
  auto b = set("experiments/data/default_eval/manifest.jsonl");
  CHECK(b.name.empty());
  CHECK(b.manifest == "experiments/data/default_eval/manifest.jsonl");
  CHECK(b.split.empty());
  auto c = set("/data/a=b/m.jsonl");  // '=' inside the path: no name
  CHECK(c.name.empty());
  CHECK(c.manifest == "/data/a=b/m.jsonl");
  CHECK(set("x=/d:1/m.jsonl").split.empty());  // ':' before the last '/': part of the path
  for (auto [text, want] : {std::pair{"=m.jsonl", "the set name before '='"}, {"a b=m.jsonl", "the set name before '='"},
                            {"s=m.jsonl:", "empty split"}, {"s=", "no manifest"}}) {
    auto bad = pass::ParseAblationEvalSet(text);
    REQUIRE_FALSE(bad.ok());
    CHECK_MESSAGE(bad.status().message().find(want) != std::string::npos, bad.status().message());
    CHECK(bad.status().message().find(std::string("--eval '") + text + "'") == 0);
  }
}

TEST_CASE("ablation row JSON: prefix and further eval sets (with CER significance) round-trip") {
  pass::AblationRow r;
  r.key = "steps-1-2";
  r.steps = {0, 1};
  r.roles = {"cumulative 1-2"};
  r.from = "steps-1";
  pass::Significance s;
  s.delta_wer = 1.5, s.ci_lo = -0.5, s.ci_hi = 3.5, s.p_value = 0.2, s.resamples = 2000, s.utterances = 40;
  s.has_cer = true, s.delta_cer = 0.7, s.cer_ci_lo = 0.1, s.cer_ci_hi = 1.3, s.cer_p_value = 0.02;
  r.significance["lookahead"] = s;
  pass::EvalSummary e;
  e.modes["lookahead"].wer = 12.5;
  e.modes["lookahead"].utt_word_errors = {pass::WordErrors{1, 8}, std::nullopt};
  e.modes["lookahead"].utt_char_errors = {pass::WordErrors{2, 30}, std::nullopt};
  r.extra["synth"] = pass::AblationExtraEval{json{{"manifest", "/m.jsonl"}}, e, {{"lookahead", s}}};
  auto back = pass::ParseAblationRow(json::parse(pass::AblationRowJson(r).dump()));
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(back->from == "steps-1");
  REQUIRE(back->extra.count("synth") == 1);
  const pass::AblationExtraEval& x = back->extra.at("synth");
  CHECK(x.eval == json{{"manifest", "/m.jsonl"}});
  REQUIRE(x.measured);
  CHECK(x.measured->mode("lookahead")->wer == 12.5);
  CHECK(x.measured->mode("lookahead")->utt_char_errors.size() == 2);
  CHECK(x.measured->mode("lookahead")->utt_char_errors[0]->errors == 2);
  CHECK_FALSE(x.measured->mode("lookahead")->utt_char_errors[1].has_value());
  const pass::Significance& t = x.significance.at("lookahead");
  CHECK(t.has_cer);
  CHECK(t.cer_ci_lo == 0.1);
  CHECK(t.cer_p_value == 0.02);
  CHECK(back->significance.at("lookahead").delta_cer == 0.7);
}

TEST_CASE("plot ticks: round values that enclose the data (not 68.58, 69.59)") {
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{{68.58, 69.59}, {0.013, 0.47}, {3, 3}, {-2.4, 7.9}, {1200, 98000}}) {
    const auto t = pass::NiceTicks(lo, hi);
    REQUIRE(t.size() >= 2);
    CHECK(t.size() <= 8);
    CHECK(t.front() <= lo);
    CHECK(t.back() >= hi);
    const double step = t[1] - t[0];
    const double mant = step / std::pow(10, std::floor(std::log10(step) + 1e-9));
    CHECK((std::fabs(mant - 1) < 1e-6 || std::fabs(mant - 2) < 1e-6 || std::fabs(mant - 2.5) < 1e-6 ||
           std::fabs(mant - 5) < 1e-6));
    for (double v : t) CHECK(std::fabs(v / step - std::round(v / step)) < 1e-6);
  }
  const auto t = pass::NiceTicks(68.58, 69.59);
  CHECK(t == std::vector<double>{68.5, 69, 69.5, 70});
  CHECK(pass::TickText(t[1], t[1] - t[0]) == "69.0");
  CHECK(pass::TickText(40, 10) == "40");
  CHECK(pass::TickText(0.5, 0.5) == "0.5");
}

TEST_CASE("plot: Pareto front, merged labels of coincident points, labels never overlap, legend beside the frame") {
  CHECK(pass::ParetoFront({5, 4, 3, 6, NAN}, {10, 12, 20, 9, 1}) == std::vector<size_t>{2, 1, 0, 3});
  CHECK(pass::ParetoFront({5, 4, 6}, {10, 12, 13}) == std::vector<size_t>{1, 0});

  pass::PlotSeries s{"look-ahead WER", "#d62728", {}, {}, {}, {}, false, true};
  for (int i = 0; i < 30; ++i) {  // a dense cluster: not every label can fit
    s.x.push_back(10 + (i % 6) * 0.05);
    s.y.push_back(50 + (i / 6) * 0.1);
    s.labels.push_back(std::to_string(i));
  }
  s.x.push_back(20), s.y.push_back(40), s.labels.push_back("30");
  s.x.push_back(20), s.y.push_back(40), s.labels.push_back("31");
  const std::string svg = pass::ScatterSvg("t", "MB", "WER %", {s});
  CHECK(svg.find(">30,31</text>") != std::string::npos);
  // Every label's box (as the plot estimates it: 6.2 px a character, 11 px high) is apart from
  // every other.
  std::regex label("<text x=\"([0-9.]+)\" y=\"([0-9.]+)\" fill=\"#d62728\">([^<]+)</text>");
  std::vector<std::array<double, 4>> boxes;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), label); it != std::sregex_iterator(); ++it) {
    const double x = std::stod((*it)[1]), y = std::stod((*it)[2]), w = 6.2 * (*it)[3].length();
    boxes.push_back({x, y - 9, x + w, y + 2});
  }
  CHECK(boxes.size() >= 5);
  CHECK(boxes.size() < 31);
  for (size_t i = 0; i < boxes.size(); ++i)
    for (size_t j = i + 1; j < boxes.size(); ++j)
      CHECK_FALSE((boxes[i][0] < boxes[j][2] && boxes[j][0] < boxes[i][2] && boxes[i][1] < boxes[j][3] &&
                   boxes[j][1] < boxes[i][3]));
  // Legend entries sit right of the frame (which ends at x = 580).
  std::regex legend("<text x=\"([0-9.]+)\" y=\"[0-9.]+\">(look-ahead WER|ringed[^<]*)</text>");
  int entries = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), legend); it != std::sregex_iterator(); ++it, ++entries)
    CHECK(std::stod((*it)[1]) > 580);
  CHECK(entries == 2);
  // Tick labels are round.
  CHECK(svg.find(">68.58<") == std::string::npos);
}

TEST_CASE("plot: a few far outliers sit on the frame's edge with their value; the rest keeps its scale") {
  pass::PlotSeries s{"streaming WER", "#1f77b4", {}, {}, {}, {}, false, true};
  const std::vector<double> wer = {72.2, 74.0, 81.5, 88.1, 76.3, 490.4, 73.9, 86.0};
  for (size_t i = 0; i < wer.size(); ++i) {
    s.x.push_back(5 + i);
    s.y.push_back(wer[i]);
    s.labels.push_back(std::to_string(i));
  }
  const std::string svg = pass::ScatterSvg("t", "MB", "WER %", {s});
  // The y ticks end near the cluster (90), not at 500.
  CHECK(svg.find(">90<") != std::string::npos);
  CHECK(svg.find(">500<") == std::string::npos);
  CHECK(svg.find("<polygon") != std::string::npos);
  CHECK(svg.find("5 (490.4)") != std::string::npos);
  CHECK(svg.find("off the axis") != std::string::npos);
  // Without an outlier nothing is clipped.
  s.y[5] = 79;
  const std::string plain = pass::ScatterSvg("t", "MB", "WER %", {s});
  CHECK(plain.find("<polygon") == std::string::npos);
  CHECK(plain.find("off the axis") == std::string::npos);
  // Spread-out values (no cluster) are all shown.
  const std::string wide = pass::ScatterSvg("t", "MB", "WER %", {{"w", "#000", {1, 2, 3, 4, 5, 6}, {10, 100, 200, 300, 400, 500}, {}, {}, false, false}});
  CHECK(wide.find("<polygon") == std::string::npos);
}

TEST_CASE("latency until stable: per-chunk minima over the runs; repeating stops when a run no longer lowers them") {
  const std::vector<std::vector<double>> runs = {{10, 50, 12}, {5, 9, 30}, {6, 9, 12}, {1, 1, 1}};
  size_t k = 0;
  pass::Evaluator evaluator = [&](const ir::Model&) -> Result<pass::EvalSummary> {
    pass::ModeEval m;
    m.latency_ms = runs.at(k++);
    m.rtf = m.rtf_cpu = 1.0 / k;
    pass::EvalSummary s;
    s.modes["streaming"] = m;
    return s;
  };
  pass::EvalInstrument eval(evaluator, pass::EvalRepeat{4, 0.05}, "", -1);
  ir::Model model;
  pass::PassRecord record;
  REQUIRE(eval.After(record, model).ok());
  // Run 1: p50 12, p90 42.4. Run 2: minima {5, 9, 12}: p50 9, p90 11.4 (far lower: go on). Run 3:
  // minima unchanged: settled, so the fourth run is never made.
  CHECK(eval.evaluations() == 3);
  REQUIRE(record.eval);
  CHECK(record.eval->repeat == 3);
  const pass::ModeEval& m = *record.eval->mode("streaming");
  CHECK(m.latency_ms_p50 == doctest::Approx(9));
  CHECK(m.latency_ms_p90 == doctest::Approx(11.4));
  CHECK(m.rtf_cpu == doctest::Approx(1.0 / 3));

  // Without a tolerance: exactly `repeat` runs, the fastest by RTF kept whole.
  k = 0;
  pass::EvalInstrument fixed(evaluator, pass::EvalRepeat{2, 0}, "", -1);
  pass::PassRecord r2;
  REQUIRE(fixed.After(r2, model).ok());
  CHECK(fixed.evaluations() == 2);
  CHECK(r2.eval->mode("streaming")->latency_ms == runs[1]);
}

TEST_CASE("compress report: its size-vs-WER plot has round ticks and its legend beside the frame") {
  pass::CompressReport rep;
  rep.modes = {"lookahead"};
  for (auto [mb, wer] : {std::pair{69.59, 20.1}, std::pair{68.58, 20.7}}) {
    pass::PassRecord r;
    r.index = static_cast<int>(rep.records.size());
    r.size = pass::SizeStats{1000, static_cast<int64_t>(mb * 1e6), {}};
    pass::EvalSummary e;
    e.modes["lookahead"].wer = wer;
    r.eval = e;
    rep.records.push_back(r);
  }
  const std::string html = pass::ReportHtml(rep);
  const size_t svg = html.find("<svg");
  REQUIRE(svg != std::string::npos);
  const std::string scatter = html.substr(svg, html.find("</svg>", svg) - svg);
  CHECK(scatter.find(">68.58<") == std::string::npos);
  CHECK(scatter.find(">69.59<") == std::string::npos);
  CHECK(scatter.find(">68.5<") != std::string::npos);  // ticks 68.5, 69.0, 69.5, 70.0
  CHECK(scatter.find(">70.0<") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(scatter, m, std::regex("<text x=\"([0-9.]+)\" y=\"[0-9.]+\">look-ahead WER</text>")));
  CHECK(std::stod(m[1]) > 580);
}

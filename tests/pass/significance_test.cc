// Paired bootstrap of a pass's WER change (pass/significance.h).
#include <doctest/doctest.h>

#include "pass/significance.h"

using nlohmann::json;
using asrc::pass::AddSignificance;
using asrc::pass::PairedBootstrap;

namespace {

// One mode object with utt_word_errors from (errors, words) pairs.
json Mode(const std::vector<std::pair<int, int>>& utts) {
  json errs = json::array();
  for (auto [e, n] : utts) errs.push_back({e, n});
  return json{{"utt_word_errors", errs}};
}

}  // namespace

TEST_CASE("identical outputs: delta 0, CI [0, 0], p 1") {
  json m = Mode({{1, 10}, {0, 8}, {3, 12}, {2, 9}});
  auto s = PairedBootstrap(m, m, 500, 7);
  REQUIRE(s.has_value());
  CHECK((*s)["delta_wer"].get<double>() == 0.0);
  CHECK((*s)["ci95"][0].get<double>() == 0.0);
  CHECK((*s)["ci95"][1].get<double>() == 0.0);
  CHECK((*s)["p_value"].get<double>() == 1.0);
  CHECK((*s)["utterances"].get<int>() == 4);
}

TEST_CASE("a consistent degradation is significant, a single-utterance one is not") {
  std::vector<std::pair<int, int>> base, worse, one_off;
  for (int i = 0; i < 100; ++i) {
    base.push_back({i % 3, 10});
    worse.push_back({i % 3 + 1, 10});                   // +1 error on every utterance: +10 points
    one_off.push_back({i % 3 + (i == 0 ? 3 : 0), 10});  // +3 errors on one utterance only
  }
  auto s = PairedBootstrap(Mode(base), Mode(worse), 1000, 1);
  REQUIRE(s.has_value());
  CHECK((*s)["delta_wer"].get<double>() == doctest::Approx(10.0));
  CHECK((*s)["ci95"][0].get<double>() > 9.0);
  CHECK((*s)["p_value"].get<double>() < 0.01);

  auto t = PairedBootstrap(Mode(base), Mode(one_off), 1000, 1);
  REQUIRE(t.has_value());
  CHECK((*t)["delta_wer"].get<double>() == doctest::Approx(0.3));
  CHECK((*t)["ci95"][0].get<double>() <= 0.0);  // the CI reaches 0: not beyond sampling noise
  CHECK((*t)["p_value"].get<double>() > 0.05);
}

TEST_CASE("rows that do not line up get no significance") {
  CHECK_FALSE(PairedBootstrap(Mode({{1, 10}}), Mode({{1, 10}, {0, 5}})).has_value());  // lengths
  CHECK_FALSE(PairedBootstrap(Mode({{1, 10}}), Mode({{1, 11}})).has_value());           // references
  CHECK_FALSE(PairedBootstrap(json::object(), Mode({{1, 10}})).has_value());            // missing
}

TEST_CASE("failed utterances (null) are left out of both sides") {
  json a = Mode({{1, 10}, {2, 10}});
  json b = Mode({{1, 10}, {2, 10}});
  a["utt_word_errors"].push_back(nullptr);
  b["utt_word_errors"].push_back({5, 10});
  auto s = PairedBootstrap(a, b, 200, 3);
  REQUIRE(s.has_value());
  CHECK((*s)["utterances"].get<int>() == 2);
  CHECK((*s)["delta_wer"].get<double>() == 0.0);
}

TEST_CASE("AddSignificance annotates every pass row against the input, both modes") {
  json report;
  report["rows"] = json::array();
  report["rows"].push_back({{"pass", "input"}, {"streaming", Mode({{1, 10}, {2, 10}})},
                            {"lookahead", Mode({{0, 10}, {1, 10}})}});
  report["rows"].push_back({{"pass", "quantize-int8"}, {"streaming", Mode({{2, 10}, {2, 10}})},
                            {"lookahead", Mode({{0, 10}, {1, 10}})}});
  report["rows"].push_back({{"pass", "no-eval"}});
  AddSignificance(report, 300, 5);
  CHECK_FALSE(report["rows"][0].contains("significance"));
  CHECK(report["rows"][1]["significance"]["streaming"]["delta_wer"].get<double>() == doctest::Approx(5.0));
  CHECK(report["rows"][1]["significance"]["lookahead"]["p_value"].get<double>() == 1.0);
  CHECK_FALSE(report["rows"][2].contains("significance"));
}

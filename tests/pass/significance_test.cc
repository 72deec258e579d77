// Paired bootstrap of a pass's WER change (pass/significance.h).
#include <doctest/doctest.h>

#include "pass/significance.h"

using namespace asrc::pass;

namespace {

// One mode's result with utt_word_errors from (errors, words) pairs.
ModeEval Mode(const std::vector<std::pair<int, int>>& utts) {
  ModeEval m;
  for (auto [e, n] : utts) m.utt_word_errors.push_back(WordErrors{e, n});
  return m;
}

}  // namespace

TEST_CASE("identical outputs: delta 0, CI [0, 0], p 1") {
  ModeEval m = Mode({{1, 10}, {0, 8}, {3, 12}, {2, 9}});
  auto s = PairedBootstrap(m, m, 500, 7);
  REQUIRE(s.has_value());
  CHECK(s->delta_wer == 0.0);
  CHECK(s->ci_lo == 0.0);
  CHECK(s->ci_hi == 0.0);
  CHECK(s->p_value == 1.0);
  CHECK(s->utterances == 4);
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
  CHECK(s->delta_wer == doctest::Approx(10.0));
  CHECK(s->ci_lo > 9.0);
  CHECK(s->p_value < 0.01);

  auto t = PairedBootstrap(Mode(base), Mode(one_off), 1000, 1);
  REQUIRE(t.has_value());
  CHECK(t->delta_wer == doctest::Approx(0.3));
  CHECK(t->ci_lo <= 0.0);  // the CI reaches 0: not beyond sampling noise
  CHECK(t->p_value > 0.05);
}

TEST_CASE("rows that do not line up get no significance") {
  CHECK_FALSE(PairedBootstrap(Mode({{1, 10}}), Mode({{1, 10}, {0, 5}})).has_value());  // lengths
  CHECK_FALSE(PairedBootstrap(Mode({{1, 10}}), Mode({{1, 11}})).has_value());           // references
  CHECK_FALSE(PairedBootstrap(ModeEval(), Mode({{1, 10}})).has_value());               // missing
}

TEST_CASE("failed utterances (null) are left out of both sides") {
  ModeEval a = Mode({{1, 10}, {2, 10}});
  ModeEval b = Mode({{1, 10}, {2, 10}});
  a.utt_word_errors.emplace_back();  // failed audio
  b.utt_word_errors.push_back(WordErrors{5, 10});
  auto s = PairedBootstrap(a, b, 200, 3);
  REQUIRE(s.has_value());
  CHECK(s->utterances == 2);
  CHECK(s->delta_wer == 0.0);
}

TEST_CASE("AddSignificance annotates every evaluated pass record against the input, each mode") {
  std::vector<PassRecord> records(3);
  records[0].eval = EvalSummary{};
  records[0].eval->modes = {{"streaming", Mode({{1, 10}, {2, 10}})}, {"lookahead", Mode({{0, 10}, {1, 10}})}};
  records[1].index = 1;
  records[1].eval = EvalSummary{};
  records[1].eval->modes = {{"streaming", Mode({{2, 10}, {2, 10}})}, {"lookahead", Mode({{0, 10}, {1, 10}})}};
  records[2].index = 2;  // not evaluated
  AddSignificance(records, 300, 5);
  CHECK(records[0].significance.empty());
  CHECK(records[1].significance.at("streaming").delta_wer == doctest::Approx(5.0));
  CHECK(records[1].significance.at("lookahead").p_value == 1.0);
  CHECK(records[2].significance.empty());
}

TEST_CASE("CER gets its own CI over the same resamples when per-utterance character errors exist") {
  ModeEval base = Mode({{1, 10}, {0, 8}, {3, 12}, {2, 9}, {1, 7}, {0, 11}});
  ModeEval other = base;  // the same words
  for (int i = 0; i < 6; ++i) {
    base.utt_char_errors.push_back(WordErrors{i, 40});
    other.utt_char_errors.push_back(WordErrors{i + 4, 40});  // +4 char errors in each of 6: +10 points
  }
  auto s = PairedBootstrap(base, other, 1000, 1);
  REQUIRE(s.has_value());
  CHECK(s->delta_wer == 0.0);
  REQUIRE(s->has_cer);
  CHECK(s->delta_cer == doctest::Approx(10.0));
  CHECK(s->cer_ci_lo == doctest::Approx(10.0));  // the same +4 in every utterance: no spread
  CHECK(s->cer_p_value < 0.01);
  // Without character errors on one side: WER only.
  ModeEval plain = Mode({{1, 10}, {0, 8}, {3, 12}, {2, 9}, {1, 7}, {0, 11}});
  auto w = PairedBootstrap(plain, other, 200, 1);
  REQUIRE(w.has_value());
  CHECK_FALSE(w->has_cer);
  // The JSON form round-trips, CER included.
  auto back = ParseSignificance(SignificanceJson(*s));
  REQUIRE(back.ok());
  CHECK(back->has_cer);
  CHECK(back->cer_ci_hi == doctest::Approx(s->cer_ci_hi));
  CHECK_FALSE(ParseSignificance(nlohmann::json{{"delta_wer", 1}}).ok());
}

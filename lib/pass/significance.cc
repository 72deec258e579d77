#include "pass/significance.h"

#include <algorithm>
#include <random>

namespace asrc::pass {

namespace {

struct Pair {
  double base_errors, other_errors, words;
};

// The utterances scored in both; nullopt when the two do not line up.
std::optional<std::vector<Pair>> Paired(const std::vector<std::optional<WordErrors>>& b,
                                        const std::vector<std::optional<WordErrors>>& o) {
  if (b.empty() || b.size() != o.size()) return std::nullopt;
  std::vector<Pair> out;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!b[i] || !o[i]) continue;  // failed audio: left out of both, as in the WER
    if (b[i]->words != o[i]->words) return std::nullopt;  // a different reference: not the same utterance
    out.push_back({static_cast<double>(b[i]->errors), static_cast<double>(o[i]->errors),
                   static_cast<double>(b[i]->words)});
  }
  return out;
}

double Quantile(std::vector<double>& sorted, double q) {
  double pos = q * (sorted.size() - 1);
  size_t i = static_cast<size_t>(pos);
  if (i + 1 >= sorted.size()) return sorted.back();
  return sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]);
}

struct Change {
  double delta = 0, lo = 0, hi = 0, p = 1;
};

// The error rate change of `pairs` (percent points), its 95% CI and two-sided p over `resamples`
// resamples of the utterance indices drawn from `seed` (the same draws for the same seed and size).
Change Bootstrap(const std::vector<Pair>& pairs, int resamples, uint64_t seed) {
  auto delta = [](double eb, double eo, double n) { return n > 0 ? 100.0 * (eo - eb) / n : 0.0; };
  double eb = 0, eo = 0, n = 0;
  for (const Pair& p : pairs) eb += p.base_errors, eo += p.other_errors, n += p.words;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, pairs.size() - 1);
  std::vector<double> deltas(resamples);
  int at_most_zero = 0, at_least_zero = 0;
  for (int r = 0; r < resamples; ++r) {
    double sb = 0, so = 0, sn = 0;
    for (size_t k = 0; k < pairs.size(); ++k) {
      const Pair& p = pairs[pick(rng)];
      sb += p.base_errors, so += p.other_errors, sn += p.words;
    }
    deltas[r] = delta(sb, so, sn);
    at_most_zero += deltas[r] <= 0;
    at_least_zero += deltas[r] >= 0;
  }
  std::sort(deltas.begin(), deltas.end());
  return {delta(eb, eo, n), Quantile(deltas, 0.025), Quantile(deltas, 0.975),
          std::min(1.0, 2.0 * std::min(at_most_zero, at_least_zero) / resamples)};
}

}  // namespace

std::optional<Significance> PairedBootstrap(const ModeEval& base, const ModeEval& other,
                                            int resamples, uint64_t seed) {
  auto pairs = Paired(base.utt_word_errors, other.utt_word_errors);
  if (!pairs || pairs->empty() || resamples < 1) return std::nullopt;
  const Change w = Bootstrap(*pairs, resamples, seed);
  Significance s;
  s.delta_wer = w.delta;
  s.ci_lo = w.lo;
  s.ci_hi = w.hi;
  s.p_value = w.p;
  s.resamples = resamples;
  s.utterances = static_cast<int64_t>(pairs->size());
  auto chars = Paired(base.utt_char_errors, other.utt_char_errors);
  if (chars && chars->size() == pairs->size()) {  // the same utterances: the same resamples
    const Change c = Bootstrap(*chars, resamples, seed);
    s.has_cer = true;
    s.delta_cer = c.delta;
    s.cer_ci_lo = c.lo;
    s.cer_ci_hi = c.hi;
    s.cer_p_value = c.p;
  }
  return s;
}

nlohmann::json SignificanceJson(const Significance& s) {
  nlohmann::json j = {{"delta_wer", s.delta_wer}, {"ci95", {s.ci_lo, s.ci_hi}}, {"p_value", s.p_value},
                      {"resamples", s.resamples}, {"utterances", s.utterances}};
  if (s.has_cer) j["cer"] = {{"delta_cer", s.delta_cer}, {"ci95", {s.cer_ci_lo, s.cer_ci_hi}}, {"p_value", s.cer_p_value}};
  return j;
}

Result<Significance> ParseSignificance(const nlohmann::json& j) {
  Significance s;
  try {
    s.delta_wer = j.at("delta_wer").get<double>();
    s.ci_lo = j.at("ci95").at(0).get<double>();
    s.ci_hi = j.at("ci95").at(1).get<double>();
    s.p_value = j.at("p_value").get<double>();
    s.resamples = j.at("resamples").get<int>();
    s.utterances = j.at("utterances").get<int64_t>();
    if (j.contains("cer")) {
      const nlohmann::json& c = j["cer"];
      s.has_cer = true;
      s.delta_cer = c.at("delta_cer").get<double>();
      s.cer_ci_lo = c.at("ci95").at(0).get<double>();
      s.cer_ci_hi = c.at("ci95").at(1).get<double>();
      s.cer_p_value = c.at("p_value").get<double>();
    }
  } catch (const std::exception& e) {
    return Error(std::string("significance: ") + e.what());
  }
  return s;
}

void AddSignificance(std::vector<PassRecord>& records, int resamples, uint64_t seed) {
  if (records.empty() || !records[0].eval) return;
  for (size_t i = 1; i < records.size(); ++i) {
    if (!records[i].eval) continue;
    for (const auto& [mode, base] : records[0].eval->modes) {
      const ModeEval* other = records[i].eval->mode(mode);
      if (!other) continue;
      if (auto s = PairedBootstrap(base, *other, resamples, seed)) records[i].significance[mode] = *s;
    }
  }
}

}  // namespace asrc::pass

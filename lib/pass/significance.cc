#include "pass/significance.h"

#include <algorithm>
#include <random>

namespace asrc::pass {

namespace {

struct Pair {
  double base_errors, other_errors, words;
};

// The utterances scored in both; nullopt when the two do not line up.
std::optional<std::vector<Pair>> Paired(const ModeEval& base, const ModeEval& other) {
  const auto& b = base.utt_word_errors;
  const auto& o = other.utt_word_errors;
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

}  // namespace

std::optional<Significance> PairedBootstrap(const ModeEval& base, const ModeEval& other,
                                            int resamples, uint64_t seed) {
  auto pairs = Paired(base, other);
  if (!pairs || pairs->empty() || resamples < 1) return std::nullopt;
  auto delta = [](double eb, double eo, double n) { return n > 0 ? 100.0 * (eo - eb) / n : 0.0; };
  double eb = 0, eo = 0, n = 0;
  for (const Pair& p : *pairs) eb += p.base_errors, eo += p.other_errors, n += p.words;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, pairs->size() - 1);
  std::vector<double> deltas(resamples);
  int at_most_zero = 0, at_least_zero = 0;
  for (int r = 0; r < resamples; ++r) {
    double sb = 0, so = 0, sn = 0;
    for (size_t k = 0; k < pairs->size(); ++k) {
      const Pair& p = (*pairs)[pick(rng)];
      sb += p.base_errors, so += p.other_errors, sn += p.words;
    }
    deltas[r] = delta(sb, so, sn);
    at_most_zero += deltas[r] <= 0;
    at_least_zero += deltas[r] >= 0;
  }
  std::sort(deltas.begin(), deltas.end());
  Significance s;
  s.delta_wer = delta(eb, eo, n);
  s.ci_lo = Quantile(deltas, 0.025);
  s.ci_hi = Quantile(deltas, 0.975);
  s.p_value = std::min(1.0, 2.0 * std::min(at_most_zero, at_least_zero) / resamples);
  s.resamples = resamples;
  s.utterances = static_cast<int64_t>(pairs->size());
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

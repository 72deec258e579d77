#include "pass/significance.h"

#include <algorithm>
#include <random>
#include <vector>

namespace asrc::pass {

namespace {

using json = nlohmann::json;

struct Pair {
  double base_errors, other_errors, words;
};

// The utterances scored in both rows; nullopt when the rows do not line up.
std::optional<std::vector<Pair>> Paired(const json& base, const json& other) {
  auto b = base.find("utt_word_errors");
  auto o = other.find("utt_word_errors");
  if (b == base.end() || o == other.end() || !b->is_array() || !o->is_array() || b->size() != o->size())
    return std::nullopt;
  std::vector<Pair> out;
  for (size_t i = 0; i < b->size(); ++i) {
    const json& x = (*b)[i];
    const json& y = (*o)[i];
    if (x.is_null() || y.is_null()) continue;  // failed audio: left out of both, as in the WER
    if (!x.is_array() || !y.is_array() || x.size() != 2 || y.size() != 2) return std::nullopt;
    if (x[1] != y[1]) return std::nullopt;  // a different reference: not the same utterance
    out.push_back({x[0].get<double>(), y[0].get<double>(), x[1].get<double>()});
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

std::optional<json> PairedBootstrap(const json& base, const json& other, int resamples, uint64_t seed) {
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
  double p = std::min(1.0, 2.0 * std::min(at_most_zero, at_least_zero) / resamples);
  return json{{"delta_wer", delta(eb, eo, n)},
              {"ci95", {Quantile(deltas, 0.025), Quantile(deltas, 0.975)}},
              {"p_value", p},
              {"resamples", resamples},
              {"utterances", pairs->size()}};
}

void AddSignificance(json& report, int resamples, uint64_t seed) {
  if (!report.contains("rows") || !report["rows"].is_array() || report["rows"].empty()) return;
  json& rows = report["rows"];
  for (size_t i = 1; i < rows.size(); ++i) {
    for (const char* mode : {"streaming", "lookahead"}) {
      if (!rows[0].contains(mode) || !rows[i].contains(mode)) continue;
      if (auto s = PairedBootstrap(rows[0][mode], rows[i][mode], resamples, seed))
        rows[i]["significance"][mode] = *s;
    }
  }
}

}  // namespace asrc::pass

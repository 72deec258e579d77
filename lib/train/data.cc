#include "train/data.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "asr/audio.h"
#include "asr/eval.h"
#include "asr/wer.h"

namespace asrc::train {

Result<std::vector<int32_t>> Tokenize(const std::string& text, const std::vector<std::string>& tokens) {
  std::map<std::string, int32_t> id;
  size_t longest = 0;
  for (size_t k = 1; k < tokens.size(); ++k) {  // id 0 is the blank
    id.emplace(tokens[k], static_cast<int32_t>(k));
    longest = std::max(longest, tokens[k].size());
  }
  auto unk = id.find("<unk>");
  std::vector<int32_t> out;
  for (const std::string& word : asr::SplitWords(asr::NormalizeText(text))) {
    const std::string w = "\xE2\x96\x81" + word;  // "▁"
    size_t pos = 0;
    while (pos < w.size()) {
      size_t len = std::min(longest, w.size() - pos);
      for (; len > 0; --len) {
        auto it = id.find(w.substr(pos, len));
        if (it != id.end()) {
          out.push_back(it->second);
          break;
        }
      }
      if (len > 0) {
        pos += len;
        continue;
      }
      // No token starts here: skip one UTF-8 code point as <unk>.
      size_t cp = 1;
      while (pos + cp < w.size() && (static_cast<unsigned char>(w[pos + cp]) & 0xC0) == 0x80) ++cp;
      if (unk == id.end())
        return Error("no token covers '" + w.substr(pos, cp) + "' in word '" + word + "' (and no <unk>)");
      out.push_back(unk->second);
      pos += cp;
    }
  }
  return out;
}

namespace {

// The "token_ids" field of the manifest's lines, by utterance id (id, else audio_filepath).
Result<std::map<std::string, std::vector<int32_t>>> ReadTokenIds(const std::string& manifest, size_t vocab) {
  std::map<std::string, std::vector<int32_t>> ids;
  std::ifstream in(manifest);
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find("\"token_ids\"") == std::string::npos) continue;
    const std::string where = manifest + ":" + std::to_string(n) + ": token_ids";
    try {
      nlohmann::json j = nlohmann::json::parse(line);
      std::vector<int32_t> t = j.at("token_ids").get<std::vector<int32_t>>();
      for (int32_t k : t)
        if (k <= 0 || static_cast<size_t>(k) >= vocab)
          return Error(where + ": id " + std::to_string(k) + " is not a token of the model (1.." + std::to_string(vocab - 1) + ")");
      std::string id = j.contains("id") ? j["id"].get<std::string>() : j.at("audio_filepath").get<std::string>();
      ids[id] = std::move(t);
    } catch (const std::exception& e) {
      return Error(where + ": " + e.what());
    }
  }
  return ids;
}

}  // namespace

Result<std::vector<Utterance>> LoadUtterances(const std::string& manifest, const std::string& split,
                                              const asr::FbankOptions& fbank,
                                              const std::vector<std::string>& tokens, int64_t limit) {
  ASRC_ASSIGN_OR_RETURN(auto entries, asr::ReadManifest(manifest, split));
  if (limit > 0 && static_cast<int64_t>(entries.size()) > limit) entries.resize(static_cast<size_t>(limit));
  if (entries.empty()) return Error(manifest + ": no utterances" + (split.empty() ? "" : " in split '" + split + "'"));
  ASRC_ASSIGN_OR_RETURN(auto fb, asr::Fbank::Create(fbank));
  ASRC_ASSIGN_OR_RETURN(auto given, ReadTokenIds(manifest, tokens.size()));
  std::vector<Utterance> utts;
  for (const auto& e : entries) {
    const std::string where = manifest + ": line for '" + e.id + "'";
    auto audio = asr::LoadAudio(e.audio_path, fbank.sample_rate);
    if (!audio.ok()) return Error(where + ": " + audio.status().message());
    auto it = given.find(e.id);
    auto labels = it != given.end() ? Result<std::vector<int32_t>>(it->second) : Tokenize(e.text, tokens);
    if (!labels.ok()) return Error(where + ": " + labels.status().message());
    Utterance u;
    u.id = e.id;
    u.features = fb->Compute(audio->samples.data(), static_cast<int64_t>(audio->samples.size()));
    u.frames = fb->NumFrames(static_cast<int64_t>(audio->samples.size()));
    u.labels = std::move(*labels);
    if (u.frames == 0) return Error(where + ": '" + e.audio_path + "' is too short for one frame");
    utts.push_back(std::move(u));
  }
  return utts;
}

std::vector<std::vector<size_t>> MakeBuckets(const std::vector<Utterance>& utts, int64_t max_frames,
                                             std::mt19937_64& rng) {
  std::vector<size_t> order(utts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return utts[a].frames < utts[b].frames; });
  std::vector<std::vector<size_t>> buckets;
  std::vector<size_t> cur;
  for (size_t i : order) {
    // Sorted ascending, so utterance i is the longest of the bucket if it joins.
    if (!cur.empty() && static_cast<int64_t>(cur.size() + 1) * utts[i].frames > max_frames) {
      buckets.push_back(std::move(cur));
      cur.clear();
    }
    cur.push_back(i);
  }
  if (!cur.empty()) buckets.push_back(std::move(cur));
  std::shuffle(buckets.begin(), buckets.end(), rng);
  return buckets;
}

namespace {

// Uniform integer in [0, n] from the raw engine (the same on every standard library, unlike
// std::uniform_int_distribution).
int64_t Draw(std::mt19937_64& rng, int64_t n) { return n <= 0 ? 0 : static_cast<int64_t>(rng() % (n + 1)); }

}  // namespace

SpecAugmentMasks DrawSpecAugment(int64_t frames, int64_t dim, const SpecAugmentOptions& a, std::mt19937_64& rng) {
  SpecAugmentMasks m;
  for (int k = 0; k < a.freq_masks; ++k) {
    const int64_t w = std::min<int64_t>(Draw(rng, a.freq_width), dim);
    m.freq.emplace_back(Draw(rng, dim - w), w);
  }
  const int64_t max_w = static_cast<int64_t>(a.time_width * static_cast<double>(frames));
  for (int k = 0; k < a.time_masks; ++k) {
    const int64_t w = Draw(rng, max_w);
    m.time.emplace_back(Draw(rng, frames - w), w);
  }
  return m;
}

void ApplySpecAugment(float* f, int64_t frames, int64_t dim, const SpecAugmentMasks& m) {
  for (const auto& [f0, w] : m.freq)
    for (int64_t t = 0; t < frames; ++t) std::fill(f + t * dim + f0, f + t * dim + f0 + w, 0.f);
  for (const auto& [t0, w] : m.time) std::fill(f + t0 * dim, f + (t0 + w) * dim, 0.f);
}

void SpecAugment(float* f, int64_t frames, int64_t dim, const SpecAugmentOptions& a, std::mt19937_64& rng) {
  ApplySpecAugment(f, frames, dim, DrawSpecAugment(frames, dim, a, rng));
}

Batch Collate(const std::vector<Utterance>& utts, const std::vector<size_t>& which, int64_t feature_dim,
              const SpecAugmentOptions& augment, std::mt19937_64& rng) {
  const int64_t B = static_cast<int64_t>(which.size());
  int64_t T = 1, U = 0;
  for (size_t i : which) {
    T = std::max(T, utts[i].frames);
    U = std::max<int64_t>(U, static_cast<int64_t>(utts[i].labels.size()));
  }
  ir::Tensor feats(ir::DType::Float32, {B, T, feature_dim}), flen(ir::DType::Int32, {B});
  ir::Tensor targets(ir::DType::Int32, {B, U}), tlen(ir::DType::Int32, {B});
  ir::Tensor dec_in(ir::DType::Int64, {B, U + 1});
  Batch batch;
  for (int64_t b = 0; b < B; ++b) {
    const Utterance& u = utts[which[b]];
    float* f = feats.data<float>() + b * T * feature_dim;
    std::copy(u.features.begin(), u.features.begin() + u.frames * feature_dim, f);
    SpecAugment(f, u.frames, feature_dim, augment, rng);
    flen.data<int32_t>()[b] = static_cast<int32_t>(u.frames);
    tlen.data<int32_t>()[b] = static_cast<int32_t>(u.labels.size());
    for (size_t k = 0; k < u.labels.size(); ++k) {
      targets.data<int32_t>()[b * U + k] = u.labels[k];
      dec_in.data<int64_t>()[b * (U + 1) + 1 + k] = u.labels[k];
    }
    batch.id += (b ? "," : "") + u.id;
  }
  batch.feeds = {{"features", feats},
                 {"feature_lengths", flen},
                 {"targets", targets},
                 {"target_lengths", tlen},
                 {"decoder_input", dec_in}};
  return batch;
}

BatchFn EpochBatches(const std::vector<Utterance>& utts, int64_t max_frames, int64_t feature_dim,
                     const SpecAugmentOptions& augment, uint64_t shuffle_seed) {
  struct State {
    int64_t epoch = -1;
    std::vector<std::vector<size_t>> buckets;
  };
  auto state = std::make_shared<State>();
  return [&utts, max_frames, feature_dim, augment, shuffle_seed, state](int64_t step,
                                                                        std::mt19937_64& rng) -> Result<Batch> {
    if (utts.empty()) return Error("no training utterances");
    if (state->buckets.empty()) {
      std::mt19937_64 r(shuffle_seed);
      state->buckets = MakeBuckets(utts, max_frames, r);
    }
    const int64_t n = static_cast<int64_t>(state->buckets.size());
    const int64_t epoch = (step - 1) / n;
    if (epoch != state->epoch) {
      std::mt19937_64 r(shuffle_seed + static_cast<uint64_t>(epoch));
      state->buckets = MakeBuckets(utts, max_frames, r);
      state->epoch = epoch;
    }
    return Collate(utts, state->buckets[(step - 1) % n], feature_dim, augment, rng);
  };
}

}  // namespace asrc::train

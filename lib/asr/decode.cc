#include "asr/decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace asrc::asr {

Result<std::shared_ptr<const DecoderOut>> CachingScorer::Decode(const std::vector<int>& ys,
                                                                const DecoderOut* parent) {
  std::vector<int> key;
  const int ctx = context_size();
  if (stateless_ && static_cast<int>(ys.size()) > ctx)
    key.assign(ys.end() - ctx, ys.end());
  else
    key = ys;
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    ++hits_;
    return it->second;
  }
  std::shared_ptr<const DecoderOut> out;
  if (auto o = old_.find(key); o != old_.end()) {
    ++hits_;
    out = o->second;  // kept in the newer generation below
  } else {
    ++misses_;
    ASRC_ASSIGN_OR_RETURN(out, inner_->Decode(ys, parent));
  }
  int64_t bytes = static_cast<int64_t>(key.size() * sizeof(int) + out->out.size() * sizeof(float));
  for (const ir::Tensor& t : out->state) bytes += t.nbytes();
  if (cache_bytes_ + bytes > kMaxBytes / 2) {
    old_ = std::move(cache_);
    cache_.clear();
    cache_bytes_ = 0;
    ++turnovers_;
  }
  cache_bytes_ += bytes;
  cache_.emplace(std::move(key), out);
  return out;
}

namespace {

void LogSoftmax(float* x, int n) {
  float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i] - mx));
  float lse = mx + static_cast<float>(std::log(sum));
  for (int i = 0; i < n; ++i) x[i] -= lse;
}

class GreedySearch : public Search {
 public:
  GreedySearch(TransducerScorer* s, int max_sym) : s_(s), max_sym_(std::max(1, max_sym)) {}

  Status Reset() override {
    s_->ResetCache();
    ys_.assign(s_->context_size(), s_->blank_id());
    ASRC_ASSIGN_OR_RETURN(dec_, s_->Decode(ys_, nullptr));
    return Status::Ok();
  }

  Status Accept(const float* enc, int64_t frames, int64_t dim) override {
    const int blank = s_->blank_id();
    for (int64_t t = 0; t < frames; ++t) {
      for (int k = 0; k < max_sym_; ++k) {
        ASRC_RETURN_IF_ERROR(s_->Join(enc + t * dim, dim, {dec_.get()}, &logits_));
        // First maximum wins ties, as torch.argmax.
        int best = static_cast<int>(std::max_element(logits_.begin(), logits_.end()) - logits_.begin());
        if (best == blank) break;
        ys_.push_back(best);
        ASRC_ASSIGN_OR_RETURN(auto next, s_->Decode(ys_, dec_.get()));
        dec_ = std::move(next);
      }
    }
    return Status::Ok();
  }

  std::vector<int> Best() const override {
    return std::vector<int>(ys_.begin() + std::min<size_t>(ys_.size(), s_->context_size()), ys_.end());
  }

 private:
  TransducerScorer* s_;
  int max_sym_;
  std::vector<int> ys_;
  std::shared_ptr<const DecoderOut> dec_;
  std::vector<float> logits_;
};

class ModifiedBeamSearch : public Search {
 public:
  ModifiedBeamSearch(TransducerScorer* s, int beam) : s_(s), beam_(beam) {}

  Status Reset() override {
    s_->ResetCache();
    hyps_.clear();
    Hyp h;
    h.ys.assign(s_->context_size(), s_->blank_id());
    ASRC_ASSIGN_OR_RETURN(h.dec, s_->Decode(h.ys, nullptr));
    hyps_.push_back(std::move(h));
    return Status::Ok();
  }

  Status Accept(const float* enc, int64_t frames, int64_t dim) override {
    const int blank = s_->blank_id();
    const int V = s_->vocab_size();
    for (int64_t t = 0; t < frames; ++t) {
      std::vector<const DecoderOut*> decs;
      for (auto& h : hyps_) decs.push_back(h.dec.get());
      ASRC_RETURN_IF_ERROR(s_->Join(enc + t * dim, dim, decs, &logits_));
      if (logits_.size() != decs.size() * static_cast<size_t>(V))
        return Error("joiner: expected " + std::to_string(V) + " logits per hypothesis");
      // Scores of every (hypothesis, label) extension; keep the beam best.
      const int n = static_cast<int>(hyps_.size());
      for (int i = 0; i < n; ++i) {
        float* row = logits_.data() + static_cast<size_t>(i) * V;
        LogSoftmax(row, V);
        for (int v = 0; v < V; ++v) row[v] += static_cast<float>(hyps_[i].log_prob);
      }
      const int total = n * V;
      const int k = std::min(beam_, total);
      idx_.resize(total);
      std::iota(idx_.begin(), idx_.end(), 0);
      std::partial_sort(idx_.begin(), idx_.begin() + k, idx_.end(), [&](int a, int b) {
        return logits_[a] > logits_[b] || (logits_[a] == logits_[b] && a < b);
      });
      std::vector<Hyp> next;
      for (int r = 0; r < k; ++r) {
        int i = idx_[r] / V, v = idx_[r] % V;
        double lp = logits_[idx_[r]];
        const Hyp& h = hyps_[i];
        std::vector<int> ys = h.ys;
        if (v != blank) ys.push_back(v);
        auto same = std::find_if(next.begin(), next.end(), [&](const Hyp& o) { return o.ys == ys; });
        if (same != next.end()) {
          double a = same->log_prob, b = lp;
          double m = std::max(a, b);
          same->log_prob = m + std::log(std::exp(a - m) + std::exp(b - m));
          continue;
        }
        Hyp nh;
        nh.ys = std::move(ys);
        nh.log_prob = lp;
        if (v == blank) {
          nh.dec = h.dec;
        } else {
          ASRC_ASSIGN_OR_RETURN(nh.dec, s_->Decode(nh.ys, h.dec.get()));
        }
        next.push_back(std::move(nh));
      }
      hyps_ = std::move(next);
    }
    return Status::Ok();
  }

  std::vector<int> Best() const override {
    const Hyp* best = nullptr;
    double best_score = -std::numeric_limits<double>::infinity();
    for (const auto& h : hyps_) {
      double score = h.log_prob / static_cast<double>(std::max<size_t>(1, h.ys.size()));
      if (!best || score > best_score) best = &h, best_score = score;
    }
    if (!best) return {};
    return std::vector<int>(best->ys.begin() + std::min<size_t>(best->ys.size(), s_->context_size()),
                            best->ys.end());
  }

 private:
  struct Hyp {
    std::vector<int> ys;
    double log_prob = 0;
    std::shared_ptr<const DecoderOut> dec;
  };
  TransducerScorer* s_;
  int beam_;
  std::vector<Hyp> hyps_;
  std::vector<float> logits_;
  std::vector<int> idx_;
};

}  // namespace

std::unique_ptr<Search> CreateSearch(TransducerScorer* scorer, const SearchOptions& options) {
  if (options.beam > 1) return std::make_unique<ModifiedBeamSearch>(scorer, options.beam);
  return std::make_unique<GreedySearch>(scorer, options.max_symbols_per_frame);
}

std::string TokensToText(const std::vector<int>& ids, const std::vector<std::string>& tokens) {
  static const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's word start
  std::string text;
  for (int id : ids) {
    if (id < 0 || id >= static_cast<int>(tokens.size())) continue;
    const std::string& sym = tokens[id];
    if (sym.size() >= 2 && sym.front() == '<' && sym.back() == '>') continue;
    size_t pos = 0;
    while (pos < sym.size()) {
      if (sym.compare(pos, kSpace.size(), kSpace) == 0) {
        if (!text.empty() && text.back() != ' ') text.push_back(' ');
        pos += kSpace.size();
      } else {
        text.push_back(sym[pos++]);
      }
    }
  }
  size_t b = text.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  size_t e = text.find_last_not_of(' ');
  return text.substr(b, e - b + 1);
}

}  // namespace asrc::asr

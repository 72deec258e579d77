// Transducer search on models written in C++ (a fake scorer): greedy known answers, max symbols
// per frame, modified beam search against an exhaustive search, decoder-output caching.
#include <cmath>
#include <functional>
#include <map>
#include <random>

#include <doctest/doctest.h>

#include "asr/decode.h"

using namespace asrc;
using namespace asrc::asr;

namespace {

// A scorer whose logits are a function f(frame, label history). Encoder frames are one float: the
// frame index. `stateful` mimics an LSTM (the whole history matters; DecoderOut carries it),
// otherwise only the last `ctx` labels are seen.
class FakeScorer : public TransducerScorer {
 public:
  using LogitFn = std::function<std::vector<float>(int frame, const std::vector<int>& context)>;
  FakeScorer(int vocab, int ctx, bool stateful, LogitFn fn)
      : vocab_(vocab), ctx_(ctx), stateful_(stateful), fn_(std::move(fn)) {}
  int blank_id() const override { return 0; }
  int vocab_size() const override { return vocab_; }
  int context_size() const override { return stateful_ ? 1 : ctx_; }
  Result<std::shared_ptr<const DecoderOut>> Decode(const std::vector<int>& ys,
                                                   const DecoderOut* parent) override {
    ++decode_calls;
    auto d = std::make_shared<DecoderOut>();
    std::vector<int> ctx;
    if (stateful_) {
      // Continue the parent's history: the state must have been threaded correctly.
      if (parent) {
        for (float v : parent->out) ctx.push_back(static_cast<int>(v));
        REQUIRE(ctx.size() + 1 == ys.size());
        for (size_t i = 0; i < ctx.size(); ++i) REQUIRE(ctx[i] == ys[i]);
      } else {
        REQUIRE(ys.size() == 1);
      }
      ctx.push_back(ys.back());
    } else {
      ctx.assign(ys.end() - ctx_, ys.end());
    }
    for (int v : ctx) d->out.push_back(static_cast<float>(v));
    return std::shared_ptr<const DecoderOut>(std::move(d));
  }
  Status Join(const float* enc, int64_t dim, const std::vector<const DecoderOut*>& dec,
              std::vector<float>* logits) override {
    REQUIRE(dim == 1);
    logits->clear();
    for (const DecoderOut* d : dec) {
      std::vector<int> ctx;
      for (float v : d->out) ctx.push_back(static_cast<int>(v));
      auto l = fn_(static_cast<int>(enc[0]), ctx);
      logits->insert(logits->end(), l.begin(), l.end());
    }
    return Status::Ok();
  }
  int decode_calls = 0;

 private:
  int vocab_, ctx_;
  bool stateful_;
  LogitFn fn_;
};

std::vector<float> Frames(int n) {
  std::vector<float> f(n);
  for (int i = 0; i < n; ++i) f[i] = static_cast<float>(i);
  return f;
}

// A fresh search over `scorer` fed frames 0..n-1 in one call: its best labels.
std::vector<int> SearchBest(TransducerScorer* scorer, const SearchOptions& o, int n) {
  auto search = CreateSearch(scorer, o);
  REQUIRE(search->Reset().ok());
  auto f = Frames(n);
  REQUIRE(search->Accept(f.data(), n, 1).ok());
  return search->Best();
}

// Deterministic pseudo-random logits of (frame, context).
std::vector<float> HashLogits(int frame, const std::vector<int>& ctx, int vocab, uint32_t seed) {
  uint32_t h = seed * 2654435761u + frame * 40503u;
  for (int c : ctx) h = (h ^ static_cast<uint32_t>(c + 17)) * 16777619u;
  std::mt19937 rng(h);
  std::normal_distribution<float> nd(0.f, 2.f);
  std::vector<float> l(vocab);
  for (auto& v : l) v = nd(rng);
  l[0] += 1.0f;  // blank a bit more likely, as in trained models
  return l;
}

double LogSumExp(double a, double b) {
  if (a == -INFINITY) return b;
  double m = std::max(a, b);
  return m + std::log(std::exp(a - m) + std::exp(b - m));
}

}  // namespace

TEST_CASE("greedy emits the joiner's preferred sequence, up to max symbols per frame") {
  // The joiner prefers label last+1 until 3 is reached, then blank: one frame can emit 1 2 3.
  auto fn = [](int frame, const std::vector<int>& ctx) {
    std::vector<float> l(5, 0.f);
    int last = ctx.back();
    l[last < 3 ? last + 1 : 0] = 5.f;
    return l;
  };
  for (bool stateful : {false, true}) {
    CAPTURE(stateful);
    FakeScorer s(5, 2, stateful, fn);
    CachingScorer cache(&s, !stateful);
    SearchOptions o;
    o.max_symbols_per_frame = 5;
    CHECK(SearchBest(&cache, o, 3) == std::vector<int>{1, 2, 3});

    o.max_symbols_per_frame = 2;  // two labels in frame 0, the third in frame 1
    auto f = Frames(3);
    auto search = CreateSearch(&cache, o);
    REQUIRE(search->Reset().ok());
    REQUIRE(search->Accept(f.data(), 1, 1).ok());
    CHECK(search->Best() == std::vector<int>{1, 2});
    REQUIRE(search->Accept(f.data() + 1, 2, 1).ok());
    CHECK(search->Best() == std::vector<int>{1, 2, 3});
  }
}

TEST_CASE("greedy fed frame by frame equals greedy fed all at once") {
  for (bool stateful : {false, true}) {
    auto fn = [](int frame, const std::vector<int>& ctx) { return HashLogits(frame, ctx, 7, 3); };
    FakeScorer s(7, 2, stateful, fn);
    CachingScorer cache(&s, !stateful);
    auto a = CreateSearch(&cache, {});
    auto f = Frames(40);
    REQUIRE(a->Reset().ok());
    REQUIRE(a->Accept(f.data(), 40, 1).ok());
    auto whole = a->Best();
    REQUIRE(a->Reset().ok());
    for (int i = 0; i < 40; i += 3) REQUIRE(a->Accept(f.data() + i, std::min(3, 40 - i), 1).ok());
    CHECK(a->Best() == whole);
    CHECK(!whole.empty());
  }
}

TEST_CASE("modified beam search with a wide beam finds the exhaustive best sequence") {
  // Every alignment with at most one label per frame, summed per label sequence; the best by
  // log-probability / (labels + context), as the search ranks its final hypotheses.
  const int V = 3, T = 5, ctx = 2;
  for (bool stateful : {false, true}) {
    for (uint32_t seed = 1; seed <= 5; ++seed) {
      CAPTURE(stateful);
      CAPTURE(seed);
      auto fn = [&](int frame, const std::vector<int>& c) { return HashLogits(frame, c, V, seed); };
      const int start = stateful ? 1 : ctx;
      std::map<std::vector<int>, double> total;
      std::function<void(int, std::vector<int>, double)> walk = [&](int t, std::vector<int> ys, double lp) {
        if (t == T) {
          auto& v = total.emplace(ys, -INFINITY).first->second;
          v = LogSumExp(v, lp);
          return;
        }
        std::vector<int> c = stateful ? ys : std::vector<int>(ys.end() - ctx, ys.end());
        auto l = fn(t, c);
        double mx = *std::max_element(l.begin(), l.end()), sum = 0;
        for (float x : l) sum += std::exp(x - mx);
        for (int v = 0; v < V; ++v) {
          double lpv = lp + l[v] - mx - std::log(sum);
          std::vector<int> next = ys;
          if (v != 0) next.push_back(v);
          walk(t + 1, next, lpv);
        }
      };
      walk(0, std::vector<int>(start, 0), 0.0);
      std::vector<int> best;
      double best_score = -INFINITY;
      for (auto& [ys, lp] : total) {
        double score = lp / ys.size();
        if (score > best_score) best_score = score, best = std::vector<int>(ys.begin() + start, ys.end());
      }
      FakeScorer s(V, ctx, stateful, fn);
      CachingScorer cache(&s, !stateful);
      SearchOptions o;
      o.beam = 1000;  // wider than the number of distinct sequences: no pruning
      CHECK(SearchBest(&cache, o, T) == best);
    }
  }
}

TEST_CASE("beam search recovers what greedy misses") {
  // Frame 0: label 1 is the single best choice (0.4) but leads to a dead end; blank (0.35) then
  // label 2 (0.9) is the better path. Greedy takes 1; beam 4 keeps the blank path and outputs 2.
  auto fn = [](int frame, const std::vector<int>& ctx) {
    std::vector<float> p = {0.98f, 0.01f, 0.01f};
    if (frame == 0 && ctx.back() == 0) p = {0.35f, 0.4f, 0.25f};
    if (frame == 1 && ctx.back() == 1) p = {0.34f, 0.33f, 0.33f};
    if (frame == 1 && ctx.back() == 0) p = {0.05f, 0.05f, 0.9f};
    for (auto& v : p) v = std::log(v);
    return p;
  };
  FakeScorer s(3, 1, false, fn);
  CachingScorer cache(&s, true);
  CHECK(SearchBest(&cache, {}, 2) == std::vector<int>{1});
  SearchOptions o;
  o.beam = 4;
  CHECK(SearchBest(&cache, o, 2) == std::vector<int>{2});
}

TEST_CASE("decoder outputs are cached per label context") {
  auto fn = [](int frame, const std::vector<int>& ctx) { return HashLogits(frame, ctx, 6, 9); };
  FakeScorer s(6, 2, false, fn);
  CachingScorer cache(&s, true);
  SearchOptions o;
  o.beam = 4;
  SearchBest(&cache, o, 30);
  // A stateless decoder with context 2 over 6 labels has at most 36 contexts.
  CHECK(s.decode_calls <= 36);
  CHECK(cache.hits() > 0);
  CHECK(cache.misses() == s.decode_calls);
}

TEST_CASE("a recurrent decoder's cache over a long history: bounded generations, same results") {
  // Blank only rarely: the label history grows with the frames, and so does every key (the
  // whole history), past CachingScorer::kMaxBytes; the searches must not notice.
  auto fn = [](int frame, const std::vector<int>& ctx) {
    std::vector<float> p = HashLogits(frame, ctx, 5, 11);
    p[0] -= 3;
    return p;
  };
  for (int beam : {1, 4}) {
    CAPTURE(beam);
    FakeScorer raw(5, 1, true, fn), inner(5, 1, true, fn);
    CachingScorer cache(&inner, false);
    SearchOptions o;
    o.beam = beam;
    o.max_symbols_per_frame = 1;
    const int n = 2400;
    const std::vector<int> want = SearchBest(&raw, o, n);
    CHECK(static_cast<int>(want.size()) > n / 2);
    CHECK(SearchBest(&cache, o, n) == want);
    // The best path's prefixes alone (key and output: 8 bytes per label each) take ~4 L^2 bytes:
    // more than the budget, so generations were dropped on the way.
    CHECK(int64_t{4} * static_cast<int64_t>(want.size()) * static_cast<int64_t>(want.size()) >
          CachingScorer::kMaxBytes);
    CHECK(cache.turnovers() >= 2);
    if (beam > 1) CHECK(cache.hits() > 0);
    CHECK(cache.misses() == inner.decode_calls);
  }
}

TEST_CASE("tokens to text: SentencePiece word starts, special symbols dropped") {
  std::vector<std::string> tok = {"<blk>", "<unk>", "\xE2\x96\x81" "the", "\xE2\x96\x81" "ca", "t", "'s", "\xE2\x96\x81"};
  CHECK(TokensToText({2, 3, 4, 5}, tok) == "the cat's");
  CHECK(TokensToText({0, 6, 2, 1, 3, 4}, tok) == "the cat");
  CHECK(TokensToText({}, tok).empty());
}

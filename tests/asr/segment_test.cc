// Segmented look-ahead over long audio for single-encoder (`transducer`) bundles:
//  - PlanFeatureSegments' arithmetic: for the output-length laws of real subsamplers (the merged
//    cascade's ceil(T/4), icefall's Conv2dSubsampling (T-3)//4, zipformer's ((T-7)//2+1)//2, ...),
//    the kept frames tile the whole input's output once, each window returns every frame it keeps;
//  - Recognizer::EncodeOffline on a fixture encoder that subsamples by 4 with strided pooling
//    (Conv2dSubsampling's length law): a local encoder's segmented output equals its whole output
//    bit for bit (the frame mapping is right, not just the counts); with a full-context term each
//    kept piece equals its window run alone and the frame count equals the whole run's; audio of
//    one segment is unchanged; an encoder that does not subsample as model.json says is refused
//    with a message naming --lookahead-segment 0.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "asr/segment.h"
#include "asr/stream.h"
#include "tiny_bundle.h"

using namespace asrc;
using namespace asrc::asr;

namespace {

struct Law {
  const char* name;
  int64_t factor;
  std::function<int64_t(int64_t)> out;
};

const std::vector<Law>& Laws() {
  static const std::vector<Law> laws = {
      {"ceil(T/4) (merged cascade)", 4, [](int64_t t) { return (t + 3) / 4; }},
      {"(T-3)//4 (two stride-2 kernel-3 convolutions)", 4, [](int64_t t) { return (t - 3) / 4; }},
      {"((T-7)//2+1)//2 (zipformer)", 4, [](int64_t t) { return ((t - 7) / 2 + 1) / 2; }},
      {"T//4", 4, [](int64_t t) { return t / 4; }},
      {"(T+5)//4 (padded: more frames than blocks)", 4, [](int64_t t) { return (t + 5) / 4; }},
      {"(T-1)//2", 2, [](int64_t t) { return (t - 1) / 2; }},
      {"(T-4)//6", 6, [](int64_t t) { return (t - 4) / 6; }},
      {"T (no subsampling)", 1, [](int64_t t) { return t; }},
  };
  return laws;
}

}  // namespace

TEST_CASE("PlanFeatureSegments: kept frames tile the whole output, each window returns what it keeps") {
  for (const Law& law : Laws()) {
    // What Recognizer probes: the frames an encoder drops at the edges of a whole number of blocks.
    const int64_t lag = 8 - law.out(8 * law.factor);
    for (int64_t frames : {203, 1000, 4001, 12345}) {
      for (int64_t segment : {5, 10, 37, 100000}) {
        for (int64_t context : {0, 1, 3, 12}) {
          CAPTURE(law.name);
          CAPTURE(frames);
          CAPTURE(segment);
          CAPTURE(context);
          const int64_t total = law.out(frames);
          auto plan = PlanFeatureSegments(frames, total, law.factor, segment, context, lag);
          REQUIRE(!plan.empty());
          if (total <= segment) {
            REQUIRE(plan.size() == 1);
            CHECK((plan[0].window_begin == 0 && plan[0].window_end == frames && plan[0].keep_begin == 0 &&
                   plan[0].keep_end == total && plan[0].first_output == 0));
            continue;
          }
          REQUIRE(static_cast<int64_t>(plan.size()) == (total + segment - 1) / segment);
          int64_t next = 0;
          for (const FeatureSegment& s : plan) {
            CHECK(s.keep_begin == next);  // no gap, no frame twice
            CHECK(s.keep_end > s.keep_begin);
            CHECK(s.keep_end - s.keep_begin <= segment);
            next = s.keep_end;
            CHECK(s.window_begin % law.factor == 0);
            CHECK(s.first_output * law.factor == s.window_begin);
            CHECK((s.window_begin >= 0 && s.window_begin < s.window_end && s.window_end <= frames));
            // The window's own output (its frame j is the whole input's first_output + j) holds
            // the kept frames, with at least the requested left context where the audio has it.
            const int64_t got = law.out(s.window_end - s.window_begin);
            CHECK(s.keep_begin >= s.first_output);
            CHECK(s.keep_end <= s.first_output + got);
            CHECK(s.keep_begin - s.first_output >= std::min(context, s.keep_begin));  // the last: more
            // Bounded: never much more than segment + 2 context + lag blocks of features.
            CHECK(s.window_end - s.window_begin <= (segment + 2 * context + lag + 2) * law.factor);
          }
          CHECK(next == total);
          CHECK(plan.back().window_end == frames);  // the end of the audio reaches the last frames
        }
      }
    }
  }
  CHECK(PlanFeatureSegments(1000, 250, 4, 0, 10, 0).size() == 1);  // segment 0: never
}

namespace {

// The tiny bundle with a subsampling encoder: x [1, T, 80] -> time-axis AveragePool(3, stride 2)
// twice ((T-3)//4 frames, like icefall's Conv2dSubsampling), plus `global` x the mean of x over
// the whole input (a full-context term, as attention has). model.json says subsampling_factor
// `declared`; `pooled` false keeps the identity encoder (no subsampling at all).
ir::Model PoolingBundle(float global, int declared = 4, bool pooled = true) {
  ir::Model m = testing::TinyBundle();
  m.config["decoding"]["subsampling_factor"] = declared;
  if (!pooled) return m;
  for (auto& gf : m.graphs) {
    if (gf.role != "encoder") continue;
    gf = testing::MakeGraph("encoder");
    ir::Graph& g = *gf.graph;
    ir::Value* x = testing::Input(g, "x", ir::DType::Float32);
    testing::Input(g, "x_lens", ir::DType::Int64);
    ir::Node* t = g.AddNode("Transpose", {x}, {"x_ft"});
    t->set_attr_ints("perm", {0, 2, 1});
    ir::Value* v = t->outputs[0];
    for (const char* name : {"pool1", "pool2"}) {
      ir::Node* p = g.AddNode("AveragePool", {v}, {name});
      p->set_attr_ints("kernel_shape", {3});
      p->set_attr_ints("strides", {2});
      v = p->outputs[0];
    }
    ir::Node* back = g.AddNode("Transpose", {v}, {"pooled"});
    back->set_attr_ints("perm", {0, 2, 1});
    ir::Node* mean = g.AddNode("ReduceMean", {x}, {"mean"});
    mean->set_attr_ints("axes", {1});
    mean->set_attr_int("keepdims", 1);
    ir::Value* w = g.AddInitializer("global", ir::Tensor::Scalar(global));
    ir::Value* scaled = g.AddNode("Mul", {mean->outputs[0], w}, {"mean_scaled"})->outputs[0];
    g.outputs.push_back(g.AddNode("Add", {back->outputs[0], scaled}, {"encoder_out"})->outputs[0]);
    REQUIRE(g.Verify().ok());
  }
  return m;
}

std::unique_ptr<Recognizer> Make(const ir::Model& m, double segment_s, double context_s) {
  RecognizerOptions ro;
  ro.lookahead_segment_s = segment_s;
  ro.lookahead_context_s = context_s;
  auto r = Recognizer::Create(m, ro);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return std::move(r).value();
}

// Encoder output of `r` over `feats`, the kept pieces concatenated; `pieces` gets their lengths.
std::vector<float> Encode(Recognizer& r, const std::vector<float>& feats, int64_t frames,
                          std::vector<int64_t>* pieces = nullptr, int64_t* runs = nullptr) {
  std::vector<float> all;
  auto keep = [&](const float* e, int64_t n, int64_t d) {
    all.insert(all.end(), e, e + n * d);
    if (pieces) pieces->push_back(n);
    return Status::Ok();
  };
  Status s = r.EncodeOffline(feats, frames, keep, runs);
  REQUIRE_MESSAGE(s.ok(), s.message());
  return all;
}

// Features whose row i says where it came from: exact through average pooling.
std::vector<float> Ramp(int64_t frames) {
  std::vector<float> f(frames * testing::kFeat);
  for (int64_t i = 0; i < frames; ++i)
    for (int k = 0; k < testing::kFeat; ++k) f[i * testing::kFeat + k] = static_cast<float>(i + k % 5);
  return f;
}

}  // namespace

TEST_CASE("EncodeOffline: segments of a subsampling encoder map to the whole run's frames") {
  const int64_t kD = testing::kFeat;
  // 0.4 s segments, 0.2 s context: 10 and 5 encoder frames (10 ms shift x 4).
  for (int64_t frames : {160, 1001, 1234, 2003}) {
    CAPTURE(frames);
    auto feats = Ramp(frames);
    SUBCASE("a local encoder: segmented output is the whole output, bit for bit") {
      ir::Model m = PoolingBundle(0);
      auto whole = Make(m, 0, 0);
      auto seg = Make(m, 0.4, 0.2);
      int64_t runs = 0;
      std::vector<int64_t> pieces;
      auto w = Encode(*whole, feats, frames);
      auto s = Encode(*seg, feats, frames, &pieces, &runs);
      CHECK(static_cast<int64_t>(w.size()) == (frames - 3) / 4 * kD);
      CHECK(runs > 2);
      CHECK(runs == static_cast<int64_t>(pieces.size()));
      CHECK(s == w);
    }
    SUBCASE("a full-context encoder: each piece is its window's run, as many frames as the whole run") {
      ir::Model m = PoolingBundle(0.5f);
      auto whole = Make(m, 0, 0);
      auto seg = Make(m, 0.4, 0.2);
      std::vector<int64_t> pieces;
      auto w = Encode(*whole, feats, frames);
      auto s = Encode(*seg, feats, frames, &pieces);
      CHECK(s.size() == w.size());
      CHECK(s != w);  // the context is bounded: the global term differs
      const int64_t total = static_cast<int64_t>(w.size()) / kD;
      auto plan = PlanFeatureSegments(frames, total, 4, 10, 5, 8 - (32 - 3) / 4);
      REQUIRE(plan.size() == pieces.size());
      int64_t at = 0;
      for (size_t i = 0; i < plan.size(); ++i) {
        CAPTURE(i);
        const FeatureSegment& p = plan[i];
        std::vector<float> window(feats.begin() + p.window_begin * kD, feats.begin() + p.window_end * kD);
        auto ref = Encode(*whole, window, p.window_end - p.window_begin);
        const int64_t n = p.keep_end - p.keep_begin;
        REQUIRE(pieces[i] == n);
        REQUIRE(static_cast<int64_t>(ref.size()) >= (p.keep_end - p.first_output) * kD);
        std::vector<float> kept(ref.begin() + (p.keep_begin - p.first_output) * kD,
                                ref.begin() + (p.keep_end - p.first_output) * kD);
        CHECK(std::equal(kept.begin(), kept.end(), s.begin() + at * kD));
        at += n;
      }
      CHECK(at == total);
    }
  }
}

TEST_CASE("Recognize on a single-encoder bundle: one segment unchanged, long audio segmented") {
  ir::Model m = PoolingBundle(0.5f);
  auto whole = Make(m, 0, 0);
  auto by_default = Make(m, RecognizerOptions{}.lookahead_segment_s, RecognizerOptions{}.lookahead_context_s);
  auto seg = Make(m, 2, 0.5);
  std::vector<float> samples(16000 * 9);
  for (size_t i = 0; i < samples.size(); ++i)
    samples[i] = 3000.f * std::sin(0.01f * static_cast<float>(i)) * std::sin(1e-4f * static_cast<float>(i));
  auto w = whole->Recognize(samples, false, true);
  auto d = by_default->Recognize(samples, false, true);
  auto s = seg->Recognize(samples, false, true);
  REQUIRE((w.ok() && d.ok() && s.ok()));
  CHECK(!w->lookahead_ids.empty());
  CHECK(d->lookahead_ids == w->lookahead_ids);  // 9 s: one default segment, the whole run
  CHECK((w->lookahead_segments == 1 && d->lookahead_segments == 1));
  CHECK(s->lookahead_segments == 5);  // 9 s in segments of at most 2 s
  CHECK(s->encoder_frames == w->encoder_frames);
  CHECK(w->encoder_frames == (w->feature_frames - 3) / 4);
}

TEST_CASE("EncodeOffline: an encoder that does not subsample as model.json says is refused beyond one segment") {
  ir::Model m = PoolingBundle(0, 4, false);  // identity encoder, model.json says 4
  auto feats = Ramp(1000);
  auto seg = Make(m, 0.4, 0.2);
  Status s = seg->EncodeOffline(feats, 1000, [](const float*, int64_t, int64_t) { return Status::Ok(); }, nullptr);
  REQUIRE(!s.ok());
  CHECK(s.message().find("subsampling_factor (4)") != std::string::npos);
  CHECK(s.message().find("--lookahead-segment 0") != std::string::npos);
  auto whole = Make(m, 0, 0);  // encoded whole, knowingly
  CHECK(Encode(*whole, feats, 1000).size() == 1000u * testing::kFeat);
  ir::Model two = PoolingBundle(0, 2);  // pools by 4, model.json says 2
  auto seg2 = Make(two, 0.4, 0.2);
  CHECK(!seg2->EncodeOffline(feats, 1000, [](const float*, int64_t, int64_t) { return Status::Ok(); }, nullptr).ok());
}

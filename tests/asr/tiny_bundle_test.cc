// The tiny `transducer` bundle of tiny_bundle.h run through the real GraphScorer / Recognizer /
// Evaluate path on our runtime: greedy and beam must both output "a b c".
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>

#include <doctest/doctest.h>

#include "asr/eval.h"
#include "asr/stream.h"
#include "tiny_bundle.h"

using namespace asrc;
using namespace asrc::asr;

using asrc::testing::TinyBundle;

TEST_CASE("tiny transducer bundle: greedy and beam decode the preferred sequence") {
  ir::Model m = TinyBundle();
  std::vector<float> samples(16000);
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = 0.1f * static_cast<float>((i * 7919) % 200) / 200.f - 0.05f;
  for (int beam : {0, 4}) {
    CAPTURE(beam);
    RecognizerOptions ro;
    ro.search.beam = beam;
    auto rec = Recognizer::Create(m, ro);
    REQUIRE_MESSAGE(rec.ok(), rec.status().message());
    CHECK(!rec.value()->has_streaming());
    auto r = rec.value()->Recognize(samples, true, true);
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    CHECK(r->lookahead_ids == std::vector<int>{1, 2, 3});
    CHECK(r->lookahead_text == "a b c");
    CHECK(r->streaming_ids.empty());
    CHECK(r->encoder_frames == 100);
  }
  {
    RecognizerOptions ro;
    ro.search.max_symbols_per_frame = 1;  // one label per frame still reaches 1 2 3
    auto rec = Recognizer::Create(m, ro);
    REQUIRE(rec.ok());
    auto r = rec.value()->Recognize(samples, false, true);
    REQUIRE(r.ok());
    CHECK(r->lookahead_text == "a b c");
  }
}

TEST_CASE("tiny transducer bundle: session options by role reach the recognizer's graphs (taps)") {
  ir::Model m = TinyBundle();
  std::vector<float> samples(16000);
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = 0.1f * static_cast<float>((i * 7919) % 200) / 200.f - 0.05f;
  std::map<std::string, int> runs;
  std::map<std::string, int64_t> elements;
  RecognizerOptions ro;
  for (const char* role_tap : {"encoder/encoder_out", "decoder/emb", "joiner/dw"}) {
    std::string rt = role_tap, role = rt.substr(0, rt.find('/')), tap = rt.substr(rt.find('/') + 1);
    runtime::SessionOptions so;
    so.taps = {tap};
    so.observer = [&runs, &elements, rt](const std::string& name, const ir::Tensor& t) {
      CHECK(rt.substr(rt.find('/') + 1) == name);
      ++runs[rt];
      elements[rt] += t.numel();
    };
    ro.sessions[role] = so;
  }
  for (bool cache : {true, false}) {
    CAPTURE(cache);
    runs.clear();
    elements.clear();
    ro.cache_decoder = cache;
    auto rec = Recognizer::Create(m, ro);
    REQUIRE_MESSAGE(rec.ok(), rec.status().message());
    auto r = rec.value()->Recognize(samples, false, true);
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    CHECK(r->lookahead_text == "a b c");
    // The encoder runs once over 100 frames of 80 features; the decoder once for the start
    // context and once per label (every context is new); the joiner once per frame plus once
    // per label.
    CHECK(runs["encoder/encoder_out"] == 1);
    CHECK(elements["encoder/encoder_out"] == 100 * 80);
    CHECK(runs["decoder/emb"] == 4);
    CHECK(runs["joiner/dw"] == 103);
    CHECK(elements["joiner/dw"] == 103 * 5);
  }
  ro.sessions["joiner"].taps = {"no_such_value"};
  auto bad = Recognizer::Create(m, ro);
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("tap 'no_such_value'") != std::string::npos);
}

TEST_CASE("tiny transducer bundle through Evaluate: look-ahead only, WER 0, streaming refused") {
  ir::Model m = TinyBundle();
  const std::string dir = "/tmp/asrc_test_tiny_" + std::to_string(getpid());
  std::string cmd = "mkdir -p " + dir + " && sox -n -r 8000 -c 2 -b 16 " + dir + "/a.wav synth 0.5 sine 300";
  REQUIRE(std::system(cmd.c_str()) == 0);
  {
    std::ofstream f(dir + "/m.jsonl");
    f << R"({"id": "one", "audio_filepath": "a.wav", "text": "A, b c!"})" << "\n";
    f << R"({"id": "two", "audio_filepath": "a.wav", "text": "a b c d"})" << "\n";
  }
  EvalOptions o;
  auto r = Evaluate(m, dir + "/m.jsonl", o);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(!r->streaming);
  REQUIRE(r->lookahead);
  CHECK(r->lookahead->words == 7);
  CHECK(r->lookahead->deletions == 1);
  CHECK(r->lookahead->wer == doctest::Approx(100.0 / 7));
  CHECK(r->lookahead->per_utterance[0].hypothesis == "a b c");
  o.lookahead = false;
  auto s = Evaluate(m, dir + "/m.jsonl", o);
  REQUIRE(!s.ok());
  CHECK(s.status().message().find("no streaming mode") != std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}

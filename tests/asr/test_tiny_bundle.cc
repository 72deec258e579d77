// The tiny offline `transducer` bundle (asr/tiny_bundle.h) run through the real GraphScorer /
// Recognizer / Evaluate path on our runtime: greedy and beam must both output "a b c".
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <doctest/doctest.h>

#include "asr/eval.h"
#include "asr/stream.h"
#include "asr/tiny_bundle.h"

using namespace asrc;
using namespace asrc::asr;
using asrc::test::TinyBundle;

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

TEST_CASE("tiny transducer bundle through Evaluate: look-ahead only, WER 0, streaming refused") {
  ir::Model m = TinyBundle();
  const std::string dir = "/tmp/asrc_test_tiny_" + std::to_string(getpid());
  std::string cmd = "mkdir -p " + dir + " && sox -n -r 8000 -c 2 -b 16 " + dir + "/a.wav synth 0.5 sine 300";
  REQUIRE(std::system(cmd.c_str()) == 0);
  {
    std::ofstream f(dir + "/m.jsonl");
    f << R"({"audio_filepath": "a.wav", "text": "A, b c!"})" << "\n";
    f << R"({"audio_filepath": "a.wav", "text": "a b c d"})" << "\n";
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

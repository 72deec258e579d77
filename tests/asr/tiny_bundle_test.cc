// A tiny offline `transducer` bundle built in code (encoder = identity on the features, stateless
// decoder = one-hot embedding, joiner = transition matrix + encoder term) run through the real
// GraphScorer / Recognizer / Evaluate path on our runtime. The joiner deterministically prefers
// blank -> 1 -> 2 -> 3 -> blank, so greedy and beam must both output "a b c".
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <doctest/doctest.h>

#include "asr/eval.h"
#include "asr/stream.h"

using namespace asrc;
using namespace asrc::asr;

namespace {

constexpr int kVocab = 5, kFeat = 80;

ir::GraphFile MakeGraph(const std::string& role) {
  ir::GraphFile gf;
  gf.role = role;
  gf.file = role + ".onnx";
  gf.opsets = {{"", 17}};
  gf.graph = std::make_unique<ir::Graph>(role);
  return gf;
}

ir::Value* Input(ir::Graph& g, const std::string& name, ir::DType t) {
  ir::Value* v = g.add_value(name);
  v->type.has_type = true;
  v->type.dtype = t;
  g.inputs.push_back(v);
  return v;
}

ir::Model TinyBundle() {
  ir::Model m;
  m.is_bundle = true;
  {  // encoder: features pass through
    auto gf = MakeGraph("encoder");
    ir::Graph& g = *gf.graph;
    ir::Value* x = Input(g, "x", ir::DType::Float32);
    ir::Value* xl = Input(g, "x_lens", ir::DType::Int64);
    g.outputs.push_back(g.add_node("Identity", {x}, {"encoder_out"})->outputs[0]);
    g.outputs.push_back(g.add_node("Identity", {xl}, {"encoder_out_lens"})->outputs[0]);
    m.graphs.push_back(std::move(gf));
  }
  {  // decoder: y [N, 1] -> one-hot rows of an identity embedding -> [N, V]
    auto gf = MakeGraph("decoder");
    ir::Graph& g = *gf.graph;
    ir::Value* y = Input(g, "y", ir::DType::Int64);
    std::vector<float> eye(kVocab * kVocab, 0.f);
    for (int i = 0; i < kVocab; ++i) eye[i * kVocab + i] = 1.f;
    ir::Value* e = g.add_initializer("embed", ir::Tensor::FromVector(ir::DType::Float32, {kVocab, kVocab}, eye));
    ir::Value* shape = g.add_initializer("shape", ir::Tensor::FromVector(ir::DType::Int64, {2}, std::vector<int64_t>{-1, kVocab}));
    ir::Value* gathered = g.add_node("Gather", {e, y}, {"emb"})->outputs[0];
    g.outputs.push_back(g.add_node("Reshape", {gathered, shape}, {"decoder_out"})->outputs[0]);
    m.graphs.push_back(std::move(gf));
  }
  {  // joiner: logit = decoder_out @ W + encoder_out @ U (U small: the encoder term never wins)
    auto gf = MakeGraph("joiner");
    ir::Graph& g = *gf.graph;
    ir::Value* enc = Input(g, "encoder_out", ir::DType::Float32);
    ir::Value* dec = Input(g, "decoder_out", ir::DType::Float32);
    std::vector<float> w(kVocab * kVocab, 0.f);
    const int next[kVocab] = {1, 2, 3, 0, 0};  // preferred label after each context label
    for (int a = 0; a < kVocab; ++a) w[a * kVocab + next[a]] = 8.f;
    std::vector<float> u(kFeat * kVocab);
    for (size_t i = 0; i < u.size(); ++i) u[i] = 1e-5f * static_cast<float>(i % 7);
    ir::Value* W = g.add_initializer("W", ir::Tensor::FromVector(ir::DType::Float32, {kVocab, kVocab}, w));
    ir::Value* U = g.add_initializer("U", ir::Tensor::FromVector(ir::DType::Float32, {kFeat, kVocab}, u));
    ir::Value* a = g.add_node("MatMul", {dec, W}, {"dw"})->outputs[0];
    ir::Value* b = g.add_node("MatMul", {enc, U}, {"eu"})->outputs[0];
    g.outputs.push_back(g.add_node("Add", {a, b}, {"logit"})->outputs[0]);
    m.graphs.push_back(std::move(gf));
  }
  m.config = nlohmann::json::parse(R"({
    "format": "asrc-bundle", "version": 1, "model_type": "transducer",
    "frontend": {"type": "kaldi_fbank", "sample_rate": 16000, "num_mel_bins": 80},
    "decoding": {"blank_id": 0, "vocab_size": 5, "decoder_type": "stateless", "context_size": 1,
                 "subsampling_factor": 1}})");
  m.tokens = {"<blk> 0", "\xE2\x96\x81" "a 1", "\xE2\x96\x81" "b 2", "\xE2\x96\x81" "c 3", "\xE2\x96\x81" "d 4"};
  for (auto& gf : m.graphs) REQUIRE(gf.graph->verify().ok());
  return m;
}

}  // namespace

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

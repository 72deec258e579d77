// A tiny offline `transducer` bundle built in code (encoder = identity on the features, stateless
// decoder = one-hot embedding, joiner = transition matrix + encoder term). The joiner
// deterministically prefers blank -> 1 -> 2 -> 3 -> blank, so greedy and beam search both output
// "a b c". Used by the asr tests and by calibration (tests/pass).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "ir/model.h"

namespace asrc::testing {

constexpr int kVocab = 5, kFeat = 80;

inline ir::GraphFile MakeGraph(const std::string& role) {
  ir::GraphFile gf;
  gf.role = role;
  gf.file = role + ".onnx";
  gf.opsets = {{"", 17}};
  gf.graph = std::make_unique<ir::Graph>(role);
  return gf;
}

inline ir::Value* Input(ir::Graph& g, const std::string& name, ir::DType t) {
  ir::Value* v = g.AddValue(name);
  v->type.has_type = true;
  v->type.dtype = t;
  g.inputs.push_back(v);
  return v;
}

inline ir::Model TinyBundle() {
  ir::Model m;
  m.is_bundle = true;
  {  // encoder: features pass through
    auto gf = MakeGraph("encoder");
    ir::Graph& g = *gf.graph;
    ir::Value* x = Input(g, "x", ir::DType::Float32);
    ir::Value* xl = Input(g, "x_lens", ir::DType::Int64);
    g.outputs.push_back(g.AddNode("Identity", {x}, {"encoder_out"})->outputs[0]);
    g.outputs.push_back(g.AddNode("Identity", {xl}, {"encoder_out_lens"})->outputs[0]);
    m.graphs.push_back(std::move(gf));
  }
  {  // decoder: y [N, 1] -> one-hot rows of an identity embedding -> [N, V]
    auto gf = MakeGraph("decoder");
    ir::Graph& g = *gf.graph;
    ir::Value* y = Input(g, "y", ir::DType::Int64);
    std::vector<float> eye(kVocab * kVocab, 0.f);
    for (int i = 0; i < kVocab; ++i) eye[i * kVocab + i] = 1.f;
    ir::Value* e = g.AddInitializer("embed", ir::Tensor::FromVector(ir::DType::Float32, {kVocab, kVocab}, eye));
    ir::Value* shape = g.AddInitializer("shape", ir::Tensor::FromVector(ir::DType::Int64, {2}, std::vector<int64_t>{-1, kVocab}));
    ir::Value* gathered = g.AddNode("Gather", {e, y}, {"emb"})->outputs[0];
    g.outputs.push_back(g.AddNode("Reshape", {gathered, shape}, {"decoder_out"})->outputs[0]);
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
    ir::Value* W = g.AddInitializer("W", ir::Tensor::FromVector(ir::DType::Float32, {kVocab, kVocab}, w));
    ir::Value* U = g.AddInitializer("U", ir::Tensor::FromVector(ir::DType::Float32, {kFeat, kVocab}, u));
    ir::Value* a = g.AddNode("MatMul", {dec, W}, {"dw"})->outputs[0];
    ir::Value* b = g.AddNode("MatMul", {enc, U}, {"eu"})->outputs[0];
    g.outputs.push_back(g.AddNode("Add", {a, b}, {"logit"})->outputs[0]);
    m.graphs.push_back(std::move(gf));
  }
  m.config = nlohmann::json::parse(R"({
    "format": "asrc-bundle", "version": 1, "model_type": "transducer",
    "frontend": {"type": "kaldi_fbank", "sample_rate": 16000, "num_mel_bins": 80},
    "decoding": {"blank_id": 0, "vocab_size": 5, "decoder_type": "stateless", "context_size": 1,
                 "subsampling_factor": 1}})");
  m.tokens = {"<blk> 0", "\xE2\x96\x81" "a 1", "\xE2\x96\x81" "b 2", "\xE2\x96\x81" "c 3", "\xE2\x96\x81" "d 4"};
  for (auto& gf : m.graphs) REQUIRE(gf.graph->Verify().ok());
  return m;
}

}  // namespace asrc::testing

// A tiny transducer built in code for the training tests, and a learnable synthetic data set.
//
// Model (V symbols, blank 0):
//   encoder  enc = Relu(features [B,T,F] @ enc_w [F,H] + enc_b) @ enc_proj [H,J]     -> [B,T,J]
//   decoder  dec = Gather(embed [V,J], decoder_input [B,U+1]) (stateless: the previous label only)
//   joiner   logits = Tanh(enc[:, :, None] + dec[:, None]) @ out_w [J,V] + out_b  -> [B,T,U+1,V]
//   loss     ai.asrc RNNTLoss(logits, targets, logit_lengths, target_lengths), reduction mean
//            (or, for distillation, ai.asrc TransducerKLLoss(logits, teacher_logits, ...)).
// decoder_input is blank followed by the labels. tests/train/transducer_ref.py builds the same model in
// PyTorch from the same files.
//
// Data: each label k owns a random pattern vector; an utterance is one silence frame, then per
// label two frames of its pattern and one silence frame, plus noise. Consecutive labels differ, so
// a decoder that sees only the previous label can tell when to emit.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "train/trainer.h"

namespace asrc::testing {

struct TinyDims {
  int64_t F = 8, H = 24, J = 24, V = 5;
};

enum class TinyLoss { kRnnt, kKl, kNone };

inline ir::Tensor Uniform(ir::Shape shape, std::mt19937_64& rng, float a) {
  ir::Tensor t(ir::DType::Float32, std::move(shape));
  std::uniform_real_distribution<float> u(-a, a);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// Seeded initial weights, by name.
inline std::map<std::string, ir::Tensor> TinyWeights(const TinyDims& d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<std::string, ir::Tensor> w;
  w["enc_w"] = Uniform({d.F, d.H}, rng, 1.f / std::sqrt(float(d.F)));
  w["enc_b"] = Uniform({d.H}, rng, 0.1f);
  w["enc_proj"] = Uniform({d.H, d.J}, rng, 1.f / std::sqrt(float(d.H)));
  w["embed"] = Uniform({d.V, d.J}, rng, 1.f);
  w["out_w"] = Uniform({d.J, d.V}, rng, 1.f / std::sqrt(float(d.J)));
  w["out_b"] = Uniform({d.V}, rng, 0.1f);
  return w;
}

inline std::vector<std::string> TinyTrainables() {
  return {"enc_w", "enc_b", "enc_proj", "embed", "out_w", "out_b"};
}

// The graph: inputs features, decoder_input, targets, feature_lengths (the logit lengths: no
// subsampling), target_lengths (train/data.h names them so; and teacher_logits for
// kKl); output "loss" (kNone: output "logits").
inline void BuildTiny(ir::Graph& g, const std::map<std::string, ir::Tensor>& weights, TinyLoss loss) {
  auto input = [&](const std::string& name) {
    ir::Value* v = g.AddValue(name);
    g.inputs.push_back(v);
    return v;
  };
  ir::Value* feats = input("features");
  ir::Value* dec_in = input("decoder_input");
  ir::Value* targets = loss == TinyLoss::kRnnt ? input("targets") : nullptr;
  ir::Value* logit_lengths = loss != TinyLoss::kNone ? input("feature_lengths") : nullptr;
  ir::Value* target_lengths = loss != TinyLoss::kNone ? input("target_lengths") : nullptr;
  ir::Value* teacher = loss == TinyLoss::kKl ? input("teacher_logits") : nullptr;
  std::map<std::string, ir::Value*> w;
  for (const auto& [name, t] : weights) w[name] = g.AddInitializer(name, t.Clone());
  auto op = [&](const std::string& type, std::vector<ir::Value*> in, const std::string& out) {
    return g.AddNode(type, in, {out}, out + "_node")->outputs[0];
  };
  ir::Value* ax1 = g.AddInitializer("axis1", ir::Tensor::FromVector<int64_t>(ir::DType::Int64, {1}, {1}));
  ir::Value* ax2 = g.AddInitializer("axis2", ir::Tensor::FromVector<int64_t>(ir::DType::Int64, {1}, {2}));
  ir::Value* h = op("Relu", {op("Add", {op("MatMul", {feats, w["enc_w"]}, "enc_mm"), w["enc_b"]}, "enc_pre")}, "enc_h");
  ir::Value* enc = op("Unsqueeze", {op("MatMul", {h, w["enc_proj"]}, "enc"), ax2}, "enc4");
  ir::Value* dec = op("Unsqueeze", {op("Gather", {w["embed"], dec_in}, "dec"), ax1}, "dec4");
  ir::Value* z = op("Tanh", {op("Add", {enc, dec}, "join_sum")}, "join_h");
  ir::Value* logits = op("Add", {op("MatMul", {z, w["out_w"]}, "join_mm"), w["out_b"]}, "logits");
  if (loss == TinyLoss::kNone) {
    g.outputs = {logits};
    return;
  }
  std::vector<ir::Value*> in = loss == TinyLoss::kRnnt
                                   ? std::vector<ir::Value*>{logits, targets, logit_lengths, target_lengths}
                                   : std::vector<ir::Value*>{logits, teacher, logit_lengths, target_lengths};
  ir::Node* n = g.AddNode(loss == TinyLoss::kRnnt ? "RNNTLoss" : "TransducerKLLoss", in, {"loss", "loss_dlogits"},
                           "loss_node", "ai.asrc");
  n->set_attr_string("reduction", "mean");
  g.outputs = {n->outputs[0]};
}

struct TinyData {
  std::vector<std::vector<int>> labels;  // per utterance
  ir::Tensor feats, dec_in, targets, logit_lengths, target_lengths;
};

// `n` utterances of 2..4 labels from 1..V-1, no label repeated back to back.
inline TinyData MakeTinyData(const TinyDims& d, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<std::vector<float>> pattern(d.V, std::vector<float>(d.F));
  for (auto& p : pattern)
    for (float& x : p) x = 1.5f * normal(rng);
  TinyData data;
  int64_t T = 0, U = 0;
  for (int b = 0; b < n; ++b) {
    std::vector<int> y;
    int len = 2 + static_cast<int>(rng() % 3);
    while (static_cast<int>(y.size()) < len) {
      int k = 1 + static_cast<int>(rng() % (d.V - 1));
      if (y.empty() || y.back() != k) y.push_back(k);
    }
    data.labels.push_back(y);
    T = std::max<int64_t>(T, 1 + 3 * len);
    U = std::max<int64_t>(U, len);
  }
  data.feats = ir::Tensor(ir::DType::Float32, {n, T, d.F});
  data.dec_in = ir::Tensor(ir::DType::Int64, {n, U + 1});
  data.targets = ir::Tensor(ir::DType::Int32, {n, U});
  data.logit_lengths = ir::Tensor(ir::DType::Int32, {n});
  data.target_lengths = ir::Tensor(ir::DType::Int32, {n});
  for (int b = 0; b < n; ++b) {
    const auto& y = data.labels[b];
    float* f = data.feats.data<float>() + b * T * d.F;
    for (int64_t t = 0; t < T; ++t) {
      int64_t slot = t - 1;  // frame 0 is silence; then (label, label, silence) per label
      int k = slot >= 0 && slot / 3 < static_cast<int64_t>(y.size()) && slot % 3 < 2 ? y[slot / 3] : 0;
      for (int64_t i = 0; i < d.F; ++i) f[t * d.F + i] = (k ? pattern[k][i] : 0.f) + 0.2f * normal(rng);
    }
    for (size_t u = 0; u < y.size(); ++u) {
      data.dec_in.data<int64_t>()[b * (U + 1) + 1 + u] = y[u];
      data.targets.data<int32_t>()[b * U + u] = y[u];
    }
    data.logit_lengths.data<int32_t>()[b] = static_cast<int32_t>(1 + 3 * y.size());
    data.target_lengths.data<int32_t>()[b] = static_cast<int32_t>(y.size());
  }
  return data;
}

inline train::Batch TinyBatch(const TinyData& data, bool with_targets = true) {
  train::Batch b;
  b.id = "tiny";
  b.feeds = {{"features", data.feats}, {"decoder_input", data.dec_in},
             {"feature_lengths", data.logit_lengths}, {"target_lengths", data.target_lengths}};
  if (with_targets) b.feeds.emplace_back("targets", data.targets);
  return b;
}

// Greedy transducer decoding of utterance b with the given weights (at most 3 symbols a frame).
inline std::vector<int> TinyGreedy(const TinyDims& d, const std::map<std::string, ir::Tensor>& w,
                                   const TinyData& data, int b) {
  const int64_t T = data.feats.dim(1);
  const float* x = data.feats.data<float>() + b * T * d.F;
  auto W = [&](const char* n) { return w.at(n).data<float>(); };
  std::vector<int> out;
  int prev = 0;
  for (int64_t t = 0; t < data.logit_lengths.data<int32_t>()[b]; ++t) {
    std::vector<float> h(d.H), enc(d.J, 0.f);
    for (int64_t j = 0; j < d.H; ++j) {
      float s = W("enc_b")[j];
      for (int64_t i = 0; i < d.F; ++i) s += x[t * d.F + i] * W("enc_w")[i * d.H + j];
      h[j] = std::max(s, 0.f);
    }
    for (int64_t j = 0; j < d.J; ++j)
      for (int64_t i = 0; i < d.H; ++i) enc[j] += h[i] * W("enc_proj")[i * d.J + j];
    for (int sym = 0; sym < 3; ++sym) {
      int best = 0;
      float best_v = -1e30f;
      for (int64_t v = 0; v < d.V; ++v) {
        float s = W("out_b")[v];
        for (int64_t j = 0; j < d.J; ++j) s += std::tanh(enc[j] + W("embed")[prev * d.J + j]) * W("out_w")[j * d.V + v];
        if (s > best_v) best_v = s, best = static_cast<int>(v);
      }
      if (best == 0) break;
      out.push_back(best);
      prev = best;
    }
  }
  return out;
}

// The trainer's weights by name.
inline std::map<std::string, ir::Tensor> WeightsOf(const train::Trainer& t) {
  std::map<std::string, ir::Tensor> w;
  for (size_t k = 0; k < t.trainable_names().size(); ++k) w[t.trainable_names()[k]] = t.weights()[k];
  return w;
}

}  // namespace asrc::testing

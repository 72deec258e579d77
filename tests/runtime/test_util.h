// Helpers for runtime tests: one-node graphs built in code, seeded random tensors.
#pragma once

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "runtime/session.h"

namespace asrc::testing {

inline ir::Tensor RandomTensor(ir::Shape shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  ir::Tensor t(ir::DType::Float32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

// Same dtype, shape and bytes.
inline bool SameBytes(const ir::Tensor& a, const ir::Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

inline ir::Tensor I64(std::vector<int64_t> v, ir::Shape shape = {}) {
  if (shape.empty() && v.size() != 1) shape = {static_cast<int64_t>(v.size())};
  return ir::Tensor::FromVector(ir::DType::Int64, shape, v);
}

// A graph with one node: inputs are graph inputs (nullptr tensors: omitted) unless given as
// constants; returns the outputs of a run.
struct OneNode {
  ir::Graph g{"one"};
  ir::Node* node = nullptr;
  std::vector<ir::Tensor> feeds;

  OneNode(const std::string& op, const std::vector<ir::Tensor>& inputs, int n_out,
          const std::vector<bool>& constant = {}) {
    std::vector<ir::Value*> ins;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!inputs[i].defined()) {
        ins.push_back(nullptr);
        continue;
      }
      std::string name = "in" + std::to_string(i);
      if (i < constant.size() && constant[i]) {
        ins.push_back(g.AddInitializer(name, inputs[i]));
      } else {
        ir::Value* v = g.AddValue(name);
        g.inputs.push_back(v);
        ins.push_back(v);
        feeds.push_back(inputs[i]);
      }
    }
    std::vector<std::string> outs;
    for (int i = 0; i < n_out; ++i) outs.push_back("out" + std::to_string(i));
    node = g.AddNode(op, ins, outs, "n0");
    for (auto* o : node->outputs) g.outputs.push_back(o);
  }

  Result<std::vector<ir::Tensor>> Run(int64_t opset = 17, int threads = 1) {
    ASRC_ASSIGN_OR_RETURN(auto s, runtime::Session::Create(g, opset, {threads}));
    std::vector<ir::Tensor> out;
    ASRC_RETURN_IF_ERROR(s->Run(feeds, &out));
    return out;
  }
};

inline float MaxAbsDiff(const ir::Tensor& a, const ir::Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  float m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.data<float>()[i] - b.data<float>()[i]));
  return m;
}

}  // namespace asrc::testing
